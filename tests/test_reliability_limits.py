"""Limits and slow clients (issue 9), at the real servers: overlong lines,
oversized literals and 9P messages get a clear error and nothing is lost;
a client that stalls mid-command is logged out after the idle timeout
(IMAP4D_IDLE_TIMEOUT, POP3_IDLE_TIMEOUT) and holds no lock meanwhile.
Sessions per peer: the launcher's -M (tests/test_listen_launcher.py).
"""
import struct
import subprocess
import sys
import time

from upas.mail.lock import MailLock

IDLE = {"IMAP4D_IDLE_TIMEOUT": "1", "POP3_IDLE_TIMEOUT": "1"}


def _deliver(root, box="glenda"):
    p = subprocess.run([sys.executable, "-m", "upas.mbappend", f"/mail/box/{box}/mbox"],
                       input=b"Subject: during a stall\n\nhi\n", timeout=30,
                       env={**__import__("os").environ, "MAILROOT": str(root), "user": box})
    assert p.returncode == 0


def test_imap_slow_loris_times_out_without_holding_the_lock(imap_factory):
    srv = imap_factory(flags=("-a",), auth=False, env=IDLE)
    before = srv.box().read_bytes()
    c = srv.connect()
    assert c.cmd(b"a SELECT INBOX")[-1].startswith(b"a OK")
    c.send(b"b APPEND INBOX {200}")
    assert c.line().startswith(b"+")
    c.sock.sendall(b"Subject: half a message\r\n")      # ... and then nothing
    t = time.monotonic()
    with MailLock(str(srv.box().parent), timeout=2):   # nobody holds L.mbox
        pass
    _deliver(srv.mailroot)
    assert c.line() == b"* BYE Autologout; idle for too long\r\n"
    rest = c.file.read()
    assert rest == b"", rest
    assert time.monotonic() - t < 10
    after = srv.box().read_bytes()
    assert after.startswith(before) and b"half a message" not in after
    assert b"during a stall" in after


def test_pop3_slow_loris_times_out(pop3_factory):
    srv = pop3_factory(env=IDLE)
    c = srv.connect()
    c.sock.sendall(b"USER gle")                     # half a line, then silence
    t = time.monotonic()
    assert c.closed()
    assert 0.5 < time.monotonic() - t < 10


def test_imap_overlong_line_and_literal(imap_factory):
    srv = imap_factory(flags=("-a",), auth=False)
    c = srv.connect()
    c.send(b"a NOOP " + b"x" * 200_000)
    r = c.line()
    assert r.startswith((b"* BAD", b"a BAD")), r
    c.send(b"b APPEND INBOX {999999999999}")
    r = c.line()
    assert r.startswith((b"b NO", b"b BAD")), r
    assert c.cmd(b"c NOOP")[-1].startswith(b"c OK")     # the session goes on


def test_pop3_overlong_line(pop3_factory):
    c = pop3_factory().connect()
    assert c.cmd(b"NOOP" + b"x" * 100_000).startswith(b"-ERR")
    assert c.cmd(b"CAPA").startswith(b"+OK")


def test_9p_message_larger_than_msize_is_refused(upasfs):
    """A size field past msize: the fs hangs up without reading it, and
    the next connection is served."""
    import socket
    path = upasfs.addr.split("!", 1)[1]
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(struct.pack("<IBH", 0x7FFFFFF0, 100, 0xFFFF) + b"\0" * 64)
    s.settimeout(10)
    try:
        data = s.recv(100)
    except ConnectionError:
        data = b""
    assert data == b"" or data[4] == 107      # hung up, or Rerror
    s.close()
    c = upasfs.client()
    assert c.readdir("")
    c.close()
