"""Reading the files of many messages at once (FETCH, SEARCH).

Each message is still answered by the same code as before (fetch.item,
search.Matcher), but a batch of messages is first evaluated
*speculatively*: while `box.speculative` is set, a message file not read
yet is not read but asked for by raising Need, and so are the children of
a MIME part.  The runner gathers what every message of the batch lacks,
reads all of it with one pipelined `ns.read_many`, and evaluates again,
until every message's answer is complete.  An answer is thus computed
from exactly the bytes the direct reads would give, at the cost of a few
round trips per batch instead of several per message and MIME part.
Two batches are under way at once: the reads of one's round are sent
(ns.read_many_begin) and upasfs works on them while the other is
evaluated, so the two processes compute at the same time instead of in
turn.

A part's children are not found by listing its directory (a listing
makes upasfs stat all 25 files of the part) but by reading `k/mimeheader`
for k = 1, 2, ... until one is missing (see probe_children).
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, TypeVar

from upas import ns as nsmod

if TYPE_CHECKING:
    from upas.imap4d.mailbox import Mailbox, Message

T = TypeVar("T")
R = TypeVar("R")

BATCH = 128          # messages evaluated together
ROUNDS = 12          # speculative rounds before the rest is read directly
PROBE = 3            # children probed per round
LANES = 2            # batches under way at once
ONE_READ = 1 << 20   # bytes read at once from a file not on a 9P mount
MIN_READ = 8192 - 24  # the iounit of the smallest msize 9P servers use
DEFER = object()     # held: a failed probe that does not tell whether the part exists
# files one round reads at most: every request of a round is written before
# any reply is read, and upasfs stops reading once its replies fill the
# socket, so the requests must fit in the socket buffers (a message of
# thousands of parts would otherwise deadlock both: issue 17)
ROUND_READS = 256


class Need(BaseException):
    """Files (paths under the message directory) that a speculative
    evaluation lacks.  No paths: it cannot go on speculatively (a read
    failed); the message is then evaluated directly, as before.  Not an
    Exception, so the handlers that turn a vanished message's error into
    NO let it pass."""

    def __init__(self, rels: Iterable[str] = ()):
        super().__init__()
        self.rels = list(rels)


def gather(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """[fn(x) for x in items]; when speculating, what all items lack is
    asked for at once rather than only what the first one lacks."""
    out: list[R] = []
    need: list[str] = []
    for x in items:
        try:
            out.append(fn(x))
        except Need as n:
            if not n.rels:
                raise
            need += n.rels
    if need:
        raise Need(need)
    return out


def once(box: "Mailbox", m: "Message", key: str, fn: Callable[[], R]) -> R:
    """fn(), computed once in a batch for message m (a later speculative
    round reuses the result instead of computing it again)."""
    k = (m.fsnum, ":" + key)             # no file name begins with ":"
    if k not in box.held:
        box.held[k] = fn()
    return box.held[k]              # type: ignore[return-value]


def evaluate(box: "Mailbox", msgs: list["Message"], fn: Callable[["Message"], R],
             first: Callable[["Message"], Iterable[str]] = lambda m: ()
             ) -> Iterator[tuple["Message", R]]:
    """(m, fn(m)) for every message, in order, BATCH messages at a time;
    first(m): files m is known to need (read in the first round).  LANES
    batches are under way at once: while upasfs reads the files of one
    batch's round, imap4d evaluates another's."""
    batches = [msgs[i:i + BATCH] for i in range(0, len(msgs), BATCH)]
    lanes: deque[_Lane] = deque()
    finished: dict[int, list] = {}
    started = shown = 0
    try:
        while shown < len(batches):
            while len(lanes) < LANES and started < len(batches):
                batch = batches[started]
                lanes.append(_Lane(box, started, batch, fn, [(m, r) for m in batch for r in first(m)]))
                started += 1
            lane = lanes.popleft()
            results = lane.step()
            if results is None:
                lanes.append(lane)
                continue
            finished[lane.index] = results
            while shown in finished:
                yield from zip(batches[shown], finished.pop(shown))
                shown += 1
    finally:
        for lane in lanes:
            lane.drain()
        box.held.clear()
        box.speculative = False


class _Lane:
    """One batch evaluated round by round; its round's reads are in flight
    between two steps."""

    def __init__(self, box: "Mailbox", index: int, batch: list["Message"], fn, want):
        self.box, self.index, self.batch, self.fn = box, index, batch, fn
        self.done: dict[int, object] = {}
        self.pending, self.direct = list(batch), []
        self.rounds = 1
        self.collect: Callable[[], None] | None = load_begin(box, want)

    def step(self) -> list | None:
        """Take in this round's reads and evaluate; the results once every
        message is answered, else None with the next round's reads sent."""
        self.drain()
        box, want, todo = self.box, [], []
        box.speculative = True
        try:
            for m in self.pending:
                try:
                    self.done[id(m)] = self.fn(m)
                except Need as n:
                    if n.rels:
                        want += [(m, r) for r in n.rels]
                        todo.append(m)
                    else:
                        self.direct.append(m)
        finally:
            box.speculative = False
        self.pending = todo
        if todo and self.rounds < ROUNDS:
            self.rounds += 1
            self.collect = load_begin(box, want)
            return None
        for m in self.pending + self.direct:
            self.done[id(m)] = self.fn(m)
        self._forget()
        return [self.done[id(m)] for m in self.batch]

    def drain(self) -> None:
        collect, self.collect = self.collect, None
        if collect is not None:
            collect()

    def _forget(self) -> None:
        """Drop what was held for this batch (the other lanes keep theirs)."""
        mine = {m.fsnum for m in self.batch}
        for k in [k for k in self.box.held if k[0] in mine]:
            del self.box.held[k]


# ------------------------------------------------------------ reading

def _probe(rel: str) -> int:
    """k if rel is a probe `.../k/mimeheader`, else 0."""
    parts = rel.split("/")
    return int(parts[-2]) if len(parts) > 1 and parts[-1] == "mimeheader" \
        and parts[-2].isdigit() else 0


def load_begin(box: "Mailbox", want: list[tuple["Message", str]]) -> Callable[[], None]:
    """Send the reads of the wanted files, those of one message together
    and in order, all in one pipelined read_many; the returned function
    (called once) takes them in.  A probe is read even if known (the one
    before the next probes: see probe_children)."""
    per: dict[int, tuple["Message", list[str]]] = {}
    for m, rel in want:
        if _probe(rel) or not box.has(m, rel):
            rels = per.setdefault(id(m), (m, []))[1]
            if rel not in rels:
                rels.append(rel)
    jobs = [(m, r) for m, rels in per.values() for r in rels][:ROUND_READS]
    if not jobs:
        return lambda: None
    files = [(m.fsnum, rel) for m, rel in jobs]
    count = _iounit(box)
    finish = box.view.read_many_begin(files, count)

    def collect() -> None:
        got = finish()
        full = [i for i, d in enumerate(got) if d is not None and len(d) >= count]
        if full:                # bigger than one read: read whole
            for i, d in zip(full, box.view.read_many([files[i] for i in full], None)):
                got[i] = d
        _take(box, jobs, got)
    return collect


def _take(box: "Mailbox", jobs: list[tuple["Message", str]], got: list) -> None:
    found = {(id(m), rel) for (m, rel), data in zip(jobs, got) if data is not None}
    for (m, rel), data in zip(jobs, got):
        if data is not None:
            box.hold(m, rel, data)
        elif _probe(rel) > 1 and (id(m), _sibling(rel, -1)) in found:
            box.hold(m, rel, None)      # no such part: its elder was just there
        else:
            box.hold(m, rel, DEFER if _probe(rel) else None)


def _iounit(box: "Mailbox") -> int:
    """The most one read of the mailbox's files returns (a 9P mount's
    iounit); if it cannot be told, the least any 9P server gives (a file
    that fills the read is read again whole, so a smaller guess is only
    slower)."""
    try:
        n = box.view.iounit()
    except nsmod.Error:
        return MIN_READ
    return ONE_READ if n is None else n


def _sibling(rel: str, d: int) -> str:
    """The probe of the part d places after (before) the one rel probes."""
    parts = rel.split("/")
    parts[-2] = str(int(parts[-2]) + d)
    return "/".join(parts)


def probe_children(box: "Mailbox", m: "Message", rel: str) -> list[int]:
    """The MIME part numbers under `rel` (of a multipart or message part,
    which has at least one), from the probes read so far; raises Need for
    the next ones, from the last part found on: a part is taken to be
    missing only if the one before it was read in the same batch (a
    message deleted meanwhile is evaluated directly instead)."""
    base = f"{rel}/" if rel else ""
    k = 1
    while True:
        name = f"{base}{k}/mimeheader"
        if name not in m.cache:
            got = box.held.get((m.fsnum, name), Need)
            if got is Need:
                raise Need(f"{base}{j}/mimeheader" for j in range(max(k - 1, 1), k + PROBE))
            if got is None:
                return list(range(1, k))
            raise Need()                # DEFER: cannot tell
        k += 1
