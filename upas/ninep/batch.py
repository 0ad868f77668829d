"""Many files read or stat'ed at once, their requests pipelined.

For each file: Twalk from the root to a new fid, the requests that do the
work (Topen and Tread, or Tstat), Tclunk -- those of BATCH files in one
write, and the next batch sent before the replies to one are collected,
so the server always has work.  A file's read goes out as one record
(codec.pack_file_read) and its four replies are checked where they lie
(codec.file_read_replies: no message objects) unless something in them
is unexpected; then they are decoded and judged one by one.  Where walks may not be pipelined
(docs/decisions.md, "9P requests after a walk: pipelined only with our
servers (issue 14)") a batch's Twalks go out first and the rest only for
the fids they made.

What is in flight is bounded: the requests sent in batches and not yet
answered stay under INFLIGHT bytes per client.  A caller that sends
thousands of files' requests before reading a reply (read_many_begin)
would otherwise wait in send for a server waiting in send -- its replies
fill the socket the other way, and nobody reads them yet.  So
read_many_begin sends what fits now and the rest as its collection
makes room; any other sender first waits for the oldest batch's reply.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable

from . import codec
from .codec import MAXWELEM, OREAD, Stat, names_of
from .mux import Call, Group, Hungup
from .server import Error

BATCH = 64            # files whose requests go out in one write
INFLIGHT = 64 << 10   # request bytes sent in batches and not yet answered, at most
TWALK, TCLUNK = 17, 11  # bytes of a Twalk without its names, of a Tclunk
FILE_READ = TWALK + 12 + 23 + TCLUNK   # a file read's record without the names

Middle = Callable[[int], list[codec.Msg]]   # a walked fid's requests
Sent = list[tuple[int, int, list[Call]]]    # per file: fid (-1: none), walk length, calls


class Batch:
    """The batched reads and stats of one Client."""

    def __init__(self, client: Any):     # the Client (client.py, which imports this)
        self.c = client
        self.mux = client.mux
        self._lock = threading.Lock()
        self._flight: deque[tuple[int, Call]] = deque()   # (request bytes, its last call)
        self._flight_bytes = 0

    # -- the operations --------------------------------------------------------------
    def read_many(self, paths: list[str], count: int | None = None) -> list[bytes | Error]:
        """Each file's first `count` bytes by one Tread (all of a file
        smaller than that), or with count None the whole file, or the
        Error.  With count None a read shorter than the iounit is taken
        as all of the file (true of upasfs's files and of disk files, not
        of every synthetic file: use read() for those); a file whose read
        came back full is opened again and read on to EOF."""
        n = self.c.iounit if count is None else min(count, self.c.iounit)
        got = self._begin(paths, _reads(n), _data, lambda p: self._read_alone(p, n), ahead=1,
                          count=n)()
        if count is None:
            got = [self._read_rest(p, d) if isinstance(d, bytes) and len(d) == n else d
                   for p, d in zip(paths, got)]
        return got

    def read_many_begin(self, paths: list[str], count: int) -> Callable[[], list[bytes | Error]]:
        """read_many in two halves: the requests go out now (as many as
        INFLIGHT allows; the rest as the replies are collected) and the
        returned function collects the replies (call it exactly once; the
        server works while the caller does something else)."""
        n = min(count, self.c.iounit)
        return self._begin(paths, _reads(n), _data, lambda p: self._read_alone(p, n),
                           ahead=None, count=n)

    def stat_many(self, paths: list[str]) -> list[Stat | Error]:
        """Each file's stat, or the Error (as read_many)."""
        return self._begin(paths, lambda fid: [codec.Tstat(0, fid)],
                           lambda rs: rs[-1].stat, self._stat_alone, ahead=1)()

    def _begin(self, paths: list[str], middle: Middle, result: Callable[[list], Any],
               alone: Callable[[str], Any], ahead: int | None,
               count: int | None = None) -> Callable[[], list]:
        """Send the first `ahead` batches (None: as many as fit in
        INFLIGHT without waiting); the returned function sends the rest,
        each before the replies to an earlier one are collected, and gives
        the files' values in order.  For each path: result(the replies to
        middle(fid)) (with `count`, middle reads that many bytes: each file's
        requests go out as one record); a file whose requests failed after its walk -- maybe
        a server with workers answered them out of order -- gets
        alone(path) instead."""
        queue = deque(paths[i:i + BATCH] for i in range(0, len(paths), BATCH))
        inflight: deque[tuple[list[str], Sent]] = deque()

        def send(wait: bool) -> bool:
            if count is not None and self.c.walks_pipelined:
                sent = self._send_reads(queue[0], count, wait)
            else:
                sent = self._send_batch(queue[0], middle, wait)
            if sent is None:
                return False
            inflight.append((queue.popleft(), sent))
            return True

        def settle_all() -> None:           # only after an exception
            for _, sent in inflight:
                self._settle(sent, result)

        try:
            while queue and (ahead is None or len(inflight) < ahead):
                if not send(wait=ahead is not None):
                    break
        except BaseException:
            settle_all()
            raise

        def finish() -> list:
            out: list = []
            try:
                while inflight or queue:
                    if queue:
                        send(wait=True)
                    # taken off first: if gathering raises, it has settled
                    # this batch itself, and settling it again below would
                    # free its tags and fids twice
                    batch, sent = inflight.popleft()
                    got = self._settle(sent, result)
                    out += [alone(p) if d is None else d for p, d in zip(batch, got)]
            finally:
                settle_all()
            return out
        return finish

    # -- sending, within INFLIGHT --------------------------------------------------------
    def _send_batch(self, paths: list[str], middle: Middle, wait: bool) -> Sent | None:
        """Send the requests for a batch: [(fid, walk length, calls)]; a
        path too deep for one Twalk gets no fid (-1) and is done alone.
        None, sending nothing, when there is no room and not `wait`."""
        walks = [names_of(p) for p in paths]
        walks = [names if len(names) <= MAXWELEM else None for names in walks]
        per_fid = sum(len(codec.pack(m)) for m in middle(0)) + TCLUNK
        size = sum(TWALK + 2 * len(names) + sum(map(len, names)) + per_fid
                   for names in walks if names is not None)
        if not self._room(size, wait):
            return None
        c = self.c
        plan = [(-1, []) if names is None else (c.fids.alloc(), names) for names in walks]
        rest = lambda fid: [*middle(fid), codec.Tclunk(0, fid)]
        per_file = [[codec.Twalk(0, c.root, fid, names),
                     *(rest(fid) if c.walks_pipelined else ())]
                    for fid, names in plan if fid >= 0]
        try:
            calls = iter(self.mux.start_many([m for reqs in per_file for m in reqs]))
        except BaseException:
            c.fids.free_all([fid for fid, _ in plan if fid >= 0])
            raise
        k = len(per_file[0]) if per_file else 0
        sent = [(fid, len(names), [next(calls) for _ in range(k)] if fid >= 0 else [])
                for fid, names in plan]
        last = next((cs[-1] for _, _, cs in reversed(sent) if cs), None)
        if not c.walks_pipelined:
            last = self._send_after_walks(sent, rest) or last
        if last is not None:
            with self._lock:
                self._flight.append((size, last))
                self._flight_bytes += size
        return sent

    def _send_reads(self, paths: list[str], count: int, wait: bool) -> Sent | None:
        """_send_batch of reads of `count` bytes, where walks may be
        pipelined: one Group (mux.start_groups) a file."""
        walks = [names_of(p) for p in paths]
        walks = [(len(names), codec.walk_names(names)) if len(names) <= MAXWELEM else None
                 for names in walks]
        live = [w for w in walks if w is not None]
        size = sum([FILE_READ + len(body) for _, body in live])
        if not self._room(size, wait):
            return None
        c = self.c
        fids = c.fids.alloc_many(len(live))
        root = c.root

        def build(item: tuple[int, int, bytes], tags: tuple[int, ...]) -> bytes:
            return codec.pack_file_read(tags, root, item[0], item[1], item[2], count)
        try:
            groups = iter(self.mux.start_groups(
                [(fid, n, body) for fid, (n, body) in zip(fids, live)], 4, build,
                self._check_read, [n for n, _ in live]))
        except BaseException:
            c.fids.free_all(fids)
            raise
        fid_of = iter(fids)
        sent: Sent = [(-1, 0, []) if w is None else (next(fid_of), w[0], [next(groups)])
                      for w in walks]
        if live:
            last = next(cs[-1] for _, _, cs in reversed(sent) if cs)
            with self._lock:
                self._flight.append((size, last))
                self._flight_bytes += size
        return sent

    def _check_read(self, buf: bytearray, pos: int, end: int, g: Group) -> tuple[int, Any]:
        """mux.Check of a file read's replies: its data as they came."""
        n, data, stop = codec.file_read_replies(buf, pos, end, g.tags, g.expect, self.mux.msize)
        if n <= 0:
            return n, None
        with memoryview(buf) as view:
            return n, bytes(view[data:stop])

    def _room(self, size: int, wait: bool) -> bool:
        """Whether `size` more request bytes fit in INFLIGHT (with
        nothing in flight anything fits); with `wait`, wait for the
        oldest batches' replies until they do."""
        while True:
            with self._lock:
                flight = self._flight
                while flight and (flight[0][1].reply is not None or flight[0][1].abandoned):
                    self._flight_bytes -= flight.popleft()[0]
                if not flight or self._flight_bytes + size <= INFLIGHT:
                    return True
                oldest = flight[0][1]
            if not wait:
                return False
            self.mux.wait(oldest)
            if self.mux.dead:
                raise Hungup()

    def _send_after_walks(self, sent: Sent, rest: Middle) -> Call | None:
        """Wait for a batch's Twalks, then send rest(fid) for each fid
        they made, adding its calls to the fid's entry in sent; the last
        call sent."""
        try:
            for _, _, calls in sent:
                if calls:
                    self.mux.wait(calls[0])
            walked = [(fid, calls) for fid, n, calls in sent
                      if calls and _full_walk(calls[0].reply, n)]
            msgs = [rest(fid) for fid, _ in walked]
            more = self.mux.start_many([m for reqs in msgs for m in reqs])
        except BaseException:
            self._settle(sent, None)        # clunks what the walks made
            raise
        it = iter(more)
        for (_, calls), reqs in zip(walked, msgs):
            calls += [next(it) for _ in reqs]
        return more[-1] if more else None

    # -- collecting ------------------------------------------------------------------
    def _settle(self, sent: Sent, result: Callable[[list], Any] | None) -> list:
        """Collect a sent batch's replies and give each fid back (clunking
        it if the server took the Tclunk before the walk); per file its
        value, the walk's Error (final: a fresh fid's walk from the root
        depends on no other request), or None: to be done alone."""
        out: list = []
        replies = self.mux.replies([c for _, _, calls in sent for c in calls])
        free: list[int] = []
        for fid, n, calls in sent:
            if len(calls) == 1 and calls[0].tags is not None:   # a file read's Group
                rs = next(replies)
                if not isinstance(rs, list):    # read as expected: its data
                    free.append(fid)
                    out.append(rs)
                    continue
            else:
                rs = [next(replies) for _ in calls]
            walked = bool(rs) and _full_walk(rs[0], n)
            if walked and (len(rs) == 1 or isinstance(rs[-1], Exception)):
                self.c.clunk_quietly(fid)   # the Tclunk came before the walk
            elif fid >= 0:                  # (or was never sent)
                free.append(fid)            # every request was answered
            if not rs or walked and len(rs) == 1:
                out.append(None)
            elif not walked:
                out.append(rs[0] if isinstance(rs[0], Error)
                           else Error("file does not exist"))
            elif any(isinstance(r, Exception) for r in rs[1:-1]):
                out.append(None)
            else:
                out.append(result(rs[1:-1]))
        self.c.fids.free_all(free)
        return out

    # -- one file alone -------------------------------------------------------------
    def _read_alone(self, path: str, count: int) -> bytes | Error:
        def read() -> bytes:
            with self.c.open(path) as f:
                return f.read(count)
        return _error_as_value(read)

    def _read_rest(self, path: str, first: bytes) -> bytes | Error:
        """A whole file whose first read of len(first) bytes came back full."""
        def rest() -> bytes:
            with self.c.open(path) as f:
                return first + self.c.readall(f.fid, len(first), f.iounit)
        return _error_as_value(rest)

    def _stat_alone(self, path: str) -> Stat | Error:
        return _error_as_value(self.c.stat, path)


def _reads(n: int) -> Middle:
    return lambda fid: [codec.Topen(0, fid, OREAD), codec.Tread(0, fid, 0, n)]


def _data(rs: list) -> bytes:
    return rs[-1].data


def _full_walk(reply: codec.Msg | Exception | None, n: int) -> bool:
    """Whether a Twalk of n names made its newfid."""
    return isinstance(reply, codec.Rwalk) and len(reply.wqid) == n


def _error_as_value(fn: Callable[..., Any], *args: Any) -> Any:
    """fn's result, or the 9P Error it raised (a batch reports per file); a
    hang-up still raises: nothing after it can succeed."""
    try:
        return fn(*args)
    except Hungup:
        raise
    except Error as e:
        return e
