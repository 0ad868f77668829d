"""The message files one command reads (FETCH, SEARCH, COPY), and reading
those of many messages at once.

A command reads message files through its `Files`: the small ones
(CACHED) are kept with the message for the session, the others only
until the command is done.  Each message is answered by the same code
(fetch.item, search.Matcher), but a batch of messages is first evaluated
*speculatively*: a file not read yet is not read but noted as wanted, and
a stand-in (empty) is returned; so are the children of a MIME part.  The
runner gathers what every message of the batch wants, reads all of it
with one pipelined read (FsView.read_many_begin), and evaluates again,
until every message's answer is complete.  An answer is thus computed
from exactly the bytes the direct reads would give, at the cost of a few
round trips per batch instead of several per message and MIME part.
Two batches are under way at once: the reads of one's round are sent and
upasfs works on them while the other is evaluated, so the two processes
compute at the same time instead of in turn.

What an evaluation wants follows the code as far as its first missing
file: after that the evaluation goes on over stand-ins, but a *scope*
(the whole evaluation, or one item of gather()) that has missed a file
is dead -- its later misses are not noted, its results not kept
(once()), its effects not made (keep()) -- as if it had stopped there;
gather() evaluates every item, so a round asks for what each item lacks
first.  A read that failed outright (a message deleted meanwhile) cannot
be waited out: the message is evaluated directly instead.

A part's children are not found by listing its directory (a listing
makes upasfs stat all 25 files of the part) but by reading `k/mimeheader`
for k = 1, 2, ... until one is missing (see Files.parts).
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Iterable, Iterator, TypeVar

from upas import ns as nsmod
from upas.mail.fsview import FsView, split_raw
from upas.mail.mime import MAX_DEPTH
from upas.imap4d.message import Message

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
WINDOW = 64          # messages whose raws cut_messages asks for at once
AHEAD = 3            # and such windows in flight
# per-message files kept with the message once read (bodies are not: a big
# mailbox would end up in memory)
CACHED = {"rawheader", "mimeheader", "unixheader", "digest", "type"}
# a message's files that its `raw` holds, where the cut is known (Files.cuts)
IN_RAW = ("rawheader", "rawbody")
_MISSING = object()


class Files:
    """The message files of one mailbox view as one command reads them."""

    def __init__(self, view: FsView):
        self.view = view
        self.held: dict[tuple[int, str], object] = {}   # read for this command
        self.speculating = False
        self.wanted: list[str] = []     # what the evaluation lacks first
        self.stuck = False              # a read failed: evaluate directly
        self._live = [True]             # per scope: nothing missed yet
        # fsnum -> lengths of rawheader and rawbody: both are read as one
        # `raw` (a walk, open, read and clunk instead of two; set by FETCH
        # of whole messages from upasfs's summary)
        self.cuts: dict[int, tuple[int, int]] = {}

    # -- reading -----------------------------------------------------------
    def read(self, m: Message, rel: str) -> bytes:
        """A file of a message (rel like `raw` or `2/1/mimeheader`); while
        speculating, b"" for one not read yet (noted as wanted)."""
        c = m.cache.get(rel)
        if c is None:
            c = self.held.get((m.fsnum, rel))
        if isinstance(c, bytes):
            return c
        if not self.speculating:
            c = self.view.read(m.fsnum, rel)
            if rel.rsplit("/", 1)[-1] in CACHED:
                m.cache[rel] = c
            return c
        if (m.fsnum, rel) in self.held:
            self._fail()                # it was read, and the read failed
        else:
            self._miss([rel])
        return b""

    def has(self, m: Message, rel: str) -> bool:
        return rel in m.cache or (m.fsnum, rel) in self.held

    def hold(self, m: Message, rel: str, data) -> None:
        """Keep a file read ahead: with the message if it is a CACHED one,
        else until the command is done (None: the read failed)."""
        if isinstance(data, bytes) and rel.rsplit("/", 1)[-1] in CACHED:
            m.cache[rel] = data
        else:
            self.held[(m.fsnum, rel)] = data

    def parts(self, m: Message, rel: str) -> list[int]:
        """The MIME part numbers under a message or part directory; none
        MAX_DEPTH levels down, as upasfs splits no deeper (an upas/fs
        without that bound must not make our structure walks recurse
        without end).  While speculating, found by probing (_probed)."""
        key = "dir:" + rel
        if rel.count("/") + 1 >= MAX_DEPTH and rel:
            return []
        got = m.cache.get(key)
        if got is None:
            got = self._probed(m, rel) if self.speculating else self.view.parts(m.fsnum, rel)
            if got is not None:
                m.cache[key] = got
        return got or []

    def _probed(self, m: Message, rel: str) -> list[int] | None:
        """The part numbers under `rel` (of a multipart or message part,
        which has at least one) from the probes `k/mimeheader` read so
        far; None, with the next probes wanted, from the last part found
        on: a part is taken to be missing only if the one before it was
        read in the same batch (a message deleted meanwhile is evaluated
        directly instead)."""
        if not self._live[-1]:
            return None
        base = f"{rel}/" if rel else ""
        k = 1
        while True:
            name = f"{base}{k}/mimeheader"
            if name not in m.cache:
                got = self.held.get((m.fsnum, name), _MISSING)
                if got is _MISSING:
                    self._miss(f"{base}{j}/mimeheader" for j in range(max(k - 1, 1), k + PROBE))
                    return None
                if got is None:
                    return list(range(1, k))
                self._fail()            # DEFER: cannot tell
                return None
            k += 1

    # -- scopes --------------------------------------------------------------
    def _miss(self, rels: Iterable[str]) -> None:
        if self._live[-1]:
            self.wanted += rels
            self._live[-1] = False

    def _fail(self) -> None:
        if self._live[-1]:
            self.stuck = True
            self._live[-1] = False

    def live(self) -> bool:
        """What is computed now comes from the files themselves (not over
        stand-ins): it may be kept, its errors are real."""
        return not self.speculating or self._live[-1]

    def gather(self, fn: Callable[[T], R], items: Iterable[T], stand_in: R) -> list[R]:
        """[fn(x) for x in items]; when speculating, each item is a scope
        of its own, so that what all items lack is asked for at once rather
        than only what the first one lacks (a dead item gives stand_in)."""
        if not self.speculating:
            return [fn(x) for x in items]
        out: list[R] = []
        missed = False
        for x in items:
            self._live.append(self._live[-1])
            try:
                r = fn(x)
            except Exception:   # noqa: BLE001 -- over stand-ins, anything goes
                if self._live[-1]:
                    self._live.pop()
                    raise
            if not self._live.pop():
                r, missed = stand_in, True
            out.append(r)
            if self.stuck:
                break
        if missed:
            self._live[-1] = False
        return out

    def once(self, m: Message, key: str, fn: Callable[[], R]) -> R:
        """fn(), computed once in a command for message m (a later
        speculative round reuses the result instead of computing it
        again; one computed over stand-ins is not kept)."""
        k = (m.fsnum, ":" + key)             # no file name begins with ":"
        if k in self.held:
            return self.held[k]             # type: ignore[return-value]
        v = fn()
        if self.live():
            self.held[k] = v
        return v

    def keep(self, effect: Callable[[], None]) -> None:
        """Do effect() (keeping an answer computed) unless it was computed
        over stand-ins."""
        if self.live():
            effect()

    def _begin(self) -> None:
        self.speculating, self.wanted, self.stuck, self._live = True, [], False, [True]

    def _end(self) -> None:
        self.speculating, self._live = False, [True]


def evaluate(files: Files, msgs: list[Message], fn: Callable[[Message], R],
             first: Callable[[Message], Iterable[str]] = lambda m: ()
             ) -> Iterator[tuple[Message, R]]:
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
                lanes.append(_Lane(files, started, batch, fn, [(m, r) for m in batch for r in first(m)]))
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
        files.held.clear()
        files._end()


class _Lane:
    """One batch evaluated round by round; its round's reads are in flight
    between two steps."""

    def __init__(self, files: Files, index: int, batch: list[Message], fn, want):
        self.files, self.index, self.batch, self.fn = files, index, batch, fn
        self.done: dict[int, object] = {}
        self.pending: list[Message] = list(batch)
        self.direct: list[Message] = []
        self.rounds = 1
        self.collect: Callable[[], None] | None = load_begin(files, want)

    def step(self) -> list | None:
        """Take in this round's reads and evaluate; the results once every
        message is answered, else None with the next round's reads sent."""
        self.drain()
        files, want, todo = self.files, [], []
        try:
            for m in self.pending:
                files._begin()
                r = self.fn(m)
                if files.stuck:
                    self.direct.append(m)
                elif files.wanted:
                    want += [(m, rel) for rel in files.wanted]
                    todo.append(m)
                else:
                    self.done[id(m)] = r
        finally:
            files._end()
        self.pending = todo
        if todo and self.rounds < ROUNDS:
            self.rounds += 1
            self.collect = load_begin(files, want)
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
        held = self.files.held
        for k in [k for k in held if k[0] in mine]:
            del held[k]


# ------------------------------------------------------------ reading

def _probe(rel: str) -> int:
    """k if rel is a probe `.../k/mimeheader`, else 0."""
    parts = rel.split("/")
    return int(parts[-2]) if len(parts) > 1 and parts[-1] == "mimeheader" \
        and parts[-2].isdigit() else 0


def load_begin(files: Files, want: list[tuple[Message, str]]) -> Callable[[], None]:
    """Send the reads of the wanted files, those of one message together
    and in order, all in one pipelined read; the returned function (called
    once) takes them in.  A probe is read even if known (the one before
    the next probes: see Files._probed)."""
    per: dict[int, tuple[Message, list[str]]] = {}
    for m, rel in want:
        if rel in IN_RAW and m.fsnum in files.cuts and not files.has(m, rel):
            rel = "raw"
        if _probe(rel) or not files.has(m, rel):
            rels = per.setdefault(id(m), (m, []))[1]
            if rel not in rels:
                rels.append(rel)
    jobs = [(m, r) for m, rels in per.values() for r in rels][:ROUND_READS]
    if not jobs:
        return lambda: None
    wanted = [(m.fsnum, rel) for m, rel in jobs]
    count = _iounit(files.view)
    finish = files.view.read_many_begin(wanted, count)

    def collect() -> None:
        got = finish()
        full = [i for i, d in enumerate(got) if d is not None and len(d) >= count]
        if full:                # bigger than one read: read whole
            for i, d in zip(full, files.view.read_many([wanted[i] for i in full], None)):
                got[i] = d
        _take(files, jobs, got)
    return collect


def _take(files: Files, jobs: list[tuple[Message, str]], got: list) -> None:
    found = {(id(m), rel) for (m, rel), data in zip(jobs, got) if data is not None}
    for (m, rel), data in zip(jobs, got):
        if rel == "raw" and m.fsnum in files.cuts:
            _take_raw(files, m, data)
        elif data is not None:
            files.hold(m, rel, data)
        elif _probe(rel) > 1 and (id(m), _sibling(rel, -1)) in found:
            files.hold(m, rel, None)      # no such part: its elder was just there
        else:
            files.hold(m, rel, DEFER if _probe(rel) else None)


def _take_raw(files: Files, m: Message, raw: bytes | None) -> None:
    """rawheader and rawbody cut from raw; a raw that failed or does not
    cut as the summary said leaves them to be read themselves."""
    cut = split_raw(raw, *files.cuts.pop(m.fsnum)) if raw is not None else None
    if cut is not None:
        for rel, data in zip(IN_RAW, cut):
            files.hold(m, rel, data)


def raw_messages(files: Files, msgs: list[Message]
                 ) -> Iterator[tuple[Message, bytes | None, tuple[int, int] | None]]:
    """(m, raw, (length of rawheader, of rawbody)) of every message, in
    order, from one read of its `raw`, the lengths where files.cuts says
    (FETCH of whole messages, which needs nothing else of them: no
    evaluation, no stand-ins); None for a raw whose read failed or for
    lengths not known, to be answered the usual way.  WINDOW messages' reads go out
    together and AHEAD such reads are in flight, so upasfs reads the next
    ones while these are answered."""
    view, count = files.view, _iounit(files.view)
    windows = deque(msgs[i:i + WINDOW] for i in range(0, len(msgs), WINDOW))
    flight: deque[tuple[list[Message], Callable[[], list] | None]] = deque()

    def send() -> None:
        w = windows.popleft()
        try:
            flight.append((w, view.read_many_begin([(m.fsnum, "raw") for m in w], count)))
        except nsmod.Error:
            flight.append((w, None))

    try:
        while windows and len(flight) < AHEAD:
            send()
        while flight:
            w, finish = flight.popleft()
            got = _whole(view, w, finish, count)
            if windows:
                send()
            for m, raw in zip(w, got):
                yield m, raw, files.cuts.get(m.fsnum)
    finally:
        for _, finish in flight:
            if finish is not None:
                try:
                    finish()
                except nsmod.Error:
                    pass


def _whole(view: FsView, msgs: list[Message], finish: Callable[[], list] | None,
           count: int) -> list[bytes | None]:
    """The raws a read_many_begin asked for (finish), those that filled the
    read read again whole; all None if it failed."""
    if finish is None:
        return [None] * len(msgs)
    try:
        got = finish()
        full = [i for i, d in enumerate(got) if d is not None and len(d) >= count]
        if full:
            for i, d in zip(full, view.read_many([(msgs[i].fsnum, "raw") for i in full], None)):
                got[i] = d
    except nsmod.Error:
        return [None] * len(msgs)
    return got


def _iounit(view: FsView) -> int:
    """The most one read of the mailbox's files returns (a 9P mount's
    iounit); if it cannot be told, the least any 9P server gives (a file
    that fills the read is read again whole, so a smaller guess is only
    slower)."""
    try:
        n = view.iounit()
    except nsmod.Error:
        return MIN_READ
    return ONE_READ if n is None else n


def _sibling(rel: str, d: int) -> str:
    """The probe of the part d places after (before) the one rel probes."""
    parts = rel.split("/")
    parts[-2] = str(int(parts[-2]) + d)
    return "/".join(parts)
