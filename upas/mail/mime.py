"""MIME structure of one stored message and the 25 files upas/fs serves
for it and for each of its parts (Bell/plan9port order).

A Part keeps byte offsets into a buffer (the message's bytes, or the
decoded body of a message/rfc822 container); file contents are cut from it
on demand.  Object ids follow upas/fs: a message takes one id, then each
multipart level allocates ids to all its children before descending.
"""
from __future__ import annotations

import re
from typing import Callable, Iterator

from upas.mail import header as H

# the 25 per-message files, in upas/fs's internal order (= qid file index)
FILES = ("body bcc cc date digest disposition filename from header inreplyto "
         "lines mimeheader messageid raw rawbody rawheader rawunix replyto "
         "sender subject to type unixheader info unixdate").split()
FILEINDEX = {name: i for i, name in enumerate(FILES)}
INFO_FIELDS = ("from to cc replyto unixdate subject type disposition filename "
               "digest bcc inreplyto date sender messageid lines").split()

EPOCH_DATE = b"Thu Jan  1 00:00:00 GMT 1970"

# header prefix -> attribute; the last three are the MIME headers
_HEADS = [(b"date:", "date"), (b"from:", "from_"), (b"to:", "to"),
          (b"sender:", "sender"), (b"reply-to:", "replyto"),
          (b"subject:", "subject"), (b"cc:", "cc"), (b"bcc:", "bcc"),
          (b"in-reply-to:", "inreplyto"), (b"mime-version:", "mimeversion"),
          (b"message-id:", "messageid"),
          (b"content-type:", "ctype"), (b"content-transfer-encoding:", "cenc"),
          (b"content-disposition:", "cdisp")]
_MIME_HEADS = _HEADS[-3:]
_ADDR = {"from_", "to", "sender", "replyto", "cc", "bcc", "mimeversion"}

NONE, INLINE, FILE = 0, 1, 2

# Bounds on one message's MIME tree (Dovecot's defaults, lib-mail
# message-parser.h): a part MAX_DEPTH levels down is not split into parts,
# and once a message and its parts number MAX_PARTS no boundary starts one more.
MAX_DEPTH = 100
MAX_PARTS = 10000
ENONE, EBASE64, EQUOTED = 0, 1, 2


class Part:
    """A message (top level) or a MIME part, as offsets into `buf`."""

    __slots__ = ("buf", "id", "name", "parts", "start", "end",
                 "header", "hend", "mheader", "mhend", "body", "bend",
                 "from_", "to", "cc", "bcc", "sender", "replyto", "subject",
                 "date", "inreplyto", "messageid", "mimeversion",
                 "type", "charset", "encoding", "disposition", "filename",
                 "boundary", "unixfrom", "unixdate", "unixheader", "digest",
                 "dbody", "opened", "_lens")

    def __init__(self, buf, pid: int, name: str):
        self.buf = buf
        self.id = pid
        self.name = name
        self.parts: list[Part] = []
        self.from_ = self.to = self.cc = self.bcc = self.sender = None
        self.replyto = self.subject = self.date = self.inreplyto = None
        self.messageid = self.mimeversion = self.filename = self.boundary = None
        self.unixfrom = self.unixdate = self.unixheader = self.digest = None
        self.dbody = self._lens = None
        self.type = b"text/plain"
        self.charset = b"iso-8859-1"
        self.encoding = ENONE
        self.disposition = NONE
        self.opened = False

    # -- header handlers -------------------------------------------------
    def _set(self, attr: str, value: bytes) -> None:
        if attr in _ADDR:
            setattr(self, attr, H.addr822(value))
        elif attr == "ctype":
            self._ctype(value)
        elif attr == "cenc":
            v = value[H.skipwhite(value):].lower()
            if v.startswith(b"base64"):
                self.encoding = EBASE64
            elif v.startswith(b"quoted-printable"):
                self.encoding = EQUOTED
        elif attr == "cdisp":
            self._cdisp(value)
        else:
            setattr(self, attr, H.killtrailingwhite(value[H.skipwhite(value):]))

    def _ctype(self, v: bytes) -> None:
        self.type, i = _getstring(v, H.skipwhite(v), lower=True)
        while i < len(v):
            if (j := _isattribute(v, i, b"boundary")) >= 0:
                b, i = _getstring(v, j)
                self.boundary = b"--" + b
            elif v[i:i + 9].lower() == b"multipart":
                pass
            elif (j := _isattribute(v, i, b"name")) >= 0:
                i = j
                if self.filename is None:
                    self.filename = _filename(v, i)
            elif (j := _isattribute(v, i, b"charset")) >= 0:
                self.charset, i = _getstring(v, j)
            i = _skiptosemi(v, i)

    def _cdisp(self, v: bytes) -> None:
        i = H.skipwhite(v)
        while i < len(v):
            low = v[i:i + 10].lower()
            if low.startswith(b"inline"):
                self.disposition = INLINE
            elif low.startswith(b"attachment"):
                self.disposition = FILE
            elif low.startswith(b"filename="):
                i += 9
                self.filename = _filename(v, i)
            i = _skiptosemi(v, i)

    # -- files -----------------------------------------------------------
    def raw_body(self) -> bytes:
        return bytes(self.buf[self.body:self.bend])

    def decoded_body(self) -> bytes:
        """`body` after open-time decoding and charset conversion."""
        if self.dbody is None:
            self.dbody = _decode(self.encoding, self.raw_body())
        body = self.dbody
        if not self.parts and self.type[:4].lower() == b"text":
            body = H.convert_text(self.charset, body)
            if self.type.startswith(b"text/"):
                body = body.replace(b"\0", b"")    # Bell strips NULs from text
        return body

    def open_body(self) -> None:
        self.opened = True

    def file(self, name: str, ignore: H.Ignore | None = None) -> bytes:
        """The content of one of the 25 files."""
        if name == "info":
            return b"".join(H.rfc2047(self.file(f)) + b"\n" for f in INFO_FIELDS)
        if name == "header":
            return H.filtered_header(self.buf, self.header, self.hend,
                                     ignore or H.Ignore([]))
        return _FILE_FNS[name](self)

    def length(self, name: str, ignore: H.Ignore | None = None) -> int:
        if name == "body" and not self.opened:
            return len(self.dbody) if self.dbody is not None else self.bend - self.body
        # a directory listing stats all 25 files: each content is made
        # once for its length (body's length changes when it is opened)
        lens = self._lens
        if lens is None:
            lens = self._lens = {}
        n = lens.get(name)
        if n is None:
            span = _SPANS.get(name)
            n = lens[name] = (_span(self.buf, *span(self)) if span is not None
                              else len(self.file(name, ignore)))
        return n

    def qidpath(self, fileindex: int) -> int:
        return ((self.id & 0xFFFFF) << 10) | fileindex

    def walk(self) -> Iterator["Part"]:
        yield self
        for p in self.parts:
            yield from p.walk()


def _raw(m: Part) -> bytes:
    return bytes(m.buf[_raw_start(m):m.end])


def _raw_start(m: Part) -> int:
    p = m.start
    if m.buf[p:p + 5] == b"From ":
        nl = m.buf.find(b"\n", p, m.end)
        p = p if nl < 0 else nl + 1
    return p


def _span(buf, a: int, b: int) -> int:
    """len(buf[a:b]) without the copy (a, b >= 0)."""
    n = len(buf)
    return max(0, min(b, n) - min(a, n))


# files that are a slice of the buffer: their lengths need no copy
_SPANS: dict[str, Callable[[Part], tuple[int, int]]] = {
    "raw": lambda m: (_raw_start(m), m.end),
    "rawbody": lambda m: (m.body, m.bend),
    "rawheader": lambda m: (m.header, m.hend),
    "rawunix": lambda m: (m.start, m.end),
    "mimeheader": lambda m: (m.mheader, m.mhend),
}


def _body(m: Part) -> bytes:
    return m.decoded_body() if m.opened else (m.dbody if m.dbody is not None
                                              else m.raw_body())


def _disposition(m: Part) -> bytes:
    return {INLINE: b"inline", FILE: b"file"}.get(m.disposition, b"")


_FILE_FNS: dict[str, Callable[[Part], bytes]] = {
    "body": _body,
    "bcc": lambda m: m.bcc or b"",
    "cc": lambda m: m.cc or b"",
    "date": lambda m: m.date or m.unixdate or b"",
    "digest": lambda m: m.digest or b"",
    "disposition": _disposition,
    "filename": lambda m: m.filename or b"",
    "from": lambda m: m.from_ or m.unixfrom or b"",
    "inreplyto": lambda m: m.inreplyto or b"",
    "lines": lambda m: b"%d" % m.buf.count(b"\n", m.body, m.bend),
    "mimeheader": lambda m: bytes(m.buf[m.mheader:m.mhend]),
    "messageid": lambda m: m.messageid or b"",
    "raw": _raw,
    "rawbody": Part.raw_body,
    "rawheader": lambda m: bytes(m.buf[m.header:m.hend]),
    "rawunix": lambda m: bytes(m.buf[m.start:m.end]),
    "replyto": lambda m: m.replyto or m.from_ or m.sender or m.unixfrom or b"",
    "sender": lambda m: m.sender or b"",
    "subject": lambda m: m.subject or b"",
    "to": lambda m: m.to or b"",
    "type": lambda m: m.type or b"",
    "unixheader": lambda m: m.unixheader or b"",
    "unixdate": lambda m: m.unixdate or b"",
}


# -- small scanners of header values -----------------------------------

def _getstring(v: bytes, i: int, lower: bool = False) -> tuple[bytes, int]:
    i = H.skipwhite(v, i)
    if i < len(v) and v[i] == 0x22:
        e = v.find(b'"', i + 1)
        s = v[i + 1:] if e < 0 else v[i + 1:e]
        i = len(v) if e < 0 else e + 1
    else:
        e = _TOKEN.match(v, i).end() if i < len(v) else i
        s, i = v[i:e], e
    return (s.lower() if lower else s), i


def _isattribute(v: bytes, i: int, attr: bytes) -> int:
    n = len(attr)
    if v[i:i + n].lower() != attr:
        return -1
    i += n
    while i < len(v) and v[i] == 0x20:
        i += 1
    if i >= len(v) or v[i] != 0x3D:
        return -1
    i += 1
    while i < len(v) and v[i] == 0x20:
        i += 1
    return i


_TOKEN = re.compile(rb"[^; \t\n\r\v\f]*")
_SEMIS_WHITE = re.compile(rb"[; \t\n\r\v\f]*")


def _skiptosemi(v: bytes, i: int) -> int:
    """Past the next `;` and the `;`s and blanks after it (or to the end)."""
    semi = v.find(b";", i)
    if semi < 0:
        return max(i, len(v))
    return _SEMIS_WHITE.match(v, semi).end()


def _filename(v: bytes, i: int) -> bytes:
    s, _ = _getstring(v, i)
    return s.translate(bytes.maketrans(b" \t;", b"___"))


def _decode(encoding: int, data: bytes) -> bytes:
    if encoding == EBASE64:
        return H.dec64(data)
    if encoding == EQUOTED:
        return H.decquoted(data)
    return data


# -- parsing ---------------------------------------------------------------

class Ids:
    """The upas/fs object-id counter (ids are never reused)."""

    def __init__(self, last: int = 0):
        self.last = last

    def __call__(self) -> int:
        self.last += 1
        return self.last


# each prefix ends at its only colon: a line starts with one of them exactly
# when its text up to its first colon is that prefix
_HEADMAP = dict(_HEADS)
_MIME_HEADMAP = dict(_MIME_HEADS)


def _parse_headers(m: Part, justmime: bool, addfrom: bool, structure: bool) -> None:
    heads = _MIME_HEADMAP if (justmime or structure) else _HEADMAP
    p = m.header
    lines = (_mime_lines(m.buf, m.header, m.end) if heads is _MIME_HEADMAP
             else H.header_lines(m.buf, m.header, m.end))
    for line, p in lines:
        colon = line.find(b":", 0, 26)
        if colon >= 0:
            attr = heads.get(line[:colon + 1].lower())
            if attr is not None:
                m._set(attr, line[colon + 1:])
    if justmime:
        m.mhend, m.hend = p, m.header
    else:
        m.hend = p
    if p < m.end and m.buf[p] == 0x0A:
        p += 1
    m.body = p
    if structure:
        return
    _fix_unixdate(m)
    if not addfrom and m.unixfrom is None:
        return
    sender = (m.unixfrom if m.unixfrom is not None and m.unixfrom != b"???"
              else m.from_ or b"???")
    m.unixheader = b"From " + sender + b" " + (m.unixdate or EPOCH_DATE) + b"\n"


# a header block as H.header_lines reads it: logical lines whose first
# physical line has a colon, continued by lines starting with blank or tab
_HEADER_BLOCK = re.compile(rb"(?:[^\n:]*:[^\n]*(?:\n[ \t][^\n]*)*(?:\n|\Z))*")
_MIME_FIELD = rb"content-(?:type|transfer-encoding|disposition):"
_MIME_FIRST = re.compile(rb"(?i)" + _MIME_FIELD)
_MIME_NEXT = re.compile(rb"(?im)^" + _MIME_FIELD)


def _mime_lines(buf, start: int, end: int) -> Iterator[tuple[bytes, int]]:
    """What H.header_lines yields that can name a MIME field, and last the
    end of the block: the block is measured, and only the lines starting
    with a MIME field name are joined (a message's other fields are most
    of its header, and opening a mailbox parses every message's MIME)."""
    p = _HEADER_BLOCK.match(buf, start, end).end()
    if p > start:
        if _MIME_FIRST.match(buf, start, p):
            yield next(H.header_lines(buf, start, end))[0], p
        for x in _MIME_NEXT.finditer(buf, start + 1, p):
            yield next(H.header_lines(buf, x.start(), end))[0], p
    yield b"", p


def _fix_unixdate(m: Part) -> None:
    """A missing envelope date comes from the first Received: line or Date:."""
    if m.unixdate not in (None, b"???", b"Thu Jan 1 00:00:00 GMT 1970"):
        return
    m.unixdate = None
    buf = m.buf
    if bytes(buf[m.header:m.header + 9]).lower() == b"received:":
        q = buf.find(b";", m.header, m.end)
        if q >= 0:
            p = q
            while True:
                p = buf.find(b"\n", p, m.end)
                if p < 0 or p + 1 >= m.end or buf[p + 1] not in b" \t\n":
                    break
                p += 1
            if p >= 0:
                m.unixdate = H.date822tounix(bytes(buf[q + 1:p]))
    if m.unixdate is None and m.date is not None:
        m.unixdate = H.date822tounix(m.date)


class _Walk:
    """One message's parse: its id counter, whether only the structure is
    wanted, and the bounds that keep a hostile message from exhausting
    the stack or memory (docs/decisions.md, "MIME nesting")."""

    __slots__ = ("ids", "structure", "last_id")

    def __init__(self, ids: Ids, structure: bool):
        self.ids, self.structure = ids, structure
        self.last_id = ids.last - 1 + MAX_PARTS     # made after the top message took its id

    def room(self) -> bool:
        return self.ids.last < self.last_id


def _parse(m: Part, justmime: bool, w: _Walk, depth: int, addfrom: bool = False) -> None:
    _parse_headers(m, justmime, addfrom, w.structure)
    if depth >= MAX_DEPTH:
        return                  # a leaf: its body is its parts, unsplit
    if m.type.startswith(b"multipart/"):
        _attachments(m, w, depth)
    elif m.type == b"message/rfc822":
        if m.encoding != ENONE:
            m.dbody = _decode(m.encoding, m.raw_body())
        _attachments(m, w, depth)
        if not w.structure and m.parts:
            _promote(m, m.parts[0])


def _promote(m: Part, nm: Part) -> None:
    if m.replyto is None and m.from_ is None and m.sender is None:
        for a in ("from_", "to", "date", "sender", "replyto", "subject", "unixdate"):
            setattr(m, a, getattr(nm, a))


def _find_boundary(buf, boundary: bytes, pos: int, end: int) -> tuple[int, int, bool] | None:
    """The next boundary line in buf[pos:end]: `--b` at a line start,
    followed only by an optional `--` and blanks (docs/decisions.md).
    Returns (line start, line end, is_last)."""
    n = len(boundary)
    while True:
        x = buf.find(boundary, pos, end)
        if x < 0:
            return None
        pos = x + 1
        if x > 0 and buf[x - 1] != 0x0A:
            continue
        e = buf.find(b"\n", x + n, end)
        e = end if e < 0 else e
        rest = bytes(buf[x + n:e])
        last = rest.startswith(b"--")
        if (rest[2:] if last else rest).strip(b" \t\r"):
            continue
        return x, e, last


def _attachments(m: Part, w: _Walk, depth: int) -> None:
    if not w.room():
        return
    if m.boundary is not None:
        nm = None
        pos = m.body
        while True:
            found = _find_boundary(m.buf, m.boundary, pos, m.bend)
            if found is None:
                if nm is not None:
                    nm.end = nm.bend = m.bend
                break
            x, nl, last = found
            if not w.room():            # out of parts: the last one keeps the rest
                break
            if nm is not None:
                nm.end = nm.bend = x
            if last or nl >= m.bend:
                break
            nm = Part(m.buf, w.ids(), str(len(m.parts) + 1))
            nm.start = nm.header = nm.mheader = nm.body = nl + 1
            nm.end = nm.bend = m.bend
            m.parts.append(nm)
            pos = nl + 1
        for nm in m.parts:
            _parse(nm, True, w, depth + 1)
    elif m.type == b"message/rfc822":
        buf, s, e = ((m.dbody, 0, len(m.dbody)) if m.dbody is not None
                     else (m.buf, m.body, m.bend))
        nm = Part(buf, w.ids(), "1")
        nm.start = nm.header = nm.body = s
        nm.mheader = nm.mhend = s
        nm.end = nm.bend = e
        m.parts.append(nm)
        _parse(nm, False, w, depth + 1)


def parse_message(buf, start: int, end: int, ids: Ids, name: str = "",
                  digest: bytes | None = None, structure: bool = False) -> Part:
    """Parse the stored message buf[start:end] (it begins with its `From ` line)."""
    m = Part(buf, ids(), name)
    m.start, m.end, m.bend = start, end, end
    nl = buf.find(b"\n", start, end)
    m.header = end if nl < 0 else nl + 1
    m.mheader = m.mhend = m.header
    m.digest = digest
    if not structure and bytes(buf[start:start + 5]) == b"From ":
        e = start + 5
        while e < end and buf[e] not in b"\r\n\0":
            e += 1
        m.unixfrom, m.unixdate = H.parse_unix_line(bytes(buf[start + 5:e]))
    _parse(m, False, _Walk(ids, structure), 0)
    return m


def parse_offsets(buf, start: int, end: int, pid: int, name: str = "") -> Part:
    """Only where the header and the body of the stored message
    buf[start:end] lie: all that its `rawheader`, `rawbody` and `lines`
    need, without the work of parsing its fields and parts."""
    m = Part(buf, pid, name)
    m.start, m.end, m.bend = start, end, end
    nl = buf.find(b"\n", start, end)
    m.header = end if nl < 0 else nl + 1
    m.mheader = m.mhend = m.header
    # where _parse_headers would put them (the block as header_lines reads it)
    p = m.hend = _HEADER_BLOCK.match(buf, m.header, end).end()
    m.body = p + 1 if p < end and buf[p] == 0x0A else p
    return m


_COMPOUND = re.compile(rb'(?im)^content-type:\s*"?(multipart/|message/rfc822)')


def count_ids(buf, start: int, end: int) -> int:
    """How many object ids the message buf[start:end] takes (itself + parts)."""
    hend = buf.find(b"\n\n", start, end)
    if _COMPOUND.search(buf, start, end if hend < 0 else hend + 1) is None:
        return 1                          # no multipart or rfc822 header: no parts
    ids = Ids()
    parse_message(buf, start, end, ids, structure=True)
    return ids.last
