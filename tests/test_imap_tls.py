"""STARTTLS with `-t certfile` and implicit TLS with `-T` (docs/decisions.md:
built in, as Plan 9 had neither; RFC 3501 6.2.1)."""
from __future__ import annotations

import socket
import ssl

import pytest
import trustme


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def certfile(ca, tmp_path):
    path = tmp_path / "cert.pem"
    ca.issue_cert("imap.test", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(path))
    return str(path)


def client_ctx(ca) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def lines_until(f, tag: bytes) -> list[bytes]:
    out = []
    while True:
        line = f.readline()
        assert line, out
        out.append(line)
        if line.startswith(tag + b" "):
            return out


def test_starttls_offered_and_negotiated(imap_factory, certfile, ca):
    srv = imap_factory(flags=("-t", certfile), auth=False)
    c = srv.connect()
    assert c.greeting == b"* OK imap.test IMAP4rev1 server ready\r\n"
    caps = c.cmd(b"a CAPABILITY")[0].split()
    assert b"STARTTLS" in caps
    # a command pipelined after STARTTLS in the clear must not run over TLS
    c.sock.sendall(b"b STARTTLS\r\nc NOOP\r\n")
    assert c.line() == b"b OK STARTTLS begin TLS negotiation now\r\n"
    tls = client_ctx(ca).wrap_socket(c.sock, server_hostname="imap.test")
    f = tls.makefile("rwb", buffering=0)
    f.write(b"d CAPABILITY\r\n")
    lines = lines_until(f, b"d")
    assert lines[0].startswith(b"* CAPABILITY IMAP4REV1 ") and b"STARTTLS" not in lines[0].split()
    assert lines[-1] == b"d OK CAPABILITY\r\n" and len(lines) == 2   # no reply to "c NOOP"
    assert tls.version() in ("TLSv1.2", "TLSv1.3")
    f.write(b"e STARTTLS\r\n")
    assert lines_until(f, b"e") == [b"e BAD STARTTLS tls already started\r\n"]
    f.write(b"f LOGOUT\r\n")
    assert lines_until(f, b"f")[-1] == b"f OK LOGOUT completed\r\n"
    tls.close()


def test_starttls_without_certificate(imap_factory):
    srv = imap_factory(auth=False)
    c = srv.connect()
    assert b"STARTTLS" not in c.cmd(b"a CAPABILITY")[0].split()
    assert c.cmd(b"b STARTTLS") == [b"b NO STARTTLS don't have any tls credentials\r\n"]
    assert c.cmd(b"c NOOP") == [b"c OK NOOP completed\r\n"]
    c.close()


def test_starttls_only_before_login(imap_factory, certfile):
    srv = imap_factory(flags=("-a", "-t", certfile), auth=False)
    c = srv.connect()
    assert b"STARTTLS" not in c.cmd(b"a CAPABILITY")[0].split()
    assert c.cmd(b"b STARTTLS") == [b"b BAD STARTTLS illegal command\r\n"]
    c.close()


def test_implicit_tls(imap_factory, certfile, ca):
    srv = imap_factory(flags=("-t", certfile, "-T"), auth=False)
    raw = socket.create_connection(srv.addr, timeout=20)
    tls = client_ctx(ca).wrap_socket(raw, server_hostname="imap.test")
    f = tls.makefile("rwb", buffering=0)
    assert f.readline() == b"* OK imap.test IMAP4rev1 server ready\r\n"
    f.write(b"a CAPABILITY\r\n")
    assert b"STARTTLS" not in lines_until(f, b"a")[0].split()
    f.write(b"b LOGOUT\r\n")
    assert lines_until(f, b"b")[-1] == b"b OK LOGOUT completed\r\n"
    tls.close()


def test_bad_handshake_ends_session_cleanly(imap_factory, certfile):
    srv = imap_factory(flags=("-t", certfile, "-T"), auth=False)
    raw = socket.create_connection(srv.addr, timeout=20)
    raw.sendall(b"a LOGIN glenda secret\r\n")      # cleartext where TLS is due
    raw.settimeout(10)
    data = raw.recv(4096)
    assert b"secret" not in data and b"OK" not in data
    raw.close()
    srv.wait_idle(10)
    assert all(p.poll() is not None for p in srv.procs)


def test_idle_over_tls_reports_delivery(imap_factory, certfile, ca):
    """IDLE's updates come from another thread: they must cross TLS intact."""
    import subprocess
    import sys
    import time
    srv = imap_factory(flags=("-a", "-t", certfile, "-T"), auth=False)
    tls = client_ctx(ca).wrap_socket(socket.create_connection(srv.addr, timeout=20),
                                     server_hostname="imap.test")
    f = tls.makefile("rwb", buffering=0)
    f.readline()
    f.write(b"a SELECT INBOX\r\n")
    lines_until(f, b"a")
    f.write(b"b IDLE\r\n")
    assert f.readline() == b"+ idling, waiting for done\r\n"
    for i in range(2):
        subprocess.run([sys.executable, "-m", "upas.mbappend", str(srv.box())],
                       input=b"Subject: over tls %d\n\nhi\n" % i, env=srv.env, check=True)
        t0 = time.monotonic()
        assert f.readline() == b"* %d EXISTS\r\n" % (9 + i)
        assert f.readline() == b"* %d RECENT\r\n" % (9 + i)
        assert time.monotonic() - t0 < 1.0
    f.write(b"DONE\r\n")
    assert lines_until(f, b"b") == [b"b OK IDLE terminated\r\n"]
    tls.close()
