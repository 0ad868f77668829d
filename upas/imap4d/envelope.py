"""Header fields, ENVELOPE, BODYSTRUCTURE and IMAP string output, built
from the files upasfs serves (rawheader, mimeheader, rawbody, part dirs).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Iterator

NIL = b"NIL"
_UNQUOTABLE = re.compile(rb'[\x00"\\\r\n\x7f-\xff]')   # bytes that need a literal
_BARE_LF = re.compile(rb"(?<!\r)\n")
_FIELD = re.compile(rb"[^\n]*\n(?:[ \t][^\n]*\n)*|[^\n]+$")
# a line break and the white space after it: one space (as upasfs's own
# files and Dovecot show a folded field)
_FOLD = re.compile(rb"\r?\n[ \t]+")


# ------------------------------------------------------------ output strings

def istring(v: bytes | str | None) -> bytes:
    """Plan 9 (Bell) string output: NIL, a quoted string of at most 65 plain
    bytes, else a literal."""
    if v is None:
        return NIL
    if isinstance(v, str):
        v = v.encode("utf-8")
    if len(v) <= 65 and not _UNQUOTABLE.search(v):
        return b'"' + v + b'"'
    return b"{%d}\r\n" % len(v) + v


def quote(s: str) -> str:
    """A quoted string with `\\` and `"` escaped: mailbox names and ID values."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(v: bytes, label: bytes = b"") -> bytes:
    """v as a literal, after label (one copy of v: a message body is most
    of what FETCH sends)."""
    return b"%b{%d}\r\n%b" % (label, len(v), v)


# ------------------------------------------------------------ header fields

def crlf(data: bytes) -> bytes:
    """Every LF not already preceded by CR becomes CRLF."""
    if b"\r" not in data:
        return data.replace(b"\n", b"\r\n")
    return _BARE_LF.sub(b"\r\n", data)


def header_block(raw: bytes) -> bytes:
    """H: the header lines CRLF-normalised, the last one terminated, then
    the empty line."""
    if raw and not raw.endswith(b"\n"):
        raw += b"\n"
    return crlf(raw) + b"\r\n"


@functools.lru_cache(maxsize=1024)
def fields(raw: bytes) -> tuple[tuple[str, bytes, bytes], ...]:
    """(lower-case name, unfolded value, raw lines) for each header field
    (kept for the next call: one FETCH asks a header for many fields)."""
    out: list[tuple[str, bytes, bytes]] = []
    for m in _FIELD.finditer(raw):
        text = m.group(0)
        colon = text.find(b":")
        if colon <= 0:
            if out and text[:1] in b" \t":
                continue
            continue
        name = text[:colon].strip().decode("ascii", "replace").lower()
        value = text[colon + 1:]
        if b"\n " in value or b"\n\t" in value:
            value = _FOLD.sub(b" ", value)
        out.append((name, value.strip(), text))
    return tuple(out)


def field(raw: bytes, name: str) -> bytes | None:
    for n, v, _ in fields(raw):
        if n == name:
            return v
    return None


def select_fields(raw: bytes, names: tuple[str, ...], negate: bool) -> bytes:
    """HEADER.FIELDS(.NOT): the complete matching fields, then CRLF."""
    want = {n.lower() for n in names}
    lines = [t for n, _, t in fields(raw) if (n in want) != negate]
    text = b"".join(t if t.endswith(b"\n") else t + b"\n" for t in lines)
    return crlf(text) + b"\r\n"


# ------------------------------------------------------------ content types

@dataclass
class ContentType:
    type: str
    subtype: str
    params: list[tuple[str, str]]


_TOKEN = rb'[^\s()<>@,;:\\"/\[\]?=]+'
_PARAM = re.compile(rb';\s*(' + _TOKEN + rb')\s*=\s*("(?:[^"\\]|\\.)*"|' + _TOKEN + rb')')
_TYPE = re.compile(rb"\s*(" + _TOKEN + rb")\s*/\s*(" + _TOKEN + rb")")
_WORD = re.compile(rb"\s*(" + _TOKEN + rb")")
_QUOTED_PAIR = re.compile(rb"\\(.)")
_COMMENT = re.compile(rb'\((?:[^()\\]|\\.)*\)')
_COMMENT_TEXT = re.compile(rb"\(((?:[^()\\]|\\.)*)\)")
_ANGLE_ADDR = re.compile(rb'(.*)<([^<>]*)>\s*(\(.*\))?\s*$', re.S)
_SPACES = re.compile(rb"\s+")


def parse_params(s: bytes) -> list[tuple[str, str]]:
    out = []
    for m in _PARAM.finditer(s):
        v = m.group(2)
        if v.startswith(b'"'):
            v = _QUOTED_PAIR.sub(rb"\1", v[1:-1])
        out.append((m.group(1).decode("ascii", "replace"), v.decode("utf-8", "replace")))
    return out


@functools.lru_cache(maxsize=1024)
def content_type(hdr: bytes, default: str = "text/plain") -> ContentType:
    """The type of a header's Content-Type (cached like fields(): not to be
    changed by the caller)."""
    v = field(hdr, "content-type")
    m = _TYPE.match(v or b"")
    if not m:
        t, st = default.split("/")
        return ContentType(t, st, [])       # docs/spec/servers.md §3.11: no charset invented
    return ContentType(m.group(1).decode("ascii", "replace").lower(),
                       m.group(2).decode("ascii", "replace").lower(),
                       parse_params(v[m.end():]))


def disposition(hdr: bytes) -> bytes:
    v = field(hdr, "content-disposition")
    if not v:
        return NIL
    m = _WORD.match(v)
    if not m:
        return NIL
    return b"(" + istring(m.group(1).decode().upper()) + b" " + \
        plist(parse_params(v[m.end():])) + b")"


def plist(params: list[tuple[str, str]]) -> bytes:
    if not params:
        return NIL
    return b"(" + b" ".join(istring(k) + b" " + istring(v) for k, v in params) + b")"


# ------------------------------------------------------------ addresses

_SPECIALS = re.compile(rb'[\\"()<>,:;]')


def _top_level(v: bytes) -> Iterator[int]:
    """The offsets of `,` `:` `;` outside quotes, comments and angle
    brackets (a backslash escapes the next byte); only the bytes that
    matter are visited."""
    depth, angle, quote, skip = 0, False, False, -1
    for mt in _SPECIALS.finditer(v):
        i = mt.start()
        if i < skip:                    # escaped
            continue
        c = v[i]
        if c == 0x5c:
            skip = i + 2
        elif quote:
            quote = c != 0x22
        elif c == 0x28:
            depth += 1
        elif c == 0x29:
            depth = max(0, depth - 1)
        elif depth:
            continue
        elif c == 0x22:
            quote = True
        elif c == 0x3c:
            angle = True
        elif c == 0x3e:
            angle = False
        elif not angle and c in b",:;":
            yield i


def _uncomment(v: bytes) -> bytes:
    prev = None
    while prev != v:
        prev = v
        v = _COMMENT.sub(b" ", v)
    return v


def _unquote(v: bytes) -> bytes:
    v = v.strip()
    if len(v) >= 2 and v[:1] == b'"' and v[-1:] == b'"':
        v = _QUOTED_PAIR.sub(rb"\1", v[1:-1])
    return v


def _phrase(v: bytes) -> bytes | None:
    """A display name or group name: comments out, blanks collapsed, unquoted."""
    return _unquote(_SPACES.sub(b" ", _uncomment(v)).strip()) or None


@dataclass(frozen=True)
class Address:
    """One ENVELOPE address structure (RFC 3501 7.4.2).  A group start has
    a mailbox (the group's name) and no host; a group end has neither."""
    personal: bytes | None
    mailbox: bytes | None
    host: bytes | None

    def wire(self) -> bytes:
        return b"(" + istring(self.personal) + b" NIL " + istring(self.mailbox) + b" " + \
            istring(self.host) + b")"

    def text(self) -> str:
        """`personal <mailbox@host>`: what SEARCH's address keys match."""
        spec = b"@".join(x for x in (self.mailbox, self.host) if x)
        out = (self.personal + b" <" + spec + b">") if self.personal else spec
        return out.decode("utf-8", "replace")


GROUP_END = Address(None, None, None)


def address(a: bytes, site: str) -> Address | None:
    """One mailbox (`addr-spec`, `name <addr-spec>`, `addr-spec (name)`,
    `host!user`), or None if empty; comments are not part of the address."""
    a = a.strip()
    if not a:
        return None
    m = _ANGLE_ADDR.match(a)
    if m:
        personal = _phrase(m.group(1))
        spec = m.group(2)
    else:
        c = _COMMENT_TEXT.search(a)
        personal = c.group(1).strip() if c else None
        spec = a
    spec = _SPACES.sub(b"", _uncomment(spec))
    if b":" in spec and spec.startswith(b"@"):       # route: dropped
        spec = spec.split(b":", 1)[1]
    if b"@" in spec:
        box, host = spec.rsplit(b"@", 1)
    elif b"!" in spec:                               # a.b!user -> user@a.b
        host, box = spec.rsplit(b"!", 1)
    else:
        box, host = spec, site.encode()
    return Address(personal or None, box, host)


def parse_addresses(v: bytes | None, site: str) -> list[Address]:
    """An address list with its groups (RFC 5322 3.4): `name: a, b;` gives
    the group's start, its members and its end."""
    out: list[Address] = []
    if not v:
        return out
    start, group = 0, False
    for i in _top_level(v):
        c = v[i]
        if c == 0x3a and not group:                 # `name:` opens a group
            out.append(Address(None, _phrase(v[start:i]) or b"", None))
            group = True
        else:
            a = address(v[start:i], site)
            if a is not None:
                out.append(a)
            if c == 0x3b and group:
                out.append(GROUP_END)
                group = False
        start = i + 1
    a = address(v[start:], site)
    if a is not None:
        out.append(a)
    if group:                                       # a group left open: closed
        out.append(GROUP_END)
    return out


def addresses(v: bytes | None, site: str) -> bytes:
    addrs = parse_addresses(v, site)
    return b"(" + b"".join(a.wire() for a in addrs) + b")" if addrs else NIL


def envelope(hdr: bytes, site: str) -> bytes:
    f = {}
    for n, v, _ in fields(hdr):
        f.setdefault(n, v)
    frm = addresses(f.get("from"), site)
    sender = addresses(f.get("sender"), site) if f.get("sender") else frm
    reply = addresses(f.get("reply-to"), site) if f.get("reply-to") else frm
    items = [istring(f.get("date")), istring(f.get("subject")), frm, sender, reply,
             addresses(f.get("to"), site), addresses(f.get("cc"), site),
             addresses(f.get("bcc"), site), istring(f.get("in-reply-to")),
             istring(f.get("message-id"))]
    return b"(" + b" ".join(items) + b")"
