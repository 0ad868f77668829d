"""A 9P2000 server framework: a file tree is a set of Node objects.

The framework owns the protocol (version, fids, walk, directory reads,
flush, iounit); a tree only answers walk/open/read/write/stat questions.
One thread reads each connection, taking in as many requests as one recv
brings; requests run on worker threads so that a read that blocks never
stalls other requests, and replies are written under a lock.  An inline
server (for trees that never block) answers them in the reader thread
instead and sends the replies to one recv's worth of requests together.
"""
from __future__ import annotations

import array
import errno
import logging
import os
import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterable

from lib.writev import writev_all

from . import codec
from .codec import (DMDIR, IOHDRSZ, MAXWELEM, MIN_MSIZE, NOFID, NOTAG, OEXEC, ORCLOSE,
                    ORDWR, OREAD, OTRUNC, OWRITE, QTDIR, ProtocolError, Qid,
                    Stat)

log = logging.getLogger("upas.ninep")

ERRLEN = 200          # bytes of an Rerror ename we send
MAX_WORKERS = 256     # per connection; more requests queue behind them
MAX_INFLIGHT = 1024   # per connection; then we stop reading (backpressure),
                      # which bounds memory to about MAX_INFLIGHT * msize
RECV = 65536          # bytes asked of each recv (more to finish a big message)
OUTBOX = 1 << 18      # inline: replies held back at most, then sent
SNDBUF = 1 << 20      # an inline server's send buffer, asked for (roomy)
_MAX_FDS = 4          # descriptors one hand-over's recvmsg takes in (one is used)

# Topen, Tread and Tclunk after a Twalk: a whole file read (_whole_file)
TWALK = codec.Twalk.TYPE
_OPEN_READ_CLUNK = struct.Struct("<IBHIB" "IBHIQI" "IBHI")
_ORC_HEADS = (12, codec.Topen.TYPE, 23, codec.Tread.TYPE, 11, codec.Tclunk.TYPE, OREAD)
# and their replies' headers (codec's layouts: Rwalk and its qids; Ropen
# with the Rread header after it; Rclunk)
RWALK, ROPEN, RREAD, RCLUNK = (codec.Rwalk.TYPE, codec.Ropen.TYPE, codec.Rread.TYPE,
                               codec.Rclunk.TYPE)
_RWALK_HEAD = struct.Struct("<IBHH")
_QID = struct.Struct("<BIQ")
_ROPEN_RREAD = struct.Struct("<IBH" "BIQI" "IBHI")
_RCLUNK = struct.Struct("<IBH")
_TWALK_HEAD = struct.Struct("<IBHIIH")     # size[4] type tag fid newfid nwname
_NAME_LEN = struct.Struct("<H")

# A Tauth whose aname is PIPELINE_ANAME asks: may requests on a Twalk's
# newfid follow it before its Rwalk?  Our servers answer the Rerror
# PIPELINE_ANAME (a request on a fid whose walk failed just gets an
# Rerror here); any other answer means no (docs/decisions.md: plan9port's
# 9pserve and upas/fs crash on such requests).
PIPELINE_ANAME = "upas/ninep: walks may be pipelined"
# A Tauth whose aname is HANDOVER_ANAME asks a server made with
# handover=True: may this connection be handed a client's socket?  Such a
# server answers the Rerror HANDOVER_ANAME and then takes, with the bytes
# of the client's Tattach, the client's connection itself (SCM_RIGHTS):
# from then on it serves that socket, and the one the hand-over came on
# is closed (fsbroker.py: the broker steps out of the way instead of
# copying every byte between the two).
HANDOVER_ANAME = "upas/ninep: connections may be handed over"


class Error(Exception):
    """A 9P error: its text becomes the Rerror ename (client: the ename)."""

    def __init__(self, ename: str):
        super().__init__(ename)
        self.ename = ename

    def __str__(self) -> str:
        return self.ename


class Open:
    """One open fid. Subclass it; the defaults refuse I/O."""

    __slots__ = ()

    def read(self, offset: int, count: int) -> bytes:
        raise Error("permission denied")

    def write(self, offset: int, data: bytes) -> int:
        raise Error("permission denied")

    def clunk(self) -> None:
        pass


class Node:
    """One file or directory. Subclasses provide `qid` and `stat()`, plus
    `children()` (directories) or `open()` (files)."""

    __slots__ = ()

    @property
    def qid(self) -> Qid:
        raise NotImplementedError

    def stat(self) -> Stat:
        raise NotImplementedError

    def is_dir(self) -> bool:
        return bool(self.qid.type & QTDIR)

    def walk(self, name: str) -> "Node":
        for child in self.children():
            if child.stat().name == name:
                return child
        raise Error("file does not exist")

    def children(self) -> Iterable["Node"]:
        """A directory's entries (a list, or an iterator: a directory read
        at offset 0 goes through it once)."""
        return []

    def open(self, mode: int, user: str) -> Open:
        if self.is_dir() and mode & 3 in (OREAD, OEXEC):
            return Open()
        raise Error("permission denied")

    def create(self, name: str, perm: int, mode: int,
               user: str) -> tuple["Node", Open]:
        raise Error("permission denied")

    def remove(self, user: str) -> None:
        raise Error("permission denied")

    def wstat(self, st: Stat, user: str) -> None:
        raise Error("permission denied")


def trace(direction: str, msg: codec.Msg) -> None:
    """Log a message at DEBUG level (the 9P trace of upas/fs -D). Data and
    stat contents are shown as lengths only: they may hold secrets."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    parts = []
    for name, kind in msg.SCHEMA:
        v = getattr(msg, name)
        if kind == "D":
            text = f"<{len(v)} bytes>"
        elif kind == "T":
            text = f"<stat {v.name!r}>"
        else:
            text = repr(v)
        parts.append(f"{name}={text}")
    log.debug("%s %s tag=%d %s", direction, type(msg).__name__, msg.tag,
              " ".join(parts))


def _clip(ename: str) -> str:
    """Keep an error text well inside any msize (Plan 9's ERRMAX is 128)."""
    b = ename.encode("utf-8")
    return ename if len(b) <= ERRLEN else b[:ERRLEN].decode("utf-8", "ignore")


@dataclass
class _Fid:
    path: list[Node]            # root .. current node; ".." pops
    user: str
    handle: Open | None = None
    mode: int = 0
    dirents: list[bytes] = field(default_factory=list)
    dirpos: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def node(self) -> Node:
        return self.path[-1]


@dataclass
class _Request:
    msg: codec.Msg
    flushed: bool = False


class _Workers:
    """A pool that grows so every queued request has a free thread (up to
    MAX_WORKERS): a worker blocked in a read never delays the next one."""

    def __init__(self, run: Callable[[Any], None]):
        self._run = run
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []

    def submit(self, item: Any) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1      # reserve a waiting worker for this item
            elif len(self._threads) < MAX_WORKERS:
                t = threading.Thread(target=self._loop, daemon=True,
                                     name="9p-worker")
                self._threads.append(t)
                t.start()
        self._q.put(item)

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                self._run(item)
            except Exception:           # never lose a worker thread
                log.exception("9p: worker failed")
            finally:
                with self._lock:
                    self._idle += 1

    def close(self) -> None:
        """Let every worker exit once the queued requests are done. Not
        joined: a worker may be blocked in a read until its fid is clunked."""
        with self._lock:
            n = len(self._threads)
        for _ in range(n):
            self._q.put(None)


def _walk_names(buf: bytearray, p: int, end: int, n: int) -> list[str] | None:
    """The n names of a Twalk from buf[p:end] (they must fill it), or None
    if they do not decode (the general path then says why)."""
    if n > MAXWELEM:
        return None
    names = []
    for _ in range(n):
        if p + 2 > end:
            return None
        k = _NAME_LEN.unpack_from(buf, p)[0]
        p += 2
        if p + k > end:
            return None
        try:
            names.append(str(buf[p:p + k], "utf-8"))
        except UnicodeDecodeError:
            return None
        p += k
    return names if p == end else None


class _Transport:
    """Reads and writes on a socket or on a pair of file descriptors."""

    def __init__(self, sock: Any = None, rfd: int | None = None,
                 wfd: int | None = None):
        self.sock = sock
        self.rfd, self.wfd = rfd, wfd

    def recv(self, n: int) -> bytes:
        if self.sock is not None:
            return self.sock.recv(n)
        return os.read(self.rfd, n)

    def can_take(self) -> bool:
        """Whether a socket can come over this transport (a unix socket)."""
        return self.sock is not None and self.sock.family == socket.AF_UNIX

    def recv_handed(self, n: int) -> tuple[bytes, socket.socket | None]:
        """recv, and the socket passed along with those bytes, if any (any
        other descriptors passed are closed); OSError if what was passed
        is not a socket."""
        data, anc, _, _ = self.sock.recvmsg(n, socket.CMSG_SPACE(4 * _MAX_FDS))
        fds: list[int] = []
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                fds += array.array("i", payload[:usable]).tolist()
        for extra in fds[1:]:
            os.close(extra)
        if not fds:
            return data, None
        try:
            sock = socket.socket(fileno=fds[0])
        except OSError:
            os.close(fds[0])
            raise
        sock.settimeout(None)
        return data, roomy(nodelay(sock))

    def sendall(self, data: bytes) -> None:
        if self.sock is not None:
            self.sock.sendall(data)
            return
        view = memoryview(data)
        while view:
            view = view[os.write(self.wfd, view):]

    def sendall_many(self, pieces: list) -> None:
        """The pieces one after another, by writev (no joining copy);
        pieces is consumed."""
        writev_all(self.sock.fileno() if self.sock is not None else self.wfd, pieces)

    def hangup(self) -> None:
        """Make a blocked recv return EOF (sockets only)."""
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        if self.sock is not None:
            self.hangup()
            self.sock.close()
        else:
            for fd in {self.rfd, self.wfd}:
                try:
                    os.close(fd)
                except OSError:
                    pass


class _Conn:
    """The state of one 9P connection (one session)."""

    def __init__(self, server: "Server", transport: _Transport):
        self.srv = server
        self.t = transport
        self.msize = server.msize
        self.versioned = False
        self.fids: dict[int, _Fid] = {}
        self.inflight: dict[int, _Request] = {}
        self.lock = threading.Lock()        # fids and inflight
        self.wlock = threading.Lock()       # replies
        self.workers = _Workers(self._run)
        self.slots = threading.BoundedSemaphore(MAX_INFLIGHT)
        self.dead = False
        # inline: the replies to the requests of one recv, sent together
        # (only the reader thread writes then, so no lock is needed)
        self.outbox: list[bytes] | None = [] if server.inline else None
        self.outlen = 0
        self.tracing = False        # DEBUG logging on: looked at per recv

    # -- reading ----------------------------------------------------------
    def serve(self) -> None:
        try:
            self._loop()
        finally:
            self.dead = True
            self.workers.close()
            self._clunk_all()
            self.t.close()

    def _loop(self) -> None:
        buf = bytearray()
        need = 4                    # bytes still missing of the next message
        try:
            while not self.dead:
                try:
                    if self.srv.handover and not self.fids and self.t.can_take():
                        chunk = self._recv_handed(max(RECV, need))
                    else:
                        chunk = self.t.recv(max(RECV, need))
                except OSError:
                    return
                if not chunk:
                    return          # EOF (inside a message too: it is lost)
                buf += chunk
                self.tracing = log.isEnabledFor(logging.DEBUG)
                if self.srv.batch is None:
                    pos, need = self._consume(buf)
                else:
                    with self.srv.batch():
                        pos, need = self._consume(buf)
                if need < 0:
                    return
                del buf[:pos]
                self._flush()
        finally:
            self._flush()

    def _consume(self, buf: bytearray) -> tuple[int, int]:
        """Handle every complete message in buf; return where the rest
        begins and how many bytes it lacks (-1: the stream is broken)."""
        pos, end = 0, len(buf)
        # inline, versioned, not tracing: the file requests are answered
        # here, without the general path's calls (most of a request's cost)
        fast = self.HANDLERS if self.outbox is not None and self.versioned \
            and not self.tracing else {}
        out, msize, unpack, pack = self.outbox, self.msize, codec.unpack_from, codec.pack
        while end - pos >= 4:
            size = int.from_bytes(buf[pos:pos + 4], "little")
            if size < codec.HEADER.size or size > msize:
                # A size field we cannot trust: no way to resynchronise.
                log.debug("9p: bad message size %d", size)
                return pos, -1
            if end - pos < size:
                return pos, size - (end - pos)
            if fast and buf[pos + 4] == TWALK:
                n = self._whole_file(buf, pos, size, end)
                if n:
                    pos += n
                    continue
            try:
                msg = unpack(buf, pos, size)
            except ProtocolError as e:
                # a complete frame we cannot decode gets an Rerror
                log.debug("9p: malformed message: %s", e)
                self._send(codec.Rerror(e.tag, str(e)))
            else:
                handler = fast.get(type(msg))
                if handler is None or msg.tag == NOTAG:
                    self._dispatch(msg)
                else:
                    try:
                        reply = handler(self, msg)
                    except Exception as e:
                        reply = self._error_reply(msg, e)
                    try:
                        data = pack(reply)
                    except Exception:       # as _encode says
                        data = self._encode(reply)
                    if len(data) > msize:
                        data = self._encode(reply)
                    out.append(data)
                    self.outlen += len(data)
                    if self.outlen >= OUTBOX:
                        self._flush()
            pos += size
        return pos, 4 - (end - pos)

    def _recv_handed(self, n: int) -> bytes:
        """recv before the attach, on a server that takes connections
        handed over (HANDOVER_ANAME): bytes that come with a socket are
        the handed client's first requests, and the connection moves to
        that socket (this one is closed: the hander is done with it)."""
        data, sock = self.t.recv_handed(n)
        if sock is not None:
            old, self.t = self.t, _Transport(sock)
            old.close()
        return data

    def _whole_file(self, buf: bytearray, pos: int, size: int, end: int) -> int:
        """A Twalk (of `size` bytes at pos) to a new fid followed, in buf,
        by Topen (OREAD), Tread and Tclunk of that fid -- how a client
        reads a whole small file with one round trip (ninep/batch.py) --
        answered together: the replies those four requests get one by one,
        without making the fid (nothing else can use it meanwhile: inline,
        this thread handles every request of the connection).  The bytes
        of the four, or 0 (anything else, or anything failing before the
        read): then they are handled one by one as usual."""
        rest = pos + size
        if end - rest < _OPEN_READ_CLUNK.size:
            return 0
        (osize, otype, otag, ofid, mode, rsize, rtype, rtag, rfid, offset, count,
         csize, ctype, ctag, cfid) = _OPEN_READ_CLUNK.unpack_from(buf, rest)
        if (osize, otype, rsize, rtype, csize, ctype, mode) != _ORC_HEADS:
            return 0
        # the Twalk decoded here, no message made (a malformed one is left
        # to the general path, which answers it as codec.unpack_from says)
        _, _, wtag, wfid, newfid, nw = _TWALK_HEAD.unpack_from(buf, pos)
        names = _walk_names(buf, pos + _TWALK_HEAD.size, rest, nw)
        f = self.fids.get(wfid)
        if (not names or f is None or f.handle is not None or not ofid == rfid == cfid == newfid
                or newfid == wfid or newfid in self.fids or newfid == NOFID
                or NOTAG in (wtag, otag, rtag, ctag)):
            return 0
        path, qids = list(f.path), []
        try:
            for name in names:
                self._step(path, name)
                qids.append(path[-1].qid)
            node = path[-1]
            if node.is_dir():
                return 0
            handle = node.open(OREAD, f.user)
        except Exception:       # noqa: BLE001 -- one by one, it fails the same way
            return 0
        count = min(count, self.iounit)
        q, iounit = node.qid, self.iounit
        clunked = None
        try:
            try:
                data = bytes(handle.read(offset, count)[:count])
            except Exception as e:
                data = self._error_reply(codec.Tread(rtag, newfid, offset, count), e)
        finally:
            try:
                handle.clunk()
            except Exception as e:
                clunked = self._error_reply(codec.Tclunk(ctag, newfid), e)
        if type(data) is bytes and clunked is None:
            # the usual case: the headers packed by one struct call, the
            # data after them as it is (no copy of it here; _flush hands
            # the pieces to one writev)
            try:
                head = _RWALK_HEAD.pack(9 + 13 * len(qids), RWALK, wtag, len(qids)) + \
                    b"".join([_QID.pack(*x) for x in qids]) + \
                    _ROPEN_RREAD.pack(24, ROPEN, otag, q[0], q[1], q[2], iounit,
                                      11 + len(data), RREAD, rtag, len(data))
            except struct.error:
                pass
            else:
                self._write(head)
                self._write(data)
                self._write(_RCLUNK.pack(7, RCLUNK, ctag))
                return rest + _OPEN_READ_CLUNK.size - pos
        replies = [codec.Rwalk(wtag, qids), codec.Ropen(otag, q, iounit),
                   codec.Rread(rtag, data) if type(data) is bytes else data,
                   codec.Rclunk(ctag) if clunked is None else clunked]
        for r in replies:
            self._write(self._encode(r))
        return rest + _OPEN_READ_CLUNK.size - pos

    def _flush(self) -> None:
        out = self.outbox
        if out:
            pieces = out[:]
            out.clear()
            self.outlen = 0
            self._send_pieces(pieces)

    def _dispatch(self, msg: codec.Msg) -> None:
        if self.tracing:
            trace("<-", msg)
        if isinstance(msg, codec.Tversion):
            self._version(msg)
            return
        if not self.versioned:
            self._send(codec.Rerror(msg.tag, "version not negotiated"))
            return
        if isinstance(msg, codec.Tflush):
            self._tflush(msg)
            return
        if self.outbox is not None:
            # inline: every earlier request is answered, none is in flight
            if msg.tag == NOTAG:
                self._send(codec.Rerror(msg.tag, "tag in use"))
            else:
                self._write(self._encode(self._answer(msg)))
            return
        req = _Request(msg)
        with self.lock:
            if msg.tag in self.inflight or msg.tag == NOTAG:
                bad = True
            else:
                bad = False
                self.inflight[msg.tag] = req
        if bad:
            self._send(codec.Rerror(msg.tag, "tag in use"))
            return
        self.slots.acquire()        # released when the request is done
        self.workers.submit(req)

    # -- replies ----------------------------------------------------------
    def _send(self, msg: codec.Msg) -> None:
        trace("->", msg)
        data = codec.pack(msg)
        with self.wlock:
            self._write(data)

    def _write(self, data: bytes) -> None:
        out = self.outbox
        if out is None:
            self._sendall(data)
            return
        out.append(data)
        self.outlen += len(data)
        if self.outlen >= OUTBOX:
            self._flush()

    def _sendall(self, data: bytes) -> None:
        self._send_pieces([data])

    def _send_pieces(self, pieces: list) -> None:
        """Send the pieces one after another (one writev, no joining copy)."""
        if self.dead:
            return
        try:
            if len(pieces) == 1:
                self.t.sendall(pieces[0])
            else:
                self.t.sendall_many(pieces)
        except OSError:
            self.dead = True

    def _reply(self, req: _Request, msg: codec.Msg) -> None:
        data = self._encode(msg)
        with self.wlock:
            with self.lock:
                if req.flushed:
                    return              # Rflush was already sent: suppress
                del self.inflight[req.msg.tag]
            self._write(data)

    def _encode(self, msg: codec.Msg) -> bytes:
        """Pack a reply; one a tree made unsendable (a field out of range,
        longer than msize) becomes an Rerror instead."""
        if self.tracing:
            trace("->", msg)
        try:
            data = codec.pack(msg)
        except (ValueError, OverflowError, struct.error) as e:
            log.error("9p: cannot encode %s: %s", type(msg).__name__, e)
            return codec.pack(codec.Rerror(msg.tag, "internal error: bad reply"))
        if len(data) > self.msize:
            log.error("9p: %s larger than msize", type(msg).__name__)
            return codec.pack(codec.Rerror(msg.tag, "reply too large"))
        return data

    def _run(self, req: _Request) -> None:
        try:
            self._reply(req, self._answer(req.msg))
        finally:
            self.slots.release()

    def _answer(self, msg: codec.Msg) -> codec.Msg:
        """The reply to a request: its handler's, or an Rerror."""
        handler = self.HANDLERS.get(type(msg))
        try:
            if handler is None:
                raise Error("bad message type")   # an R-message sent to us
            return handler(self, msg)
        except Exception as e:
            return self._error_reply(msg, e)

    @staticmethod
    def _error_reply(msg: codec.Msg, e: Exception) -> codec.Msg:
        """The Rerror for what a handler raised (called in its except)."""
        if isinstance(e, Error):
            return codec.Rerror(msg.tag, _clip(e.ename))
        if isinstance(e, ProtocolError):
            return codec.Rerror(msg.tag, str(e))
        log.exception("9p: %s failed", type(msg).__name__)  # a bug in a tree
        return codec.Rerror(msg.tag, _clip(f"internal error: {e}"))

    # -- session ----------------------------------------------------------
    def _version(self, m: codec.Tversion) -> None:
        if m.msize < MIN_MSIZE:
            self._send(codec.Rerror(m.tag, "max messagesize too small"))
            return
        if not m.version.startswith("9P2000"):
            self._send(codec.Rerror(m.tag, "unknown 9P version"))
            return
        # A new version aborts everything outstanding and clunks all fids.
        with self.lock:
            for req in self.inflight.values():
                req.flushed = True
            self.inflight.clear()
        self._clunk_all()
        self.msize = min(m.msize, self.srv.msize)
        self.versioned = True
        self._send(codec.Rversion(m.tag, self.msize, codec.VERSION))

    def _tflush(self, m: codec.Tflush) -> None:
        # Rflush goes out now; the old request's reply, if not yet sent, is
        # suppressed (both decisions are made under wlock, so the order on
        # the wire is always: old reply (maybe), then Rflush).
        with self.wlock:
            with self.lock:
                old = self.inflight.pop(m.oldtag, None)
                if old is not None:
                    old.flushed = True
            self._write(codec.pack(codec.Rflush(m.tag)))

    def _clunk_all(self) -> None:
        with self.lock:
            fids, self.fids = list(self.fids.values()), {}
        for f in fids:
            try:
                self._release(f)
            except Exception:
                log.exception("9p: clunk at hangup failed")

    def _release(self, f: _Fid) -> None:
        """Clunk an open fid; ORCLOSE removes the file (errors ignored, as a
        clunk always succeeds)."""
        with f.lock:
            handle, f.handle = f.handle, None
        if handle is None:
            return
        try:
            handle.clunk()
        finally:
            if f.mode & ORCLOSE:
                try:
                    f.node.remove(f.user)
                except Error:
                    pass

    # -- fid table ----------------------------------------------------------
    def _fid(self, fid: int) -> _Fid:
        f = self.fids.get(fid)      # one dict lookup: atomic, no lock needed
        if f is None:
            raise Error("unknown fid")
        return f

    def _newfid(self, fid: int, f: _Fid) -> None:
        with self.lock:
            if self.dead:
                raise Error("i/o on hungup channel")
            if fid in self.fids or fid == NOFID:
                raise Error("fid in use")
            self.fids[fid] = f

    def _dropfid(self, fid: int) -> _Fid:
        with self.lock:
            f = self.fids.pop(fid, None)
        if f is None:
            raise Error("unknown fid")
        return f

    @property
    def iounit(self) -> int:
        return self.msize - IOHDRSZ

    # -- handlers -----------------------------------------------------------
    def _auth(self, m: codec.Tauth) -> codec.Msg:
        if m.aname == HANDOVER_ANAME and self.srv.handover:
            raise Error(HANDOVER_ANAME)
        raise Error(PIPELINE_ANAME if m.aname == PIPELINE_ANAME else self.srv.auth_error)

    def _attach(self, m: codec.Tattach) -> codec.Msg:
        if m.afid != NOFID:
            raise Error("authentication not required")
        with self.lock:
            if m.fid in self.fids:
                raise Error("fid in use")
        root = self.srv.attach(m.uname, m.aname)
        self._newfid(m.fid, _Fid([root], m.uname))
        return codec.Rattach(m.tag, root.qid)

    def _walk(self, m: codec.Twalk) -> codec.Msg:
        f = self._fid(m.fid)
        if f.handle is not None:
            raise Error("cannot clone open fid")
        if m.newfid != m.fid and m.newfid in self.fids:
            raise Error("fid in use")       # (one dict lookup; _newfid locks)
        path, qids, step = list(f.path), [], self._step
        for name in m.wname:
            try:
                step(path, name)
            except Error:
                if not qids:
                    raise
                return codec.Rwalk(m.tag, qids)   # partial: newfid not made
            qids.append(path[-1].qid)
        if m.newfid == m.fid:
            f.path = path
        else:
            self._newfid(m.newfid, _Fid(path, f.user))
        return codec.Rwalk(m.tag, qids)

    @staticmethod
    def _step(path: list[Node], name: str) -> None:
        """Walk path (root .. node) one name further, in place."""
        node = path[-1]
        if not node.is_dir():
            raise Error("not a directory")
        if name == "..":
            if len(path) > 1:
                path.pop()
            return
        if name == "." or "/" in name or not name:
            raise Error("file does not exist")
        path.append(node.walk(name))

    def _open(self, m: codec.Topen) -> codec.Msg:
        f = self._fid(m.fid)
        with f.lock:
            if f.handle is not None:
                raise Error("fid already open")
            node = f.node
            if node.is_dir() and (m.mode & 3 not in (OREAD, OEXEC)
                                  or m.mode & OTRUNC):
                raise Error("is a directory")
            f.handle = node.open(m.mode, f.user)
            f.mode = m.mode
            self._still_ours(m.fid, f)
            return codec.Ropen(m.tag, node.qid, self.iounit)

    def _still_ours(self, fid: int, f: _Fid) -> None:
        """A fid clunked (or a connection hung up) while its open was in
        progress must not leak the new handle."""
        with self.lock:
            live = not self.dead and self.fids.get(fid) is f
        if not live:
            self._release(f)
            raise Error("unknown fid")

    def _create(self, m: codec.Tcreate) -> codec.Msg:
        f = self._fid(m.fid)
        with f.lock:
            if f.handle is not None:
                raise Error("fid already open")
            if not f.node.is_dir():
                raise Error("not a directory")
            if m.name in (".", "..") or "/" in m.name or not m.name:
                raise Error("bad file name")
            if m.perm & DMDIR and m.mode & 3 != OREAD:
                raise Error("is a directory")
            node, handle = f.node.create(m.name, m.perm, m.mode, f.user)
            f.path = f.path + [node]
            f.handle, f.mode = handle, m.mode
            self._still_ours(m.fid, f)
            return codec.Rcreate(m.tag, node.qid, self.iounit)

    def _read(self, m: codec.Tread) -> codec.Msg:
        f = self._fid(m.fid)
        if f.handle is None or f.mode & 3 not in (OREAD, ORDWR, OEXEC):
            raise Error("fid not open for reading")
        count = min(m.count, self.iounit)
        if f.node.is_dir():
            with f.lock:
                return codec.Rread(m.tag, self._dirread(f, m.offset, count))
        data = f.handle.read(m.offset, count)
        return codec.Rread(m.tag, bytes(data[:count]))

    @staticmethod
    def _dirread(f: _Fid, offset: int, count: int) -> bytes:
        """Whole stat entries; offset 0 takes a fresh listing (as upas/fs
        and ratfs do), any other offset continues where the last read
        stopped."""
        if offset == 0:
            f.dirents = [c.stat().pack() for c in f.node.children()]
            f.dirpos = 0
        out, n = [], 0
        while f.dirpos < len(f.dirents):
            ent = f.dirents[f.dirpos]
            if n + len(ent) > count:
                break
            out.append(ent)
            n += len(ent)
            f.dirpos += 1
        return b"".join(out)

    def _write_(self, m: codec.Twrite) -> codec.Msg:
        f = self._fid(m.fid)
        if f.handle is None or f.mode & 3 not in (OWRITE, ORDWR):
            raise Error("fid not open for writing")
        if f.node.is_dir():
            raise Error("is a directory")
        n = f.handle.write(m.offset, m.data)
        return codec.Rwrite(m.tag, len(m.data) if n is None else n)

    def _clunk(self, m: codec.Tclunk) -> codec.Msg:
        self._release(self._dropfid(m.fid))
        return codec.Rclunk(m.tag)

    def _remove(self, m: codec.Tremove) -> codec.Msg:
        f = self._dropfid(m.fid)           # clunked even if remove fails
        f.mode &= ~ORCLOSE
        try:
            self._release(f)
        finally:
            f.node.remove(f.user)
        return codec.Rremove(m.tag)

    def _stat(self, m: codec.Tstat) -> codec.Msg:
        return codec.Rstat(m.tag, self._fid(m.fid).node.stat())

    def _wstat(self, m: codec.Twstat) -> codec.Msg:
        f = self._fid(m.fid)
        f.node.wstat(m.stat, f.user)
        return codec.Rwstat(m.tag)

    HANDLERS: dict[type, Callable[["_Conn", Any], codec.Msg]] = {
        codec.Tauth: _auth, codec.Tattach: _attach, codec.Twalk: _walk,
        codec.Topen: _open, codec.Tcreate: _create, codec.Tread: _read,
        codec.Twrite: _write_, codec.Tclunk: _clunk, codec.Tremove: _remove,
        codec.Tstat: _stat, codec.Twstat: _wstat,
    }


class Server:
    """Serves the tree returned by `attach(uname, aname)` to each client."""

    def __init__(self, attach: Callable[[str, str], Node],
                 auth_error: str = "authentication not required",
                 msize: int = 65536 + IOHDRSZ, inline: bool = False,
                 handover: bool = False,
                 batch: Callable[[], ContextManager] | None = None):
        """inline: answer each request in the connection's reader thread,
        in arrival order -- for trees none of whose operations block (a
        blocking read would stall its connection); it saves two thread
        switches per request and lets a client pipeline walk/open/read/clunk.
        handover: a unix connection may hand over a client's socket before
        its attach (HANDOVER_ANAME).
        batch (inline only): the requests of one recv -- sent together,
        none answered yet -- are answered inside `with batch()`, so that
        the tree may look at its storage once for all of them (upasfs:
        mbox.one_look)."""
        if msize < MIN_MSIZE:
            raise ValueError("msize too small")
        self.inline = inline
        self.handover = handover
        self.batch = batch if inline else None
        self.attach = attach
        self.auth_error = auth_error
        self.msize = msize
        # reentrant: shutdown() is called from signal handlers (ratfs's
        # SIGTERM), which may interrupt serve_forever inside this lock
        self._lock = threading.RLock()
        self._listeners: list[tuple[socket.socket, tuple | None]] = []
        self._conns: set[_Conn] = set()

    def serve(self, sock: socket.socket) -> None:
        """Serve one connection until EOF, then clunk its fids and close it."""
        sock.settimeout(None)       # an idle client is not an error
        nodelay(sock)
        if self.inline:
            roomy(sock)
        self._run(_Conn(self, _Transport(sock)))

    def serve_fd(self, rfd: int = 0, wfd: int | None = None) -> None:
        """Serve one connection on file descriptors, e.g. a socketpair end
        passed as stdin (wfd defaults to rfd), or a stdin/stdout pipe pair."""
        self._run(_Conn(self, _Transport(rfd=rfd, wfd=rfd if wfd is None else wfd)))

    def _run(self, conn: _Conn) -> None:
        with self._lock:
            self._conns.add(conn)
        try:
            conn.serve()
        finally:
            with self._lock:
                self._conns.discard(conn)

    def serve_forever(self, listener: socket.socket) -> None:
        """Accept connections until the listener is closed (see shutdown)."""
        with self._lock:
            self._listeners.append((listener, _socket_file(listener)))
        while True:
            try:
                sock, _ = listener.accept()
            except OSError as e:
                if listener.fileno() < 0 or e.errno in (errno.EBADF, errno.EINVAL):
                    return
                log.warning("9p: accept: %s", e)   # e.g. EMFILE: keep going
                time.sleep(0.1)
                continue
            threading.Thread(target=self.serve, args=(sock,), daemon=True,
                             name="9p-conn").start()

    def shutdown(self) -> None:
        """Stop serve_forever loops, remove their unix socket files, and
        hang up every open connection (their fids are clunked)."""
        with self._lock:
            listeners, self._listeners = self._listeners, []
            conns = list(self._conns)
        for ls, file in listeners:
            _close_listener(ls, file)
        for conn in conns:
            conn.t.hangup()


def roomy(s: socket.socket) -> socket.socket:
    """A socket whose send buffer holds SNDBUF bytes of replies (the
    system's limit permitting): an inline server answering a pipelined
    batch of whole files writes on while its client is busy with the
    replies before them, rather than wait for each to be read."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
    except OSError:
        pass
    return s


def nodelay(s: socket.socket) -> socket.socket:
    """A TCP socket sends each 9P message at once: with Nagle's algorithm
    a reply written in two pieces waited for the peer's delayed ACK, 40 ms
    a round trip to a store on another host (issue 19's bench)."""
    if s.family in (socket.AF_INET, socket.AF_INET6):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _socket_file(ls: socket.socket) -> tuple[str, int] | None:
    """(path, inode) of a unix listener's socket file, to remove it later
    only if it is still ours."""
    if ls.family != socket.AF_UNIX:
        return None
    try:
        path = ls.getsockname()
        return path, os.stat(path).st_ino
    except (OSError, TypeError):
        return None


def _close_listener(ls: socket.socket, file: tuple[str, int] | None) -> None:
    try:
        ls.shutdown(socket.SHUT_RDWR)       # wakes a thread blocked in accept
    except OSError:
        pass
    if file:
        try:
            if os.stat(file[0]).st_ino == file[1]:
                os.unlink(file[0])
        except OSError:
            pass
    ls.close()
