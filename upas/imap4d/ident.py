"""ID (RFC 2971) and ENABLE (RFC 5161): what client and server tell each
other about themselves.  ENABLE turns on CONDSTORE and QRESYNC
(condstore.py), and IMAP4rev2 (rev2.py) when it is offered; `* ENABLED`
names those it enabled, none of the others (RFC 5161 3.1)."""
from __future__ import annotations

from . import condstore
from . import parser as p
from . import rev2
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
    """Enable what is asked for and offered now (CONDSTORE, QRESYNC,
    IMAP4rev2); name what this command turned on (RFC 5161 3.1)."""
    turned = condstore.enable(s, req.args)
    for cap in req.args:
        if cap.upper() == rev2.NAME.upper() and rev2.NAME in s.capability_line().split() \
                and not rev2.on(s):
            s.enabled.add(rev2.NAME.upper())
            turned.append(rev2.NAME)
    s.untagged(" ".join(["ENABLED"] + turned))
    s.ok(req, "completed")
