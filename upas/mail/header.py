"""Header-level rules of upas/fs (Bell/plan9port): header lines, address
lists, RFC 2047 words, transfer decodings and the /mail/lib/ignore list.

Everything works on bytes: mail is 8-bit and upas/fs never decodes a header
into characters except to convert an encoded word to UTF-8.
"""
from __future__ import annotations

import binascii
import calendar
import os
import time
from email.utils import parsedate_tz

from upas import config

WHITE = b" \t\n\r\v\f"


def isspace(c: int) -> bool:
    return c in WHITE


def skipwhite(b: bytes, i: int = 0) -> int:
    n = len(b)
    while i < n and b[i] in WHITE:
        i += 1
    return i


def killtrailingwhite(b: bytes) -> bytes:
    """Strip trailing white space but, as upas/fs does, keep the first byte."""
    e = len(b) - 1
    while e > 0 and b[e] in WHITE:
        e -= 1
    return b[:e + 1]


def header_lines(buf, start: int, end: int):
    """Yield (joined_line, next_offset) for each header line in buf[start:end].

    A line runs to a newline not followed by blank or tab; continuations
    are joined with one space.  The block ends at an empty line, at a line
    without a colon before its newline, or at `end`.
    """
    p = start
    while p < end:
        nl = buf.find(b"\n", p, end)
        colon = buf.find(b":", p, nl if nl >= 0 else end)
        if colon < 0:
            return
        parts = []
        while True:
            x = buf.find(b"\n", p, end)
            if x < 0:
                x = end
            parts.append(bytes(buf[p:x]))
            p = x
            if p >= end or p + 1 >= end or buf[p + 1] not in b" \t":
                if p < end:
                    p += 1
                break
            p += 1
            while p < end and buf[p] in b" \t":
                p += 1
        yield b" ".join(parts), p


def header_end(buf, start: int, end: int) -> int:
    """Offset just past the last header line (the blank line is not included)."""
    p = start
    for _line, p in header_lines(buf, start, end):
        pass
    return p


def addr822(p: bytes) -> bytes | None:
    """The address list of a header value: `Alice <a@x>, b@y (Bob)` -> `a@x b@y`."""
    out: list[bytes] = []
    s = bytearray()
    quoted = incomment = addrdone = inanti = False
    i, n = 0, len(p)
    while i < n:
        c = p[i]
        if (not quoted and c in WHITE) or c == 0x0D:
            i += 1
            continue
        if not quoted and c == 0x22:            # a quoted string is one atom
            if not addrdone and not incomment:
                s.append(c)
            i += 1
            while i < n:
                if not addrdone and not incomment:
                    s.append(p[i])
                if not quoted and p[i] == 0x22:
                    break
                quoted = p[i] == 0x5C
                i += 1
            if i >= n:
                break
            quoted = False
            i += 1
            continue
        if not quoted and c == 0x28:            # (comment)
            incomment = True
            i += 1
            continue
        if incomment:
            if not quoted and c == 0x29:
                incomment = False
            quoted = False
            i += 1
            continue
        if not quoted and c == 0x3C and not inanti:    # <address>
            inanti = True
            s = bytearray()
            i += 1
            continue
        if not quoted and c == 0x3E and inanti:
            addrdone, inanti = True, False
            i += 1
            continue
        if not quoted and c == 0x2C and not inanti:    # comma ends an address
            addrdone = False
            out.append(bytes(s))
            s = bytearray()
            i += 1
            continue
        s.append(c)
        quoted = c == 0x5C
        i += 1
    if s:
        out.append(bytes(s))
    if not out:
        return None
    return b" ".join(out)


# -- transfer decodings ----------------------------------------------------

_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_B64 = bytes(c for c in range(256) if c not in _B64)


def dec64(data: bytes) -> bytes:
    """Plan 9 dec64: skip anything outside the alphabet, keep partial groups.
    binascii alone (it skips what is outside the alphabet too) where it
    gives the same: no `=` before the end (it stops at padding, Plan 9
    skips it) and the groups whole or padded (else it refuses): one C
    pass over a body, not two."""
    pad = data.find(b"=")
    if pad < 0 or not data[pad:].translate(None, b"= \t\r\n"):
        try:
            return binascii.a2b_base64(data)
        except binascii.Error:
            pass                        # a partial group: Plan 9 keeps it
    clean = data.translate(None, _NOT_B64)
    r = len(clean) % 4
    if r == 1:
        clean = clean[:-1]
    elif r:
        clean += b"=" * (4 - r)
    return binascii.a2b_base64(clean) if clean else b""


def _hexval(c: int) -> int:
    if 0x30 <= c <= 0x39:
        return c - 0x30
    if 0x41 <= c <= 0x46:
        return c - 0x41 + 10
    if 0x61 <= c <= 0x66:
        return c - 0x61 + 10
    return 0


_QP_SELF = frozenset(list(range(0x20, 0x3D)) + list(range(0x3E, 0x7F)) + [0x09])


def _decqp_line(out: bytearray, line: bytes) -> None:
    e = len(line)
    while e > 0 and line[e - 1] in b" \t\r\n":
        e -= 1
    soft = e > 0 and line[e - 1] == 0x3D
    if soft:
        e -= 1
    i = 0
    while i < e:
        c = line[i]
        i += 1
        if c == 0x3D:
            hi = line[i] if i < len(line) else 0
            lo = line[i + 1] if i + 1 < len(line) else 0
            out.append((_hexval(hi) << 4) | _hexval(lo))
            i += 2
        elif c in _QP_SELF:
            out.append(c)
    if not soft:
        out.append(0x0A)


def decquoted(data: bytes) -> bytes:
    """Quoted-printable as upas/fs decodes it (no `_` rule; ends with a newline)."""
    out = bytearray()
    lines = data.split(b"\n")
    for line in lines[:-1]:
        _decqp_line(out, line)
    if lines[-1]:
        _decqp_line(out, lines[-1])
    if not out or out[-1] != 0x0A:
        out.append(0x0A)
    return bytes(out)


# -- character sets --------------------------------------------------------

_WINCHARS = ("\u2022\u2022\u2022\u201a\u0192\u201e\u2026\u2020\u2021"
             "\u02c6\u2030\u0160\u2039\u0152\u2022\u2022\u2022"
             "\u2022\u2018\u2019\u201c\u201d\u2022\u2013\u2014"
             "\u02dc\u2122\u0161\u203a\u0153\u2022\u2022\u0178")

# charsets upas/fs hands to tcs, by the Python codec that does the same job
TCS = {b"iso-8859-2": "iso8859-2", b"iso-8859-15": "iso8859-15",
       b"big5": "big5", b"iso-2022-jp": "iso2022_jp",
       b"windows-1251": "cp1251", b"koi8-r": "koi8_r"}


def latin1toutf(b: bytes) -> bytes:
    return b.decode("latin-1").encode("utf-8")


def windowstoutf(b: bytes) -> bytes:
    return "".join(_WINCHARS[c - 0x7F] if 0x7F <= c <= 0x9F else chr(c)
                   for c in b).encode("utf-8")


def tcs(codec: str, b: bytes) -> bytes | None:
    try:
        return b.decode(codec, errors="replace").encode("utf-8")
    except LookupError:
        return None


def convert_text(charset: bytes, body: bytes) -> bytes:
    """A text leaf's body in UTF-8, converted as upas/fs does at open."""
    cs = charset.lower()
    if cs in (b"us-ascii", b"iso-8859-1"):
        return body if body.isascii() else latin1toutf(body)
    if cs in (b"windows-1257", b"windows-1252"):
        return body if body.isascii() else windowstoutf(body)
    if cs in TCS:
        out = tcs(TCS[cs], body)
        return out if out else body
    return body


# -- RFC 2047 --------------------------------------------------------------

# (name, conversion): 0 as is, 1 latin1, 2 tcs; order matters (prefix match)
_WORD_CHARSETS = [(b"us-ascii", 1), (b"utf-8", 0), (b"iso-8859-1", 1),
                  (b"iso-8859-2", 2), (b"big5", 2), (b"iso-2022-jp", 2),
                  (b"windows-1251", 2), (b"koi8-r", 2)]


def _word_start(b: bytes, start: int, end: int) -> int:
    """Start of an encoded word ending just before `end` (after `?=`), or -1."""
    if end - 2 < start or b[end - 1] != 0x3D or b[end - 2] != 0x3F:
        return -1
    quests = 0
    i = end - 3
    while i >= start:
        c = b[i]
        if c == 0x3D:
            if quests == 3 and b[i + 1] == 0x3F:
                return i
        elif c == 0x3F:
            quests += 1
        elif c in b" \t\n\r":
            return -1
        i -= 1
    return -1


def _decode_word(token: bytes) -> bytes | None:
    body = token[2:-2]
    for name, conv in _WORD_CHARSETS:
        if body[:len(name)].lower() == name and body[len(name):len(name) + 1] == b"?":
            body = body[len(name) + 1:]
            break
    else:
        return None
    if len(body) > 1023:
        return None
    enc, text = body[:2].lower(), body[2:]
    if enc == b"b?":
        decoded = dec64(text)
    elif enc == b"q?":
        decoded = decquoted(text)
        if decoded.endswith(b"\n"):
            decoded = decoded[:-1]
    else:
        return None
    decoded = decoded.split(b"\0", 1)[0]
    if conv == 1:
        return latin1toutf(decoded)
    if conv == 2:
        return tcs(TCS[name], decoded) or decoded
    return decoded


def rfc2047(b: bytes) -> bytes:
    """Decode every encoded word of `b`; text between words is kept as is."""
    if b"?=" not in b:
        return b
    out = bytearray()
    uneaten = 0
    for i in range(len(b)):
        if b[i] != 0x3D:
            continue
        p = i + 1
        tok = _word_start(b, uneaten, p)
        if tok < 0:
            continue
        out += b[uneaten:tok]
        dec = _decode_word(b[tok:p])
        out += b[tok:p] if dec is None else dec
        uneaten = p
    out += b[uneaten:]
    return bytes(out)


# -- /mail/lib/ignore ------------------------------------------------------

class Ignore:
    """Header prefixes hidden from `header` (case-insensitive)."""

    def __init__(self, prefixes: list[bytes]):
        self.prefixes = [p.lower() for p in prefixes]

    @classmethod
    def load(cls, path: str) -> "Ignore":
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return cls([])
        out = []
        for line in data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"):
            line = line.lstrip(b" \t")
            if line.startswith(b"#"):
                continue
            out.append(line)
        return cls(out)

    @classmethod
    def default(cls) -> "Ignore":
        return cls.load(os.path.join(config.current().mailroot, "lib", "ignore"))

    def __call__(self, line: bytes) -> bool:
        low = line[:max((len(p) for p in self.prefixes), default=0)].lower()
        return any(low.startswith(p) for p in self.prefixes)


def hdrlen(buf: bytes, p: int, e: int) -> int:
    """Length of the header line at p, continuation lines included."""
    ep = p
    while True:
        x = buf.find(b"\n", ep, e)
        if x < 0:
            return e - p
        ep = x + 1
        if ep >= e:
            return e - p
        if buf[ep] not in b" \t":
            return ep - p


def filtered_header(buf: bytes, start: int, end: int, ignore: Ignore) -> bytes:
    """The `header` file: raw header lines minus ignored ones, RFC 2047 decoded."""
    out = bytearray()
    p = start
    while p < end:
        n = hdrlen(buf, p, end)
        line = buf[p:p + n]
        if not ignore(line):
            out += rfc2047(line)
        p += n
    return bytes(out)


def parse_unix_line(line: bytes) -> tuple[bytes | None, bytes]:
    """Split the text after `From ` into (sender, date) as upas/fs does."""
    p = skipwhite(line)
    if p >= len(line):
        return None, b""
    q = line[p]
    if q in b"'\"":
        e = line.find(bytes([q]), p + 1)
        e = len(line) if e < 0 else e
        sender, rest = line[p + 1:e], e + 1
    else:
        e = p
        while e < len(line) and line[e] not in WHITE:
            e += 1
        sender, rest = line[p:e], e
    return sender, line[skipwhite(line, rest):]


_DAYS = "Mon Tue Wed Thu Fri Sat Sun".split()
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def date822tounix(value: bytes) -> bytes | None:
    """An RFC 822 date as upas/fs renders it in GMT: `Sun Nov 22 12:00:00 GMT 2026`."""
    try:
        t = parsedate_tz(value.decode("latin-1"))
        if t is None:
            return None
        secs = calendar.timegm(t[:9]) - (t[9] or 0)
        tm = time.gmtime(secs)
    except (ValueError, OverflowError, TypeError, IndexError):
        return None
    return (f"{_DAYS[tm.tm_wday]} {_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:02d} "
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} GMT {tm.tm_year}").encode()
