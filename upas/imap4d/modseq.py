"""MODSEQs (RFC 7162 CONDSTORE/QRESYNC), kept beside the `.imp` as the
keywords are, so that Plan 9's `.imp` stays byte for byte
(docs/decisions.md):

    imap modseq\\n
    <uidvalidity:10> <highestmodseq>\\n
    h <sha1 of the .imp> <of the .kw.imp, or ->\\n   the files it was reconciled with
    <uid:10> <modseq> <state:8 hex>\\n          one per message, uid order
    x <modseq> <uid-set>\\n                     UIDs expunged at that modseq
    f <modseq>\\n                               expunges at or below it forgotten

The file is not a log of what sessions did: it is reconciled with the
`.imp` and `.kw.imp` as they are (`sync`, under the mail lock, after a
merge).  A message whose flags or keywords (its `state`, \\Recent left
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
MODSEQ is asked for.  (An older file without the line is reconciled.)
"""
from __future__ import annotations

import array
import sys
import zlib
from dataclasses import dataclass, field

from upas import ns as nsmod
from typing import Callable

from upas.imap4d import imp
from upas.mail import safewrite

MAGIC = b"imap modseq\n"
SUFFIX = ".modseq.imp"
# expunged UIDs remembered for VANISHED (EARLIER); older ones are
# forgotten (the `f` line) and reported by absence instead (vanished())
KEEP_EXPUNGED = 100_000


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
    head, rest = _message_lines(data)
    lines = data[len(MAGIC):head].split(b"\n") + data[rest:].split(b"\n")
    try:
        v, h = lines[0].split()
        rec = Record(int(v), int(h))
    except ValueError:
        return None
    if rest > head:
        rec.msgs = _messages(data[head:rest])
    for line in lines[1:]:
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
    return rec


def _message_lines(data: bytes) -> tuple[int, int]:
    """Where the run of message lines lies in a record (as format_record
    writes them: after the header and `h` lines, before any `x` or `f`),
    when every line of it is whole; (n, n) when there is none such: they
    are then parsed line by line with the rest."""
    at = data.find(b"\n", len(MAGIC)) + 1
    if data.startswith(b"h ", at):
        at = data.find(b"\n", at) + 1
    if at <= 0:
        return len(data), len(data)
    end = len(data)
    for tail in (b"\nx ", b"\nf "):
        k = data.find(tail, at - 1)
        if k >= 0:
            end = min(end, k + 1)
    if end <= at or data[end - 1:end] != b"\n":
        return len(data), len(data)
    return at, end


def _messages(block: bytes) -> dict[int, tuple[int, int]]:
    """uid -> (modseq, state) of a run of whole message lines, in a few
    passes over the whole (a record holds one line per message: parsed
    line by line it was a third of a QRESYNC SELECT at 10,000); a run
    with any other line goes line by line."""
    words = block.split()
    uids, mods, states = words[0::3], words[1::3], words[2::3]
    n = block.count(b"\n")
    if len(words) != 3 * n or set(map(len, uids)) != {10} or set(map(len, states)) != {8} \
            or array.array("I").itemsize != 4:
        return _messages_slowly(block)
    try:
        # the states, 8 hex digits each, as one run of 4-byte big-endian words
        words32 = array.array("I", bytes.fromhex(b"".join(states).decode("ascii")))
        if sys.byteorder == "little":
            words32.byteswap()
        return dict(zip(map(int, uids), zip(map(int, mods), words32)))
    except (ValueError, UnicodeDecodeError):
        return _messages_slowly(block)


def _messages_slowly(block: bytes) -> dict[int, tuple[int, int]]:
    out = {}
    for line in block.split(b"\n"):
        f = line.split()
        try:
            if len(f) == 3 and len(f[2]) == 8 and f[0] not in (b"x", b"h"):
                out[int(f[0])] = (int(f[1]), int(f[2], 16))
        except ValueError:
            continue
    return out


def format_record(rec: Record) -> bytes:
    out = [MAGIC, b"%010d %d\n" % (rec.uidvalidity, rec.highest)]
    if rec.files:
        out.append(b"h %s\n" % rec.files.encode("ascii"))
    out += [b"%010d %d %08x\n" % (u, ms, st) for u, (ms, st) in sorted(rec.msgs.items())]
    out += [b"x %d %s\n" % (ms, format_set(r).encode()) for ms, r in rec.expunged]
    if rec.forgotten:
        out.append(b"f %d\n" % rec.forgotten)
    return b"".join(out)


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


class Modseqs:
    """A mailbox's MODSEQs as this process last synced them."""

    def __init__(self, boxpath: str):
        self.path = boxpath + SUFFIX
        self.imppath = boxpath + ".imp"
        self.kwpath = boxpath + ".kw.imp"
        self._rec: Record | None = Record()   # None: _mine not parsed yet
        self._mine: bytes | None = None       # the file's bytes self.rec stands for
        self._seen: tuple[bytes | None, bytes | None, bytes | None] | None = None

    @property
    def rec(self) -> Record:
        if self._rec is None:           # parsed at its first use (see proved)
            self._rec = parse(self._mine) or Record()
        return self._rec

    @rec.setter
    def rec(self, rec: Record) -> None:
        self._rec = rec

    @property
    def highest(self) -> int:
        return self.rec.highest

    def of(self, uid: int) -> int:
        """A message's MODSEQ; 0 for one not recorded yet (not numbered)."""
        got = self.rec.msgs.get(uid)
        return got[0] if got else 0

    def sync(self, ns: nsmod.Namespace,
             known: Callable[[], tuple[int, list[tuple[int, int]]]] | None = None,
             files: str | None = None) -> None:
        """Reconcile the record with the .imp and .kw.imp as they are now
        and write it if it changed; the caller holds the mail lock.
        `known`: gives (uidvalidity, [(uid, state)]) of those files, when
        the caller knows them (it wrote them), and `files` their
        imp.files_key(): they are not read then."""
        mine = imp.read_file(ns, self.path)
        if known is None:
            data = imp.read_file(ns, self.imppath)
            kwdata = imp.read_file(ns, self.kwpath)
            if self._seen == (data, kwdata, mine):
                return                          # nothing moved since our last look
            files = imp.files_key(data, kwdata) if data is not None else None
            known = lambda: _rows(data, kwdata)     # noqa: E731
            seen = (data, kwdata, mine)
        else:
            seen = None
        if files is not None and mine is not None and _files_of(mine) == files:
            if mine != self._mine:      # reconciled with these files already
                self._rec, self._mine = None, mine
            self._seen = seen
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
        if changed or old is None or old.files != rec.files:
            mine = format_record(rec)
            safewrite.replace(ns, self.path, mine)
            seen = seen and seen[:2] + (mine,)
        self.rec, self._mine = rec, mine
        self._seen = seen

    def changed_since(self, modseq: int) -> set[int]:
        """UIDs whose MODSEQ is above `modseq`."""
        return {u for u, (ms, _) in self.rec.msgs.items() if ms > modseq}

    def vanished(self, modseq: int, known: list[tuple[int, int]], uidnext: int) -> list[tuple[int, int]]:
        """UIDs in `known` expunged after `modseq` (RFC 7162 3.2.5.1,
        3.2.6).  Past what the record remembers, every UID of `known`
        below uidnext without a message is reported: RFC 7162 lets
        VANISHED (EARLIER) name UIDs the client never saw."""
        live = self.rec.msgs
        if modseq < self.rec.forgotten:
            out = []
            for a, b in known:
                out += [u for u in range(a, min(b, uidnext - 1) + 1) if u not in live]
            return ranges(out)
        out = set()
        for ms, rs in self.rec.expunged:
            if ms > modseq:
                for a, b in rs:
                    out.update(u for u in range(a, b + 1) if within(u, known))
        return ranges(out)


def _files_of(data: bytes) -> str | None:
    """The `h` line's files of a record's bytes, without parsing it."""
    lines = data.split(b"\n", 3)
    if len(lines) < 4 or lines[0] + b"\n" != MAGIC or not lines[2].startswith(b"h "):
        return None
    return lines[2][2:].decode("ascii", "replace")


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
    box.modseqs.sync(box.ns, rows, imp.files_key(*box.imp_known))


def within(u: int, known: list[tuple[int, int]]) -> bool:
    return any(a <= u <= b for a, b in known)
