"""The Plan 9 shadow file `<mailbox>.imp`: UIDs and flags, byte-compatible.

    imap internal mailbox description\\n
    <uidvalidity:10> <uidnext:10>\\n
    <digest:40 hex> <uid:10> <flags:8>\\n        one per message, mailbox order

Flag characters by position: s a f D d r - -.  Keywords (docs/decisions.md: kept
beside the file without changing its format) live in `<mailbox>.kw.imp`, a
name every Plan 9 LIST already hides (it ends in `.imp`):

    imap keywords\\n
    <digest:40 hex> <uid:10> <keyword> <keyword>...\\n

The pure functions here parse and format; ``ImpStore`` reads and writes the
files through the namespace, under the mail lock, crash-safely.
"""
from __future__ import annotations

import difflib
import array
import hashlib
import io
import itertools
import operator
import re
import sys
import time
from dataclasses import dataclass, field
from typing import AbstractSet, Iterable, NamedTuple, Sequence

from upas import ns as nsmod
from upas.mail import safewrite

MAGIC = b"imap internal mailbox description\n"
KW_MAGIC = b"imap keywords\n"
# flag letters in file order, with the IMAP flag each stands for
FLAG_CHARS = (("s", "\\Seen"), ("a", "\\Answered"), ("f", "\\Flagged"),
              ("D", "\\Deleted"), ("d", "\\Draft"), ("r", "\\Recent"))
# an entry line, found in the file's body line by line (^...$ per line)
_ENTRY = re.compile(rb"(?m)^([0-9a-f]{40}) (\d{10}) ([s-][a-][f-][D-][d-][r-]--)$")
_FLAGS = re.compile(rb"[s-][a-][f-][D-][d-][r-]--")
_HEADER = re.compile(re.escape(MAGIC) + rb"(\d{10}) (\d{10})\n")
_UIDNEXT_AT = len(MAGIC) + 11      # offset of the uidnext field


@dataclass(slots=True)
class Entry:
    digest: str
    uid: int
    flags: AbstractSet[str] = field(default_factory=set)   # system flags incl. \Recent


@dataclass
class ImpFile:
    uidvalidity: int
    uidnext: int
    entries: list[Entry]


def format_flags(flags: AbstractSet[str], recent: bool) -> str:
    out = "".join(c if (f in flags and (f != "\\Recent" or recent)) else "-"
                  for c, f in FLAG_CHARS)
    return out + "--"


def parse_flags(s: str) -> set[str]:
    return {f for (c, f), x in zip(FLAG_CHARS, s) if x == c}


# a mailbox has few distinct flag sets: each is formatted (and each flag
# field parsed) once per process, not once per message
_FORMATTED: dict[tuple[frozenset, bool], bytes] = {}
_PARSED: dict[bytes, frozenset[str]] = {}


_SETS: dict[frozenset, frozenset[str]] = {}


def flagset(flags: AbstractSet[str]) -> frozenset[str]:
    """flags as the one frozenset every message with them shares (a set a
    message would take ~200 bytes: 2 MB of a session at 10,000)."""
    key = flags if isinstance(flags, frozenset) else frozenset(flags)
    return _SETS.setdefault(key, key)


def _flag_field(flags: AbstractSet[str], recent: bool) -> bytes:
    key = (flags if isinstance(flags, frozenset) else frozenset(flags), recent)
    out = _FORMATTED.get(key)
    if out is None:
        out = _FORMATTED[key] = format_flags(flags, recent).encode()
    return out


_LINE = b"%s %010d %s\n"


def format_entry(e: Entry, recent: bool) -> bytes:
    """One entry line of the file."""
    return _LINE % (e.digest.encode(), e.uid, _flag_field(e.flags, recent))


def format_header(uidvalidity: int, uidnext: int) -> bytes:
    return b"%010d %010d\n" % (uidvalidity, uidnext)


def format_rows(uidvalidity: int, uidnext: int,
                rows: Iterable[tuple[str, int, AbstractSet[str]]], recent: bool) -> bytes:
    """The whole file from (digest, uid, flags) rows, mailbox order."""
    field = _flag_field
    lines = [_LINE % (d.encode(), u, field(f, recent)) for d, u, f in rows]
    return b"".join([MAGIC, format_header(uidvalidity, uidnext), *lines])


def format_imp(imp: ImpFile, recent: bool) -> bytes:
    """The whole file; `r` written only when recent is True (STATUS boxes)."""
    return format_rows(imp.uidvalidity, imp.uidnext,
                       ((e.digest, e.uid, e.flags) for e in imp.entries), recent)


def field_flags(field: bytes) -> frozenset[str]:
    """The flags of an entry line's 8-byte field (a valid one), as the
    frozenset shared by every line with it."""
    f = _PARSED.get(field)
    if f is None:
        f = _PARSED[field] = flagset(parse_flags(field.decode()))
    return f


def valid_field(field: bytes) -> bool:
    """An entry line's 8-byte flags field as Plan 9 writes it."""
    return _FLAGS.fullmatch(field) is not None


def parse_imp(data: bytes) -> ImpFile | None:
    """Parse a .imp file; None if its header is not Plan 9's.  Entry lines
    that do not parse are skipped (9front is lenient the same way)."""
    if not data.startswith(MAGIC):
        return None
    head, _, body = data[len(MAGIC):].partition(b"\n")
    m = re.fullmatch(rb"(\d{10}) (\d{10})", head)
    if not m:
        return None
    entries = []
    for digest, uid, flags in _ENTRY.findall(body):
        entries.append(Entry(digest.decode(), int(uid), field_flags(flags)))
    return ImpFile(int(m.group(1)), int(m.group(2)), entries)


def as_parsed(data: bytes, parsed: ImpFile) -> bool:
    """The file is exactly what format_imp(parsed, True) gives: every line
    after the header parsed (entry lines have one length), none skipped."""
    return whole(data, len(parsed.entries))


LINE_LEN = 61                     # an entry line: digest, uid, flags, newline
UID_AT = 41                       # where its 10-digit uid starts
FLAGS_AT = 52                     # where its 8-byte flags field starts
BODY_AT = len(MAGIC) + 22         # where the first entry line starts


def whole(data: bytes, n: int) -> bool:
    """The file has a header and n entry lines (by its length only)."""
    return len(data) == BODY_AT + LINE_LEN * n


def holds_recent(data: bytes) -> bool:
    """b"r--\n" in data: some line's flags field holds \\Recent (`r`, then
    the field's two closing `-`).  The four bytes are searched only from
    the first `r` after the header, found by memchr: digests are hex and
    uids digits, so a file with no \\Recent left in it has none (a search
    for four bytes steps over every line's newline: 0.45 ms for 10,000
    lines, a SELECT's tenth; the memchr ~0.02).  (An occurrence starting
    in the header is looked for in the header's bytes alone.)"""
    if b"r--\n" in data[:BODY_AT + 3]:
        return True
    k = data.find(b"r", BODY_AT)
    return k >= 0 and data.find(b"r--\n", k) >= 0


def lines_of(data: bytes, digests: Sequence[str],
             column: bytes | None = None, column_at: int = 0) -> tuple[list[int], list[frozenset[str]]] | None:
    """line_columns, the flags as the shared sets (flags_of)."""
    got = line_columns(data, digests, column, column_at)
    return None if got is None else (got[0], flags_of(got[1]))


def line_columns(data: bytes, digests: Sequence[str], column: bytes | None = None,
                 column_at: int = 0) -> tuple[list[int], bytes] | None:
    """The uids and flags of the file's lines when they are one a message
    of `digests`, in order, with uids ascending (what match() would pair
    one to one: a view's new messages then take them as they are); None
    otherwise.  `column[column_at:]`: the digests as selectmark records
    them (each followed by a newline), if the caller has them so.

    The lines are of one width, so each column of the file is a strided
    slice, and no line is cut out alone: the digests are compared forty
    slices at a time, the uids and flags read as columns (_uids,
    _flag_masks: the flags come as a mask byte a line, MASK_BIT's bits).  (A split of the file into 30,000 words and the joins
    to compare them were a quarter of a SELECT, and most of the fresh
    pages that made a session's first SELECT dearer than its second.)"""
    n = len(digests)
    if not whole(data, n):
        return None
    if column is None:
        if any(len(d) != 40 for d in digests):
            return None
        try:
            column, column_at = "\n".join([*digests, ""]).encode("ascii"), 0
        except UnicodeEncodeError:
            return None
    c = column_at                       # (column[c:]: no copy of the file's tail)
    if len(column) - c != 41 * n or column[c + 40::41] != b"\n" * n:
        return None
    at, step = BODY_AT, LINE_LEN
    for k, sep in ((40, b" "), (UID_AT + 10, b" "), (step - 1, b"\n")):
        if data[at + k::step] != sep * n:
            return None
    if any(data[at + j::step] != column[c + j::41] for j in range(40)):
        return None
    digits = [data[at + UID_AT + j::step] for j in range(10)]
    uids = _consecutive(digits)
    if uids is None:
        uids = _uids(digits)
        if uids and (uids[0] < 1 or not all(map(operator.lt, uids, itertools.islice(uids, 1, None)))):
            return None                 # a uid-0 line or one out of order: match's business
    masks = _flag_masks([data[at + FLAGS_AT + j::step] for j in range(8)])
    if uids is None or masks is None:
        return None
    _known(data, masks, True)
    return uids, masks


def flags_of(masks: bytes) -> list[frozenset[str]]:
    """The flags of each mask byte (line_columns), the shared sets."""
    return list(map(_BY_MASK.__getitem__, masks))


def flags_of_mask(mask: int) -> frozenset[str]:
    return _BY_MASK[mask]


def _consecutive(digits: list[bytes]) -> list[int] | None:
    """_uids of the columns when they are those of consecutive numbers
    from the first line's, above 0 (a mailbox never expunged from: uids
    1..n); else None.  Each column is then a pattern of runs (the 10**k
    place: runs of 10**k of each digit in turn), made and compared in C:
    ~0.05 ms for 10,000 lines, where _uids' sums and their order check
    take ~0.7.  Strictly ascending by construction."""
    n = len(digits[0])
    first = b"".join(col[:1] for col in digits)
    if not n or not first.isdigit() or int(first) < 1:
        return None
    u = int(first)
    if any(col != _place_column(u, n, k) for k, col in enumerate(reversed(digits))):
        return None
    return list(range(u, u + n))


def _place_column(first: int, n: int, k: int) -> bytes:
    """The digits of the 10**k place of the numbers first..first+n-1."""
    p = 10 ** k
    if 10 * p <= n:                     # one cycle of the ten runs, repeated
        cycle = b"".join(bytes((0x30 + d,)) * p for d in range(10))
        off = first % len(cycle)
        return (cycle * ((off + n) // len(cycle) + 1))[off:off + n]
    out, u, end = [], first, first + n     # runs of a tenth of n or more: 11 at most
    while u < end:
        nxt = min((u // p + 1) * p, end)
        out.append(bytes((0x30 + u // p % 10,)) * (nxt - u))
        u = nxt
    return b"".join(out)


_LANE = array.array("Q").itemsize          # bytes a uid takes in _uids' sum


def _uids(digits: list[bytes]) -> list[int] | None:
    """The numbers whose decimal digits, most significant first, are the
    columns `digits` (one byte a number each); None unless all digits.
    Each column becomes one big integer with a number's digit in each
    _LANE-byte lane; sum(column * 10**k) then holds each number in its
    lane (10 digits < 2**64: no carry crosses a lane), and an array reads
    the lanes out: no int() a line."""
    n = len(digits[0])
    if any(not col.isdigit() for col in digits) and n:
        return None
    lane = bytearray(_LANE * n)
    total = 0
    zeros = b"0" * n
    for col in digits:
        if not total and col == zeros:
            continue                    # a leading 0 of every number (most are)
        lane[0::_LANE] = col.translate(_DIGIT_VALUE)
        total = total * 10 + int.from_bytes(lane, "little")
    out = array.array("Q", total.to_bytes(_LANE * n, "little"))
    if sys.byteorder != "little":
        out.byteswap()
    return out.tolist()


_DIGIT_VALUE = bytes(range(256)).translate(bytes.maketrans(b"0123456789", bytes(range(10))))


def _flag_masks(cols: list[bytes]) -> bytes | None:
    """A byte a line, bit j set when the flags field's column j holds its
    letter (FLAG_CHARS' order), from the eight columns of the fields;
    None unless each column holds its letter or `-` only (the last two
    `-` always).  Bits of one byte never carry into the next: OR by +."""
    n = len(cols[0])
    total = 0
    for j, col in enumerate(cols):
        letter = FLAG_CHARS[j][0].encode() if j < len(FLAG_CHARS) else b"-"
        if col.translate(None, b"-" + letter):
            return None
        total += int.from_bytes(col.translate(_BIT[j]), "little")
    return total.to_bytes(n, "little")


# column j's letter -> 1 << j, anything else 0 (checked before)
_BIT = [bytes((1 << j) * (b == ord(c)) for b in range(256))
        for j, (c, _) in enumerate(FLAG_CHARS)] + [bytes(256)] * 2
# a mask -> the flags of the lines with it, shared (flagset)
_BY_MASK = [flagset({f for j, (_, f) in enumerate(FLAG_CHARS) if m >> j & 1}) for m in range(64)]
MASK_BIT = {f: 1 << j for j, (_, f) in enumerate(FLAG_CHARS)}     # a flag's bit in a mask


def flags_edit(old: bytes, new: bytes) -> tuple[int, bytes] | None:
    """(offset, bytes) that make the file `old` into `new` by rewriting in
    place the flags field of one line, if that is all that differs (a
    STORE on one message: flags_span); else None.  A write that a crash
    cuts leaves each flag position old or new, a valid line.  More lines
    are written whole: a cut write of many would leave a STORE done for
    some messages and not others, neither the old state nor the new."""
    span = flags_span(old, new)
    if not span or span[1] - span[0] != 1:
        return None
    a = BODY_AT + span[0] * LINE_LEN + FLAGS_AT
    return a, new[a:BODY_AT + (span[1] - 1) * LINE_LEN + FLAGS_AT + 8]


# the last flags_span: its files, its result, and when with_flags made the
# new file from the old, the masks of both (span_masks)
_SPAN: list = [None, None, None]


def flags_span(old: bytes, new: bytes) -> tuple[int, int] | None:
    """(first, last + 1) of the entry lines whose flags fields differ
    between the whole files `old` and `new` (of one header and length)
    when nothing else differs and every field in between is valid, old
    and new; () if the files are equal; None otherwise.  Read as columns
    (a strided slice of each field's place): no line split.  The files
    are often the last call's (the .imp's write, then the MODSEQ log)."""
    if (_SPAN[0] is old or _SPAN[0] == old) and (_SPAN[1] is new or _SPAN[1] == new):
        if len(_SPAN) > 3 and (_SPAN[0] is not old or _SPAN[1] is not new):
            _SPAN[:] = [old, new, _SPAN[2], _SPAN[3]]   # (span_masks goes by identity)
        return _SPAN[2]                 # (equal files are often other objects)
    got = _flags_span(old, new)
    _SPAN[:] = [old, new, got]
    return got


def _flags_span(old: bytes, new: bytes) -> tuple[int, int] | None:
    if len(old) != len(new) or not old.startswith(MAGIC) or old[:BODY_AT] != new[:BODY_AT] \
            or (len(new) - BODY_AT) % LINE_LEN:
        return None
    if old == new:
        return ()
    k0 = (_first_diff(old, new) - BODY_AT) // LINE_LEN
    k1 = (_last_diff(old, new) - 1 - BODY_AT) // LINE_LEN + 1
    a, b = BODY_AT + k0 * LINE_LEN, BODY_AT + k1 * LINE_LEN
    buf = bytearray(memoryview(new)[a:b])      # new, its fields old's: old?
    for j in range(8):
        was = old[a + FLAGS_AT + j:b:LINE_LEN]
        if was.translate(None, PLACES[j]) or \
                new[a + FLAGS_AT + j:b:LINE_LEN].translate(None, PLACES[j]):
            return None
        buf[FLAGS_AT + j::LINE_LEN] = was
    if buf != memoryview(old)[a:b] or buf[LINE_LEN - 1::LINE_LEN].translate(None, b"\n"):
        return None
    return k0, k1


# the bytes a flags field may hold at each of its 8 places (Plan 9's)
PLACES = (b"s-", b"a-", b"f-", b"D-", b"d-", b"r-", b"-", b"-")


_FIELD = re.compile(rb"[s-][a-][f-][D-][d-]---\n")     # a flags field without `r`


def with_flags(data: bytes, flags: Sequence[AbstractSet[str]]) -> bytes | None:
    """The whole file `data` with the flags field of its entry line k made
    from flags[k] (no `r`: a view that writes it keeps none); None unless
    it has a line for each.  The fields are written as columns of the
    file (a strided slice each), not a line at a time: each line's flags
    become one byte (its mask, _flag_masks'), each column the
    translation of those bytes to its letter or `-`.

    The old fields are read as masks too (valid ones only): their
    difference from the new is the lines flags_span would find, and both
    masks are what the MODSEQ log's entry is made from (span_masks), so
    neither file is compared or read as columns again (_SPAN)."""
    return with_masks(data, bytes(map(_MASKS.__getitem__, flags)))


def with_masks(data: bytes, codes: bytes) -> bytes | None:
    """with_flags, each line's flags given as its mask byte (file_mask's:
    a lazy view's columns hand them so, no flags set looked up a line)."""
    n = len(codes)
    if not whole(data, n):
        return None
    at = BODY_AT + FLAGS_AT
    was = _masks_of(data)
    # written into a BytesIO's buffer: its one copy of `data` (at
    # getbuffer) becomes the bytes getvalue() gives, not copied again as a
    # bytearray's would be (each copy a fresh 600 KB: ~150 page faults in
    # a session just forked)
    out = io.BytesIO(data)
    with out.getbuffer() as buf:
        for j in range(6 if was is not None else 8):   # (a valid field's last two are `-`)
            buf[at + j::LINE_LEN] = codes.translate(_LETTER[j])
    new = out.getvalue()
    if was is not None and data.startswith(MAGIC) and \
            not data[BODY_AT + LINE_LEN - 1::LINE_LEN].translate(None, b"\n"):
        diff = int.from_bytes(was, "big") ^ int.from_bytes(codes, "big")
        span = (n - 1 - (diff.bit_length() - 1) // 8,
                n - ((diff & -diff).bit_length() - 1) // 8) if diff else ()
        _SPAN[:] = [data, new, span, (was, codes)]
        _known(new, codes, ordered(data))    # (the uids are data's)
    return new


class _Masks(dict):
    """flags -> the mask of their field without `r` (_flag_masks' bits),
    by the flags object (messages share them: imp.flagset)."""
    def __missing__(self, flags: AbstractSet[str]) -> int:
        mask = self[flags] = sum(1 << j for j, (_, f) in enumerate(FLAG_CHARS[:5]) if f in flags)
        return mask


_MASKS = _Masks()
# a mask byte of line_columns' (MASK_BIT's bits) -> the mask with_masks
# takes: the same bits without \Recent's (a view that writes keeps no `r`)
NO_RECENT = bytes(m & ~MASK_BIT["\\Recent"] for m in range(256))


def file_mask(flags: AbstractSet[str]) -> int:
    """The mask with_masks takes for a line with these flags."""
    return _MASKS[flags]
# a mask -> column j's byte: its letter when bit j is set, else `-`
_LETTER = [bytes(ord(c) if m >> j & 1 else 0x2D for m in range(256))
           for j, (c, _) in enumerate(FLAG_CHARS)] + [b"-" * 256] * 2
# what was last worked out of a file's entry lines as columns: the file,
# its fields' masks (None: not known) and whether its uids ascend strictly
_LINES: list = [None, None, False]


def _known(data: bytes, masks: bytes | None, ascending: bool) -> None:
    _LINES[:] = [data, masks, ascending]


def _is_known(data: bytes) -> bool:
    known = _LINES[0]
    return known is not None and (known is data or known == data)


def _masks_of(data: bytes) -> bytes | None:
    """_flag_masks of a whole file's fields (None unless each is valid),
    as lines_of or with_flags worked them out for these bytes, else read."""
    if _is_known(data) and _LINES[1] is not None:
        return _LINES[1]
    n = (len(data) - BODY_AT) // LINE_LEN
    if not n:
        return b""
    at = BODY_AT + FLAGS_AT
    return _flag_masks([data[at + j::LINE_LEN] for j in range(8)])


def ordered(data: bytes) -> bool:
    """The uids of `data`'s lines were found to ascend strictly (by
    lines_of, or modseq's check), or `data` was made by with_flags from
    such a file (its uids are that file's): the last file looked at."""
    return _is_known(data) and _LINES[2]


def found_ordered(data: bytes) -> None:
    """The uids of `data`'s lines ascend strictly (see ordered)."""
    if _is_known(data):
        _LINES[2] = True
    else:
        _known(data, None, True)


def span_masks(old: bytes, new: bytes, k0: int, k1: int) -> tuple[bytes, bytes]:
    """The masks (_flag_masks') of the flags fields of lines k0 to k1 - 1
    of `old` and of `new`, whose fields flags_span found valid: the ones
    with_flags worked out when it made `new` from `old`, else read."""
    got = _SPAN[3] if len(_SPAN) > 3 and _SPAN[0] is old and _SPAN[1] is new else None
    if got is not None:
        return got[0][k0:k1], got[1][k0:k1]
    a, b = BODY_AT + k0 * LINE_LEN + FLAGS_AT, BODY_AT + k1 * LINE_LEN
    return tuple(_flag_masks([f[a + j:b:LINE_LEN] for j in range(8)]) for f in (old, new))


def with_lines(data: bytes, uidnext: int, rows: list[tuple[str, int, AbstractSet[str]]]) -> bytes:
    """A whole file with this uidnext and entry lines added at its end
    (no `r`, as with_flags)."""
    field = b"%010d" % uidnext
    if not rows and data[_UIDNEXT_AT:_UIDNEXT_AT + 10] == field:
        return data
    lines = [_LINE % (d.encode(), u, _flag_field(f, False)) for d, u, f in rows]
    return b"".join([data[:_UIDNEXT_AT], field, data[_UIDNEXT_AT + 10:], *lines])


def without_lines(data: bytes, gone: list[int]) -> bytes:
    """The entry lines of a whole file but the gone ones (indexes, in order)."""
    parts, at = [], BODY_AT
    for k in gone:
        parts.append(data[at:BODY_AT + k * LINE_LEN])
        at = BODY_AT + (k + 1) * LINE_LEN
    parts.append(data[at:])
    return b"".join(parts)


def new_lines(tail: bytes, digests: list[str], last: int) -> list[tuple[int, frozenset[str]]] | None:
    """(uid, flags) of the entry lines `tail`, one per digest, in order,
    their uids ascending above `last`; None unless each line is whole,
    has its digest and no `r`."""
    if len(tail) != LINE_LEN * len(digests):
        return None
    out = []
    for k, d in enumerate(digests):
        line = tail[k * LINE_LEN:(k + 1) * LINE_LEN]
        if line[:40] != d.encode() or not _ENTRY.fullmatch(line, 0, LINE_LEN - 1) \
                or not _FIELD.fullmatch(line, FLAGS_AT):
            return None
        uid = int(line[UID_AT:UID_AT + 10])
        if uid <= last:
            return None
        last = uid
        out.append((uid, field_flags(line[FLAGS_AT:FLAGS_AT + 8])))
    return out


def changed_lines(old: bytes, new: bytes) -> list[tuple[int, frozenset[str]]] | None:
    """(line index, its flags) of the entry lines whose flags field is all
    that differs between the files `old` and `new` (of one header and
    length: another session's STORE); None when anything else differs, or
    a changed line holds `r` (its \\Recent is for its reader to take)."""
    if len(old) != len(new) or old[:BODY_AT] != new[:BODY_AT] or not new.startswith(MAGIC):
        return None
    if old == new:
        return []
    lo, hi = _first_diff(old, new), _last_diff(old, new)
    out = []
    for k in range((lo - BODY_AT) // LINE_LEN, (hi - 1 - BODY_AT) // LINE_LEN + 1):
        at = BODY_AT + k * LINE_LEN
        flags = at + FLAGS_AT
        if new[at:at + LINE_LEN] == old[at:at + LINE_LEN]:
            continue
        if new[at:flags] != old[at:flags] or not _FIELD.fullmatch(new, flags, at + LINE_LEN):
            return None
        out.append((k, field_flags(new[flags:flags + 8])))
    return out


def _first_diff(a: bytes, b: bytes) -> int:
    """The first index where a and b (of one length, not equal) differ."""
    lo, hi = 0, len(a)          # a[:lo] == b[:lo]; they differ before hi
    view = memoryview(b)        # (compared in place: no copies)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a.startswith(view[lo:mid], lo):
            lo = mid
        else:
            hi = mid
    return lo


def _last_diff(a: bytes, b: bytes) -> int:
    """One past the last index where a and b (of one length, not equal) differ."""
    lo, hi = 0, len(a)          # a[hi:] == b[hi:]; they differ at or after lo
    view = memoryview(b)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a.startswith(view[mid:], mid):
            hi = mid
        else:
            lo = mid
    return hi


_KEYED: list = [(), ""]            # the last files_key: its files and result


def files_key(*files: bytes | None) -> str:
    """A hash of each file's bytes (`-` for one absent), to tell the .imp
    and .kw.imp the MODSEQ record was made with (modseq.py) from others.
    The files are often the very objects of the last call."""
    last, got = _KEYED
    if len(last) == len(files) and all(a is b for a, b in zip(last, files)):
        return got
    got = " ".join(hashlib.sha1(f).hexdigest() if f is not None else "-" for f in files)
    _KEYED[:] = [files, got]
    return got


def header(data: bytes) -> tuple[int, int] | None:
    """(uidvalidity, uidnext) of a .imp file's bytes, None if not Plan 9's."""
    m = _HEADER.match(data)
    return (int(m.group(1)), int(m.group(2))) if m else None


def append_in_place(ns: nsmod.Namespace, path: str, old: bytes, uidnext: int,
                    lines: bytes) -> bytes:
    """Add entry lines to the end of the .imp whose bytes are `old` and set
    its uidnext, in place, with one fdatasync (the caller holds the lock);
    the file's new bytes.

    The bytes are those the whole rewrite would give.  Whatever a crash
    leaves is a valid file: the uidnext field is 10 bytes inside the first
    sector (written whole or not at all), and a torn tail is a partial line
    that parse_imp skips.  A line whose uid is not below the header's
    uidnext (its message appended, the header not) is allowed for: match
    continues uidnext above the uid of every line it pairs with a message;
    a line left without its message is dropped at the next relist, and
    its uid, never sent in an APPENDUID, may be given again.  No reply is
    sent before the fdatasync returns."""
    field = b"%010d" % uidnext
    ns.write_at(path, [(len(old), lines), (_UIDNEXT_AT, field)], sync=True)
    # one copy of the file (it grows by a line an APPEND), not three
    return b"".join((old[:_UIDNEXT_AT], field, memoryview(old)[_UIDNEXT_AT + 10:], lines))


def format_keywords(rows: list[tuple[str, int, list[str]]]) -> bytes:
    out = [KW_MAGIC]
    for digest, uid, kws in rows:
        if kws:
            out.append(b"%s %010d %s\n" % (digest.encode(), uid, " ".join(kws).encode()))
    return b"".join(out)


def parse_keywords(data: bytes) -> dict[int, tuple[str, list[str]]]:
    """uid -> (digest, keywords)."""
    out: dict[int, tuple[str, list[str]]] = {}
    if not data.startswith(KW_MAGIC):
        return out
    for line in data[len(KW_MAGIC):].split(b"\n"):
        f = line.decode("ascii", "replace").split()
        if len(f) >= 3 and len(f[0]) == 40 and f[1].isdigit():
            out[int(f[1])] = (f[0], f[2:])
    return out


class Match(NamedTuple):
    found: list[Entry | None]     # per message: its entry, None if new
    uidnext: int                  # to continue numbering from
    unclaimed: list[Entry]        # entries no message took (file order)


def match(imp: ImpFile | None, msgs: Sequence[tuple[str, int]],
          uidnext_floor: int = 1, gone: AbstractSet[tuple[str, int]] = frozenset(),
          nums: Sequence[int] | None = None) -> Match:
    """Pair each message, given as (digest, uid) in mailbox order (uid 0:
    the caller has not numbered it), with its .imp entry.

    An entry belongs to one message, not to a digest: two byte-identical
    messages have two entries with one digest (issue 13).  A numbered
    message takes only the entry with its own digest and uid.  The others,
    a run between two numbered ones at a time, take the entries between
    those two's by the longest alignment of the digests in order (both
    lists are in mailbox order, and messages leave a file but never move,
    so position tells copies apart; a message listed after another
    session dropped its entry does not take a later copy's).  Where a run
    of identical entries outnumbers the identical messages aligned with
    it, the copies that went are taken to be those marked \\Deleted (an
    EXPUNGE removes those), then the last -- unless upasfs's message
    numbers `nums` (in mailbox order) tell which went (_by_numbers).  An
    entry whose uid is not above the previous message's (a file out of
    order), or a uid-0 entry (Plan 9 APPEND/COPY), lends only its flags.  `gone`: (digest, uid) of
    messages the caller has seen deleted: their entries are nobody's."""
    entries = imp.entries if imp else []
    uidnext = max(imp.uidnext if imp else 1, uidnext_floor, 1)
    if not gone and len(entries) == len(msgs) and all(
            e.digest == d and u in (0, e.uid) for e, (d, u) in zip(entries, msgs)):
        idx: list[int | None] = list(range(len(msgs)))      # the usual case
    else:
        idx = _pair(entries, msgs, gone, nums)
    out: list[Entry | None] = []
    taken = [False] * len(entries)
    last = 0
    for (d, u), k in zip(msgs, idx):
        e = None if k is None else entries[k]
        if e is not None:
            taken[k] = True
            if not u and e.uid and e.uid <= last:
                e = Entry(d, 0, e.flags)
            if e.uid:
                uidnext = max(uidnext, e.uid + 1)
        last = u or (e.uid if e is not None else 0) or last
        out.append(e)
    return Match(out, uidnext, [e for e, t in zip(entries, taken) if not t])


def _pair(entries: list[Entry], msgs: Sequence[tuple[str, int]],
          gone: AbstractSet[tuple[str, int]], nums: Sequence[int] | None) -> list[int | None]:
    """The index of each message's entry (see match), None if it has none."""
    own: dict[tuple[str, int], int] = {}
    for k, e in enumerate(entries):
        if e.uid:
            own.setdefault((e.digest, e.uid), k)
    out: list[int | None] = [None] * len(msgs)
    claimed = {own[key] for key in gone if key in own}
    for i, key in enumerate(msgs):
        k = own.get(key) if key[1] else None
        if k is not None and k not in claimed:
            out[i] = k
            claimed.add(k)
    # the messages not numbered, a run at a time, with the entries between
    # those of the numbered messages around them
    lo, i = 0, 0
    while i < len(msgs):
        if msgs[i][1]:
            if out[i] is not None:
                lo = max(lo, out[i] + 1)
            i += 1
            continue
        j = i
        while j < len(msgs) and not msgs[j][1]:
            j += 1
        hi = next((out[k] for k in range(j, len(msgs)) if out[k] is not None), len(entries))
        free = [k for k in range(lo, hi) if k not in claimed]
        for a, k in _align([msgs[x][0] for x in range(i, j)], entries, free):
            out[i + a] = k
        i = j
    if nums is not None:
        _by_numbers(out, entries, msgs, nums, claimed)
    return out


def _by_numbers(out: list[int | None], entries: list[Entry], msgs: Sequence[tuple[str, int]],
                nums: Sequence[int], claimed: AbstractSet[int]) -> None:
    """Which copies of a message went, when fewer new copies than their
    entries are left: the file cannot tell (pop3 deletes without
    \\Deleted), and _align's guess gave the copy after a deleted one the
    deleted one's uid -- which a session that saw it go will not take, so
    it numbered that copy anew, above the messages after it (the session
    rig's uid_not_ascending).  upasfs can tell: it numbers messages in
    file order and never gives a number twice, so where the messages
    around a run of new copies are as many numbers apart as their
    entries are lines apart, each copy takes the entry as many lines
    after the first one's as its number is after that message's (the
    mailbox's start counts as number 0 before line 0)."""
    used: set[int | None] | None = None       # the entries taken (made when needed)
    i = 0
    while i < len(msgs):
        d, j = msgs[i][0], i
        while j < len(msgs) and msgs[j] == (d, 0) and out[j] is not None:
            j += 1
        if j == i:
            i += 1
            continue
        at, num = (out[i - 1], nums[i - 1]) if i else (-1, 0)
        want = [None if at is None else at + nums[t] - num for t in range(i, j)]
        if want == out[i:j]:            # (the usual case: each has its line)
            i = j
            continue
        if j < len(msgs):
            end = out[j]
            fits = end is not None and at is not None and end - at == nums[j] - num
        else:
            end, fits = len(entries), True
        if used is None:
            used = set(out)
        mine = set(out[i:j])
        if fits and all(k is not None and at < k < end and entries[k].digest == d and
                        k not in claimed and (k in mine or k not in used) for k in want):
            used -= mine
            used.update(want)
            out[i:j] = want
        i = j


def _align(digests: list[str], entries: list[Entry], free: list[int]) -> list[tuple[int, int]]:
    """(message, entry index) pairs of the longest alignment in order of
    these messages' digests with the entries `free`; within a run of
    identical entries, the messages take those not \\Deleted first."""
    theirs = [entries[k].digest for k in free]
    if digests == theirs:
        return list(zip(range(len(digests)), free))
    blocks = difflib.SequenceMatcher(None, digests, theirs, autojunk=False).get_matching_blocks()
    pairs = {b + n: a + n for a, b, size in blocks for n in range(size)}   # free pos -> msg
    out = []
    pos = 0
    while pos < len(free):
        end = pos + 1
        while end < len(free) and theirs[end] == theirs[pos]:
            end += 1
        mine = sorted(pairs[q] for q in range(pos, end) if q in pairs)
        if mine:
            run = range(pos, end)
            if len(mine) < len(run):
                run = sorted(sorted(run, key=lambda q: ("\\Deleted" in entries[free[q]].flags, q))
                             [:len(mine)])
            out += [(a, free[q]) for a, q in zip(mine, run)]
        pos = end
    return out


def read_file(ns: nsmod.Namespace, path: str) -> bytes | None:
    """The file's bytes, recovering `<path>.tmp` left by a crash (the
    caller holds the lock); None if absent."""
    try:
        return ns.read(path)
    except nsmod.Error:
        pass
    if ns.exists(path) or not ns.exists(path + ".tmp"):
        return None
    try:
        ns.rename(path + ".tmp", path)
        return ns.read(path)
    except nsmod.Error:
        return None


def default_uidvalidity(ns: nsmod.Namespace, boxpath: str) -> int:
    """Plan 9 uses the mailbox's mtime when there is no .imp."""
    try:
        return ns.stat(boxpath).mtime or int(time.time())
    except nsmod.Error:
        return int(time.time())


# the last UIDVALIDITY given to a new .imp under /mail/box/USER (a name
# names.py reserves): a mailbox deleted and created again within a second
# has the same mtime, and Plan 9's value would let its new messages reuse
# the old ones' UIDs (RFC 3501 2.3.1.1; docs/decisions.md)
LAST_UIDVALIDITY = "imap.uidvalidity"
LOCK_WAIT = 10.0        # seconds: the user's directory is locked briefly


def new_uidvalidity(ns: nsmod.Namespace, boxpath: str) -> int:
    """The UIDVALIDITY of a new .imp: Plan 9's mtime, unless that is not
    above the last one given in this user's mail directory (then one more).
    The caller holds the mailbox directory's lock; the record is updated
    under the user directory's (taken after it, never before)."""
    userdir = "/".join(boxpath.split("/")[:4])          # /mail/box/USER
    record = f"{userdir}/{LAST_UIDVALIDITY}"
    with ns.lock(userdir, LOCK_WAIT):
        try:
            last = int(ns.read(record).split()[0])
        except (nsmod.Error, ValueError, IndexError):
            last = 0
        v = default_uidvalidity(ns, boxpath)
        if v <= last:
            v = last + 1
        safewrite.replace(ns, record, b"%010d\n" % v)
    return v
