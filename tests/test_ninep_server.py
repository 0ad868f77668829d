"""The 9P2000 server framework, driven with exact messages over a real unix
socket (docs/spec/fs-auth.md §5.1, §5.2)."""
from __future__ import annotations

import array
import os
import socket
import struct
import subprocess
import sys
import random
import time
from pathlib import Path

import pytest

from tests.fixtures.ninep import RawConn, sample_tree
from upas.ninep import Error, Open, codec
from upas.ninep.server import HANDOVER_ANAME
from upas.ninep.codec import (DMDIR, IOHDRSZ, NOFID, NOTAG, OREAD, ORCLOSE,
                              ORDWR, OTRUNC, OWRITE, QTDIR, Qid, Stat)

T = codec


@pytest.fixture
def raw(memtree_addr):
    root, addr = memtree_addr
    conns = []

    def connect(**kw) -> RawConn:
        c = RawConn(addr, **kw)
        conns.append(c)
        return c

    yield root, connect
    for c in conns:
        c.close()


def attached(connect, msize=8192) -> RawConn:
    c = connect()
    r = c.start(msize=msize)
    assert isinstance(r, T.Rattach) and r.qid.type == QTDIR
    return c


def err(reply) -> str:
    assert isinstance(reply, T.Rerror), reply
    return reply.ename


# ---- version, auth, attach ------------------------------------------------

def test_version_negotiation(raw):
    _, connect = raw
    c = connect()
    assert c.rpc(T.Tversion(NOTAG, 8192, "9P2000")) == T.Rversion(NOTAG, 8192, "9P2000")
    # The server's maximum is at least 64 KiB of data.
    assert c.rpc(T.Tversion(NOTAG, 1 << 20, "9P2000")).msize == 65536 + IOHDRSZ
    # Versions that extend 9P2000 are answered with plain 9P2000.
    assert c.rpc(T.Tversion(NOTAG, 8192, "9P2000.u")).version == "9P2000"
    assert c.rpc(T.Tversion(NOTAG, 256, "9P2000")).msize == 256


def test_version_refusals(raw):
    _, connect = raw
    c = connect()
    assert err(c.rpc(T.Tversion(NOTAG, 255, "9P2000"))) == "max messagesize too small"
    assert err(c.rpc(T.Tversion(NOTAG, 8192, "9P1999"))) == "unknown 9P version"
    assert err(c.rpc(T.Tversion(NOTAG, 8192, "9P"))) == "unknown 9P version"


def test_tversion_resets_the_session(raw):
    _, connect = raw
    c = attached(connect)
    assert isinstance(c.rpc(T.Tstat(2, 0)), T.Rstat)
    c.rpc(T.Tversion(NOTAG, 8192, "9P2000"))
    assert err(c.rpc(T.Tstat(2, 0))) == "unknown fid"


def test_auth_declined_with_configured_text(raw):
    _, connect = raw
    c = connect()
    c.rpc(T.Tversion())
    assert err(c.rpc(T.Tauth(1, 0, "glenda", ""))) == "test9p: authentication not required"
    # As plan9port clients do after that Rerror: attach with afid NOFID.
    assert isinstance(c.rpc(T.Tattach(2, 0, NOFID, "glenda", "")), T.Rattach)


def test_attach_callback_may_refuse(raw):
    _, connect = raw
    c = connect()
    c.rpc(T.Tversion())
    assert err(c.rpc(T.Tattach(1, 0, NOFID, "bob", ""))) == "permission denied"
    assert err(c.rpc(T.Tattach(1, 0, 7, "glenda", ""))) == "authentication not required"
    assert isinstance(c.rpc(T.Tattach(1, 0, NOFID, "glenda", "")), T.Rattach)
    assert err(c.rpc(T.Tattach(1, 0, NOFID, "glenda", ""))) == "fid in use"


def test_requests_before_version_are_refused(raw):
    _, connect = raw
    c = connect()
    assert isinstance(c.rpc(T.Tattach(1, 0, NOFID, "glenda", "")), T.Rerror)


# ---- walk -------------------------------------------------------------------

def test_walk_clone_and_full_walk(raw):
    root, connect = raw
    c = attached(connect)
    assert c.rpc(T.Twalk(1, 0, 1, [])) == T.Rwalk(1, [])
    assert c.rpc(T.Tstat(2, 1)).stat.qid == root.qid
    sub = root.kids["sub"]
    f = sub.kids["ünïcødé.txt"]
    assert c.rpc(T.Twalk(3, 0, 2, ["sub", "ünïcødé.txt"])).wqid == [sub.qid, f.qid]
    assert c.rpc(T.Tstat(4, 2)).stat.name == "ünïcødé.txt"
    # fid == newfid moves the fid itself.
    assert c.rpc(T.Twalk(5, 1, 1, ["sub"])).wqid == [sub.qid]
    assert c.rpc(T.Tstat(6, 1)).stat.qid == sub.qid
    # ".." goes back up, and stays at the root at the top.
    assert c.rpc(T.Twalk(7, 1, 3, ["..", "..", "hello"])).wqid == [
        root.qid, root.qid, root.kids["hello"].qid]


def test_partial_walk_returns_qids_without_newfid(raw):
    root, connect = raw
    c = attached(connect)
    r = c.rpc(T.Twalk(1, 0, 1, ["sub", "nonexistent", "x"]))
    assert r == T.Rwalk(1, [root.kids["sub"].qid])
    assert err(c.rpc(T.Tstat(2, 1))) == "unknown fid"
    # Walking through a file stops there too.
    assert c.rpc(T.Twalk(3, 0, 1, ["hello", "x"])).wqid == [root.kids["hello"].qid]
    assert err(c.rpc(T.Tstat(4, 1))) == "unknown fid"


def test_walk_errors_only_on_first_element(raw):
    _, connect = raw
    c = attached(connect)
    assert err(c.rpc(T.Twalk(1, 0, 1, ["nonexistent"]))) == "file does not exist"
    c.rpc(T.Twalk(2, 0, 5, ["hello"]))
    assert err(c.rpc(T.Twalk(3, 5, 6, ["x"]))) == "not a directory"
    assert err(c.rpc(T.Twalk(4, 9, 6, []))) == "unknown fid"
    assert err(c.rpc(T.Twalk(5, 0, 5, []))) == "fid in use"


def test_walk_of_an_open_fid_is_refused(raw):
    _, connect = raw
    c = attached(connect)
    c.rpc(T.Twalk(1, 0, 1, []))
    c.rpc(T.Topen(2, 1, OREAD))
    assert isinstance(c.rpc(T.Twalk(3, 1, 2, ["hello"])), T.Rerror)


# ---- open, read, write ----------------------------------------------------

def test_open_iounit_and_reads(raw):
    root, connect = raw
    c = attached(connect, msize=8192)
    c.rpc(T.Twalk(1, 0, 1, ["big"]))
    r = c.rpc(T.Topen(2, 1, OREAD))
    assert r == T.Ropen(2, root.kids["big"].qid, 8192 - 24)
    data = bytes(root.kids["big"].data)
    # A count above iounit is cut to iounit.
    assert c.rpc(T.Tread(3, 1, 100, 1 << 20)).data == data[100:100 + 8168]
    assert c.rpc(T.Tread(4, 1, len(data) - 5, 100)).data == data[-5:]
    assert c.rpc(T.Tread(5, 1, len(data), 100)).data == b""
    assert err(c.rpc(T.Topen(6, 1, OREAD))) == "fid already open"
    assert err(c.rpc(T.Twrite(7, 1, 0, b"x"))) == "fid not open for writing"


def test_write_and_permissions(raw):
    root, connect = raw
    c = attached(connect)
    c.rpc(T.Twalk(1, 0, 1, ["ro"]))
    assert err(c.rpc(T.Topen(2, 1, OWRITE))) == "permission denied"
    c.rpc(T.Twalk(3, 0, 2, ["hello"]))
    assert err(c.rpc(T.Tread(4, 2, 0, 10))) == "fid not open for reading"
    c.rpc(T.Topen(5, 2, ORDWR | OTRUNC))
    assert c.rpc(T.Twrite(6, 2, 0, b"bonjour")) == T.Rwrite(6, 7)
    assert c.rpc(T.Tread(7, 2, 0, 100)).data == b"bonjour"
    assert bytes(root.kids["hello"].data) == b"bonjour"
    c.rpc(T.Twalk(8, 0, 3, []))
    assert err(c.rpc(T.Topen(9, 3, OWRITE))) == "is a directory"


def test_directory_reads_whole_entries_and_restart_at_zero(raw):
    root, connect = raw
    c = attached(connect)
    c.rpc(T.Twalk(1, 0, 1, ["many"]))
    c.rpc(T.Topen(2, 1, OREAD))
    expected = [k.stat() for k in root.kids["many"].children()]
    entry = len(expected[50].pack())
    got, off, sizes = [], 0, set()
    while True:
        data = c.rpc(T.Tread(3, 1, off, 3 * entry + entry // 2)).data
        if not data:
            break
        stats = Stat.unpack_many(data)          # only whole entries
        sizes.add(len(stats))
        got += stats
        off += len(data)
    assert got == expected and max(sizes) <= 3
    # Offset 0 starts the listing again.
    again = Stat.unpack_many(c.rpc(T.Tread(4, 1, 0, 8000)).data)
    assert again == expected[:len(again)] and len(again) > 3
    # A count too small for one entry gives no partial entry.
    assert c.rpc(T.Tread(5, 1, 0, 10)).data == b""


def test_create_remove_and_orclose(raw):
    root, connect = raw
    c = attached(connect)
    c.rpc(T.Twalk(1, 0, 1, []))
    r = c.rpc(T.Tcreate(2, 1, "notes", 0o640, ORDWR))
    assert isinstance(r, T.Rcreate) and r.iounit == 8192 - 24
    assert c.rpc(T.Twrite(3, 1, 0, b"abc")).count == 3
    assert c.rpc(T.Tstat(4, 1)).stat.name == "notes"
    assert bytes(root.kids["notes"].data) == b"abc"
    c.rpc(T.Tclunk(5, 1))
    c.rpc(T.Twalk(6, 0, 1, ["notes"]))
    assert c.rpc(T.Tremove(7, 1)) == T.Rremove(7)
    assert "notes" not in root.kids
    assert err(c.rpc(T.Tclunk(8, 1))) == "unknown fid"
    # Remove that fails still clunks the fid.
    c.rpc(T.Twalk(9, 0, 1, ["many"]))
    assert err(c.rpc(T.Tremove(10, 1))) == "directory not empty"
    assert err(c.rpc(T.Tstat(11, 1))) == "unknown fid"
    # ORCLOSE removes at clunk.
    c.rpc(T.Twalk(12, 0, 1, []))
    c.rpc(T.Tcreate(13, 1, "tmp", 0o600, OWRITE | ORCLOSE))
    assert "tmp" in root.kids
    c.rpc(T.Tclunk(14, 1))
    assert "tmp" not in root.kids
    for bad in (".", "..", "a/b", ""):
        c.rpc(T.Twalk(15, 0, 1, []))
        assert err(c.rpc(T.Tcreate(16, 1, bad, 0o600, OWRITE))) == "bad file name"
        c.rpc(T.Tclunk(17, 1))


def test_stat_and_wstat(raw):
    root, connect = raw
    c = attached(connect)
    c.rpc(T.Twalk(1, 0, 1, ["sub"]))
    s = c.rpc(T.Tstat(2, 1)).stat
    assert s == root.kids["sub"].stat() and s.mode & DMDIR
    assert err(c.rpc(T.Twstat(3, 1, Stat.sync()))) == "permission denied"


def test_tags_in_use_and_unknown_fids(raw):
    _, connect = raw
    c = attached(connect)
    assert err(c.rpc(T.Tclunk(1, 99))) == "unknown fid"
    assert err(c.rpc(T.Tstat(NOTAG, 0))) == "tag in use"


def test_r_message_sent_to_server_is_an_error(raw):
    _, connect = raw
    c = attached(connect)
    assert err(c.rpc(T.Rclunk(5))) == "bad message type"
    assert isinstance(c.rpc(T.Tstat(6, 0)), T.Rstat)


# ---- concurrency and flush ------------------------------------------------

def _open_gate(c: RawConn, fid: int = 1) -> None:
    c.rpc(T.Twalk(90, 0, fid, ["gate"]))
    c.rpc(T.Topen(91, fid, OREAD))


def test_blocking_read_does_not_stall_other_requests(raw):
    root, connect = raw
    c = attached(connect)
    _open_gate(c)
    gate = root.kids["gate"]
    c.send(T.Tread(5, 1, 0, 100))
    assert gate.waiting.acquire(timeout=5)      # the read is now blocked
    # Other requests on the same connection are answered meanwhile...
    assert c.rpc(T.Twalk(6, 0, 2, ["hello"])).wqid
    assert isinstance(c.rpc(T.Tstat(7, 2)), T.Rstat)
    # ...and on another connection.
    other = attached(connect)
    assert isinstance(other.rpc(T.Tstat(1, 0)), T.Rstat)
    gate.event.set()
    assert c.recv() == T.Rread(5, b"opened\n")


def test_flush_of_a_blocked_request(raw):
    root, connect = raw
    c = attached(connect)
    _open_gate(c)
    gate = root.kids["gate"]
    c.send(T.Tread(5, 1, 0, 100))
    assert gate.waiting.acquire(timeout=5)
    assert c.rpc(T.Tflush(6, 5)) == T.Rflush(6)
    # The flushed request's reply never comes, even once it finishes; the
    # tag can be reused at once.
    gate.event.set()
    time.sleep(0.2)
    assert isinstance(c.rpc(T.Tstat(5, 0)), T.Rstat)
    assert isinstance(c.rpc(T.Tclunk(7, 1)), T.Rclunk)


def test_tversion_aborts_outstanding_requests(raw):
    root, connect = raw
    c = attached(connect)
    _open_gate(c)
    gate = root.kids["gate"]
    c.send(T.Tread(5, 1, 0, 100))
    assert gate.waiting.acquire(timeout=5)
    assert c.rpc(T.Tversion(NOTAG, 8192, "9P2000")) == T.Rversion(NOTAG, 8192, "9P2000")
    gate.event.set()
    time.sleep(0.2)
    # No Rread for tag 5 ever comes: the next reply is for the next request.
    assert isinstance(c.rpc(T.Tattach(6, 0, NOFID, "glenda", "")), T.Rattach)


def test_flush_of_unknown_or_finished_tag(raw):
    _, connect = raw
    c = attached(connect)
    assert c.rpc(T.Tflush(3, 77)) == T.Rflush(3)
    assert isinstance(c.rpc(T.Tstat(4, 0)), T.Rstat)
    assert c.rpc(T.Tflush(5, 4)) == T.Rflush(5)


def test_many_tags_in_flight(raw):
    root, connect = raw
    c = attached(connect)
    for i in range(50):
        c.rpc(T.Twalk(1, 0, 100 + i, ["many", str(i)]))
        c.rpc(T.Topen(2, 100 + i, OREAD))
    for i in range(50):               # 50 reads sent before any reply is read
        c.send(T.Tread(1000 + i, 100 + i, 0, 200))
    replies = {}
    for _ in range(50):
        r = c.recv()
        replies[r.tag] = r.data
    assert replies == {1000 + i: b"x" * i for i in range(50)}


# ---- malformed input ------------------------------------------------------

def _closed(c: RawConn) -> bool:
    try:
        return c.sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _server_still_serves(connect) -> None:
    c = attached(connect)
    assert c.rpc(T.Twalk(2, 0, 1, ["hello"])).wqid


def test_short_size_field_closes_cleanly(raw):
    _, connect = raw
    c = attached(connect)
    c.send(struct.pack("<I", 5) + b"\x78\x01")
    assert _closed(c)
    _server_still_serves(connect)


def test_oversized_size_field_closes_without_reading_it(raw):
    _, connect = raw
    c = attached(connect, msize=8192)
    # 8193 > msize: refused from the 4-byte size alone, no body needed.
    c.send(struct.pack("<IBH", 8193, 118, 1))
    assert _closed(c)
    c2 = connect()
    c2.send(struct.pack("<I", 0xFFFFFFFF))
    assert _closed(c2)
    _server_still_serves(connect)


def test_unknown_type_gets_rerror_and_session_continues(raw):
    _, connect = raw
    c = attached(connect)
    c.send(struct.pack("<IBH", 9, 98, 3) + b"zz")   # p9p's Topenfd: not ours
    assert c.recv() == T.Rerror(3, "unknown message type 98")
    assert isinstance(c.rpc(T.Tstat(4, 0)), T.Rstat)


def test_bad_string_length_gets_rerror(raw):
    _, connect = raw
    c = attached(connect)
    body = struct.pack("<IIH", 0, 1, 1) + struct.pack("<H", 500) + b"hello"
    c.send(struct.pack("<IBH", 7 + len(body), 110, 8) + body)
    assert c.recv() == T.Rerror(8, "short message")
    body = struct.pack("<IIH", 0, 1, 1) + struct.pack("<H", 2) + b"\xff\xfe"
    c.send(struct.pack("<IBH", 7 + len(body), 110, 9) + body)
    assert c.recv() == T.Rerror(9, "invalid UTF-8 in string")
    body = struct.pack("<IIH", 0, 1, 17) + b"\x01\x00a" * 17
    c.send(struct.pack("<IBH", 7 + len(body), 110, 10) + body)
    assert c.recv() == T.Rerror(10, "more than 16 walk elements")
    assert c.rpc(T.Twalk(11, 0, 1, ["a"] * 16)).tag == 11


def test_eof_inside_a_message(raw):
    _, connect = raw
    c = attached(connect)
    c.send(T.pack(T.Twalk(2, 0, 1, ["hello"]))[:10])
    c.sock.shutdown(socket.SHUT_WR)
    assert _closed(c)
    _server_still_serves(connect)


def test_random_garbage_never_hangs_or_kills_the_server(raw):
    _, connect = raw
    rng = random.Random(9)
    for i in range(30):
        c = connect(timeout=5)
        if i % 2:
            c.start()
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        if i % 3 == 0:                 # a plausible size with a junk body
            junk = struct.pack("<I", len(junk) + 4) + junk
        c.send(junk)
        c.sock.shutdown(socket.SHUT_WR)
        while True:                    # replies, then a clean close
            r = c.recv()
            if r is None:
                break
            assert isinstance(r, (T.Rerror, T.Rversion, T.Rattach, T.Rflush,
                                  T.Rwalk, T.Rstat, T.Rclunk, T.Rread))
        c.close()
    _server_still_serves(connect)


def test_long_error_text_is_clipped(serve_9p):
    from upas.ninep import Error, Node

    class Loud(Node):
        qid = Qid(QTDIR, 0, 1)

        def walk(self, name):
            raise Error("x" * 70000)

    addr = serve_9p(lambda u, a: Loud())
    with RawConn(addr) as c:
        c.start()
        e = err(c.rpc(T.Twalk(2, 0, 1, ["a"])))
        assert e == "x" * 200


def test_hangup_clunks_open_fids(serve_9p):
    from upas.ninep import Node, Open
    clunked = []

    class F(Open):
        def clunk(self):
            clunked.append(1)

    class Root(Node):
        qid = Qid(QTDIR, 0, 1)

        def open(self, mode, user):
            return F()

    addr = serve_9p(lambda u, a: Root())
    c = RawConn(addr)
    c.start()
    c.rpc(T.Topen(2, 0, OREAD))
    c.close()
    deadline = time.time() + 5
    while not clunked and time.time() < deadline:
        time.sleep(0.01)
    assert clunked == [1]


# ---- serving a socket passed as stdin -------------------------------------

CHILD = """
import sys
from tests.fixtures.ninep import sample_tree
from upas.ninep import Server
root = sample_tree()
Server(lambda u, a: root).serve_fd(*map(int, sys.argv[1:]))
"""


@pytest.mark.parametrize("fds", [["0"], ["0", "1"]])
def test_serve_fd_on_a_socketpair_child(fds):
    """As pop3 starts upas/fs: one socketpair end as the child's stdin (and
    stdout)."""
    ours, theirs = socket.socketpair()
    repo = Path(__file__).resolve().parents[1]
    out = theirs if len(fds) == 2 else None
    child = subprocess.Popen([sys.executable, "-c", CHILD, *fds], stdin=theirs,
                             stdout=out, cwd=repo,
                             env=dict(os.environ, PYTHONPATH=str(repo)))
    theirs.close()
    try:
        from upas.ninep import Client
        with Client(ours, uname="glenda") as c:
            assert c.read("hello") == b"hello, world\n"
            assert len(c.readdir("many")) == 100
        assert child.wait(timeout=10) == 0      # EOF on stdin ends the server
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_debug_trace_hides_data(raw, caplog):
    import logging
    _, connect = raw
    c = attached(connect)
    with caplog.at_level(logging.DEBUG, logger="upas.ninep"):
        c.rpc(T.Twalk(2, 0, 1, ["ctl"]))
        c.rpc(T.Topen(3, 1, OWRITE))
        c.rpc(T.Twrite(4, 1, 0, b"key proto=pass !password=sekrit"))
    text = caplog.text
    assert "<- Twalk tag=2 fid=0 newfid=1 wname=['ctl']" in text
    assert "<- Twrite tag=4 fid=1 offset=0 data=<31 bytes>" in text
    assert "-> Rwrite tag=4 count=31" in text
    assert "sekrit" not in text


def test_backpressure_bounds_queued_requests(raw, monkeypatch):
    """With every slot taken by blocked reads, the server stops reading
    (memory stays bounded) yet answers again once they finish."""
    from upas.ninep import server
    root, connect = raw
    monkeypatch.setattr(server, "MAX_INFLIGHT", 4)
    c = attached(connect)
    gate = root.kids["gate"]
    for i in range(4):
        c.rpc(T.Twalk(1, 0, 10 + i, ["gate"]))
        c.rpc(T.Topen(2, 10 + i, OREAD))
        c.send(T.Tread(100 + i, 10 + i, 0, 10))
    for i in range(4):
        assert gate.waiting.acquire(timeout=5)
    c.send(T.Tstat(200, 0))
    c.sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        c.sock.recv(1)              # not read, let alone answered, yet
    c.sock.settimeout(5)
    gate.event.set()
    tags = {c.recv().tag for _ in range(5)}
    assert tags == {100, 101, 102, 103, 200}


@pytest.mark.parametrize("inline", [False, True])
def test_unencodable_replies_become_rerror(serve_9p, inline):
    """(inline: the reader thread's own fast path answers them)"""
    from upas.ninep import Node

    class Bad(Node):
        qid = Qid(0, 0, 2)

        def stat(self):
            return Stat(qid=self.qid, name="bad", length=-1)   # out of range

    class Huge(Node):
        qid = Qid(0, 0, 3)

        def stat(self):
            return Stat(qid=self.qid, name="h" * 9000)         # > msize 8192

    class Root(Node):
        qid = Qid(QTDIR, 0, 1)

        def walk(self, name):
            return Bad() if name == "bad" else Huge()

        def stat(self):
            return Stat(qid=self.qid, name="/")

    addr = serve_9p(lambda u, a: Root(), inline=inline)
    with RawConn(addr) as c:
        c.start(msize=8192)
        for i in range(300):      # more than MAX_WORKERS: no worker is lost
            c.rpc(T.Twalk(1, 0, 1, ["bad"]))
            assert err(c.rpc(T.Tstat(2, 1))) == "internal error: bad reply"
            c.rpc(T.Tclunk(3, 1))
        c.rpc(T.Twalk(1, 0, 1, ["huge"]))
        assert err(c.rpc(T.Tstat(2, 1))) == "reply too large"
        assert c.rpc(T.Tstat(4, 0)).stat.name == "/"


# ---- a whole file's walk, open, read and clunk in one write (inline) --------

class _Failing(Open):
    """A file whose read (or clunk) fails."""

    def __init__(self, when: str):
        self.when = when

    def read(self, offset, count):
        if self.when == "read":
            raise Error("i/o error")
        return b"data"

    def clunk(self):
        if self.when == "clunk":
            raise Error("clunk failed")


def _whole_file_tree():
    from tests.fixtures.ninep import MemFile
    root = sample_tree()
    for when in ("read", "clunk"):
        f = root.add(MemFile(f"fail-{when}", b""))
        f.open = lambda mode, user, when=when: _Failing(when)
    return root


WHOLE_FILES = [  # (walk names, open mode, read offset, count)
    (["hello"], OREAD, 0, 8192), (["hello"], OREAD, 7, 3), (["big"], OREAD, 100, 1 << 20),
    (["sub", "ünïcødé.txt"], OREAD, 0, 100), (["many", "42"], OREAD, 40, 10),
    (["sub"], OREAD, 0, 8192), (["nope"], OREAD, 0, 10), (["sub", "nope"], OREAD, 0, 10),
    (["ctl"], OREAD, 0, 10), (["ro"], OWRITE, 0, 10), (["hello"], OREAD | OTRUNC, 0, 10),
    (["fail-read"], OREAD, 0, 10), (["fail-clunk"], OREAD, 0, 10), (["many", ".."], OREAD, 0, 10),
]


@pytest.mark.parametrize("names,mode,offset,count", WHOLE_FILES)
def test_whole_file_read_in_one_write_answers_as_one_by_one(serve_9p, names, mode, offset, count):
    """The inline server answers a Twalk to a new fid and that fid's
    Topen, Tread and Tclunk sent in one write (ninep/batch.py's read of a
    small file) by a path of its own; the replies are those the four get
    sent one at a time, errors included, and the fid is gone after."""
    tree = _whole_file_tree()
    addr = serve_9p(lambda u, a: tree, inline=True)
    reqs = [T.Twalk(10, 0, 5, names), T.Topen(11, 5, mode), T.Tread(12, 5, offset, count),
            T.Tclunk(13, 5)]
    with RawConn(addr) as one, RawConn(addr) as together:
        one.start()
        together.start()
        want = [codec.pack(one.rpc(m)) for m in reqs]
        together.send(b"".join(codec.pack(m) for m in reqs))
        got = [codec.pack(together.recv()) for _ in reqs]
        assert got == want
        assert err(together.rpc(T.Tclunk(14, 5))) == "unknown fid"
        assert isinstance(together.rpc(T.Twalk(15, 0, 5, ["hello"])), T.Rwalk)


def test_whole_file_read_to_a_fid_in_use_is_refused(serve_9p):
    addr = serve_9p(lambda u, a: _whole_file_tree(), inline=True)
    with RawConn(addr) as c:
        c.start()
        assert isinstance(c.rpc(T.Twalk(1, 0, 5, ["ro"])), T.Rwalk)
        c.send(b"".join(codec.pack(m) for m in [
            T.Twalk(10, 0, 5, ["hello"]), T.Topen(11, 5, OREAD), T.Tread(12, 5, 0, 100),
            T.Tclunk(13, 5)]))
        assert err(c.recv()) == "fid in use"
        assert isinstance(c.recv(), T.Ropen)            # fid 5 is still "ro"
        assert c.recv().data == b"read only\n"
        assert isinstance(c.recv(), T.Rclunk)


# ---- a client's connection handed over (fsbroker.py) ------------------------

def _hand_over(addr: str, handed: socket.socket, attach: codec.Tattach) -> str:
    """As the broker does: version, the hand-over probe, then the client's
    Tattach with its socket; the probe's answer."""
    with RawConn(addr) as broker:
        assert isinstance(broker.rpc(T.Tversion(msize=8192)), T.Rversion)
        answer = err(broker.rpc(T.Tauth(0, 0, "", HANDOVER_ANAME)))
        if answer == HANDOVER_ANAME:
            broker.sock.sendmsg([codec.pack(attach)], [(
                socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [handed.fileno()]))])
        return answer


def test_a_handed_over_connection_is_served_on_the_clients_socket(serve_9p):
    """A server made with handover takes the client's socket with the
    client's Tattach (SCM_RIGHTS) and answers it, and everything after,
    on that socket; the hander's connection is closed by then."""
    addr = serve_9p(lambda u, a: sample_tree(), inline=True, handover=True)
    client, theirs = socket.socketpair()
    client.settimeout(5)
    with client:
        answer = _hand_over(addr, theirs, T.Tattach(7, 0, NOFID, "glenda", ""))
        assert answer == HANDOVER_ANAME
        theirs.close()                       # the broker's copy
        assert isinstance(codec.read_msg(client, 8192), T.Rattach)
        client.sendall(b"".join(codec.pack(m) for m in [
            T.Twalk(8, 0, 1, ["hello"]), T.Topen(9, 1, OREAD), T.Tread(10, 1, 0, 100),
            T.Tclunk(11, 1)]))
        replies = [codec.read_msg(client, 8192) for _ in range(4)]
        assert [type(r) for r in replies] == [T.Rwalk, T.Ropen, T.Rread, T.Rclunk]
        assert replies[2].data == b"hello, world\n"


def test_no_handover_unless_the_server_takes_it(serve_9p):
    """Without handover the probe gets the server's usual refusal (the
    broker then splices), and a descriptor sent along is not taken."""
    addr = serve_9p(lambda u, a: sample_tree(), inline=True, auth_error="no auth here")
    client, theirs = socket.socketpair()
    with client, theirs:
        assert _hand_over(addr, theirs, T.Tattach(7, 0, NOFID, "glenda", "")) == "no auth here"
