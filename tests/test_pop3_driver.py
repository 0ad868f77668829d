"""The stdin/stdout driver of upas/pop3: Plan 9 flag parsing and the
transport, TLS included, on a socket and on a pair of pipes (MemoryBIO)."""
import os
import socket
import ssl
import threading

import pytest
import trustme

from upas.pop3 import __main__ as drv


def test_flags_as_argbegin():
    assert drv.parse_flags(["-p", "-r", "1.2.3.4!99", "-tcert.pem", "-x"]) == [
        ("p", ""), ("r", "1.2.3.4!99"), ("t", "cert.pem"), ("x", "")]
    assert drv.parse_flags(["-pd", "dbg", "-a/mail/box/glenda/mbox"]) == [
        ("p", ""), ("d", "dbg"), ("a", "/mail/box/glenda/mbox")]
    assert drv.parse_flags(["-p", "--", "-t", "x"]) == [("p", "")]
    with pytest.raises(drv.UsageError):
        drv.parse_flags(["-t"])


def test_peer_from_r_flag_drops_port():
    class NoSock:
        def peer(self):
            return None
    o = drv.options([("r", "10.0.0.7!4321"), ("z", "")], NoSock())
    assert o.peer == "10.0.0.7" and not o.allow_clear and o.tls_ctx is None


def test_unreadable_certificate_is_reported(tmp_path):
    class NoSock:
        def peer(self):
            return None
    err = drv.options([("t", str(tmp_path / "missing.pem"))], NoSock())
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


def _serve_once(conn: drv.Conn, ctx: ssl.SSLContext, done: list) -> None:
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


def test_tls_on_a_socket(certs):
    certfile, client_ctx = certs
    a, b = socket.socketpair()
    conn = drv.Conn(b.fileno(), b.fileno())
    done: list = []
    t = threading.Thread(target=_serve_once, args=(conn, drv.tls_context(certfile), done))
    t.start()
    assert _client(a, client_ctx) == b"echo secret line\r\n"
    t.join(10)
    assert done and done[0].startswith("TLSv1.")


def _relay(src_fd: int, dst: socket.socket) -> None:
    while data := os.read(src_fd, 4096):
        dst.sendall(data)
    dst.shutdown(socket.SHUT_WR)


def _relay_back(src: socket.socket, dst_fd: int) -> None:
    while data := src.recv(4096):
        os.write(dst_fd, data)
    os.close(dst_fd)


def test_tls_on_pipes(certs):
    """stdin and stdout are two pipes: the handshake runs through MemoryBIO."""
    certfile, client_ctx = certs
    to_srv_r, to_srv_w = os.pipe()
    from_srv_r, from_srv_w = os.pipe()
    conn = drv.Conn(to_srv_r, from_srv_w)
    assert conn.sock is None
    a, b = socket.socketpair()
    threading.Thread(target=_relay, args=(from_srv_r, b), daemon=True).start()
    threading.Thread(target=_relay_back, args=(b, to_srv_w), daemon=True).start()
    done: list = []
    t = threading.Thread(target=_serve_once, args=(conn, drv.tls_context(certfile), done))
    t.start()
    assert _client(a, client_ctx) == b"echo secret line\r\n"
    t.join(10)
    assert done and done[0].startswith("TLSv1.")
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

    monkeypatch.setattr(drv.os, "writev", short_writev)
    r, w = os.pipe()
    chunks = [b"%d," % i for i in range(1500)] + [b"x" * 70_000]
    got = bytearray()
    conn = drv.Conn(r, w)
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
    assert max(calls) <= drv.IOV_MAX and len(calls) > 1500 // 7
