"""Many 9P requests on one connection (the part plan9port calls libmux).

Each request gets a tag; the reply with that tag goes to whoever waits
for it, and tags go back to the pool even when a wait is given up.  There
is no reader thread: a thread waiting for a reply reads the socket itself
if nobody else is, delivers whatever arrives, and hands the reading over
when its own reply is in (libmux's muxrpc does the same; it saves two
thread switches per request over a dedicated reader).  Requests are
written whole, several in one write if the caller gives several.

A request may also be sent *later* (`later`): it goes out in the same
write as the next request (or once LATER of them wait), nobody waits for
its reply, and a function runs when the reply comes -- the client's
clunks of read-only fids, which give the fid back only then.

Several requests may also travel as a *group* (`start_groups`): their
bytes built by the caller at once (a whole-file read: walk, open, read,
clunk), one Group for all their tags, and their replies checked where
they lie in the input by the caller's `check` -- no message objects --
when they come together and as expected.  Any surprise (an Rerror, a
short walk, a reply out of place) and the replies are decoded one by
one as usual; the Group's reply is then the list of them.
"""
from __future__ import annotations

import socket
import struct
import threading
from collections import deque
from typing import Any, Callable, Iterator

from . import codec
from .codec import NOTAG, ProtocolError
from .server import Error

RECV = 65536          # bytes asked of each recv (more to finish a big reply)
_SIZE = struct.Struct("<I")
LATER = 32            # requests sent later that may wait for the next write


class Hungup(Error):
    """The connection to the server is gone."""

    def __init__(self) -> None:
        super().__init__("i/o on hungup channel")


class Call:
    """One request on the wire; `reply` is set when its reply is read."""
    __slots__ = ("tag", "reply", "wake", "abandoned", "flushes", "done")
    tags: tuple[int, ...] | None = None     # a Group's

    def __init__(self, tag: int):
        self.tag = tag
        self.reply: codec.Msg | None = None
        self.wake: threading.Event | None = None  # made when a thread sleeps
        self.abandoned = False              # nobody collects it: the reply frees the tag
        self.flushes: Call | None = None    # the request a Tflush cancels
        self.done: Callable[[], None] | None = None   # runs at the reply (later())


# check(buf, pos, end, group) -> (where a Group's replies end in buf, the
# value that answers it) if they all lie at buf[pos:end] as expected;
# (0, None) if they are not as expected, (-n, None) if buf[pos:] must hold
# n bytes to tell
Check = Callable[[Any, int, int, "Group"], tuple[int, Any]]


class Group(Call):
    """Requests sent together as one record; `reply` is set when all
    their replies are in: `value` (set by check) or, after a surprise,
    the list of the decoded replies, in the order of the requests."""
    __slots__ = ("tags", "parts", "check", "expect", "value")

    def __init__(self, tags: tuple[int, ...], check: Check, expect: Any):
        super().__init__(tags[0])
        self.tags = tags
        self.parts: list[codec.Msg | None] | None = None   # decoded one by one
        self.check, self.expect = check, expect      # expect: for check
        self.value: Any = None


class Mux:
    """The tags, the waiting and the reading of one 9P connection."""

    def __init__(self, sock: socket.socket, msize: int):
        self.sock = sock
        self.msize = msize                    # replies larger are a protocol error
        self._lock = threading.Lock()         # everything below
        self._wlock = threading.Lock()        # requests on the wire
        self._pending: dict[int, Call] = {}
        self._waiters: dict[Call, int] = {}   # calls with threads asleep on them: how many
        self._reading = False                 # some waiter reads the socket
        # bytes read into a buffer of its own (recv_into: no copy from a
        # received chunk), up to _inend, decoded up to _inpos
        self._inbuf = bytearray()
        self._inpos = self._inend = 0
        self._want = 4                        # bytes wanted from _inpos (_buffered)
        # the tag pool: the tags never used (from _next_tag on), then those
        # given back, oldest first (as a deque of all 65535 would, without
        # its 2.5 MB in every session)
        self._next_tag = 0
        self._free_tags: deque[int] = deque()
        self._later: list[tuple[codec.Msg, Callable[[], None]]] = []
        self._unsettled: dict[Call, None] = {}  # sent later, not answered yet
        self._dead = False

    # -- sending ----------------------------------------------------------------
    def start(self, msg: codec.Msg, flushes: Call | None = None) -> Call:
        """Send a request; finish() collects the reply."""
        call = self.start_many([msg])[0]
        call.flushes = flushes
        return call

    def start_many(self, msgs: list[codec.Msg]) -> list[Call]:
        """Send requests together, by one write (all of them or none),
        after the requests waiting to be sent later."""
        calls, _ = self._send(msgs, [], 0, None, None)
        return calls

    def start_groups(self, items: list[Any], k: int, build: Callable[[Any, list[int]], bytes],
                     check: Check, expects: list[Any]) -> list[Group]:
        """Send a group of k requests per item, all by one write (after the
        requests waiting to be sent later): build(item, its k tags) gives
        a group's bytes, check (see Check) finds its replies, given the
        item's expect."""
        return self._send([], items, k, build, check, expects)[1]

    def _send(self, msgs: list[codec.Msg], items: list[Any], k: int, build: Any,
              check: Any, expects: list[Any] | None = None) -> tuple[list[Call], list[Group]]:
        with self._lock:
            if self._dead:
                raise Hungup()
            later, self._later = self._later, []
            if self._tags_free() < len(later) + len(msgs) + k * len(items):
                self._later = later
                raise Error("too many outstanding requests")
            msgs = [m for m, _ in later] + msgs
            calls: list[Call] = []
            for msg in msgs:
                tag = NOTAG if isinstance(msg, codec.Tversion) else self._take_tag()
                msg.tag = tag
                calls.append(Call(tag))
                self._pending[tag] = calls[-1]
            for call, (_, done) in zip(calls, later):    # nobody waits for these
                call.abandoned, call.done = True, done
                self._unsettled[call] = None
            groups = []
            take, pending = self._take_tag, self._pending
            for expect in expects or ():
                g = Group(tuple([take() for _ in range(k)]), check, expect)
                for tag in g.tags:
                    pending[tag] = g
                groups.append(g)
        try:
            data = b"".join([codec.pack(m) for m in msgs] +
                            [build(item, g.tags) for item, g in zip(items, groups)])
            with self._wlock:
                self.sock.sendall(data)
        except BaseException as e:
            with self._lock:
                for call in calls + groups:
                    self._unsettled.pop(call, None)
                    for tag in call.tags or (call.tag,):
                        if self._pending.get(tag) is call:
                            del self._pending[tag]
                            self._release_tag(tag)
                self._later[:0] = later
            if not isinstance(e, OSError):
                raise                       # unpackable: nothing was sent
            self._hangup()
            raise Hungup() from None
        return calls[len(later):], groups

    def later(self, msg: codec.Msg, done: Callable[[], None]) -> None:
        """Send msg with the next write; done() runs (with the mux's lock
        held) when its reply is read, or at once if the connection is
        gone.  A server that answers in order has answered it before it
        answers that next request; settle() sends and collects them now."""
        with self._lock:
            if self._dead:
                done()
                return
            self._later.append((msg, done))
            if len(self._later) < LATER:
                return
        self.send_later()

    def send_later(self) -> None:
        with self._lock:
            if not self._later:
                return
        try:
            self.start_many([])
        except Error:
            pass                            # hung up: the server forgot them

    def settle(self) -> None:
        """Send the requests waiting to go later and wait for their
        replies: then every finished call's tag is back in the pool."""
        self.send_later()
        with self._lock:
            calls = list(self._unsettled)
        for call in calls:
            self.wait(call)

    def _tags_free(self) -> int:
        return NOTAG - self._next_tag + len(self._free_tags)

    def _take_tag(self) -> int:
        if self._next_tag < NOTAG:
            self._next_tag += 1
            return self._next_tag - 1
        return self._free_tags.popleft()

    def _release_tag(self, tag: int) -> None:
        if tag != NOTAG:
            self._free_tags.append(tag)

    # -- waiting and reading -----------------------------------------------------
    def wait(self, call: Call) -> None:
        """Until call's reply is in (it stays in call.reply) or the
        connection is gone.  Several threads may wait for one call."""
        while True:
            with self._lock:
                if call.reply is not None or self._dead:
                    return
                lead = not self._reading
                if lead:
                    self._reading = True
                else:
                    self._waiters[call] = self._waiters.get(call, 0) + 1
                    if call.wake is None:
                        call.wake = threading.Event()
                    else:
                        call.wake.clear()
            if lead:
                self._read_one(call)
                continue
            try:
                call.wake.wait()
            finally:
                with self._lock:
                    n = self._waiters.pop(call) - 1
                    if n:
                        self._waiters[call] = n

    def _read_one(self, mine: Call) -> None:
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
            pending = self._pending
            for m in got:
                if type(m) is Group:        # its replies checked at once
                    self._deliver_group(m)
                    continue
                call = pending.pop(m.tag, None)
                if call is None:            # a reply to nobody: dropped
                    continue
                if call.tags is None:
                    self._deliver(call, m)
                else:
                    self._deliver_part(call, m)
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
            pos, end = self._inpos, self._inend
            have = end - pos
            need = self._want - have
            if pos:                 # the undecoded rest to the front
                buf[:have] = buf[pos:end]
                self._inpos, self._inend = 0, have
            room = max(need, RECV)
            if len(buf) < have + room:
                buf.extend(bytes(have + room - len(buf)))
            with memoryview(buf) as view:
                n = self.sock.recv_into(view[have:have + room])
            if not n:
                raise ProtocolError("connection closed")
            self._inend = have + n

    def _buffered(self) -> codec.Msg | Group | None:
        """The next message if all of it is in self._inbuf (no waiting),
        or the Group whose replies its check found there; when None,
        self._want is how many bytes from _inpos on are wanted."""
        buf, pos, end = self._inbuf, self._inpos, self._inend
        have = end - pos
        if have < 4:
            self._want = 4
            return None
        size = _SIZE.unpack_from(buf, pos)[0]
        if size < 7 or size > self.msize:
            raise ProtocolError("bad message size")
        # read without the lock: a tag stays in _pending until its reply
        # is delivered, and the delivery checks again under the lock
        g = self._pending.get(buf[pos + 5] | buf[pos + 6] << 8) if have >= 7 else None
        if g is not None and g.tags is not None and g.parts is None:
            n, value = g.check(buf, pos, end, g)
            if n > 0:
                self._inpos, g.value = n, value
                return g
            if n < 0:
                self._want = -n
                return None
        if have < size:
            self._want = size
            return None
        self._inpos = pos + size
        return codec.unpack_from(buf, pos, size)

    def _deliver(self, call: Call, m: codec.Msg) -> None:
        call.reply = m
        if call.abandoned:
            self._release_tag(call.tag)
            if call.done is not None:
                call.done()
                del self._unsettled[call]
        if call in self._waiters:
            call.wake.set()
        old = call.flushes
        if old is not None and self._pending.get(old.tag) is old:
            # Rflush: the flushed request will get no reply; its tag is free.
            del self._pending[old.tag]
            self._release_tag(old.tag)

    def _deliver_group(self, g: Group) -> None:
        """Every reply of g came as its check expected: g.value answers."""
        pending = self._pending
        if any(pending.get(tag) is not g for tag in g.tags):
            return                          # hung up meanwhile: nobody waits
        for tag in g.tags:
            del pending[tag]
        self._complete(g, g.value)

    def _deliver_part(self, g: Group, m: codec.Msg) -> None:
        """One reply of a group decoded alone: the group is answered by
        the list of them when all are in."""
        if g.parts is None:
            g.parts = [None] * len(g.tags)
        g.parts[g.tags.index(m.tag)] = m
        if None not in g.parts:
            self._complete(g, g.parts)

    def _complete(self, g: Group, reply: Any) -> None:
        g.reply = reply
        if g.abandoned:
            self._release(g)
        if g in self._waiters:
            g.wake.set()

    def _release(self, call: Call) -> None:
        """A collected call's tag (a group's tags) back to the pool."""
        if call.tags is None:
            self._release_tag(call.tag)
        else:
            for tag in call.tags:
                self._release_tag(tag)

    def _wake_reader(self, skip: Call | None) -> None:
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
            self._later.clear()
            for call in self._waiters:
                call.wake.set()

    # -- collecting ----------------------------------------------------------------
    def finish(self, call: Call, want: type | None = None) -> Any:
        """call's reply (of type want), its tag freed; an Rerror raises
        Error, a hang-up Hungup."""
        try:
            self.wait(call)
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

    def finish_quietly(self, call: Call) -> None:
        try:
            self.finish(call)
        except Error:
            pass

    def rpc(self, msg: codec.Msg) -> Any:
        """Send msg and return its reply (the R-message that answers it)."""
        want = codec.MESSAGES.get(msg.TYPE + 1)
        return self.finish(self.start(msg), want)

    def replies(self, calls: list[Call]) -> Iterator[Any]:
        """Each call's reply, or the Error of an Rerror, waiting for the
        replies still owed and freeing every tag under one acquisition of
        the lock (a batch has hundreds of calls); a hang-up raises."""
        for i, call in enumerate(calls):
            if call.reply is None:
                try:
                    self.wait(call)
                except BaseException:       # as finish: this one is abandoned
                    self._abandon(call)
                    with self._lock:
                        for c in calls[:i]:
                            self._release(c)
                    raise
        with self._lock:
            for call in calls:
                self._release(call)
        for call in calls:
            r = call.reply
            if r is None:
                raise Hungup()
            if call.tags is not None and call.parts is not None:   # decoded alone
                r = [_error_of(m) for m in r]
            yield _error_of(r)

    def _abandon(self, call: Call) -> None:
        """Give up waiting: the tag is freed when the reply is read, and a
        Tflush asks the server to cut a blocked request short."""
        with self._lock:
            call.abandoned = call.reply is None and not self._dead
            if not call.abandoned or call.tags is not None:
                if not call.abandoned:      # a group's (file reads: never
                    self._release(call)     # blocked) are not flushed
                return
        try:
            flush = self.start(codec.Tflush(0, call.tag), flushes=call)
        except Error:
            return
        with self._lock:
            flush.abandoned = flush.reply is None
            if not flush.abandoned:
                self._release_tag(flush.tag)

    # -- the connection -------------------------------------------------------------
    def close(self) -> None:
        """Hang up. Outstanding calls fail with Hungup."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._hangup()

    @property
    def dead(self) -> bool:
        return self._dead

    def tags_in_use(self) -> int:
        """Tags not in the pool (0 when every call is collected and settled)."""
        with self._lock:
            return NOTAG - self._tags_free()

    def waiting_later(self) -> int:
        """Requests sent later not answered yet, or not sent yet."""
        with self._lock:
            return len(self._later) + len(self._unsettled)


def _error_of(r: Any) -> Any:
    return Error(r.ename) if isinstance(r, codec.Rerror) else r
