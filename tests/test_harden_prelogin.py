"""Issue 17, items 4 and 5: before login a client gets little memory and
little time.  Real imap4d and pop3 sessions over sockets.

- Literals before login: a command (its lines and literals) holds at most
  Options.max_login_command bytes (8 KiB); a bigger synchronising literal
  gets `NO [TOOBIG]` and is never sent, a bigger LITERAL+ gets
  `BAD [TOOBIG]` and the connection is closed without reading it
  (RFC 7888 section 4 lets a server reject a non-synchronising literal).
- Slowloris: IMAP4D_LOGIN_TIMEOUT / POP3_LOGIN_TIMEOUT (default 60 s)
  bound how long a connection may stay unauthenticated whatever it
  sends; the idle timers restart on whole commands only.
"""
import socket
import time
from pathlib import Path

import pytest

from tests.fixtures.imap import without_capability_code as nocap

pytestmark = pytest.mark.timeout(90)

BIG = 64 << 20


def rss_kb(pid: int) -> int:
    got = rss_kb_if_alive(pid)
    assert got is not None, "no VmRSS: the session has exited"
    return got


def rss_kb_if_alive(pid: int) -> int | None:
    """The process's resident KB; None once it has exited (a zombie's
    status has no VmRSS line, a reaped one no status at all)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def dribble(sock, data: bytes, every: float = 0.3, limit: float = 10) -> float:
    """Send data every so often until the server hangs up (or `limit`
    seconds); how long that took."""
    t = time.monotonic()
    try:
        while time.monotonic() - t < limit:
            sock.sendall(data)
            time.sleep(every)
    except OSError:
        pass
    return time.monotonic() - t


def session_pid(srv) -> int:
    deadline = time.monotonic() + 10
    while not srv.procs:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return srv.procs[-1].pid


def test_imap_sync_literal_before_login_refused_unsent(imap_factory):
    srv = imap_factory(flags=("-p",))
    c = srv.connect()
    pid = session_pid(srv)
    before = rss_kb(pid)
    c.send(b"a LOGIN {%d}" % BIG)
    assert c.line() == b"a NO [TOOBIG] LOGIN literal too large before login\r\n"
    # lines and literals of one command count together
    c.send(b"b LOGIN {4000}")
    assert c.line().startswith(b"+ ")
    c.sock.sendall(b"x" * 4000 + b" {4500}\r\n")
    assert c.line() == b"b NO [TOOBIG] LOGIN literal too large before login\r\n"
    assert c.cmd(b"n NOOP") == [b"n OK NOOP completed\r\n"]
    assert rss_kb(pid) - before < 4096
    # a login with literals that fit still works
    c.send(b"d LOGIN {6}")
    assert c.line().startswith(b"+ ")
    c.sock.sendall(b"glenda {11+}\r\nglenda-apop\r\n")
    assert nocap(c.until(b"d")[-1]) == b"d OK LOGIN succeeded\r\n"


def test_imap_literal_plus_before_login_closes_unread(imap_factory):
    srv = imap_factory(flags=("-p",))
    c = srv.connect()
    pid = session_pid(srv)
    before = rss_kb(pid)
    c.sock.sendall(b"a LOGIN {%d+}\r\n" % BIG)
    sent = 0
    chunk = b"x" * (1 << 20)
    try:
        while sent < BIG:                   # the client pushes its literal anyway
            c.sock.sendall(chunk)
            sent += len(chunk)
            if sent == 4 << 20:             # alive, it has not read the literal in;
                rss = rss_kb_if_alive(pid)  # gone, it hung up without reading it
                assert rss is None or rss - before < 4096
    except OSError:                         # reset or broken pipe: hung up on
        pass
    assert sent < BIG
    assert c.line() == b"a BAD [TOOBIG] LOGIN literal too large before login\r\n"
    assert c.line() == b"* BYE literal too large before login\r\n"
    assert c.file.read() == b""


def test_imap_login_deadline_whatever_the_client_sends(imap_factory):
    srv = imap_factory(flags=("-p",), env={"IMAP4D_LOGIN_TIMEOUT": "1.5",
                                           "IMAP4D_IDLE_TIMEOUT": "30"})
    t = time.monotonic()                    # before the session (and its deadline) starts
    c = srv.connect()
    # whole commands and a byte at a time: none of it extends the deadline
    assert c.cmd(b"a CAPABILITY")[-1].startswith(b"a OK")
    with pytest.raises(OSError):
        while time.monotonic() - t < 10:
            c.sock.sendall(b"n")
            time.sleep(0.2)
            c.sock.sendall(b"\r\n" if int(time.monotonic() * 5) % 4 == 0 else b"")
    lines = c.file.read().splitlines()
    assert b"* BYE Autologout; no login in time" in lines
    assert 1.4 < time.monotonic() - t < 6


def test_imap_login_deadline_is_gone_after_login(imap_factory):
    srv = imap_factory(flags=("-p",), env={"IMAP4D_LOGIN_TIMEOUT": "1"})
    c = srv.connect()
    assert nocap(c.cmd(b"a LOGIN glenda glenda-apop")[-1]) == b"a OK LOGIN succeeded\r\n"
    time.sleep(1.5)
    assert c.cmd(b"b NOOP") == [b"b OK NOOP completed\r\n"]


def test_imap_idle_timer_counts_whole_commands_only(imap_factory):
    srv = imap_factory(flags=("-a",), auth=False, env={"IMAP4D_IDLE_TIMEOUT": "1.5"})
    c = srv.connect()
    took = dribble(c.sock, b"x")             # one byte now and then, never a line
    assert c.file.read().endswith(b"* BYE Autologout; idle for too long\r\n")
    assert 1.4 < took < 6


def test_pop3_login_deadline_and_byte_dribble(pop3_factory):
    srv = pop3_factory(env={"POP3_LOGIN_TIMEOUT": "1.5", "POP3_IDLE_TIMEOUT": "30"})
    t = time.monotonic()                    # before the session (and its deadline) starts
    c = srv.connect()
    assert c.cmd(b"CAPA").startswith(b"+OK")
    c.multi()
    dribble(c.sock, b"N")
    assert c.file.read() == b""                      # RFC 1939: closed, no reply
    assert 1.4 < time.monotonic() - t < 6
    srv.wait_idle()


def test_pop3_idle_timer_counts_whole_lines_only(pop3_factory):
    srv = pop3_factory(env={"POP3_IDLE_TIMEOUT": "1.5"})
    c = srv.connect()
    assert c.apop("glenda", "glenda-apop").startswith(b"+OK")
    took = dribble(c.sock, b"S")
    assert c.file.read() == b""
    assert 1.4 < took < 6


def test_slow_clients_do_not_fill_the_launcher(tmp_path):
    """As many slowloris connections as the launcher takes from one peer
    (-M, 10) are dropped at the login deadline; the service answers again."""
    from tests.fixtures.host import start_host
    host = start_host(tmp_path / "run", extra_env={"POP3_LOGIN_TIMEOUT": "1.5"})
    try:
        addr = host.addrs["pop3"]
        hogs = [socket.create_connection(addr, timeout=10) for _ in range(10)]
        for h in hogs:
            assert h.recv(200).startswith(b"+OK")
            h.sendall(b"U")
        s = socket.create_connection(addr, timeout=10)
        assert s.recv(100) == b"-ERR too many connections\r\n"
        s.close()
        t = time.monotonic()
        for h in hogs:                              # hung up at the deadline
            while h.recv(4096):
                pass
        assert time.monotonic() - t < 8
        deadline = time.monotonic() + 10
        while True:
            s = socket.create_connection(addr, timeout=10)
            greeting = s.recv(200)
            s.close()
            if greeting.startswith(b"+OK"):
                break
            assert time.monotonic() < deadline, greeting
            time.sleep(0.1)
    finally:
        host.stop()
