"""The servers' shared transport (upas/transport): the buffered connection,
its TLS on a socket and on a pair of pipes, writev through short writes;
and pop3's Plan 9 flag parsing."""
import os
import socket
import ssl
import threading

import pytest
import trustme

from upas.pop3 import __main__ as drv
from upas.transport import conn as tconn
from upas.transport.conn import Conn
from upas.transport.tls import server_context


def test_flags_as_argbegin():
    assert drv.parse_flags(["-p", "-r", "1.2.3.4!99", "-tcert.pem", "-x"]) == [
        ("p", ""), ("r", "1.2.3.4!99"), ("t", "cert.pem"), ("x", "")]
    assert drv.parse_flags(["-pd", "dbg", "-a/mail/box/glenda/mbox"]) == [
        ("p", ""), ("d", "dbg"), ("a", "/mail/box/glenda/mbox")]
    assert drv.parse_flags(["-p", "--", "-t", "x"]) == [("p", "")]
    with pytest.raises(drv.UsageError):
        drv.parse_flags(["-t"])


def test_peer_from_r_flag_drops_port():
    r, w = os.pipe()
    o = drv.options([("r", "10.0.0.7!4321"), ("z", "")], r)
    os.close(r)
    os.close(w)
    assert o.peer == "10.0.0.7" and not o.allow_clear and o.tls_cert is None


def test_unreadable_certificate_is_reported(tmp_path):
    err = drv.options([("t", str(tmp_path / "missing.pem"))])
    assert err.startswith("cannot read TLS certificate: ")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    path = tmp_path_factory.mktemp("tls") / "cert.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(path))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return str(path), client


def _serve_once(conn: Conn, ctx: ssl.SSLContext, done: list) -> None:
    """A stand-in session: greet, take STLS, echo one line over TLS."""
    conn.write(b"+OK hello\r\n")
    assert conn.recv() == b"STLS\r\n"
    conn.write(b"+OK\r\n")
    done.append(conn.start_tls(ctx))
    line = conn.recv()
    conn.write(b"echo " + line)
    conn.close()


def _client(sock: socket.socket, client_ctx: ssl.SSLContext) -> bytes:
    f = sock.makefile("rb")
    assert f.readline() == b"+OK hello\r\n"
    sock.sendall(b"STLS\r\n")
    assert f.readline() == b"+OK\r\n"
    tls = client_ctx.wrap_socket(sock, server_hostname="localhost")
    tls.sendall(b"secret line\r\n")
    out = b""
    while not out.endswith(b"\n"):
        out += tls.recv(100)
    return out


def _echo_over_tls(conn: Conn, client: socket.socket, certs) -> None:
    certfile, client_ctx = certs
    done: list = []
    t = threading.Thread(target=_serve_once, args=(conn, server_context(certfile), done))
    t.start()
    assert _client(client, client_ctx) == b"echo secret line\r\n"
    t.join(10)
    assert done and done[0].startswith("TLSv1.")


def test_tls_on_a_socket(certs):
    a, b = socket.socketpair()
    _echo_over_tls(Conn(b.fileno(), b.fileno()), a, certs)


def _relay(src_fd: int, dst: socket.socket) -> None:
    try:
        while data := os.read(src_fd, 4096):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:             # the client has gone (its close_notify too late)
        pass


def _relay_back(src: socket.socket, dst_fd: int) -> None:
    try:
        while data := src.recv(4096):
            os.write(dst_fd, data)
    except OSError:             # reset: the client closed with our close_notify unread
        pass
    os.close(dst_fd)


def test_tls_on_pipes(certs):
    """stdin and stdout are two pipes: the same stream runs over them."""
    to_srv_r, to_srv_w = os.pipe()
    from_srv_r, from_srv_w = os.pipe()
    a, b = socket.socketpair()
    threading.Thread(target=_relay, args=(from_srv_r, b), daemon=True).start()
    threading.Thread(target=_relay_back, args=(b, to_srv_w), daemon=True).start()
    _echo_over_tls(Conn(to_srv_r, from_srv_w), a, certs)
    os.close(from_srv_w)
    os.close(to_srv_r)


def test_output_is_sent_whole_through_short_writes(monkeypatch):
    """Conn sends its buffered chunks with writev: more chunks than one
    writev takes, and writes the kernel cuts short, still arrive whole and
    in order."""
    real = os.writev
    calls = []

    def short_writev(fd, bufs):
        calls.append(len(bufs))
        part, room = [], 7                     # at most 7 bytes a call
        for b in bufs:
            if room <= 0:
                break
            part.append(bytes(b[:room]))
            room -= len(part[-1])
        return real(fd, part)

    monkeypatch.setattr(tconn.os, "writev", short_writev)
    r, w = os.pipe()
    chunks = [b"%d," % i for i in range(1500)] + [b"x" * 70_000]
    got = bytearray()
    conn = Conn(r, w)
    done = threading.Event()

    def drain():
        while chunk := os.read(r, 65536):
            got.extend(chunk)
        done.set()
    reader = threading.Thread(target=drain)
    reader.start()
    for c in chunks:
        conn.write(c)                          # the last one flushes (64 KiB)
    conn.write(b"end")
    conn.flush()
    os.close(w)
    assert done.wait(30)
    reader.join()
    os.close(r)
    assert bytes(got) == b"".join(chunks) + b"end"
    assert max(calls) <= tconn.IOV_MAX and len(calls) > 1500 // 7


class _BioClient:
    """A TLS client over a socket whose raw bytes the test controls."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext):
        self.sock = sock
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inb, self.outb, server_hostname="localhost")

    def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                self.sock.sendall(self.outb.read())
                return
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outb.read())
                self.inb.write(self.sock.recv(65536))

    def record(self, data: bytes) -> bytes:
        self.obj.write(data)
        return self.outb.read()


def _stalled(certs, send_first) -> float:
    """Seconds until the server side gives up on a client that stops after
    `send_first(sock, client)`; the deadline is 0.5 s away."""
    import time
    certfile, client_ctx = certs
    a, b = socket.socketpair()
    conn = Conn(b.fileno(), b.fileno())
    client = _BioClient(a, client_ctx)
    got: list = []

    def server():
        t = time.monotonic()
        try:
            conn.start_tls(server_context(certfile), t + 5)
            t = time.monotonic()
            conn.recv(until=t + 0.5)
        except TimeoutError:
            got.append(time.monotonic() - t)
    th = threading.Thread(target=server)
    th.start()
    send_first(a, client)
    th.join(10)
    a.close()
    b.close()
    assert got, "the server did not time out"
    return got[0]


def test_half_a_tls_record_holds_a_session_no_longer_than_nothing(certs):
    """A client that sends part of a record is given up on at the same
    deadline as a silent one (the wait is for a whole record)."""
    def half_record(sock, client):
        client.handshake()
        rec = client.record(b"CAPA\r\n")
        sock.sendall(rec[:len(rec) // 2])
    assert 0.4 < _stalled(certs, half_record) < 3


def test_handshake_has_the_sessions_deadline(certs):
    """A client that stops in the middle of its hello does not hold the
    server past the deadline it was given."""
    import time
    certfile, client_ctx = certs
    a, b = socket.socketpair()
    conn = Conn(b.fileno(), b.fileno())
    client = _BioClient(a, client_ctx)
    try:
        client.obj.do_handshake()
    except ssl.SSLWantReadError:
        hello = client.outb.read()
    a.sendall(hello[:20])
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        conn.start_tls(server_context(certfile), t + 0.5)
    assert 0.4 < time.monotonic() - t < 3
    a.close()
    b.close()


def test_deadlines_restart_on_commands_and_login_ends_the_login_clock():
    from upas.transport.conn import IDLE, LOGIN, Deadlines
    d = Deadlines(idle=100, login=10)
    until, which = d.next(logged_in=False)
    assert which == LOGIN
    d.restart()
    assert d.next(logged_in=False) == (until, LOGIN)       # commands do not move it
    assert d.next(logged_in=True)[1] == IDLE
    short = Deadlines(idle=1, login=10)
    assert short.next(logged_in=False)[1] == IDLE          # whichever comes first
