"""A view's messages as the columns they were read from, each Message
made only when something asks for it (docs/performance.md, round 4's
eighth part; docs/design.md).

A SELECT whose `.imp` lines are upasfs's listing in order (mailbox.py's
mark path, imp.lines_of) has every message's number, digest, uid and
flags as lists already.  Making 10,000 Message objects from them was a
quarter of that SELECT's CPU, and a QRESYNC reconnect (SELECT, LOGOUT)
looks at the twenty messages that changed only.  So the view keeps the
columns, and answers what SELECT asks (how many, \\Recent, the first
unseen, a uid's place) from them; a message asked for by its place is
made then and kept (the same object every time after); anything that
walks the whole list (`all`, iteration, comparison) makes the rest, in
order, once, and the mailbox takes that list as its own.

The columns stay true for every message not made yet: nothing changes a
message but through its object, or a STORE through the mask column of
those not made (`retag`), and a made message is the one read (`made`).
The uids do not change under a Lazy: the merges that number messages
walk the whole list first (which ends the laziness).
"""
from __future__ import annotations

import bisect
import contextlib
import gc
from typing import Iterator, Sequence

from upas.imap4d import imp
from upas.imap4d.message import NO_KEYWORDS, Message

# a flag -> the table that makes a mask byte (imp.line_columns) 1 where
# the mask holds the flag, else 0
_HAS = {f: bytes(int(bool(m & bit)) for m in range(256)) for f, bit in imp.MASK_BIT.items()}


@contextlib.contextmanager
def uncollected() -> Iterator[None]:
    """Making a view's messages (a SELECT, or a Lazy made whole at a
    later command) makes tens of thousands of objects and no cycle: the
    collector, run by their count, would only walk them, then and at
    every full collection after (it did, at the first allocation once it
    was on again: a tenth of a SELECT's time; a FETCH 1:* that made a
    Lazy whole with it on took 5 ms more, not the 2.5 its Messages cost).
    So it is off meanwhile, and what was made is kept out of its sight
    (gc.freeze: reference counts still free it; a session is a process
    that ends at LOGOUT)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.freeze()
            gc.enable()


class ListLike:
    """A sequence standing for a list it makes at the first walk
    (as_list): iterated as that list, equal to it (and to another such)
    as a list is; unhashable, as a list is."""
    __slots__ = ()

    def as_list(self) -> list:
        raise NotImplementedError

    def __iter__(self) -> Iterator:
        return iter(self.as_list())

    def __eq__(self, other) -> bool:
        if other is self:
            return True
        if isinstance(other, ListLike):
            other = other.as_list()
        return isinstance(other, list) and self.as_list() == other

    __hash__ = None                 # type: ignore[assignment]


class Lazy(ListLike):
    """The messages of a view, in mailbox order, from their columns."""
    __slots__ = ("nums", "digests", "uids", "masks", "made", "full")

    def __init__(self, nums: list[int], digests: Sequence[str], uids: list[int],
                 masks: bytes) -> None:
        # the flags as imp.line_columns reads them: a mask byte a message
        self.nums, self.digests, self.uids, self.masks = nums, digests, uids, masks
        self.made: dict[int, Message] = {}      # place -> the message made for it
        self.full: list[Message] | None = None  # every message, once all are made

    def __len__(self) -> int:
        return len(self.uids)

    def at(self, k: int) -> Message:
        """The message at place k (0-based), made at the first ask."""
        if self.full is not None:
            return self.full[k]
        k = range(len(self.uids))[k]            # negative places, IndexError
        m = self.made.get(k)
        if m is None:
            m = self.made[k] = Message(self.nums[k], self.digests[k], self.uids[k],
                                       imp.flags_of_mask(self.masks[k]))
        return m

    def as_list(self) -> list[Message]:
        return self.all()

    def all(self) -> list[Message]:
        """Every message, in order (made once; the made ones in place)."""
        if self.full is None:
            with uncollected():
                full = list(map(Message, self.nums, self.digests, self.uids,
                                imp.flags_of(self.masks)))
            for k, m in self.made.items():
                full[k] = m
            self.full = full
        return self.full

    def __getitem__(self, k):
        if isinstance(k, slice):
            if self.full is None and len(range(len(self.uids))[k]) * 16 < len(self.uids):
                return [self.at(i) for i in range(len(self.uids))[k]]
            return self.all()[k]
        return self.at(k)

    # -- what a SELECT asks, from the columns ----------------------------
    def find(self, uid: int) -> int | None:
        """The place of the message with this uid (uids ascend), or None."""
        k = bisect.bisect_left(self.uids, uid)
        return k if k < len(self.uids) and self.uids[k] == uid else None

    def place(self, m: Message) -> int | None:
        """The place of message m, if it is one made here (by identity)."""
        k = self.find(m.uid)
        if k is None or (self.full[k] if self.full is not None else self.made.get(k)) is not m:
            return None
        return k

    def _marked(self, flag: str) -> bytes | bytearray:
        """A byte a message: 1 where its flags hold `flag` (\\Seen,
        \\Recent: a system flag), the made ones' as they are now."""
        got: bytes | bytearray = self.masks.translate(_HAS[flag])
        if self.made:
            got = bytearray(got)
            for k, m in self.made.items():
                got[k] = flag in m.flags
        return got

    def count_with(self, flag: str) -> int:
        return self._marked(flag).count(1)

    def first_without(self, flag: str) -> int | None:
        """The place of the first message whose flags lack `flag`."""
        k = self._marked(flag).find(0)
        return None if k < 0 else k

    def any_expunged(self) -> bool:
        return any(m.expunged for m in self.made.values())

    def keywords(self) -> list[list[str]]:
        """Each message's keywords list (the shared empty one for those not
        made: a message is made with it)."""
        out = [NO_KEYWORDS] * len(self.uids)
        for k, m in self.made.items():
            out[k] = m.keywords
        return out

    def retag(self, places: range, table: bytes) -> None:
        """The flags of the messages at places not made yet become those of
        table[mask] (a STORE of system flags on the columns: store.py); a
        made message's are changed through it, by the caller."""
        m, a, b = self.masks, places.start, places.stop
        self.masks = m[:a] + m[a:b].translate(table) + m[b:]


class Picked(ListLike):
    """Some of a Lazy's messages, by their places (ascending; a range
    when they are one run): what a FETCH of flags, UIDs and MODSEQs
    addresses, answered from the columns (flagreport) with no Message
    made for those not made yet.  Walked as a list, it is the messages
    of the Lazy made whole."""
    __slots__ = ("lazy", "places")

    def __init__(self, lazy: Lazy, places: range | list[int]) -> None:
        self.lazy, self.places = lazy, places

    def __len__(self) -> int:
        return len(self.places)

    def as_list(self) -> list[Message]:
        full = self.lazy.all()
        if isinstance(self.places, range):
            return full[self.places.start:self.places.stop]
        return [full[k] for k in self.places]

    def column(self, col):
        """col (a Lazy's uids or masks) at the places, as col's type."""
        ks = self.places
        if isinstance(ks, range):
            return col[ks.start:ks.stop]
        got = map(col.__getitem__, ks)
        return bytes(got) if isinstance(col, bytes) else list(got)

    def seqs(self) -> range | list[int]:
        """The sequence numbers (places from 1)."""
        ks = self.places
        if isinstance(ks, range):
            return range(ks.start + 1, ks.stop + 1)
        return [k + 1 for k in ks]

    def numbers(self, uid: bool) -> range | list[int]:
        """The UIDs, or the sequence numbers: what SEARCH, SORT and THREAD
        answer with."""
        return self.column(self.lazy.uids) if uid else self.seqs()

    def digests(self) -> bytes:
        """The digests joined, as sortindex.joined writes them: in place
        in a mark record's bytes when they are one run of it."""
        d, ks = self.lazy.digests, self.places
        if isinstance(ks, range) and hasattr(d, "joined"):
            return d.joined(ks.start, ks.stop)
        return "".join(self.column(d)).encode("ascii", "replace")

    def made(self) -> dict[int, Message]:
        """index in the pick -> the message made for it (its flags and
        keywords are the truth: others' changes land on it)."""
        made, ks = self.lazy.made, self.places
        if not made:
            return {}
        if isinstance(ks, range):
            return {k - ks.start: m for k, m in made.items() if k in ks}
        return {i: made[k] for i, k in enumerate(ks) if k in made}


def runs(spans: list[tuple[int, int]]) -> list[range]:
    """The places of the spans [lo, hi) as runs, in order, each place
    once (the overlapping ranges of a set)."""
    out, end = [], 0
    for lo, hi in sorted(spans):
        lo = max(lo, end)
        if hi > lo:
            out.append(range(lo, hi))
            end = hi
    return out


def picked(lazy: Lazy, spans: list[tuple[int, int]]) -> Picked:
    """The messages of a Lazy in the spans [lo, hi), as runs() of them."""
    rs = runs(spans)
    if len(rs) == 1:
        return Picked(lazy, rs[0])
    return Picked(lazy, [k for r in rs for k in r])


def listed(msgs) -> list[Message]:
    """The messages of a view as a list (a Lazy's, or a Picked's, made)."""
    return msgs.as_list() if isinstance(msgs, ListLike) else msgs
