"""MODSEQs (RFC 7162 CONDSTORE/QRESYNC), kept beside the `.imp` as the
keywords are, so that Plan 9's `.imp` stays byte for byte
(docs/decisions.md):

    imap modseq\\n
    <uidvalidity:10> <highestmodseq>\\n
    h <sha1 of the .imp> <of the .kw.imp, or ->\\n   the files it was reconciled with
    <uid:10> <modseq> <state:8 hex>\\n          one per message, uid order
    x <modseq> <uid-set>\\n                     UIDs expunged at that modseq
    f <modseq>\\n                               expunges at or below it forgotten
    + <modseq> <files> <state>=<uid-set>... <crc32:8 hex>\\n   the log, appended

The log (docs/decisions.md, "Resync, CAPABILITY codes, SASL-IR (issue
18)", the record's log): a change of
flags only (a STORE: the .imp's lines the same but flags fields, the
.kw.imp the same) is appended as one line instead of the record being
made anew: the messages of each uid-set (existing ones; the ranges are
runs of the .imp's lines) took <modseq> and <state>, and the record is
now reconciled with <files> (its `h`).  The CRC-32 of the line before it
tells a whole line from one a crash cut: reading stops at the first line
that is not whole, and a torn tail is never appended to (the record is
then written whole, as when the log has grown past LOG_BOUND or anything
but flags changed).

The record (its log but a shorter way to write a reconciliation) is not
a log of what sessions did: it is reconciled with the `.imp` and
`.kw.imp` as they are (`sync`, under the mail lock, after a merge).  A message whose flags or keywords (its `state`, \\Recent left
out) differ from what the file recorded, or that the file does not know,
gets the next MODSEQ; a UID the file knows and the `.imp` no longer has
was expunged at it.  So every change counts, whoever made it: an imap4d
session, Plan 9's imap4d (which knows no MODSEQs), or a deletion through
pop3 or upasfs's ctl, which an imap4d session writes into the `.imp` when
it next lists the mailbox.  MODSEQs only grow; a crash between the `.imp`
and this file leaves a difference the next sync numbers anew.  The `h`
line names the `.imp` and `.kw.imp` the record was last reconciled with:
a session that finds those files unchanged takes the record as it is
(another session synced it after its change) and parses it only when a
MODSEQ is asked for: SELECT's HIGHESTMODSEQ is read from the header and
the log (head_highest), QRESYNC's changed messages, their MODSEQs and
VANISHED from the columns (lean), each the answer the parsed record gives.  (An older file without the line is reconciled.)
A session that holds the files the record was reconciled with (its
`_base`) and wrote new ones that differ in flags only appends the
difference (`_append`); otherwise `patch` (the record's messages the
.imp's lines) or `reconcile` write it whole.
"""
from __future__ import annotations

import bisect
import itertools
import operator
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple

from upas import ns as nsmod

from upas.imap4d import imp
from upas.mail import safewrite

MAGIC = b"imap modseq\n"
SUFFIX = ".modseq.imp"
# expunged UIDs remembered for VANISHED (EARLIER); older ones are
# forgotten (the `f` line) and reported by absence instead (vanished())
KEEP_EXPUNGED = 100_000
# the log's bytes past which a STORE writes the record whole instead (every
# sync reads the log: it stays small; ~70 STOREs of one message each)
LOG_BOUND = 8 * 1024
# of_many() of at most this many uids reads the record's columns (a bisection
# each) rather than parsing it (SELECT's changed messages; a FETCH 1:*
# MODSEQ parses it)
LEAN_MANY = 256


_STATES: dict[tuple, int] = {}


def state(flags: frozenset[str] | set[str], keywords: list[str]) -> int:
    """What a MODSEQ stands for: the flags but \\Recent, and the keywords
    (each distinct set worked out once a process)."""
    key = (frozenset(flags), *keywords)
    st = _STATES.get(key)
    if st is None:
        text = imp.format_flags(set(flags) - {"\\Recent"}, False) + " " + " ".join(
            sorted(k.lower() for k in keywords))
        st = _STATES[key] = zlib.crc32(text.encode())
    return st


@dataclass
class Record:
    uidvalidity: int = 0
    highest: int = 0
    msgs: dict[int, tuple[int, int]] = field(default_factory=dict)   # uid -> (modseq, state)
    expunged: list[tuple[int, list[tuple[int, int]]]] = field(default_factory=list)
    forgotten: int = 0          # expunges at or below this MODSEQ are not listed
    files: str = ""             # imp.files_key() of the files it was reconciled with


def parse(data: bytes | None) -> Record | None:
    if not data or not data.startswith(MAGIC):
        return None
    at = log_at(data)
    return _parse_base(data[:at], read_log(data, at)[0] if at < len(data) else [])


def _parse_base(data: bytes, log: list[LogEntry]) -> Record | None:
    """parse() of the record `data` (before its log) and its log's
    entries: applied to its columns (a slice of them a uid range), or to
    the Record a line by line reading makes."""
    cols = columns(data)
    if cols is not None and log:
        got = _log_columns(cols, log)
        cols = got[0] if got else None
    try:
        msgs = dict(zip(map(int, cols.uids), zip(map(int, cols.modseqs),
                                                  map(int, cols.states, _HEX)))) if cols else None
    except ValueError:
        msgs = None
    if msgs is None:
        rec = _parse_lines(data)
        if rec is not None:
            apply_log(rec, log)
        return rec
    rec = Record(cols.uidvalidity, cols.highest, msgs)
    parse_rest(rec, data[cols.rest:].split(b"\n"))
    rec.files = log[-1].files if log else cols.files
    return rec


def _parse_lines(data: bytes) -> Record | None:
    """parse(), a line at a time: a file columns() does not take (a torn
    line is skipped, its message numbered anew)."""
    lines = data[len(MAGIC):].split(b"\n")
    try:
        v, h = lines[0].split()
        rec = Record(int(v), int(h))
    except ValueError:
        return None
    parse_rest(rec, lines[1:])
    return rec


# -- what SELECT asks, without the Record (issue 16) ---------------------------

def head_highest(data: bytes | None) -> int:
    """parse(data).highest (0 where parse gives None) from the header line
    and the log alone: both of parse's routes take the header's two words
    as int() does and raise it by each whole log entry's MODSEQ."""
    if not data or not data.startswith(MAGIC):
        return 0
    at = log_at(data)
    try:
        end = data.find(b"\n", len(MAGIC), at)
        v, h = data[len(MAGIC):at if end < 0 else end].split()
        int(v)
        highest = int(h)
    except ValueError:
        return 0                        # parse() gives None: an empty Record
    if at < len(data):
        highest = max([highest] + [e.modseq for e in read_log(data, at)[0]])
    return highest


class Lean(NamedTuple):
    """What parse() makes of a record, as its columns: uids (10 digits
    each, ascending), each one's MODSEQ with the log applied, and the
    expunges.  No per-message object: a SELECT with QRESYNC asks only
    which messages changed and which went."""
    uids: list[bytes]
    modseqs: list[int]
    highest: int
    expunged: list[tuple[int, list[tuple[int, int]]]]
    forgotten: int
    # no message line's MODSEQ above the header's highest (what a proof
    # of the record's base says: modtail.py)
    sound: bool = False

    def changed_since(self, modseq: int) -> set[int]:
        return set(map(int, itertools.compress(self.uids, map(modseq.__lt__, self.modseqs))))

    def of_many(self, uids: list[int]) -> list[int]:
        out = []
        for u in uids:
            key = b"%010d" % u
            k = bisect.bisect_left(self.uids, key)
            out.append(self.modseqs[k] if k < len(self.uids) and self.uids[k] == key else 0)
        return out


_HEXDIGITS = b"0123456789abcdefABCDEF"


def lean(data: bytes | None) -> Lean | None:
    """parse(data) as a Lean, when parse takes the columns route and every
    word is a plain number (each uid 10 digits, ascending; each MODSEQ
    digits; each state 8 hex digits; no message line after the `x`/`f`
    lines): the two then agree on every message.  None otherwise (a torn
    or foreign record: the caller parses it)."""
    if not data or not data.startswith(MAGIC):
        return None
    at = log_at(data)
    base = data[:at]
    cols = columns(base)
    if cols is None:
        return None
    uids, mss, sts = cols.uids, cols.modseqs, cols.states
    n = len(uids)
    if n:
        u, m, st = b"".join(uids), b"".join(mss), b"".join(sts)
        if len(u) != 10 * n or not u.isdigit() or not m.isdigit() or len(st) != 8 * n \
                or st.translate(None, _HEXDIGITS) or not all(map(operator.lt, uids, uids[1:])):
            return None
    tail = Record()
    parse_rest(tail, base[cols.rest:].split(b"\n"))
    if tail.msgs:
        return None
    mods, highest = list(map(int, mss)), cols.highest
    sound = not mods or max(mods) <= highest
    for e in read_log(data, at)[0] if at < len(data) else []:
        for _, rs in e.groups:
            for lo, hi in rs:
                a = bisect.bisect_left(uids, b"%010d" % lo)
                b = bisect.bisect_right(uids, b"%010d" % hi)
                mods[a:b] = [e.modseq] * (b - a)
        highest = max(highest, e.modseq)
    return Lean(uids, mods, highest, tail.expunged, tail.forgotten, sound)


def parse_rest(rec: Record, lines: list[bytes]) -> None:
    for line in lines:
        f = line.split()
        try:
            if len(f) == 3 and f[0] == b"x":
                rec.expunged.append((int(f[1]), parse_set(f[2].decode())))
            elif f[:1] == [b"h"]:
                rec.files = line[2:].decode("ascii")
            elif len(f) == 2 and f[0] == b"f":
                rec.forgotten = int(f[1])
            elif len(f) == 3 and len(f[2]) == 8:
                rec.msgs[int(f[0])] = (int(f[1]), int(f[2], 16))
        except ValueError:
            continue            # a torn line: its message is numbered anew


_HEX = itertools.repeat(16)


class Columns(NamedTuple):
    """A record's bytes as columns (columns()): its message lines are
    data[at:rest], their words uids[k], modseqs[k], states[k] (bytes)."""
    uidvalidity: int
    highest: int
    files: str
    at: int
    rest: int                   # where the `x` and `f` lines start
    uids: list[bytes]
    modseqs: list[bytes]
    states: list[bytes]


def columns(data: bytes) -> Columns | None:
    """The record's message lines as three columns of words, read as a
    whole (one split: no line parsed alone); None unless each of them has
    three words (a torn file: parse's line by line reading then).  The
    words are not checked here: parse() converts them (and reads the file
    line by line if one is not a number), patch() compares them with the
    .imp's (a uid that is not one of its lines' declines the patch, a
    state that is not its state counts as a change)."""
    got = head(data)
    if got is None:
        return None
    uidvalidity, highest, files, at = got
    rest = rest_at(data, at)
    words = data[at:rest].split()
    n = len(words) // 3
    uids, mss, sts = words[0::3], words[1::3], words[2::3]
    if len(words) != 3 * n or data.count(b"\n", at, rest) != n or (n and data[rest - 1] != 0x0A):
        return None
    return Columns(uidvalidity, highest, files, at, rest, uids, mss, sts)


def head(data: bytes) -> tuple[int, int, str, int] | None:
    """A record's header as columns() takes it: its uidvalidity, highest
    MODSEQ (two words of digits), the files of its `h` line ("" without
    one), and where its message lines start; None if it is not one."""
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    words = data[len(MAGIC):end].split()
    if end < 0 or len(words) != 2 or not all(map(bytes.isdigit, words)):
        return None
    at, files = end + 1, ""
    if data.startswith(b"h ", at):
        end = data.find(b"\n", at)
        if end < 0:
            return None
        files, at = data[at + 2:end].decode("ascii", "replace"), end + 1
    return int(words[0]), int(words[1]), files, at


def rest_at(data: bytes, at: int) -> int:
    """Where the message lines that start at `at` end: the first `x`, `f`
    or `+` line (the file's end without one)."""
    return min([k + 1 for k in (_line_find(data, 0x78, at - 1), _line_find(data, 0x66, at - 1),
                                _line_find(data, 0x2B, at - 1)) if k >= 0] or [len(data)])


def format_record(rec: Record) -> bytes:
    out = [MAGIC, b"%010d %d\n" % (rec.uidvalidity, rec.highest)]
    if rec.files:
        out.append(b"h %s\n" % rec.files.encode("ascii"))
    out += [b"%010d %d %08x\n" % (u, ms, st) for u, (ms, st) in sorted(rec.msgs.items())]
    out += [b"x %d %s\n" % (ms, format_set(r).encode()) for ms, r in rec.expunged]
    if rec.forgotten:
        out.append(b"f %d\n" % rec.forgotten)
    return b"".join(out)


# -- the log (see the module's docstring) ------------------------------------

class LogEntry(NamedTuple):
    modseq: int
    files: str                                  # the record's `h` from here on
    groups: list[tuple[int, list[tuple[int, int]]]]   # (state, uid ranges)


def log_at(data: bytes) -> int:
    """Where a record's log starts (its length when it has none)."""
    k = _line_find(data, 0x2B, 0)
    return k + 1 if k >= 0 else len(data)


def _line_find(data: bytes, mark: int, start: int) -> int:
    """data.find(b"\n" + mark + b" ", start): the mark found by memchr,
    not a search for three bytes that steps over the newlines and spaces
    of 10,000 lines (0.18 ms).  No message line holds `x` or `+`; `f`
    is a hex digit of their states, so after LINE_MISSES marks that
    begin no line the three bytes are searched for after all."""
    k = data.find(mark, start + 1)
    for _ in range(LINE_MISSES):
        if k < 0 or (data[k - 1] == 0x0A and data[k + 1:k + 2] == b" "):
            return k - 1 if k >= 0 else -1
        k = data.find(mark, k + 1)
    return data.find(b"\n%c " % mark, k - 1) if k >= 0 else -1


LINE_MISSES = 16        # marks in message lines before _line_find searches the bytes


def read_log(data: bytes, at: int) -> tuple[list[LogEntry], int]:
    """The log's whole entries from `at`, and where they end: at the first
    line that is not whole (a crash's torn tail) or not an entry.  (A
    STORE's sync reads the record's log twice, _files_of then _append:
    the last answer is kept for the same bytes.)"""
    last = _READ_LOG
    if last[0] is data and last[1] == at:
        return last[2]
    got = _read_log(data, at)
    _READ_LOG[:] = [data, at, got]
    return got


_READ_LOG: list = [None, -1, None]      # the last read_log: its bytes, `at` and answer


def _read_log(data: bytes, at: int) -> tuple[list[LogEntry], int]:
    out = []
    while at < len(data):
        end = data.find(b"\n", at)
        got = _entry(data[at:end]) if end >= 0 else None
        if got is None:
            break
        out.append(got)
        at = end + 1
    return out, at


def _entry(line: bytes) -> LogEntry | None:
    body, _, crc = line.rpartition(b" ")
    if len(crc) != 8 or b"%08x" % zlib.crc32(body) != crc:
        return None
    f = body.split(b" ")
    if len(f) < 4 or f[0] != b"+":
        return None
    try:
        groups = []
        for g in f[4:]:
            st, eq, uids = g.partition(b"=")
            if len(st) != 8 or not eq:
                return None
            groups.append((int(st, 16), parse_set(uids.decode("ascii"))))
        return LogEntry(int(f[1]), (f[2] + b" " + f[3]).decode("ascii"), groups)
    except (ValueError, UnicodeDecodeError):
        return None


def format_entry(e: LogEntry) -> bytes:
    body = b"+ %d %s%s" % (e.modseq, e.files.encode("ascii"), b"".join(
        b" %08x=%s" % (st, format_set(rs).encode()) for st, rs in e.groups))
    return body + b" %08x\n" % zlib.crc32(body)


def apply_log(rec: Record, entries: list[LogEntry]) -> None:
    """The log's entries, in order, on the record of its base."""
    if not entries:
        return
    order = sorted(rec.msgs)
    for e in entries:
        _apply_entry(rec.msgs, order, e)
        rec.highest, rec.files = max(rec.highest, e.modseq), e.files


def _apply_entry(msgs: dict[int, tuple[int, int]], order: list[int], e: LogEntry) -> None:
    """An entry on the messages (`order`: their uids, sorted); a uid it
    names that is not one of them is not made."""
    for st, rs in e.groups:
        val = (e.modseq, st)
        for lo, hi in rs:
            for u in order[bisect.bisect_left(order, lo):bisect.bisect_right(order, hi)]:
                msgs[u] = val


def _log_columns(cols: Columns, entries: list[LogEntry]) -> tuple[Columns, int] | None:
    """The columns of a record's base with its log's entries applied, and
    its highest MODSEQ; None for a base whose uids are not in order
    (format_record's are)."""
    uids = cols.uids
    if not all(map(operator.lt, uids, uids[1:])):
        return None
    mss, sts, highest = list(cols.modseqs), list(cols.states), cols.highest
    for e in entries:
        ms = b"%d" % e.modseq
        for st, rs in e.groups:
            stb = b"%08x" % st
            for lo, hi in rs:
                a = bisect.bisect_left(uids, b"%010d" % lo)
                b = bisect.bisect_right(uids, b"%010d" % hi)
                mss[a:b] = [ms] * (b - a)
                sts[a:b] = [stb] * (b - a)
        highest = max(highest, e.modseq)
    return cols._replace(modseqs=mss, states=sts, highest=highest), highest


# -- what a change of flags only changed (the log's entry) --------------------

# a flags field's mask (imp.span_masks) without `r`'s bit: no part of a state
_STATE_BITS = bytes(b & 0x1F for b in range(256))
_NONZERO = bytes([0] + [0xFF] * 255)
_CODE_STATES: dict[int, int] = {}


def _code_state(code: int) -> int:
    """The state of a flags field whose places' bits are `code` (no keywords)."""
    st = _CODE_STATES.get(code)
    if st is None:
        field = bytes(c[0] if code & (1 << j) else 0x2D for j, c in enumerate(imp.PLACES[:5]))
        st = _CODE_STATES[code] = state(imp.field_flags(field + b"---"), [])
    return st


def flag_changes(old: bytes, new: bytes, kwdata: bytes | None,
                 ordered: bool) -> list[tuple[int, list[tuple[int, int]]]] | None:
    """(state, uid ranges) of the messages whose state differs between the
    .imp `old` and `new`, when nothing but flags fields differs (a STORE:
    imp.flags_span) and their .kw.imp is `kwdata`; None otherwise.  The
    lines are of one width: each line's field is a byte, its mask
    (imp.span_masks: those with_flags made the new file from, else read
    as columns), the changed lines found as the nonzero bytes of the
    masks' XOR, runs of lines with one new state by _runs: no line
    split.  `ordered`: the files' uids are known to ascend (else checked,
    unless imp.ordered knows: a range of uids stands for the lines of its
    run only if they do)."""
    span = imp.flags_span(old, new)
    if span is None:
        return None
    n = (len(new) - imp.BODY_AT) // imp.LINE_LEN
    if not ordered and not imp.ordered(new):
        if not _ascending(new, n):
            return None
        imp.found_ordered(new)
    if not span:
        return []
    k0, k1 = span
    m = k1 - k0
    was, now = imp.span_masks(old, new, k0, k1)
    code = int.from_bytes(now.translate(_STATE_BITS), "big")
    diff = int.from_bytes(was.translate(_STATE_BITS), "big") ^ code
    mask = int.from_bytes(diff.to_bytes(m, "big").translate(_NONZERO), "big")
    cc = bytearray(((code | int.from_bytes(b"\x20" * m, "big")) & mask).to_bytes(m, "big"))
    kws = _keyword_lines(new, k0, k1, kwdata, cc)
    groups: dict[int, list[tuple[int, int]]] = {}
    for a, b in _runs(cc):
        c = cc[a]
        if c == 0x7F:                   # each its own
            for k in range(a, b):
                groups.setdefault(kws[k], []).append((_uid(new, k0 + k),) * 2)
        elif c:
            groups.setdefault(_code_state(c & 0x1F), []).append(
                (_uid(new, k0 + a), _uid(new, k0 + b - 1)))
    return list(groups.items())


def _runs(cc: bytearray) -> Iterator[tuple[int, int]]:
    """(start, end) of the runs of one byte value of cc: where a byte
    differs from the one before it, found as the nonzero bytes of cc's
    integer XOR itself shifted by a byte (memchr over them, not a Python
    step a byte)."""
    x = int.from_bytes(cc, "big")
    edges = (x ^ (x >> 8)).to_bytes(len(cc), "big").translate(_NONZERO)
    a = 0
    while a < len(cc):
        b = edges.find(0xFF, a + 1)
        b = len(cc) if b < 0 else b
        yield a, b
        a = b


def _uid(data: bytes, k: int) -> int:
    at = imp.BODY_AT + k * imp.LINE_LEN + imp.UID_AT
    return int(data[at:at + 10])


_HIGH = bytes.maketrans(b"0123456789", bytes(d << 4 for d in range(10)))
_LOW = bytes.maketrans(b"0123456789", bytes(range(10)))
_ASC_CONST: dict[int, tuple[int, int]] = {}    # n -> the two constants below


def _ascending(data: bytes, n: int) -> bool:
    """The uids of a whole .imp's n lines ascend strictly.  Checked on big
    integers, not as 10,000 compares: V holds line k's 10 digits (packed,
    two a byte: they order as the number) in its 64-bit field n-1-k;
    (V << 64) + (2**48 - 1) - V, field by field (no borrow crosses a
    field: a field of V is below 2**40), is v(k+1) - v(k) + 2**48 - 1 in
    field n-1-k, whose bit 48 is set exactly when v(k+1) > v(k)."""
    if n < 2:
        return True
    buf = bytearray(8 * n)
    at = imp.BODY_AT + imp.UID_AT
    for p in range(5):
        high = data[at + 2 * p::imp.LINE_LEN]
        low = data[at + 2 * p + 1::imp.LINE_LEN]
        if high.translate(None, b"0123456789") or low.translate(None, b"0123456789"):
            return False
        buf[3 + p::8] = (int.from_bytes(high.translate(_HIGH), "big") |
                         int.from_bytes(low.translate(_LOW), "big")).to_bytes(n, "big")
    got = _ASC_CONST.get(n)
    if got is None:
        _ASC_CONST.clear()
        got = _ASC_CONST[n] = (
            int.from_bytes(((1 << 48) - 1).to_bytes(8, "big") * (n + 1), "big"),
            int.from_bytes((1 << 48).to_bytes(8, "big") * (n - 1) + bytes(8), "big"))
    offset, bit = got
    v = int.from_bytes(buf, "big")
    return ((v << 64) + offset - v) & bit == bit


def _keyword_lines(data: bytes, k0: int, k1: int, kwdata: bytes | None,
                   cc: bytearray) -> dict[int, int]:
    """The state of each changed line of a message with keywords (its
    digest the .kw.imp's), by its place in cc (line k0 is cc's first);
    those places are marked 0x7F in cc (a run of their own).  The lines
    are found by their uid (they ascend)."""
    out: dict[int, int] = {}
    for uid, (digest, words) in (imp.parse_keywords(kwdata) if kwdata else {}).items():
        if not words:
            continue
        lo, hi = k0, k1
        while lo < hi:
            mid = (lo + hi) // 2
            if _uid(data, mid) < uid:
                lo = mid + 1
            else:
                hi = mid
        at = imp.BODY_AT + lo * imp.LINE_LEN
        if lo == k1 or _uid(data, lo) != uid or data[at:at + 40] != digest.encode():
            continue
        if cc[lo - k0]:
            cc[lo - k0] = 0x7F
            field = data[at + imp.FLAGS_AT:at + imp.FLAGS_AT + 8]
            out[lo - k0] = state(imp.field_flags(field), words)
    return out


def parse_set(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        out.append((int(lo), int(hi or lo)))
    return out


def format_set(ranges: list[tuple[int, int]]) -> str:
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


def ranges(uids) -> list[tuple[int, int]]:
    """Sorted UIDs as (lo, hi) runs."""
    out: list[tuple[int, int]] = []
    for u in sorted(uids):
        if out and u == out[-1][1] + 1:
            out[-1] = (out[-1][0], u)
        else:
            out.append((u, u))
    return out


def reconcile(old: Record | None, uidvalidity: int,
              now: list[tuple[int, int]]) -> tuple[Record, bool]:
    """The record for the messages `now` ((uid, state), the .imp's), made
    from the `old` one; and whether anything changed."""
    if old is None or old.uidvalidity != uidvalidity:
        # a new mailbox (or .imp): nothing of the old record holds, but
        # MODSEQs still only grow
        old = Record(uidvalidity, old.highest if old else 0)
    nxt = old.highest + 1
    msgs: dict[int, tuple[int, int]] = {}
    bumped = False
    for uid, st in now:
        prev = old.msgs.get(uid)
        if prev is not None and prev[1] == st:
            msgs[uid] = prev
        else:
            msgs[uid] = (nxt, st)
            bumped = True
    gone = [u for u in old.msgs if u not in msgs]
    rec = Record(uidvalidity, nxt if bumped or gone else old.highest, msgs,
                 list(old.expunged), old.forgotten)
    if gone:
        rec.expunged.append((nxt, ranges(gone)))
        _trim(rec)
    return rec, bumped or bool(gone) or old.uidvalidity != uidvalidity


def _trim(rec: Record) -> None:
    count = sum(b - a + 1 for _, r in rec.expunged for a, b in r)
    while count > KEEP_EXPUNGED and len(rec.expunged) > 1:
        ms, r = rec.expunged.pop(0)
        rec.forgotten = max(rec.forgotten, ms)
        count -= sum(b - a + 1 for a, b in r)


# an .imp flags field's state (no keywords), as its 8 hex digits
_FIELD_STATES: dict[bytes, bytes] = {}


def patch(mine: bytes, data: bytes, kwdata: bytes | None,
          files: str) -> tuple[bytes, int, Iterator[tuple[int, int]]] | None:
    """reconcile() of the record `mine` with the .imp `data` and .kw.imp
    `kwdata` (of imp.files_key() `files`), when the record's messages
    are the .imp's lines, uid for uid (the usual case: after a STORE,
    this session's or another's): the record's bytes with the lines of the
    messages whose state changed made anew, its highest MODSEQ, and
    (uid, state) of those messages; None otherwise (parse and reconcile
    then).  The files are read as columns (one split each): no Record,
    no line parsed or made but the changed messages'."""
    cols = columns(mine)
    head = imp.header(data)
    if cols is None or head is None or head[0] != cols.uidvalidity:
        return None
    logged = log_at(mine)
    if logged < len(mine):              # the record is its base and the log
        got = _log_columns(cols, read_log(mine, logged)[0])
        if got is None:
            return None
        cols = got[0]
    uids = cols.uids
    n = len(uids)
    if not imp.whole(data, n):
        return None
    words = data[imp.BODY_AT:].split()
    if len(words) != 3 * n or words[1::3] != uids:
        return None
    fields = words[2::3]
    for f in set(fields) - _FIELD_STATES.keys():
        if not imp.valid_field(f):
            return None
        _FIELD_STATES[f] = b"%08x" % state(imp.field_flags(f), [])
    new = list(map(_FIELD_STATES.__getitem__, fields))
    kws = imp.parse_keywords(kwdata) if kwdata else {}
    if kws and not all(map(operator.lt, uids, uids[1:])):
        return None                     # (format_record's are in order)
    for uid, (digest, kwords) in kws.items():
        k = bisect.bisect_left(uids, b"%010d" % uid)
        if k < n and uids[k] == b"%010d" % uid and words[3 * k] == digest.encode():
            new[k] = b"%08x" % state(imp.field_flags(fields[k]), kwords)
    changed = list(itertools.compress(range(n), map(operator.ne, cols.states, new)))
    highest = cols.highest + 1 if changed else cols.highest
    mid = b" %d " % highest
    if len(changed) == n:           # every line anew (a STORE 1:*)
        ends = {st: mid + st + b"\n" for st in set(new)}
        body = b"".join(map(bytes.__add__, uids, map(ends.__getitem__, new)))
    else:
        lines = mine[cols.at:cols.rest].split(b"\n") if logged == len(mine) else \
            list(map(b" ".join, zip(uids, cols.modseqs, cols.states))) + [b""]
        for k in changed:
            lines[k] = uids[k] + mid + new[k]
        body = b"\n".join(lines)
    out = b"".join([MAGIC, b"%010d %d\n" % (cols.uidvalidity, highest),
                    b"h %s\n" % files.encode("ascii"), body, mine[cols.rest:logged]])
    return out, highest, ((int(uids[k]), int(new[k], 16)) for k in changed)


class Modseqs:
    """A mailbox's MODSEQs as this process last synced them."""

    def __init__(self, boxpath: str):
        self.path = boxpath + SUFFIX
        self.imppath = boxpath + ".imp"
        self.kwpath = boxpath + ".kw.imp"
        self._rec: Record | None = Record()   # None: _mine not parsed yet
        self._mine: bytes | None = None       # the file's bytes self.rec stands for
        self._seen: tuple[bytes | None, bytes | None, bytes | None] | None = None
        # the .imp and .kw.imp the record (as this process last saw it) was
        # reconciled with, their files_key() and whether the .imp's uids
        # were found to ascend: a STORE's change is then their difference
        # from the files it wrote, appended to the log (flag_changes)
        self._base: tuple[str, bytes, bytes | None, bool] | None = None
        self._leaned: tuple[bytes | None, Lean | None] | None = None   # (_mine, lean(_mine))

    @property
    def rec(self) -> Record:
        if self._rec is None:           # parsed at its first use (see proved)
            self._rec = parse(self._mine) or Record()
            if self._leaned is not None:
                self._leaned = (None, None)     # its columns not kept beside it
        return self._rec

    @rec.setter
    def rec(self, rec: Record) -> None:
        self._rec = rec

    @property
    def highest(self) -> int:
        if self._rec is None:           # the header and the log: no parse
            return head_highest(self._mine)
        return self.rec.highest

    def _lean(self) -> Lean | None:
        """The record not parsed yet, as a Lean (None: parse it).  Only
        the first record this process looks at: one asked again after it
        changed (a session past its SELECT, STOREs with CONDSTORE) is
        parsed, and sync keeps a parsed record up to date in place."""
        if self._rec is not None:
            return None
        if self._leaned is None:
            self._leaned = (self._mine, lean(self._mine))
        return self._leaned[1] if self._leaned[0] is self._mine else None

    def of(self, uid: int) -> int:
        """A message's MODSEQ; 0 for one not recorded yet (not numbered)."""
        got = self.rec.msgs.get(uid)
        return got[0] if got else 0

    def of_many(self, uids: list[int]) -> list[int]:
        """of() of each uid (of a few, from the columns when the record is
        not parsed: SELECT's changed messages)."""
        if len(uids) <= LEAN_MANY and (got := self._lean()) is not None:
            return got.of_many(uids)
        msgs = self.rec.msgs
        return [got[0] if (got := msgs.get(u)) else 0 for u in uids]

    def sync(self, ns: nsmod.Namespace,
             known: Callable[[], tuple[int, list[tuple[int, int]]]] | None = None,
             files: str | None = None,
             have: tuple[bytes | None, bytes | None] | None = None) -> None:
        """Reconcile the record with the .imp and .kw.imp as they are now
        and write it if it changed; the caller holds the mail lock.
        `known`: gives (uidvalidity, [(uid, state)]) of those files, when
        the caller knows them (it wrote them), `files` their
        imp.files_key() and `have` their bytes: they are not read then."""
        mine = imp.read_file(ns, self.path)
        cur = _files_of(mine) if mine is not None else None
        if known is None:
            data = imp.read_file(ns, self.imppath)
            kwdata = imp.read_file(ns, self.kwpath)
            if self._seen == (data, kwdata, mine):
                return                          # nothing moved since our last look
            files = imp.files_key(data, kwdata) if data is not None else None
            known = lambda: _rows(data, kwdata)     # noqa: E731
            seen = (data, kwdata, mine)
            have = (data, kwdata)
        else:
            seen = None
        whole = files is not None and have is not None and have[0] is not None
        if files is not None and mine is not None and cur == files:
            if mine != self._mine:      # reconciled with these files already
                self._rec, self._mine = None, mine
            self._seen = seen
            self._based(files, have if whole else None)
            return
        if whole and mine is not None:
            if self._base is not None and cur == self._base[0] and \
                    self._append(ns, mine, have, files):
                self._seen = seen and seen[:2] + (self._mine,)
                return
            got = patch(mine, have[0], have[1], files)
            if got is not None:
                self._patched(ns, mine, files, *got)
                self._seen = seen and seen[:2] + (self._mine,)
                self._based(files, have)
                return
        # the record as we last left it is not parsed again
        old = self.rec if mine is not None and mine == self._mine else parse(mine)
        now = known()
        if now is None:
            self.rec, self._mine = old or Record(), mine
            self._seen = seen
            return
        rec, changed = reconcile(old, *now)
        rec.files = files or ""
        if changed or old is None or old.files != rec.files or log_at(mine) < len(mine):
            mine = format_record(rec)
            safewrite.replace(ns, self.path, mine)
            seen = seen and seen[:2] + (mine,)
        self.rec, self._mine = rec, mine
        self._seen = seen
        self._based(files, have if whole else None)

    def _based(self, files: str | None, have: tuple[bytes, bytes | None] | None) -> None:
        """The record is now reconciled with the files `have` (None: their
        bytes are not at hand)."""
        if files is None or have is None:
            self._base = None
        elif self._base is None or self._base[1] is not have[0]:
            self._base = (files, have[0], have[1], False)

    def _append(self, ns: nsmod.Namespace, mine: bytes,
                have: tuple[bytes, bytes | None], files: str) -> bool:
        """The record `mine` (the file now, reconciled with self._base's
        files) takes the change from them to `have` as one entry appended
        to its log, when that change is of flags only, the log's tail is
        whole and the log stays within LOG_BOUND; False otherwise (nothing
        written: the record is then made whole)."""
        _, old, oldkw, ordered = self._base
        if oldkw is not have[1] and oldkw != have[1]:
            return False
        at = log_at(mine)
        entries, end = read_log(mine, at)
        if end != len(mine):
            return False                # a torn tail: never appended to
        groups = flag_changes(old, have[0], have[1], ordered)
        if groups is None:
            return False
        highest = entries[-1].modseq if entries else columns_highest(mine)
        if highest is None:
            return False
        entry = LogEntry(highest + 1 if groups else highest, files, groups)
        line = format_entry(entry)
        if end - at + len(line) > LOG_BOUND:
            return False
        try:
            ns.write_at(self.path, [(len(mine), line)], sync=True)
        except nsmod.Error:
            return False                # (a torn tail, if any, is made whole next)
        if self._rec is not None and mine == self._mine:
            rec = self._rec
            _apply_entry(rec.msgs, sorted(rec.msgs), entry)
            rec.highest, rec.files = max(rec.highest, entry.modseq), files
        else:
            self._rec = None
        self._mine = mine + line
        self._base = (files, have[0], have[1], True)
        return True

    def _patched(self, ns: nsmod.Namespace, mine: bytes, files: str, new: bytes,
                 highest: int, changes: Iterator[tuple[int, int]]) -> None:
        """The record `mine` (the file now) becomes patch()'s `new`; a
        parsed record of `mine` takes its changes, else `new` is parsed
        when a MODSEQ is asked for."""
        if new != mine:
            safewrite.replace(ns, self.path, new)
        if self._rec is not None and mine == self._mine:
            rec = self._rec
            for uid, st in changes:
                rec.msgs[uid] = (highest, st)
            rec.highest, rec.files = highest, files
        else:
            self._rec = None
        self._mine = new

    def changed_since(self, modseq: int) -> set[int]:
        """UIDs whose MODSEQ is above `modseq`."""
        got = self._lean()
        if got is not None:
            return got.changed_since(modseq)
        return {u for u, (ms, _) in self.rec.msgs.items() if ms > modseq}

    def vanished(self, modseq: int, known: list[tuple[int, int]], uidnext: int) -> list[tuple[int, int]]:
        """UIDs in `known` expunged after `modseq` (RFC 7162 3.2.5.1,
        3.2.6).  Past what the record remembers, every UID of `known`
        below uidnext without a message is reported: RFC 7162 lets
        VANISHED (EARLIER) name UIDs the client never saw."""
        got = self._lean()
        if got is not None and modseq >= got.forgotten:
            return expunged_after(got.expunged, modseq, known)
        rec = self.rec
        if modseq < rec.forgotten:
            out, live = [], rec.msgs
            for a, b in known:
                out += [u for u in range(a, min(b, uidnext - 1) + 1) if u not in live]
            return ranges(out)
        return expunged_after(rec.expunged, modseq, known)


def expunged_after(expunged: list[tuple[int, list[tuple[int, int]]]], modseq: int,
                    known: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The UIDs of `known` the record's `x` lines expunged after `modseq`."""
    out = set()
    for ms, rs in expunged:
        if ms > modseq:
            for a, b in rs:
                out.update(u for u in range(a, b + 1) if within(u, known))
    return ranges(out)


def _files_of(data: bytes) -> str | None:
    """The files a record's bytes were last reconciled with (its `h`
    line's, or its log's last entry's), without parsing the record (nor
    copying it: its third line found, not split off)."""
    head = data.find(b"\n", len(MAGIC)) if data.startswith(MAGIC) else -1
    end = data.find(b"\n", head + 1) if head >= 0 else -1
    if end < 0 or data[head + 1:head + 3] != b"h ":
        return None
    at = log_at(data)
    if at < len(data):
        entries = read_log(data, at)[0]
        if entries:
            return entries[-1].files
    return data[head + 3:end].decode("ascii", "replace")


def columns_highest(data: bytes) -> int | None:
    """The highest MODSEQ of a record's header line (its base's)."""
    end = data.find(b"\n", len(MAGIC))
    head = data[len(MAGIC):end].split()
    if end < 0 or len(head) != 2 or not head[1].isdigit():
        return None
    return int(head[1])


def _rows(data: bytes | None, kwdata: bytes | None) -> tuple[int, list[tuple[int, int]]] | None:
    """(uidvalidity, [(uid, state)]) of a .imp and .kw.imp; None without a .imp."""
    parsed = imp.parse_imp(data) if data else None
    if parsed is None:
        return None
    kws = imp.parse_keywords(kwdata) if kwdata else {}
    now = []
    for e in parsed.entries:
        if e.uid:
            k = kws.get(e.uid)
            now.append((e.uid, state(e.flags, k[1] if k and k[0] == e.digest else [])))
    return parsed.uidvalidity, now


def sync_box(box) -> None:
    """Sync a mailbox.Mailbox's MODSEQs after its merge (the lock held).
    When the view wrote the files itself (or found them as it wrote them)
    its messages are what they hold, and the files are not parsed again."""
    if box.imp_known is None:
        box.modseqs.sync(box.ns)
        return
    def rows() -> tuple[int, list[tuple[int, int]]]:
        out = [(m.uid, state(m.flags, m.keywords)) for m in box.msgs if not m.expunged and m.uid]
        out += [(e.uid, state(e.flags, kw)) for e, kw in box.state.ahead if e.uid]
        return box.uidvalidity, out
    box.modseqs.sync(box.ns, rows, imp.files_key(*box.imp_known), box.imp_known)


def within(u: int, known: list[tuple[int, int]]) -> bool:
    return any(a <= u <= b for a, b in known)
