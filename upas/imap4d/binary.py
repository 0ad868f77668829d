"""BINARY (RFC 3516): FETCH BINARY[part], BINARY.PEEK[part] and
BINARY.SIZE[part] give a part's content with its Content-Transfer-Encoding
undone, so a client need not decode an attachment itself (and a deflated
connection carries the bytes, not their base64).  fetch.py finds the part;
this module decodes it and writes the item.

The whole message (`BINARY[]`) is sent as it is: it is no part and has no
encoding of its own to undo.  A part in an encoding we do not know gets
`NO [UNKNOWN-CTE]` for the whole FETCH (RFC 3516 4.3).  Content holding a
NUL goes out as a literal8 (`~{n}`), anything else as an ordinary literal.
"""
from __future__ import annotations

import binascii

from upas.imap4d import envelope as env
from upas.imap4d import parser as p
from upas.mail.header import dec64

UNDECODED = ("", "7bit", "8bit", "binary")


class UnknownCTE(Exception):
    """A part's Content-Transfer-Encoding that we cannot undo."""


def decode(body: bytes, mime_header: bytes | None) -> bytes:
    """The part's content: `body` (CRLF line ends) decoded as its header's
    Content-Transfer-Encoding says; None for a header: as it is."""
    if mime_header is None:
        return body
    cte = (env.field(mime_header, "content-transfer-encoding") or b"").strip().lower()
    cte = cte.decode("ascii", "replace")
    if cte in UNDECODED:
        return body
    if cte == "base64":
        return dec64(body)          # Plan 9's: what is not base64 is skipped
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    raise UnknownCTE(cte)


def literal8(data: bytes) -> bytes:
    """A literal8 when the data hold a NUL (RFC 3516 4.2), else a literal."""
    if b"\0" in data:
        return b"~{%d}\r\n" % len(data) + data
    return env.literal(data)


def item(a: p.FetchAtt, body: bytes, mime_header: bytes | None) -> bytes:
    """The FETCH item for a BINARY[]/BINARY.PEEK[]/BINARY.SIZE[] attribute
    of a part whose body and MIME header are given."""
    data = decode(body, mime_header)
    spec = ".".join(map(str, a.section.part))
    if a.name == "BINARY.SIZE":
        return b"BINARY.SIZE[%s] %d" % (spec.encode(), len(data))
    label = b"BINARY[%s]" % spec.encode()
    if a.partial is not None:
        start = min(a.partial[0], len(data))
        data = data[start:start + a.partial[1]]
        label += b"<%d>" % start
    return label + b" " + literal8(data)
