"""A MODSEQ record's base proved sound once, then its log read alone
(issue 16, tenth part): `<mailbox>.modseq.ok.imp`.

A QRESYNC SELECT asks the record (modseq.py) which messages changed
since the client's MODSEQ, and their MODSEQs.  lean() answers from the
record's message lines read as columns: for 10,000 messages a split into
30,000 words, their checks and 10,000 int()s, ~3 ms, a third of the
SELECT.  Yet between two whole writes of the record (a change that is
not of flags only, or a log past LOG_BOUND: every ~25 STOREs) only its
log grows, and a client that synced since the last whole write knows a
MODSEQ at least the base's highest.  So a session whose lean() found the
base sound (lean takes it, every uid is 10 digits, no message line's
MODSEQ is above the header's highest, and its lines are laid out as our
writers make them: a Tail reads them in place) writes down which base it
checked:

    imap modseq checked 1\\n
    <length of the base> <SHA-1 of the base, hex>\\n

(the base: the record before its log).  A later session whose record's
base has that length and SHA-1 answers a client's MODSEQ m at least the
base's highest from the log alone: no line of the base is above m, so
the messages changed since m are the log's entries above m (a uid of
their ranges that is no line of the base is no message: the base's lines
ascend, and are bisected), each one's MODSEQ its last entry's; VANISHED
comes from the base's `x` and `f` lines as lean() reads them.  Each
answer is lean()'s (so parse()'s: modseq.py), for any log.  Anything
else (no file, another base, m below the base's highest, a log naming
more than TAIL_MANY uids, more than TAIL_ASKED uids looked up: a FETCH
1:* MODSEQ) and lean() answers as before.

The file is advisory and names the bytes it vouches for: replaced whole
(tmp + rename) under the mail lock; a torn, stale or foreign file proves
nothing, so no crash can make it lie, and a session that cannot write it
loses nothing.
"""
from __future__ import annotations

import hashlib
import re

from upas import ns as nsmod
from upas.imap4d import modseq
from upas.mail import safewrite
from upas.mail.lock import LockError

SUFFIX = ".modseq.ok.imp"
MAGIC = b"imap modseq checked 1\n"
TAIL_MANY = 4096        # uids the log's ranges may name (STORE 1:*: lean's)
# uids a Tail looks up in the base by bisection (~15 us each in Python):
# SELECT's changed few; a FETCH 1:* MODSEQ goes to lean() (bisect in C)
TAIL_ASKED = 256
LOCK_WAIT = 1.0         # seconds: a busy lock leaves the proof for later


def path_for(box: str) -> str:
    return box + SUFFIX


# a base's message lines as format_record writes them, the only layout a
# Tail reads (lean() splits on any whitespace: it takes others too)
_LINES = re.compile(rb"(?:[0-9]{10} [0-9]+ [0-9a-fA-F]{8}\n)*")


def proof_line(data: bytes) -> bytes | None:
    """The proof's line for the record `data`, whose base lean() found
    sound, if its message lines are laid out as a Tail reads them (a uid
    at each line's start, one space between words); else None: a proof
    of a base laid out otherwise would make a Tail misread it."""
    got = modseq.head(data)
    if got is None:
        return None
    at = got[3]
    if _LINES.fullmatch(data, at, modseq.rest_at(data, at)) is None:
        return None
    return stamp(data, modseq.log_at(data))


def stamp(data: bytes, end: int) -> bytes:
    """The proof's line for the base data[:end] (hashed in place)."""
    return b"%d %s\n" % (end, hashlib.sha1(memoryview(data)[:end]).hexdigest().encode())


def read(ns: nsmod.Namespace, box: str) -> bytes | None:
    """The proof's line, if the file is whole and ours."""
    try:
        data = ns.read(path_for(box))
    except nsmod.Error:
        return None
    return data[len(MAGIC):] if data.startswith(MAGIC) and data.endswith(b"\n") else None


def sound(lean: modseq.Lean | None) -> bool:
    """What the proof says of a base lean() read (its log's entries
    change none of this)."""
    return lean is not None and lean.sound and all(len(u) == 10 for u in lean.uids)


def write(ns: nsmod.Namespace, box: str, data: bytes, lock_dir: str) -> None:
    """Write down that the record `data`'s base is sound (the caller made
    sure: sound()), if a Tail can read it (proof_line).  Best effort:
    without it, the next session reads the base as before."""
    line = proof_line(data)
    if line is None:
        return
    try:
        with ns.lock(lock_dir, timeout=LOCK_WAIT):
            safewrite.replace(ns, path_for(box), MAGIC + line)
    except (nsmod.Error, OSError, LockError):
        pass


class Tail:
    """A record whose base the proof vouches for, answered from its log."""
    __slots__ = ("data", "at", "rest", "base", "last", "expunged", "forgotten", "lines",
                 "budget")

    def __init__(self, data: bytes, at: int, rest: int, base: int,
                 last: dict[int, int] | None, rec: modseq.Record) -> None:
        self.data, self.at, self.rest, self.base = data, at, rest, base
        self.last = last                # uid -> its last log entry's MODSEQ
        self.expunged, self.forgotten = rec.expunged, rec.forgotten
        # uid -> line(uid): SELECT asks for the changed ones twice (which
        # changed, then their MODSEQs)
        self.lines: dict[int, int | None] = {}
        self.budget = TAIL_ASKED        # lookups left (_spend)

    def line(self, uid: int) -> int | None:
        """Where the base's line of `uid` starts, if it has one: its lines
        (data[at:rest], uids of 10 digits, ascending) bisected by byte
        offset, each probe's line found around it."""
        if uid not in self.lines:
            self.lines[uid] = self._bisect(uid)
        return self.lines[uid]

    def _bisect(self, uid: int) -> int | None:
        data, key = self.data, b"%010d" % uid
        lo, hi = self.at, self.rest
        while lo < hi:
            mid = (lo + hi) // 2
            s = data.rfind(b"\n", lo - 1, mid) + 1
            if data[s:s + 10] < key:
                lo = data.find(b"\n", s) + 1
            else:
                hi = s
        return lo if lo < self.rest and data.startswith(key, lo) else None

    def changed_since(self, ms: int) -> set[int] | None:
        """lean().changed_since(ms); None when the log cannot tell."""
        if self.last is None or ms < self.base:
            return None
        later = [u for u, m in self.last.items() if m > ms]
        if not self._spend(later):
            return None
        return {u for u in later if self.line(u) is not None}

    def of_many(self, uids: list[int]) -> list[int] | None:
        """lean().of_many(uids); None when the log cannot tell."""
        if self.last is None or not self._spend(uids):
            return None
        out = []
        for u in uids:
            k = self.line(u)
            if k is None:
                out.append(0)
            elif u in self.last:
                out.append(self.last[u])
            else:
                out.append(int(self.data[k + 11:self.data.index(b" ", k + 11)]))
        return out

    def _spend(self, uids: list[int]) -> bool:
        """Whether the lookups of `uids` not made yet fit the budget (then
        spent); past it, the session asks lean()."""
        n = sum(1 for u in uids if u not in self.lines)
        if n > self.budget:
            self.budget = 0
            return False
        self.budget -= n
        return True

    def vanished(self, ms: int, known: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
        """lean()'s answer to Modseqs.vanished; None below the forgotten."""
        if ms < self.forgotten:
            return None
        return modseq.expunged_after(self.expunged, ms, known)


def tail(data: bytes | None, proof: bytes | None) -> Tail | None:
    """The record `data` as a Tail, when `proof` (the file's line) names
    its base; else None."""
    if not data or proof is None:
        return None
    end = modseq.log_at(data)
    if proof != stamp(data, end):
        return None
    got = modseq.head(data)
    if got is None:
        return None
    _, base, _, at = got
    rest = modseq.rest_at(data, at)
    rec = modseq.Record()
    modseq.parse_rest(rec, data[rest:end].split(b"\n"))
    entries = modseq.read_log(data, end)[0] if end < len(data) else []
    return Tail(data, at, rest, base, _last(entries), rec)


def _last(entries: list[modseq.LogEntry]) -> dict[int, int] | None:
    """Each uid the entries' ranges name -> the last one's MODSEQ; None
    past TAIL_MANY uids."""
    last: dict[int, int] = {}
    count = 0
    for e in entries:
        for _, rs in e.groups:
            for lo, hi in rs:
                count += hi - lo + 1
                if count > TAIL_MANY:
                    return None
                last.update(dict.fromkeys(range(lo, hi + 1), e.modseq))
    return last


class Proved(modseq.Modseqs):
    """A session's Modseqs (the selected mailbox's) that, while its record
    is not parsed (sync took it as it is), answers from the record's log
    when a proof names the record's base, and after a SELECT that read
    the base as lean() does writes that proof down."""

    def __init__(self, boxpath: str) -> None:
        super().__init__(boxpath)
        self.box = boxpath
        self._ns: nsmod.Namespace | None = None    # the last sync's: the proof is read through it
        self._tailed: tuple[bytes | None, Tail | None] | None = None   # (_mine, its Tail)

    def sync(self, ns: nsmod.Namespace, *args, **kwargs) -> None:
        self._ns = ns
        super().sync(ns, *args, **kwargs)

    def _tail(self) -> Tail | None:
        if self._rec is not None or self._ns is None:
            return None
        if self._tailed is None or self._tailed[0] is not self._mine:
            self._tailed = (self._mine, tail(self._mine, read(self._ns, self.box)))
        return self._tailed[1]

    def changed_since(self, ms: int) -> set[int]:
        got = self._tail()
        out = got.changed_since(ms) if got is not None else None
        return out if out is not None else super().changed_since(ms)

    def of_many(self, uids: list[int]) -> list[int]:
        got = self._tail()
        out = got.of_many(uids) if got is not None else None
        return out if out is not None else super().of_many(uids)

    def vanished(self, ms: int, known: list[tuple[int, int]],
                 uidnext: int) -> list[tuple[int, int]]:
        got = self._tail()
        out = got.vanished(ms, known) if got is not None else None
        return out if out is not None else super().vanished(ms, known, uidnext)

    def unproved(self) -> bool:
        """This session read the record as lean() does (no proof named its
        base) and found the base sound: prove() would write it down."""
        leaned, tailed = self._leaned, self._tailed
        if leaned is None or leaned[0] is not self._mine or not sound(leaned[1]):
            return False
        return tailed is None or tailed[0] is not self._mine or tailed[1] is None

    def prove(self, ns: nsmod.Namespace, lock_dir: str) -> None:
        """Write down that the record's base is sound (unproved() said so)."""
        write(ns, self.box, self._mine, lock_dir)
