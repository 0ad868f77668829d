"""A thread-safe 9P2000 client: fids and whole-file operations (the part
plan9port calls lib9pclient).

Three layers, as plan9port splits libmux and lib9pclient: mux.py carries
the requests (tags, the reading, flushes, hang-ups); this module owns the
session (version, attach), the fids and the operations on paths (walk,
open, read, write, stat ...), and file.py the open files; batch.py reads
and stats many files with their requests pipelined.  Any number of
threads may share one Client; fids and tags are given back even when a
call fails.
"""
from __future__ import annotations

import getpass
import socket
import threading
from collections import deque
from typing import Any, Callable

from . import codec
from .batch import Batch
from .codec import (IOHDRSZ, MAXWELEM, NOFID, NOTAG, OREAD, ORDWR, OTRUNC, OWRITE, Qid, Stat,
                    names_of)
from .file import File
from .mux import Call, Hungup, Mux
from .server import PIPELINE_ANAME, Error

__all__ = ["Client", "Error", "File", "Hungup", "MSIZE"]

PIPELINE = 8          # outstanding Treads when reading a large file
MSIZE = (1 << 20) + IOHDRSZ   # asked for; a server may give less (9P2000
                              # servers give at least 8 KiB, ours 64 KiB)

_MODES = {"r": OREAD, "w": OWRITE, "rw": ORDWR, "r+": ORDWR, "w+": ORDWR}


def _mode(mode: str | int, trunc: bool = False) -> int:
    m = mode if isinstance(mode, int) else _MODES.get(mode)
    if m is None:
        raise ValueError(f"bad open mode {mode!r}")
    return m | (OTRUNC if trunc else 0)


class Fids:
    """The fid numbers of a session: a freed fid is used again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[int] = []
        self.made = 0                       # distinct fids ever made

    def alloc(self) -> int:
        with self._lock:
            if self._free:
                return self._free.pop()
            self.made += 1
            return self.made

    def alloc_many(self, n: int) -> list[int]:
        with self._lock:
            cut = max(0, len(self._free) - n)
            got = self._free[cut:]
            del self._free[cut:]
            first = self.made + 1
            self.made += n - len(got)
            return got + list(range(first, self.made + 1))

    def free(self, fid: int) -> None:
        with self._lock:
            self._free.append(fid)

    def free_all(self, fids: list[int]) -> None:
        with self._lock:
            self._free += fids


def _before_walk(e: Error) -> bool:
    """Whether a request sent with its fid's Twalk failed for being
    answered first (a server of ours with worker threads may): then it
    changed nothing, and is asked again.  Our server's text for a fid it
    does not know yet (upas/ninep/server.py)."""
    return not isinstance(e, Hungup) and str(e) == "unknown fid"


class Client:
    """One 9P session, attached as `uname` to `aname`."""

    def __init__(self, sock: socket.socket, uname: str | None = None,
                 aname: str = "", msize: int = MSIZE, ours: bool = False,
                 attach: bool = True):
        """ours: the service is known to be one of ours (a name our own
        broker posted), whose server handles a Tversion before it reads
        the requests after it: then Tversion, the probing Tauth and
        Tattach go out in one write, one round trip instead of two.  9P
        asks a client to wait for Rversion, so any other server gets
        them one after the other (plan9port's, a real Plan 9's).
        attach=False: only the version now, `attach` later (a connection
        made before its user is known)."""
        self.mux = Mux(sock, msize)
        self.fids = Fids()
        self._attaching: tuple[Call, Call, int] | None = None   # attach_begin's calls
        self._attach_lock = threading.Lock()    # their replies read by one thread
        self.msize = msize
        self.batch = Batch(self)
        try:
            version = codec.Tversion(NOTAG, msize, codec.VERSION)
            if ours and attach:
                self._attach(uname, aname, version)
                return
            self._versioned(self.mux.rpc(version))
            if attach:
                self._attach(uname, aname)
        except BaseException:
            self.close()
            raise

    def attach(self, uname: str | None = None, aname: str = "") -> None:
        """The attach of a client made with attach=False; a failure
        closes it."""
        try:
            self._attach(uname, aname)
        except BaseException:
            self.close()
            raise

    def attach_begin(self, uname: str | None = None, aname: str = "") -> None:
        """The attach of a client made with attach=False to a server of
        ours, sent now and its replies read at the first request's: a
        remove or create (_walk_then) goes out without waiting for them,
        one round trip less (a login's ratification, upas/ratify/enable.py).
        A failure closes the client when the replies are read."""
        self._attach_send(uname, aname)
        self.walks_pipelined = True     # ours; the probe's answer is read with the attach

    def _attach(self, uname: str | None, aname: str, version: codec.Tversion | None = None) -> None:
        """Tattach, with the probing Tauth (and `version` before them, in
        the same write, if given)."""
        self._attach_send(uname, aname, version)
        self._attach_finish()

    def _attach_send(self, uname: str | None, aname: str,
                     version: codec.Tversion | None = None) -> None:
        self.uname = uname if uname is not None else getpass.getuser()
        self._root = self.fids.alloc()
        afid = self.fids.alloc()
        session = [codec.Tauth(0, afid, self.uname, PIPELINE_ANAME),
                   codec.Tattach(0, self._root, NOFID, self.uname, aname)]
        if version is not None:
            vcall, probe, attach = self.mux.start_many([version] + session)
            self._versioned(self.mux.finish(vcall, codec.Rversion))
        else:
            probe, attach = self.mux.start_many(session)
        self._attaching = (probe, attach, afid)

    def _attach_finish(self) -> None:
        probe, attach, afid = self._attaching
        try:
            # True when requests may follow a Twalk on its newfid before the
            # Rwalk comes back (see PIPELINE_ANAME); asked in the attach's
            # round trip, so it costs no wait
            self.walks_pipelined = self._pipelining_answer(probe, afid)
            self.root_qid: Qid = self.mux.finish(attach, codec.Rattach).qid
        finally:
            self._attaching = None      # read (another thread may go on)

    def _attached(self) -> None:
        """Read the replies of an attach sent by attach_begin, if not yet."""
        if self._attaching is None:
            return
        with self._attach_lock:
            if self._attaching is None:
                return
            try:
                self._attach_finish()
            except BaseException:
                self.close()
                raise

    @property
    def root(self) -> int:
        """The attach's fid (its replies read first)."""
        if self._attaching is not None:
            self._attached()
        return self._root

    def _versioned(self, r: Any) -> None:
        """The session's msize from the server's Rversion."""
        if r.version != codec.VERSION or r.msize > self.msize:
            raise Error(f"unexpected version {r.version} msize {r.msize}")
        self.msize = self.mux.msize = r.msize
        self.iounit = self.msize - IOHDRSZ

    def _pipelining_answer(self, probe: Call, afid: int) -> bool:
        """Whether the server said walks may be pipelined: only ours answer
        the probing Tauth with the Rerror PIPELINE_ANAME."""
        try:
            self.mux.finish(probe, codec.Rauth)
        except Hungup:
            raise
        except Error as e:
            self.fids.free(afid)
            return str(e) == PIPELINE_ANAME
        self.clunk_later(afid)      # a server that wants authentication
        return False

    @classmethod
    def dial(cls, addr: str, **kw: Any) -> "Client":
        """Connect to a dial string or posted service name (see dial.py)."""
        from .dial import dial
        return cls(dial(addr), **kw)

    def close(self) -> None:
        """Hang up. Outstanding calls fail with Hungup."""
        self.mux.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rpc(self, msg: codec.Msg) -> Any:
        """Send one request and return its reply (Error on an Rerror)."""
        return self.mux.rpc(msg)

    # -- fids ---------------------------------------------------------------------
    def walk(self, path: str) -> int:
        """A new fid for path (relative to the attach root). The caller
        owns it and must clunk it (see clunk)."""
        names = names_of(path)
        fid = self.fids.alloc()
        made = False
        try:
            src = self.root
            chunks = [names[i:i + MAXWELEM]
                      for i in range(0, len(names), MAXWELEM)] or [[]]
            for chunk in chunks:
                r = self.mux.rpc(codec.Twalk(0, src, fid, chunk))
                if len(r.wqid) < len(chunk):
                    raise Error("file does not exist")
                made, src = True, fid
            return fid
        except BaseException:
            if made:
                self.clunk_quietly(fid)
            else:
                self.fids.free(fid)
            raise

    def clunk(self, fid: int) -> None:
        try:
            self.mux.rpc(codec.Tclunk(0, fid))
        finally:                 # the server forgets the fid even on error
            self.fids.free(fid)

    def clunk_quietly(self, fid: int) -> None:
        try:
            self.clunk(fid)
        except Error:
            pass

    def clunk_later(self, fid: int) -> None:
        """Clunk a fid opened only for reading (nothing can depend on its
        clunk but the fid's release) without a round trip of its own: the
        Tclunk goes out with the next request (mux.later), and the fid is
        used again only once its reply is read."""
        self.mux.later(codec.Tclunk(0, fid), lambda: self.fids.free(fid))

    def settle(self) -> None:
        """Send the deferred Tclunks and wait for their replies: then the
        fid and tag of every finished call are back in the pool."""
        self.mux.settle()

    def require_walk(self, walk: Call, names: list[str], fid: int,
                     pending: list[Call]) -> None:
        """A pipelined Twalk must have made `fid`; if not, the fid is freed
        and the requests sent after it on that fid are collected."""
        try:
            walked = self._walked(walk, len(names), pending)
        except BaseException:
            self.fids.free(fid)
            raise
        if not walked:
            self.fids.free(fid)
            raise Error("file does not exist")

    def _walked(self, call: Call, n: int, pending: list[Call]) -> bool:
        """Whether a pipelined Twalk made its fid; when it did not, the
        requests sent after it on that fid are collected (they failed)."""
        try:
            ok = len(self.mux.finish(call, codec.Rwalk).wqid) == n
        except Error:
            if pending:
                for c in pending:
                    self.mux.finish_quietly(c)
                raise
            return False
        if not ok:
            for c in pending:
                self.mux.finish_quietly(c)
        return ok

    # -- whole-file operations ------------------------------------------------------
    def open(self, path: str, mode: str | int = "r", trunc: bool = False) -> File:
        """Twalk and Topen go out together where walks may be pipelined
        (the Topen is redone if a threaded server answered it first: a
        failed Topen changes nothing)."""
        names, how = names_of(path), _mode(mode, trunc)
        if len(names) > MAXWELEM or not self.walks_pipelined:
            fid = self.walk(path)
            early = None
        else:
            fid = self.fids.alloc()
            try:
                walk, early = self.mux.start_many([codec.Twalk(0, self.root, fid, names),
                                                   codec.Topen(0, fid, how)])
            except BaseException:
                self.fids.free(fid)
                raise
            self.require_walk(walk, names, fid, [early])
        try:
            try:
                r = self.mux.rpc(codec.Topen(0, fid, how)) if early is None else \
                    self.mux.finish(early, codec.Ropen)
            except Error:
                if early is None:
                    raise
                r = self.mux.rpc(codec.Topen(0, fid, how))
        except BaseException:
            self.clunk_quietly(fid)
            raise
        return File(self, fid, r.qid, r.iounit or self.iounit, _mode(mode))

    def create(self, path: str, perm: int = 0o666, mode: str | int = "w") -> File:
        """The Twalk of the directory and the Tcreate go out together where
        walks may be pipelined (a Tcreate answered before its walk is asked
        again)."""
        names = names_of(path)
        if not names:
            raise Error("bad file name")
        create = lambda fid: codec.Tcreate(0, fid, names[-1], perm, _mode(mode))  # noqa: E731
        fid, early = self._walk_then(names[:-1], create)
        try:
            try:
                r = self.mux.rpc(create(fid)) if early is None else \
                    self.mux.finish(early, codec.Rcreate)
            except Error as e:
                if early is None or not _before_walk(e):
                    raise
                r = self.mux.rpc(create(fid))
        except BaseException:
            self.clunk_quietly(fid)
            raise
        return File(self, fid, r.qid, r.iounit or self.iounit, _mode(mode))

    def _walk_then(self, names: list[str], then: Callable[[int], codec.Msg]) -> tuple[int, Call | None]:
        """A fid walked to names, and the request then(fid) sent with the
        Twalk where walks may be pipelined (None: not sent)."""
        if len(names) > MAXWELEM or not self.walks_pipelined:
            return self.walk("/".join(names)), None
        fid = self.fids.alloc()
        try:
            # the root's fid as it is: an attach_begin's Tattach went out
            # before this Twalk, and its replies are read once it is sent
            walk, early = self.mux.start_many([codec.Twalk(0, self._root, fid, names), then(fid)])
            self._attached()
        except BaseException:
            self.fids.free(fid)
            raise
        try:
            self.require_walk(walk, names, fid, [early])
        except Error as e:
            if not _before_walk(e):
                raise
            # a threaded server walked before it attached: walk again
            return self.walk("/".join(names)), None
        return fid, early

    def read(self, path: str) -> bytes:
        """The whole file (see _whole)."""
        return self._whole(path, lambda fid, iounit, first:
                           self.readall(fid, 0, iounit, first))

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
            return self.read_sequential(fid, len(first), iounit, [first]) if first else b""
        return self._whole(path, rest)

    def _whole(self, path: str, rest: Callable[[int, int, bytes], bytes]) -> bytes:
        """Open path for reading, read it with rest(fid, iounit, first data),
        clunk.  Twalk, Topen and the first Tread go out together: one round
        trip instead of three for a small file (two where walks may not be
        pipelined: the walk first).  A server that answers them out of
        order (one with a worker pool may) fails the early open or read;
        those are then simply redone in order."""
        names = names_of(path)
        if len(names) > MAXWELEM:
            with self.open(path) as f:
                return rest(f.fid, f.iounit, self.tread(f.fid, 0, f.iounit))
        fid, opened, first = self._walk_open_read(path, names)
        try:
            try:
                r = self.mux.finish(opened, codec.Ropen)
            except Error:
                self.mux.finish_quietly(first)
                r = self.mux.rpc(codec.Topen(0, fid, OREAD))
                first = None
            try:
                data = self.mux.finish(first, codec.Rread).data if first else None
            except Error:
                data = None
            if data is None:
                data = self.tread(fid, 0, self.iounit)
            return rest(fid, r.iounit or self.iounit, data)
        finally:
            self.clunk_later(fid)

    def _walk_open_read(self, path: str, names: list[str]) -> tuple[int, Call, Call]:
        """A walked fid and its Topen and first Tread, sent."""
        reads = lambda fid: [codec.Topen(0, fid, OREAD), codec.Tread(0, fid, 0, self.iounit)]
        if not self.walks_pipelined:
            fid = self.walk(path)
            try:
                opened, first = self.mux.start_many(reads(fid))
            except BaseException:
                self.clunk_quietly(fid)
                raise
            return fid, opened, first
        fid = self.fids.alloc()
        try:
            walk, opened, first = self.mux.start_many([
                codec.Twalk(0, self.root, fid, names), *reads(fid)])
        except BaseException:
            self.fids.free(fid)
            raise
        self.require_walk(walk, names, fid, [opened, first])
        return fid, opened, first

    def write(self, path: str, data: bytes, trunc: bool = False) -> int:
        """Write data at offset 0: one Twrite when it fits in an iounit."""
        with self.open(path, "w", trunc=trunc) as f:
            return f.write(data)

    def stat(self, path: str) -> Stat:
        """Twalk and Tstat go out together where walks may be pipelined
        (the Tstat is redone if the server answered it first)."""
        return self._stat_begin(path)()

    def stat_then(self, path: str, then: Callable[[], Any]) -> tuple[Stat, Any]:
        """stat(path), and then() -- requests of its own, sent and their
        replies read -- sent after the stat's requests, before their
        replies are read: one round trip for both where walks may be
        pipelined (a server of ours answers in order, so the stat is
        taken first: upasfs's view, then its mark).  Elsewhere the stat
        is done first, then then()."""
        finish = self._stat_begin(path)
        try:
            got = then()
        except BaseException:
            try:
                finish()                # collected: its tags and fid back
            except Error:
                pass
            raise
        return finish(), got

    def _stat_begin(self, path: str) -> Callable[[], Stat]:
        """stat(path) in two halves: its requests sent now (all of it done
        now where walks may not be pipelined), the returned function
        (called once) gives the stat."""
        names = names_of(path)
        if len(names) > MAXWELEM or not self.walks_pipelined:
            fid = self.walk(path)
            try:
                got = self.mux.rpc(codec.Tstat(0, fid)).stat
            finally:
                self.clunk_later(fid)
            return lambda: got
        fid = self.fids.alloc()
        try:
            walk, early = self.mux.start_many([codec.Twalk(0, self.root, fid, names),
                                               codec.Tstat(0, fid)])
        except BaseException:
            self.fids.free(fid)
            raise

        def finish() -> Stat:
            self.require_walk(walk, names, fid, [early])
            try:
                try:
                    return self.mux.finish(early, codec.Rstat).stat
                except Error:
                    return self.mux.rpc(codec.Tstat(0, fid)).stat
            finally:
                self.clunk_later(fid)
        return finish

    def wstat(self, path: str, st: Stat) -> None:
        fid = self.walk(path)
        try:
            self.mux.rpc(codec.Twstat(0, fid, st))
        finally:
            self.clunk_quietly(fid)

    def remove(self, path: str) -> None:
        """The Twalk and the Tremove go out together where walks may be
        pipelined (a Tremove answered before its walk is asked again).  A
        Tremove clunks its fid, success or not."""
        fid, early = self._walk_then(names_of(path), lambda fid: codec.Tremove(0, fid))
        try:
            if early is not None:
                try:
                    self.mux.finish(early, codec.Rremove)
                    return
                except Error as e:
                    if not _before_walk(e):
                        raise
            self.mux.rpc(codec.Tremove(0, fid))
        finally:
            self.fids.free(fid)

    # -- many files at once (batch.py) ------------------------------------------------
    def read_many(self, paths: list[str], count: int | None = None) -> list[bytes | Error]:
        return self.batch.read_many(paths, count)

    def read_many_begin(self, paths: list[str], count: int) -> Callable[[], list[bytes | Error]]:
        return self.batch.read_many_begin(paths, count)

    def stat_many(self, paths: list[str]) -> list[Stat | Error]:
        return self.batch.stat_many(paths)

    read_many.__doc__ = Batch.read_many.__doc__
    read_many_begin.__doc__ = Batch.read_many_begin.__doc__
    stat_many.__doc__ = Batch.stat_many.__doc__

    # -- reads on an open fid (File and batch.py use them) ---------------------------
    def tread(self, fid: int, offset: int, count: int) -> bytes:
        return self.mux.rpc(codec.Tread(0, fid, offset, count)).data

    def twrite(self, fid: int, offset: int, data: bytes) -> int:
        return self.mux.rpc(codec.Twrite(0, fid, offset, data)).count

    def readall(self, fid: int, offset: int, iounit: int, first: bytes | None = None) -> bytes:
        """Read to EOF (first: the data of a Tread already made at offset).
        After one full read, keep PIPELINE Treads in flight; a short read
        means the data is not where we guessed, so the guesses are dropped
        and reading goes on from the true offset."""
        out: list[bytes] = []
        if first is None:
            first = self.tread(fid, offset, iounit)
        out.append(first)
        offset += len(first)
        if len(first) < iounit:
            return self.read_sequential(fid, offset, iounit, out) if first else b""
        calls: deque[tuple[int, Call]] = deque()
        next_off = offset
        try:
            while True:
                while len(calls) < PIPELINE:
                    calls.append((next_off, self.mux.start(
                        codec.Tread(0, fid, next_off, iounit))))
                    next_off += iounit
                off, call = calls.popleft()
                data = self.mux.finish(call, codec.Rread).data
                out.append(data)
                if len(data) < iounit:
                    break
        finally:
            for _, call in calls:
                self.mux.finish_quietly(call)
        if not data:
            return b"".join(out)
        return self.read_sequential(fid, off + len(data), iounit, out)

    def read_sequential(self, fid: int, offset: int, iounit: int, out: list[bytes]) -> bytes:
        while True:
            data = self.tread(fid, offset, iounit)
            if not data:
                return b"".join(out)
            out.append(data)
            offset += len(data)
