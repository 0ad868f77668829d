"""A thread-safe, multiplexed 9P2000 client with file-like objects.

Any number of threads may share one Client: each request gets its own tag,
every reply goes to the thread waiting on that tag, and fids and tags are
returned to the pool even when a call fails.
"""
from __future__ import annotations

import getpass
import io
import os
import socket
import threading
from collections import deque
from typing import Any, Callable, Iterator

from . import codec
from .codec import (IOHDRSZ, MAXWELEM, NOFID, NOTAG, OREAD, ORDWR, OTRUNC,
                    OWRITE, ProtocolError, Qid, Stat)
from .server import PIPELINE_ANAME, Error

PIPELINE = 8          # outstanding Treads when reading a large file
BATCH = 64            # files whose requests read_many sends together
MSIZE = (1 << 20) + IOHDRSZ   # asked for; a server may give less (9P2000
                              # servers give at least 8 KiB, ours 64 KiB)
RECV = 65536          # bytes asked of each recv (more to finish a big reply)
DEFERRED = 32         # read-only fids whose Tclunk may wait for the next request

_MODES = {"r": OREAD, "w": OWRITE, "rw": ORDWR, "r+": ORDWR, "w+": ORDWR}


class Hungup(Error):
    """The connection to the server is gone."""

    def __init__(self) -> None:
        super().__init__("i/o on hungup channel")


def _mode(mode: str | int, trunc: bool = False) -> int:
    m = mode if isinstance(mode, int) else _MODES.get(mode)
    if m is None:
        raise ValueError(f"bad open mode {mode!r}")
    return m | (OTRUNC if trunc else 0)


def _names(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


class _Call:
    __slots__ = ("tag", "reply", "wake", "abandoned", "flushes", "fid")

    def __init__(self, tag: int):
        self.tag = tag
        self.reply: codec.Msg | None = None
        self.wake: threading.Event | None = None  # made when a thread sleeps
        self.abandoned = False
        self.flushes: _Call | None = None   # the request a Tflush cancels
        self.fid: int | None = None         # freed by the reply (_clunk_later)


class Client:
    """One 9P session, attached as `uname` to `aname`."""

    def __init__(self, sock: socket.socket, uname: str | None = None,
                 aname: str = "", msize: int = MSIZE):
        self._sock = sock
        self._lock = threading.Lock()         # everything below
        self._wlock = threading.Lock()        # requests on the wire
        self._pending: dict[int, _Call] = {}
        self._waiters: dict[_Call, None] = {}  # calls with a thread waiting
        self._reading = False                 # some waiter reads the socket
        self._inbuf = bytearray()             # bytes read ...
        self._inpos = 0                       # ... up to here decoded
        self._free_tags: deque[int] = deque(range(NOTAG))
        self._free_fids: list[int] = []
        self._deferred: list[int] = []           # fids to clunk (_clunk_later)
        self._unsettled: dict[_Call, None] = {}  # Tclunks nobody waits for
        self._next_fid = 0
        self._dead = False
        self.msize = msize
        try:
            r = self._rpc(codec.Tversion(NOTAG, msize, codec.VERSION))
            if r.version != codec.VERSION or r.msize > msize:
                raise Error(f"unexpected version {r.version} msize {r.msize}")
            self.msize = r.msize
            self.iounit = self.msize - IOHDRSZ
            self.uname = uname if uname is not None else getpass.getuser()
            self._root = self._allocfid()
            afid = self._allocfid()
            probe, attach = self._start_many([
                codec.Tauth(0, afid, self.uname, PIPELINE_ANAME),
                codec.Tattach(0, self._root, NOFID, self.uname, aname)])
            # True when requests may follow a Twalk on its newfid before the
            # Rwalk comes back (see PIPELINE_ANAME); asked in the attach's
            # round trip, so it costs no wait
            self.walks_pipelined = self._pipelining_answer(probe, afid)
            self.root_qid: Qid = self._finish(attach, codec.Rattach).qid
        except BaseException:
            self.close()
            raise

    def _pipelining_answer(self, probe: _Call, afid: int) -> bool:
        """Whether the server said walks may be pipelined: only ours answer
        the probing Tauth with the Rerror PIPELINE_ANAME."""
        try:
            self._finish(probe, codec.Rauth)
        except Hungup:
            raise
        except Error as e:
            self._freefid(afid)
            return str(e) == PIPELINE_ANAME
        self._clunk_later(afid)     # a server that wants authentication
        return False

    @classmethod
    def dial(cls, addr: str, **kw: Any) -> "Client":
        """Connect to a dial string or posted service name (see dial.py)."""
        from .dial import dial
        return cls(dial(addr), **kw)

    # -- transport ----------------------------------------------------------
    # There is no reader thread: a thread waiting for a reply reads the
    # socket itself if nobody else is, delivers whatever arrives, and hands
    # the reading over when its own reply is in. That saves two thread
    # switches per request over a dedicated reader.
    def _start(self, msg: codec.Msg, flushes: _Call | None = None) -> _Call:
        """Send a request; the reply is collected by _finish."""
        call = self._start_many([msg])[0]
        call.flushes = flushes
        return call

    def _start_many(self, msgs: list[codec.Msg]) -> list[_Call]:
        """Send requests together, by one write (all of them or none),
        after the Tclunks deferred by _clunk_later."""
        with self._lock:
            if self._dead:
                raise Hungup()
            clunks, self._deferred = self._deferred, []
            if len(self._free_tags) < len(clunks) + len(msgs):
                self._deferred = clunks
                raise Error("too many outstanding requests")
            msgs = [codec.Tclunk(0, fid) for fid in clunks] + msgs
            calls = []
            for msg in msgs:
                tag = NOTAG if isinstance(msg, codec.Tversion) else self._free_tags.popleft()
                msg.tag = tag
                calls.append(_Call(tag))
                self._pending[tag] = calls[-1]
            for call, fid in zip(calls, clunks):    # nobody waits for these
                call.abandoned, call.fid = True, fid
                self._unsettled[call] = None
        try:
            data = b"".join([codec.pack(m) for m in msgs])
            with self._wlock:
                self._sock.sendall(data)
        except BaseException as e:
            with self._lock:
                for call in calls:
                    self._unsettled.pop(call, None)
                    if self._pending.pop(call.tag, None) is call:
                        self._release_tag(call.tag)
                self._deferred[:0] = clunks
            if not isinstance(e, OSError):
                raise                       # unpackable: nothing was sent
            self._hangup()
            raise Hungup() from None
        return calls[len(clunks):]

    def _release_tag(self, tag: int) -> None:
        if tag != NOTAG:
            self._free_tags.append(tag)

    def _await(self, call: _Call) -> None:
        while True:
            with self._lock:
                if call.reply is not None or self._dead:
                    self._waiters.pop(call, None)
                    return
                lead = not self._reading
                if lead:
                    self._reading = True
                    self._waiters.pop(call, None)
                else:
                    self._waiters[call] = None
                    if call.wake is None:
                        call.wake = threading.Event()
                    else:
                        call.wake.clear()
            if lead:
                self._read_one(call)
            else:
                call.wake.wait()

    def _read_one(self, mine: _Call) -> None:
        """Read a reply, and those already received after it, and deliver
        them; called with the reading role."""
        broken = False
        try:
            got = [self._recv_msg()]
            while (m := self._buffered()) is not None:
                got.append(m)
        except (OSError, ProtocolError):
            got, broken = [], True
        except BaseException:               # interrupted: partial input is
            with self._lock:                # kept in _inbuf, so the stream
                self._reading = False       # stays usable; pass reading on
                self._wake_reader(None)
            raise
        if broken:
            self._hangup()
            return
        with self._lock:
            self._reading = False
            for m in got:
                call = self._pending.pop(m.tag, None)
                if call is not None:        # else a reply to nobody: dropped
                    self._deliver(call, m)
            if mine.reply is not None:      # leaving: pass the reading on
                self._wake_reader(None)

    def _recv_msg(self) -> codec.Msg:
        """One message from the socket, buffered in self._inbuf; the size
        field is checked against msize before waiting for the body."""
        buf = self._inbuf
        while True:
            m = self._buffered()
            if m is not None:
                return m
            pos = self._inpos
            have = len(buf) - pos
            if have >= 4:
                need = int.from_bytes(buf[pos:pos + 4], "little") - have
            else:
                need = 4 - have
            if pos:                 # drop what is decoded before reading on
                del buf[:pos]
                self._inpos = 0
            chunk = self._sock.recv(max(need, RECV))
            if not chunk:
                raise ProtocolError("connection closed")
            buf += chunk

    def _buffered(self) -> codec.Msg | None:
        """The next message if all of it is in self._inbuf (no waiting)."""
        buf, pos = self._inbuf, self._inpos
        have = len(buf) - pos
        if have < 4:
            return None
        size = int.from_bytes(buf[pos:pos + 4], "little")
        if size < 7 or size > self.msize:
            raise ProtocolError("bad message size")
        if have < size:
            return None
        self._inpos = pos + size
        return codec.unpack_from(buf, pos, size)

    def _deliver(self, call: _Call, m: codec.Msg) -> None:
        call.reply = m
        if call.abandoned:
            self._release_tag(call.tag)
            if call.fid is not None:
                self._free_fids.append(call.fid)
                del self._unsettled[call]
        if call in self._waiters:           # settle() may wait for it
            call.wake.set()
        old = call.flushes
        if old is not None and self._pending.get(old.tag) is old:
            # Rflush: the flushed request will get no reply; its tag is free.
            del self._pending[old.tag]
            self._release_tag(old.tag)

    def _wake_reader(self, skip: _Call | None) -> None:
        # Hand the reading role to a waiter still owed a reply: one whose
        # reply was already delivered would return without reading, leaving
        # the others asleep.
        for other in self._waiters:
            if other is not skip and other.reply is None:
                other.wake.set()
                return

    def _hangup(self) -> None:
        with self._lock:
            self._dead = True
            self._reading = False
            self._pending.clear()
            self._unsettled.clear()
            self._deferred.clear()
            for call in self._waiters:
                call.wake.set()

    def _finish(self, call: _Call, want: type | None = None) -> Any:
        try:
            self._await(call)
        except BaseException:               # e.g. KeyboardInterrupt
            self._abandon(call)
            raise
        with self._lock:
            self._release_tag(call.tag)
        r = call.reply
        if r is None:
            raise Hungup()
        if isinstance(r, codec.Rerror):
            raise Error(r.ename)
        if want is not None and not isinstance(r, want):
            raise ProtocolError(f"unexpected reply {type(r).__name__}")
        return r

    def _abandon(self, call: _Call) -> None:
        """Give up waiting: the tag is freed when the reply is read, and a
        Tflush asks the server to cut a blocked request short."""
        with self._lock:
            self._waiters.pop(call, None)
            call.abandoned = call.reply is None and not self._dead
            if not call.abandoned:
                self._release_tag(call.tag)
                return
        try:
            flush = self._start(codec.Tflush(0, call.tag), flushes=call)
        except Error:
            return
        with self._lock:
            flush.abandoned = flush.reply is None
            if not flush.abandoned:
                self._release_tag(flush.tag)

    def _rpc(self, msg: codec.Msg) -> Any:
        want = codec.MESSAGES.get(msg.TYPE + 1)
        return self._finish(self._start(msg), want)

    def close(self) -> None:
        """Hang up. Outstanding calls fail with Hungup."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._hangup()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fids -----------------------------------------------------------------
    def _allocfid(self) -> int:
        with self._lock:
            if self._free_fids:
                return self._free_fids.pop()
            self._next_fid += 1
            return self._next_fid

    def _freefid(self, fid: int) -> None:
        with self._lock:
            self._free_fids.append(fid)

    def _clunk(self, fid: int) -> None:
        try:
            self._rpc(codec.Tclunk(0, fid))
        finally:                 # the server forgets the fid even on error
            self._freefid(fid)

    def walk(self, path: str) -> int:
        """A new fid for path (relative to the attach root). The caller
        owns it and must clunk it (see clunk)."""
        names = _names(path)
        fid = self._allocfid()
        made = False
        try:
            src = self._root
            chunks = [names[i:i + MAXWELEM]
                      for i in range(0, len(names), MAXWELEM)] or [[]]
            for chunk in chunks:
                r = self._rpc(codec.Twalk(0, src, fid, chunk))
                if len(r.wqid) < len(chunk):
                    raise Error("file does not exist")
                made, src = True, fid
            return fid
        except BaseException:
            if made:
                self._clunk_quietly(fid)
            else:
                self._freefid(fid)
            raise

    def _clunk_later(self, fid: int) -> None:
        """Clunk a fid opened only for reading (nothing can depend on its
        clunk but the fid's release) without a round trip of its own: the
        Tclunk goes out in the same write as the next request (or once
        DEFERRED of them wait), its reply is collected by whichever call
        reads next, and only then is the fid reused.  A server that
        answers in order has clunked it before it answers that next
        request; settle() sends and collects them at once."""
        with self._lock:
            if self._dead:
                self._free_fids.append(fid)
                return
            self._deferred.append(fid)
            if len(self._deferred) < DEFERRED:
                return
        self._send_deferred()

    def _send_deferred(self) -> None:
        with self._lock:
            if not self._deferred:
                return
        try:
            self._start_many([])
        except Error:
            pass                            # hung up: the server forgot them

    def settle(self) -> None:
        """Send the deferred Tclunks and wait for their replies: then the
        fid and tag of every finished call are back in the pool."""
        self._send_deferred()
        with self._lock:
            calls = list(self._unsettled)
        for call in calls:
            self._await(call)

    def _clunk_quietly(self, fid: int) -> None:
        try:
            self._clunk(fid)
        except Error:
            pass

    def clunk(self, fid: int) -> None:
        self._clunk(fid)

    # -- whole-file operations -------------------------------------------------
    def open(self, path: str, mode: str | int = "r",
             trunc: bool = False) -> "File":
        fid = self.walk(path)
        try:
            r = self._rpc(codec.Topen(0, fid, _mode(mode, trunc)))
        except BaseException:
            self._clunk_quietly(fid)
            raise
        return File(self, fid, r.qid, r.iounit or self.iounit, _mode(mode))

    def create(self, path: str, perm: int = 0o666,
               mode: str | int = "w") -> "File":
        names = _names(path)
        if not names:
            raise Error("bad file name")
        fid = self.walk("/".join(names[:-1]))
        try:
            r = self._rpc(codec.Tcreate(0, fid, names[-1], perm, _mode(mode)))
        except BaseException:
            self._clunk_quietly(fid)
            raise
        return File(self, fid, r.qid, r.iounit or self.iounit, _mode(mode))

    def read(self, path: str) -> bytes:
        """The whole file (see _whole)."""
        return self._whole(path, lambda fid, iounit, first:
                           self._readall(fid, 0, iounit, first))

    def readdir(self, path: str) -> list[Stat]:
        """A directory's entries."""
        return Stat.unpack_many(self._readdir_bytes(path))

    def readdir_names(self, path: str) -> list[str]:
        """Only the names of a directory's entries (much less decoding)."""
        return Stat.names_of(self._readdir_bytes(path))

    def _readdir_bytes(self, path: str) -> bytes:
        """A directory's data; its reads go on sequentially from where the
        previous one stopped, as directory offsets require."""
        def rest(fid: int, iounit: int, first: bytes) -> bytes:
            return self._read_sequential(fid, len(first), iounit, [first]) if first else b""
        return self._whole(path, rest)

    def _whole(self, path: str, rest) -> bytes:
        """Open path for reading, read it with rest(fid, iounit, first data),
        clunk.  Twalk, Topen and the first Tread go out together: one round
        trip instead of three for a small file (two where walks may not be
        pipelined: the walk first).  A server that answers them out of
        order (one with a worker pool may) fails the early open or read;
        those are then simply redone in order."""
        names = _names(path)
        if len(names) > MAXWELEM:
            with self.open(path) as f:
                return rest(f.fid, f.iounit, self._tread(f.fid, 0, f.iounit))
        fid, opened, first = self._walk_open_read(path, names)
        try:
            try:
                r = self._finish(opened, codec.Ropen)
            except Error:
                self._finish_quietly(first)
                r = self._rpc(codec.Topen(0, fid, OREAD))
                first = None
            try:
                data = self._finish(first, codec.Rread).data if first else None
            except Error:
                data = None
            if data is None:
                data = self._tread(fid, 0, self.iounit)
            return rest(fid, r.iounit or self.iounit, data)
        finally:
            self._clunk_later(fid)

    def _walk_open_read(self, path: str, names: list[str]) -> tuple[int, _Call, _Call]:
        """A walked fid and its Topen and first Tread, sent."""
        reads = lambda fid: [codec.Topen(0, fid, OREAD), codec.Tread(0, fid, 0, self.iounit)]
        if not self.walks_pipelined:
            fid = self.walk(path)
            try:
                opened, first = self._start_many(reads(fid))
            except BaseException:
                self._clunk_quietly(fid)
                raise
            return fid, opened, first
        fid = self._allocfid()
        try:
            walk, opened, first = self._start_many([
                codec.Twalk(0, self._root, fid, names), *reads(fid)])
        except BaseException:
            self._freefid(fid)
            raise
        self._require_walk(walk, names, fid, [opened, first])
        return fid, opened, first

    def read_many(self, paths: list[str], count: int | None = None) -> list[bytes | Error]:
        """Each file's first `count` bytes by one Tread (all of a file
        smaller than that), or with count None the whole file, or the
        Error.  Twalk, Topen, Tread and Tclunk of BATCH files go out in
        one write, and the next batch goes out before the replies to one
        are collected, so the server always has work.  With count None a
        read shorter than the iounit is taken as all of the file (true of
        upasfs's files and of disk files, not of every synthetic file:
        use read() for those); a file whose read came back full is
        opened again and read on to EOF."""
        n = self.iounit if count is None else min(count, self.iounit)
        got = self._batched(paths, lambda fid: [codec.Topen(0, fid, OREAD),
                                                 codec.Tread(0, fid, 0, n)],
                            lambda rs: rs[-1].data, lambda p: self._read_alone(p, n))
        if count is None:
            got = [self._read_rest(p, d) if isinstance(d, bytes) and len(d) == n else d
                   for p, d in zip(paths, got)]
        return got

    def read_many_begin(self, paths: list[str], count: int) -> Callable[[], list[bytes | Error]]:
        """read_many in two halves: the requests go out now and the
        returned function collects the replies (call it exactly once; the
        server works while the caller does something else)."""
        n = min(count, self.iounit)
        middle = lambda fid: [codec.Topen(0, fid, OREAD), codec.Tread(0, fid, 0, n)]
        result = lambda rs: rs[-1].data
        sent: list = []
        try:
            for i in range(0, len(paths), BATCH):
                sent.append((paths[i:i + BATCH], self._send_batch(paths[i:i + BATCH], middle)))
        except BaseException:
            for _, batch in sent:
                self._settle(batch, result)
            raise

        def finish() -> list[bytes | Error]:
            out: list = []
            try:
                while sent:
                    # taken off first: if gathering raises, it has settled
                    # this batch itself, and settling it again below would
                    # free its tags and fids twice
                    out += self._gather(*sent.pop(0), result, lambda p: self._read_alone(p, n))
            finally:
                for _, batch in sent:       # only after an exception
                    self._settle(batch, result)
            return out
        return finish

    def stat_many(self, paths: list[str]) -> list[Stat | Error]:
        """Each file's stat, or the Error; Twalk, Tstat and Tclunk of BATCH
        files go out in one write (as read_many)."""
        return self._batched(paths, lambda fid: [codec.Tstat(0, fid)],
                             lambda rs: rs[-1].stat, self._stat_alone)

    def _batched(self, paths: list[str], middle, result, alone) -> list:
        """For each path: Twalk to a new fid, the requests middle(fid),
        Tclunk; result(replies to middle) is the file's value.  A file whose
        requests failed after its walk -- maybe a server with workers
        answered them out of order -- gets alone(path) instead."""
        out: list = []
        inflight: deque[tuple[list[str], list]] = deque()
        try:
            for i in range(0, len(paths), BATCH):
                batch = paths[i:i + BATCH]
                inflight.append((batch, self._send_batch(batch, middle)))
                if len(inflight) > 1:
                    out += self._gather(*inflight.popleft(), result, alone)
            while inflight:
                out += self._gather(*inflight.popleft(), result, alone)
        finally:
            for _, sent in inflight:        # only after an exception
                self._settle(sent, result)
        return out

    def _send_batch(self, paths: list[str], middle) -> list:
        """Send the requests for a batch: [(fid, walk length, calls)]; a
        path too deep for one Twalk gets no fid (-1) and is done alone.
        Where walks may not be pipelined the Twalks go out first, and the
        rest only for the fids they made (_send_after_walks)."""
        plan: list[tuple[int, list[str]]] = []
        for path in paths:
            names = _names(path)
            plan.append((-1, []) if len(names) > MAXWELEM else (self._allocfid(), names))
        rest = lambda fid: [*middle(fid), codec.Tclunk(0, fid)]
        per_file = [[codec.Twalk(0, self._root, fid, names),
                     *(rest(fid) if self.walks_pipelined else ())]
                    for fid, names in plan if fid >= 0]
        try:
            calls = iter(self._start_many([m for reqs in per_file for m in reqs]))
        except BaseException:
            for fid, _ in plan:
                if fid >= 0:
                    self._freefid(fid)
            raise
        k = len(per_file[0]) if per_file else 0
        sent = [(fid, len(names), [next(calls) for _ in range(k)] if fid >= 0 else [])
                for fid, names in plan]
        if not self.walks_pipelined:
            self._send_after_walks(sent, rest)
        return sent

    def _send_after_walks(self, sent: list, rest) -> None:
        """Wait for a batch's Twalks, then send rest(fid) for each fid
        they made, adding its calls to the fid's entry in sent."""
        try:
            for _, _, calls in sent:
                if calls:
                    self._await(calls[0])
            walked = [(fid, calls) for fid, n, calls in sent
                      if calls and _full_walk(calls[0].reply, n)]
            msgs = [rest(fid) for fid, _ in walked]
            more = iter(self._start_many([m for reqs in msgs for m in reqs]))
        except BaseException:
            self._settle(sent, None)        # clunks what the walks made
            raise
        for (_, calls), reqs in zip(walked, msgs):
            calls += [next(more) for _ in reqs]

    def _settle(self, sent: list, result) -> list:
        """Collect a sent batch's replies and give each fid back (clunking
        it if the server took the Tclunk before the walk); per file its
        value, the walk's Error (final: a fresh fid's walk from the root
        depends on no other request), or None: to be done alone."""
        out: list = []
        replies = self._replies([c for _, _, calls in sent for c in calls])
        free: list[int] = []
        for fid, n, calls in sent:
            rs = [next(replies) for _ in calls]
            walked = bool(rs) and _full_walk(rs[0], n)
            if walked and (len(rs) == 1 or isinstance(rs[-1], Exception)):
                self._clunk_quietly(fid)     # the Tclunk came before the walk
            elif fid >= 0:                   # (or was never sent)
                free.append(fid)             # every request was answered
            if not rs or walked and len(rs) == 1:
                out.append(None)
            elif not walked:
                out.append(rs[0] if isinstance(rs[0], Error)
                           else Error("file does not exist"))
            elif any(isinstance(r, Exception) for r in rs[1:-1]):
                out.append(None)
            else:
                out.append(result(rs[1:-1]))
        with self._lock:
            self._free_fids += free
        return out

    def _gather(self, paths: list[str], sent: list, result, alone) -> list:
        got = self._settle(sent, result)
        return [alone(p) if d is None else d for p, d in zip(paths, got)]

    def _replies(self, calls: list[_Call]) -> Iterator[Any]:
        """Each call's reply or its Error, as _reply_or_error gives them,
        waiting for the replies still owed and freeing every tag under
        one acquisition of the lock (a batch has hundreds of calls)."""
        for i, call in enumerate(calls):
            if call.reply is None:
                try:
                    self._await(call)
                except BaseException:       # as _finish: this one is abandoned
                    self._abandon(call)
                    with self._lock:
                        for c in calls[:i]:
                            self._release_tag(c.tag)
                    raise
        with self._lock:
            for call in calls:
                self._release_tag(call.tag)
        for call in calls:
            r = call.reply
            if r is None:
                raise Hungup()
            yield Error(r.ename) if isinstance(r, codec.Rerror) else r

    def _reply_or_error(self, call: _Call) -> Any:
        return _error_as_value(self._finish, call)

    def _read_alone(self, path: str, count: int) -> bytes | Error:
        def read() -> bytes:
            with self.open(path) as f:
                return f.read(count)
        return _error_as_value(read)

    def _read_rest(self, path: str, first: bytes) -> bytes | Error:
        """A whole file whose first read of len(first) bytes came back full."""
        def rest() -> bytes:
            with self.open(path) as f:
                return first + self._readall(f.fid, len(first), f.iounit)
        return _error_as_value(rest)

    def _stat_alone(self, path: str) -> Stat | Error:
        try:
            return self.stat(path)
        except Hungup:
            raise
        except Error as e:
            return e

    def _require_walk(self, walk: _Call, names: list[str], fid: int,
                      pending: list[_Call]) -> None:
        """A pipelined Twalk must have made `fid`; if not, the fid is freed
        and the requests sent after it on that fid are collected."""
        try:
            walked = self._walked(walk, len(names), pending)
        except BaseException:
            self._freefid(fid)
            raise
        if not walked:
            self._freefid(fid)
            raise Error("file does not exist")

    def _walked(self, call: _Call, n: int, pending: list[_Call] = ()) -> bool:
        """Whether a pipelined Twalk made its fid; when it did not, the
        requests sent after it on that fid are collected (they failed)."""
        try:
            ok = len(self._finish(call, codec.Rwalk).wqid) == n
        except Error:
            if pending:
                for c in pending:
                    self._finish_quietly(c)
                raise
            return False
        if not ok:
            for c in pending:
                self._finish_quietly(c)
        return ok

    def write(self, path: str, data: bytes, trunc: bool = False) -> int:
        """Write data at offset 0: one Twrite when it fits in an iounit."""
        with self.open(path, "w", trunc=trunc) as f:
            return f.write(data)

    def stat(self, path: str) -> Stat:
        """Twalk and Tstat go out together where walks may be pipelined
        (the Tstat is redone if the server answered it first)."""
        names = _names(path)
        if len(names) > MAXWELEM or not self.walks_pipelined:
            fid = self.walk(path)
            try:
                return self._rpc(codec.Tstat(0, fid)).stat
            finally:
                self._clunk_later(fid)
        fid = self._allocfid()
        try:
            walk, early = self._start_many([codec.Twalk(0, self._root, fid, names),
                                            codec.Tstat(0, fid)])
        except BaseException:
            self._freefid(fid)
            raise
        self._require_walk(walk, names, fid, [early])
        try:
            try:
                return self._finish(early, codec.Rstat).stat
            except Error:
                return self._rpc(codec.Tstat(0, fid)).stat
        finally:
            self._clunk_later(fid)

    def wstat(self, path: str, st: Stat) -> None:
        fid = self.walk(path)
        try:
            self._rpc(codec.Twstat(0, fid, st))
        finally:
            self._clunk_quietly(fid)

    def remove(self, path: str) -> None:
        fid = self.walk(path)
        try:
            self._rpc(codec.Tremove(0, fid))
        finally:                 # Tremove clunks the fid, success or not
            self._freefid(fid)

    # -- primitives used by File -----------------------------------------------
    def _tread(self, fid: int, offset: int, count: int) -> bytes:
        return self._rpc(codec.Tread(0, fid, offset, count)).data

    def _twrite(self, fid: int, offset: int, data: bytes) -> int:
        return self._rpc(codec.Twrite(0, fid, offset, data)).count

    def _readall(self, fid: int, offset: int, iounit: int,
                 first: bytes | None = None) -> bytes:
        """Read to EOF (first: the data of a Tread already made at offset).
        After one full read, keep PIPELINE Treads in flight; a short read
        means the data is not where we guessed, so the guesses are dropped
        and reading goes on from the true offset."""
        out: list[bytes] = []
        if first is None:
            first = self._tread(fid, offset, iounit)
        out.append(first)
        offset += len(first)
        if len(first) < iounit:
            return self._read_sequential(fid, offset, iounit, out) if first else b""
        calls: deque[tuple[int, _Call]] = deque()
        next_off = offset
        try:
            while True:
                while len(calls) < PIPELINE:
                    calls.append((next_off, self._start(
                        codec.Tread(0, fid, next_off, iounit))))
                    next_off += iounit
                off, call = calls.popleft()
                data = self._finish(call, codec.Rread).data
                out.append(data)
                if len(data) < iounit:
                    break
        finally:
            for _, call in calls:
                self._finish_quietly(call)
        if not data:
            return b"".join(out)
        return self._read_sequential(fid, off + len(data), iounit, out)

    def _finish_quietly(self, call: _Call) -> None:
        try:
            self._finish(call)
        except Error:
            pass

    def _read_sequential(self, fid: int, offset: int, iounit: int,
                         out: list[bytes]) -> bytes:
        while True:
            data = self._tread(fid, offset, iounit)
            if not data:
                return b"".join(out)
            out.append(data)
            offset += len(data)


def _full_walk(reply: codec.Msg | Exception | None, n: int) -> bool:
    """Whether a Twalk of n names made its newfid."""
    return isinstance(reply, codec.Rwalk) and len(reply.wqid) == n


def _error_as_value(fn, *args) -> Any:
    """fn's result, or the 9P Error it raised (a batch reports per file); a
    hang-up still raises: nothing after it can succeed."""
    try:
        return fn(*args)
    except Hungup:
        raise
    except Error as e:
        return e


class File(io.RawIOBase):
    """An open 9P fid. read(n) issues one Tread when n <= iounit;
    read() reads to EOF; write() sends iounit-sized Twrites."""

    def __init__(self, client: Client, fid: int, qid: Qid, iounit: int,
                 mode: int):
        super().__init__()
        self.client, self.fid, self.qid = client, fid, qid
        self.iounit = min(iounit, client.iounit)
        self.mode = mode
        self.offset = 0
        self._rbuf, self._rpos, self._rbuf_off = b"", 0, -1   # readline

    def readable(self) -> bool:
        return self.mode & 3 in (OREAD, ORDWR, 3)

    def writable(self) -> bool:
        return self.mode & 3 in (OWRITE, ORDWR)

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self._check()
        if n is None or n < 0:
            data = self.client._readall(self.fid, self.offset, self.iounit)
            self.offset += len(data)
            return data
        out: list[bytes] = []
        while n > 0:
            data = self.client._tread(self.fid, self.offset, min(n, self.iounit))
            self.offset += len(data)
            out.append(data)
            n -= len(data)
            if len(data) < self.iounit:   # one Tread unless it came back full
                break
        return b"".join(out)

    readall = read

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def write(self, data: Any) -> int:
        self._check()
        self._rbuf_off = -1
        view = memoryview(bytes(data))
        total = 0
        while True:
            chunk = view[total:total + self.iounit]
            n = self.client._twrite(self.fid, self.offset, bytes(chunk))
            self.offset += n
            total += n
            if n < len(chunk):
                raise Error("short write")
            if total >= len(view):
                return total

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self.offset = offset
        elif whence == os.SEEK_CUR:
            self.offset += offset
        elif whence == os.SEEK_END:
            self.offset = self.stat().length + offset
        else:
            raise ValueError("bad whence")
        return self.offset

    def tell(self) -> int:
        return self.offset

    def stat(self) -> Stat:
        self._check()
        return self.client._rpc(codec.Tstat(0, self.fid)).stat

    def readdir(self) -> list[Stat]:
        """All entries of an open directory (read from offset 0)."""
        self.offset = 0
        out: list[Stat] = []
        while True:
            data = self.client._tread(self.fid, self.offset, self.iounit)
            if not data:
                return out
            self.offset += len(data)
            out.extend(Stat.unpack_many(data))

    def readline(self, size: int | None = -1) -> bytes:
        """One line. Reads whole iounits ahead; the buffer is used only
        while the offset is where it left it (seek/write drop it)."""
        self._check()
        limit = -1 if size is None else size
        out: list[bytes] = []
        got = 0
        while limit < 0 or got < limit:
            if self._rbuf_off != self.offset or self._rpos >= len(self._rbuf):
                self._rbuf = self.client._tread(self.fid, self.offset, self.iounit)
                self._rbuf_off, self._rpos = self.offset, 0
                if not self._rbuf:
                    break
            buf, pos = self._rbuf, self._rpos
            nl = buf.find(b"\n", pos)
            end = len(buf) if nl < 0 else nl + 1
            if limit >= 0:
                end = min(end, pos + limit - got)
            out.append(buf[pos:end])
            got += end - pos
            self.offset += end - pos
            self._rpos, self._rbuf_off = end, self.offset
            if buf[end - 1:end] == b"\n":
                break
        return b"".join(out)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        while line := self.readline():
            lines.append(line)
        return lines

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        """Chunks of up to iounit bytes until EOF."""
        while True:
            data = self.read(self.iounit)
            if not data:
                return
            yield data

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def close(self) -> None:
        if not self.closed:
            super().close()
            if self.mode == OREAD:          # nothing can hang on its clunk
                self.client._clunk_later(self.fid)
            else:
                self.client._clunk_quietly(self.fid)
