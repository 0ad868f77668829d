"""ID (RFC 2971) and ENABLE (RFC 5161): what client and server tell each
other about themselves.  ENABLE turns on CONDSTORE and QRESYNC
(condstore.py); `* ENABLED` names those it enabled, none of the others."""
from __future__ import annotations

from . import condstore
from . import parser as p
from .envelope import quote

SERVER_ID = (("name", "upas imap4d"), ("vendor", "upas-py"),
             ("os", "Plan 9 ports"))
MAX_PAIRS, MAX_FIELD, MAX_VALUE = 30, 30, 1024


def _nstring(r: p.Reader) -> bytes | None:
    if r.accept(b"NIL"):
        return None
    return r.string()


def parse_id(r: p.Reader) -> list[tuple[bytes, bytes | None]]:
    if r.accept(b"NIL"):
        return []
    r.expect(b"(")
    pairs: list[tuple[bytes, bytes | None]] = []
    while r.peek() != 0x29:
        if pairs:
            r.sp()
        field = r.string()
        r.sp()
        value = _nstring(r)
        if len(field) > MAX_FIELD or (value and len(value) > MAX_VALUE):
            raise p.ParseError("ID field too long")
        pairs.append((field, value))
        if len(pairs) > MAX_PAIRS:
            raise p.ParseError("too many ID fields")
    r.expect(b")")
    return pairs


def cmd_id(s, req) -> None:
    if req.args:
        s.log("client id: " + " ".join(
            f"{f.decode('ascii', 'replace')}={(v or b'NIL').decode('utf-8', 'replace')}"
            for f, v in req.args))
    s.untagged("ID (" + " ".join(f"{quote(k)} {quote(v)}" for k, v in SERVER_ID) + ")")
    s.ok(req, "completed")


def parse_enable(r: p.Reader) -> list[str]:
    caps = [r.atom()]
    while r.peek() == 0x20:
        r.sp()
        caps.append(r.atom())
    return caps


def cmd_enable(s, req) -> None:
    s.untagged(" ".join(["ENABLED"] + condstore.enable(s, req.args)))
    s.ok(req, "completed")
