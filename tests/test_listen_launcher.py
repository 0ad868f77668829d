"""The launcher (python -m upas.listen) with a trivial service: one process
per connection on the socket, `-r ip!port`, limits, log lines, TLS
termination, SIGTERM."""
import os
import sys
import signal
import socket
import ssl
import time

import pytest

from upas import listen

pytestmark = pytest.mark.timeout(60)

# A service that says who it is told the peer is, then echoes.
ECHO = "echo tcp!127.0.0.1!0 /bin/sh -c 'echo \"peer $2 pid $$\"; exec cat' sh\n"
TLSECHO = "techo tcp!127.0.0.1!0 tls /bin/sh -c 'echo \"peer $2\"; exec cat' sh\n"


@pytest.fixture
def conf(tmp_path):
    p = tmp_path / "listen.conf"
    p.write_text("# test services\n" + ECHO + TLSECHO)
    return p


def connect(la, name):
    s = socket.create_connection(("127.0.0.1", la.port(name)), timeout=10)
    return s, s.makefile("rwb", buffering=0)


def hangup(s, f):
    f.close()          # the socket's fd stays open while its file object lives
    s.close()


def wait_log(la, pred, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        hits = [line for line in la.log if pred(line)]
        if hits:
            return hits
        time.sleep(0.02)
    raise AssertionError(f"no such log line in {la.log}")


def test_one_process_per_connection_with_peer(launcher, conf):
    la = launcher(["-c", str(conf), "echo"])
    s1, f1 = connect(la, "echo")
    s2, f2 = connect(la, "echo")
    l1, l2 = f1.readline().decode().split(), f2.readline().decode().split()
    assert l1[:2] == ["peer", f"127.0.0.1!{s1.getsockname()[1]}"]
    assert l2[:2] == ["peer", f"127.0.0.1!{s2.getsockname()[1]}"]
    assert l1[3] != l2[3]                     # two processes
    p1 = s1.getsockname()[1]
    f1.write(b"hello\n")
    assert f1.readline() == b"hello\n"
    hangup(s1, f1)
    hangup(s2, f2)
    wait_log(la, lambda l: l.startswith(f"listen: echo 127.0.0.1!{p1} pid "))


def test_one_log_line_per_connection(launcher, conf):
    la = launcher(["-c", str(conf), "echo"])
    ports = []
    for _ in range(3):
        s, f = connect(la, "echo")
        ports.append(s.getsockname()[1])
        f.readline()
        hangup(s, f)
    for p in ports:
        hits = wait_log(la, lambda l, p=p: f"127.0.0.1!{p} " in l)
        assert len(hits) == 1
        assert hits[0].startswith(f"listen: echo 127.0.0.1!{p} pid ")


def test_limit_per_peer(launcher, conf):
    la = launcher(["-c", str(conf), "-M", "1", "echo"])
    s1, f1 = connect(la, "echo")
    assert f1.readline().startswith(b"peer")
    s2, f2 = connect(la, "echo")
    assert f2.read() == b""                  # closed at once: no server
    wait_log(la, lambda l: "refused: too many connections from peer" in l)
    hangup(s1, f1)
    hangup(s2, f2)
    wait_log(la, lambda l: "exit" in l)
    s3, f3 = connect(la, "echo")             # the slot is free again
    assert f3.readline().startswith(b"peer")
    hangup(s3, f3)


def test_limit_per_service_with_busy_reply(launcher, tmp_path):
    conf = tmp_path / "c"
    conf.write_text("pop3 tcp!127.0.0.1!0 /bin/sh -c 'echo up; exec cat' sh\n")
    # The `pop3` name is ours only as a command; here it is a plain script,
    # so no busy text: the connection is just closed.
    la = launcher(["-c", str(conf), "-m", "1", "pop3"])
    s1, f1 = connect(la, "pop3")
    assert f1.readline() == b"up\n"
    s2, f2 = connect(la, "pop3")
    assert f2.read() == b""
    wait_log(la, lambda l: l.endswith("s") and "refused: too many connections " in l)
    hangup(s1, f1)
    hangup(s2, f2)


def test_per_service_flags(launcher, conf):
    la = launcher(["-c", str(conf), "-F", "echo=extra1 extra2", "echo"])
    s, f = connect(la, "echo")
    # argv: sh -c SCRIPT sh extra1 extra2 -r PEER: $2 is now extra2
    assert f.readline().split()[1] == b"extra2"
    hangup(s, f)


def test_tls_terminated_in_launcher(launcher, conf, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    pem = tmp_path / "cert.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    la = launcher(["-c", str(conf), "-t", str(pem), "techo"])
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    raw = socket.create_connection(("127.0.0.1", la.port("techo")), timeout=10)
    port = raw.getsockname()[1]
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        f = s.makefile("rwb", buffering=0)
        assert f.readline() == f"peer 127.0.0.1!{port}\n".encode()
        big = os.urandom(50000).hex().encode() + b"\n"   # fits the socket buffers
        f.write(big)
        assert f.readline() == big
        f.close()
    wait_log(la, lambda l: l.startswith("listen: techo") and "exit" in l)


def test_sigterm_lets_sessions_finish(launcher, conf):
    env = dict(os.environ, LISTEN_GRACE="20")
    la = launcher(["-c", str(conf), "echo"], env)
    s, f = connect(la, "echo")
    f.readline()
    la.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(OSError):            # no longer accepting
        socket.create_connection(("127.0.0.1", la.port("echo")), timeout=2).recv(1)
    f.write(b"still here\n")                # the session goes on
    assert f.readline() == b"still here\n"
    assert la.proc.poll() is None
    hangup(s, f)
    assert la.proc.wait(timeout=10) == 0


def test_sigterm_ends_sessions_after_grace(launcher, conf):
    env = dict(os.environ, LISTEN_GRACE="0.3")
    la = launcher(["-c", str(conf), "echo"], env)
    s, f = connect(la, "echo")
    pid = int(f.readline().split()[3])
    la.proc.send_signal(signal.SIGTERM)
    assert la.proc.wait(timeout=15) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert f.read() == b""
    hangup(s, f)


def test_config_errors():
    with pytest.raises(listen.ConfigError):
        listen.parse_conf("x tcp!h!notaport cmd\n", {})
    with pytest.raises(listen.ConfigError):
        listen.parse_conf("x tcp!h!1\n", {})
    with pytest.raises(listen.ConfigError, match="unknown service"):
        listen.configure(listen.parse_args(["-l", "nosuch=tcp!*!1"]))


def test_defaults_are_the_plan9_services():
    svcs = listen.default_services("/c.pem")
    assert {n: s.addr for n, s in svcs.items()} == {
        "pop3": "tcp!*!110", "imap4d": "tcp!*!143",
        "pop3s": "tcp!*!995", "imaps": "tcp!*!993"}
    assert svcs["pop3"].argv[-3:] == ["upas.pop3", "-t", "/c.pem"]
    assert svcs["pop3s"].tls and svcs["pop3s"].argv[-1] == "-p"
    assert svcs["imaps"].tls and svcs["imaps"].argv[-1] == "-p"
    assert not svcs["imap4d"].tls


def test_tls_relay_does_not_deadlock_on_pipelined_bulk(launcher, conf, tmp_path):
    """The client sends 8 MB while the server echoes it back: the relay
    keeps both directions moving.  (One thread drives the client's TLS
    socket, non-blocking: an SSL object must not be shared by threads.)"""
    import select
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    pem = tmp_path / "cert.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(pem))
    la = launcher(["-c", str(conf), "-t", str(pem), "techo"])
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    raw = socket.create_connection(("127.0.0.1", la.port("techo")), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    greeting = b""
    while not greeting.endswith(b"\n"):
        greeting += s.recv(1)
    blob = (os.urandom(4 * 2**20).hex() + "\n").encode()
    s.setblocking(False)
    sent, got = 0, bytearray()
    deadline = time.monotonic() + 60
    while len(got) < len(blob) and time.monotonic() < deadline:
        select.select([s], [s] if sent < len(blob) else [], [], 1)
        if sent < len(blob):
            try:
                sent += s.send(blob[sent:sent + 65536])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    raise AssertionError(f"EOF after {len(got)} bytes: {la.log}")
                got += chunk
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
    assert bytes(got) == blob
    s.close()


@pytest.mark.parametrize("kind", ["exec", "forkserver"])
def test_a_client_that_reconnects_at_once_is_not_refused(launcher, tmp_path, kind):
    """Issue 13: a connection counts against its peer's limit until it
    closes, not until its server exits.  Here each server winds down for
    3 s after its client hangs up; a client with two connections (-M 2)
    logs out and dials again at once, five times: never refused.  The
    launcher still bounds the processes (maxconns)."""
    conf = tmp_path / "c"
    conf.write_text("slow tcp!127.0.0.1!0 /bin/sh -c 'echo up; cat >/dev/null; sleep 3' sh\n")
    env = dict(os.environ, LISTEN_GRACE="1", LISTEN_FORKSERVER="0" if kind == "exec" else "1")
    la = launcher(["-c", str(conf), "-M", "2", "slow"], env)
    for _ in range(5):
        conns = [connect(la, "slow") for _ in range(2)]
        assert [f.readline() for _, f in conns] == [b"up\n", b"up\n"], la.log
        for s, f in conns:
            hangup(s, f)
    assert not [line for line in la.log if "refused" in line]
    s, f = connect(la, "slow")            # the limit itself still holds
    t, g = connect(la, "slow")
    u, h = connect(la, "slow")
    assert f.readline() == g.readline() == b"up\n" and h.read() == b""
    wait_log(la, lambda l: "refused: too many connections from peer" in l)
    for c in ((s, f), (t, g), (u, h)):
        hangup(*c)


def test_imap_logout_and_dial_again_is_not_refused(launcher, tmp_path):
    """The same with imap4d: three clients (-M 3) each LOGOUT and
    reconnect at once, again and again."""
    from tests.fixtures.acceptor import TESTDATA
    import shutil
    root = tmp_path / "mail"
    shutil.copytree(TESTDATA, root)
    env = dict(os.environ, LISTEN_GRACE="1", MAILROOT=str(root), user="glenda",
               NAMESPACE=str(tmp_path))
    env.pop("upasfs", None)
    la = launcher(["-l", "imap4d=tcp!127.0.0.1!0", "-M", "3", "-F", "imap4d=-a", "imap4d"], env)
    for _ in range(4):
        conns = [connect(la, "imap4d") for _ in range(3)]
        for _, f in conns:
            assert f.readline().startswith(b"* PREAUTH"), la.log
        for s, f in conns:
            f.write(b"a LOGOUT\r\n")
            assert f.readline().startswith(b"* BYE")
            assert f.readline().startswith(b"a OK")
            hangup(s, f)
    assert not [line for line in la.log if "refused" in line], la.log


def test_a_served_connection_has_no_nagle(launcher, tmp_path):
    """A server's socket is TCP_NODELAY: its last short write of a reply
    (IMAP's tagged line after a command's untagged ones) goes out at once
    instead of waiting out the client's delayed acknowledgement (issue 16:
    ~35 ms at the end of every large reply).  The service reads the
    option off its own standard input."""
    conf = tmp_path / "c"
    probe = ("import socket; s = socket.socket(fileno=0); "
             "print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)); s.detach()")
    conf.write_text(f"nd tcp!127.0.0.1!0 {sys.executable} -c '{probe}'\n")
    la = launcher(["-c", str(conf), "nd"])
    s, f = connect(la, "nd")
    assert f.readline() == b"1\n"
    hangup(s, f)
