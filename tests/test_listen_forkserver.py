"""The launcher's fork server (upas/forkserver.py): a `python -m MODULE`
server is forked from a process that imported MODULE once, and must be
what exec would have made: its own process and session, the connection
as stdin/stdout and nothing else open, the same argv, its exit status
logged, the limits and the SIGTERM drain as before; a fork server that
dies is replaced."""
import base64
import hashlib
import hmac
import os
import re
import signal
import socket
import sys
import time

import pytest

from tests.fixtures.imap import without_capability_code as nocap
from tests.fixtures.listen import start_launcher

pytestmark = pytest.mark.timeout(90)

# What a session reports about itself, then commands from the client.
SERVER = r'''
import os, random, socket, stat, sys
peer = socket.socket(fileno=os.dup(0)).getpeername()
same = os.path.samestat(os.fstat(0), os.fstat(1))
print("who", os.getpid(), os.getppid(), os.getsid(0), random.random(), flush=True)
print("what", __name__, sys.argv, stat.S_ISSOCK(os.fstat(0).st_mode), same,
      "%s!%d" % peer[:2], sorted(os.listdir("/proc/self/fd")), flush=True)
# the module as `python -m` runs it: its spec, package, file, and itself as __main__
print("module", __spec__.name, repr(__package__), __file__ == sys.argv[0],
      sys.modules["__main__"].__dict__ is globals(), flush=True)
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "exit":
        sys.exit(int(arg))
    if cmd == "kill":
        os.kill(os.getpid(), int(arg))
    print("echo", arg, flush=True)
'''


@pytest.fixture
def svcdir(tmp_path):
    (tmp_path / "fsecho.py").write_text(SERVER)
    conf = tmp_path / "listen.conf"
    conf.write_text(f"fecho tcp!127.0.0.1!0 {sys.executable} -m fsecho one 'two words'\n")
    return tmp_path


def launch(svcdir, *flags, fork=True, grace="2"):
    env = dict(os.environ, PYTHONPATH=str(svcdir), LISTEN_GRACE=grace,
               LISTEN_FORKSERVER="1" if fork else "0")
    return start_launcher(["-c", str(svcdir / "listen.conf"), *flags, "fecho"], env)


class Session:
    def __init__(self, la):
        self.sock = socket.create_connection(("127.0.0.1", la.port("fecho")), timeout=20)
        self.file = self.sock.makefile("rwb", buffering=0)
        who = self.file.readline().split()
        self.pid, self.ppid, self.sid = int(who[1]), int(who[2]), int(who[3])
        self.rand = who[4]
        self.what = self.file.readline().decode()
        self.module = self.file.readline().decode()

    def say(self, line: str) -> bytes:
        self.file.write(line.encode() + b"\n")
        return self.file.readline()

    def close(self):
        self.file.close()
        self.sock.close()


def wait_log(la, text, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for line in la.log:
            if text in line:
                return line
        time.sleep(0.02)
    raise AssertionError(f"no log line with {text!r} in {la.log}")


def log_line(la, pid):
    return wait_log(la, f" pid {pid} exit ")


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_forked_session_is_what_exec_makes(svcdir):
    seen = {}
    for fork in (True, False):
        la = launch(svcdir, fork=fork)
        try:
            a, b = Session(la), Session(la)
            assert a.pid != b.pid and a.pid != la.proc.pid
            assert a.sid == a.pid                    # its own session
            assert a.say("echo hello") == b"echo hello\n"
            port = a.sock.getsockname()[1]
            seen[fork] = a.what.replace(f"!{port}", "!PORT") + a.module
            assert f"127.0.0.1!{port}" in a.what     # stdin is this connection
            # b started while a was open: nothing of a's session is open in b
            assert b.what.rpartition("[")[2] == a.what.rpartition("[")[2] == "'0', '1', '2', '3']\n"
            assert f"127.0.0.1!{b.sock.getsockname()[1]} " in b.what
            if fork:
                assert a.ppid != la.proc.pid         # forked by the fork server
                assert b"upas.forkserver" in cmdline(a.ppid)
                assert a.rand != b.rand              # random reseeded per child
            else:
                assert a.ppid == la.proc.pid
            a.close()
            b.close()
            assert re.search(r" pid \d+ exit 0 \d+\.\d\ds$", log_line(la, a.pid))
        finally:
            la.stop()
    # same __name__, argv (with -r), stdin/stdout the socket, fds 0, 1, 2 and
    # the one listdir opens
    assert seen[True] == seen[False]
    assert seen[True].startswith("what __main__ [") and "'one', 'two words', '-r'" in seen[True]
    assert "['0', '1', '2', '3']" in seen[True]
    assert seen[True].endswith("module fsecho '' True True\n")


def test_exit_status_and_signal_logged(svcdir):
    la = launch(svcdir)
    try:
        s = Session(la)
        s.file.write(b"exit 7\n")
        assert re.search(r"^listen: fecho 127\.0\.0\.1!\d+ pid \d+ exit 7 \d+\.\d\ds$",
                         log_line(la, s.pid))
        s.close()
        s = Session(la)
        s.file.write(b"kill 9\n")
        assert " exit -9 " in log_line(la, s.pid)
        s.close()
    finally:
        la.stop()


def test_fork_server_killed_is_replaced(svcdir):
    la = launch(svcdir)
    try:
        old = Session(la)
        os.kill(old.ppid, signal.SIGKILL)
        end = time.monotonic() + 10
        while alive(old.ppid) and b"upas.forkserver" in cmdline(old.ppid):
            assert time.monotonic() < end
            time.sleep(0.02)
        assert old.say("echo still here") == b"echo still here\n"   # sessions carry on
        new = Session(la)
        assert new.ppid not in (old.ppid, la.proc.pid)
        assert b"upas.forkserver" in cmdline(new.ppid)
        assert new.say("echo hi") == b"echo hi\n"
        wait_log(la, f"fork server fsecho pid {old.ppid} exit -9; restarting")
        old.file.write(b"exit 3\n")
        # its exit status died with the fork server; the end is still seen
        assert log_line(la, old.pid).split()[5:7] == ["exit", "unknown"]
        old.close()
        new.close()
        log_line(la, new.pid)
    finally:
        la.stop()


def children_of(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def sockets_of(pid):
    return [fd for fd in os.listdir(f"/proc/{pid}/fd")
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")]


def test_a_spare_child_waits_for_the_next_connection(svcdir):
    """One child forked ahead (Dovecot's process_min_avail): while it
    waits it holds no client connection, only its line to the fork
    server; the next connection is served by it, another spare is forked;
    it exits when the fork server goes."""
    la = launch(svcdir)
    try:
        a = Session(la)
        end = time.monotonic() + 10
        while len(children_of(a.ppid)) < 2:
            assert time.monotonic() < end
            time.sleep(0.02)
        spare = next(p for p in children_of(a.ppid) if p != a.pid)
        while len(sockets_of(spare)) != 1:         # until it has let go of the fork server's
            assert time.monotonic() < end
            time.sleep(0.02)
        assert os.getsid(spare) == spare
        b = Session(la)
        assert b.pid == spare and b.ppid == a.ppid
        assert b.say("echo from the spare") == b"echo from the spare\n"
        while len(children_of(a.ppid)) < 3:
            assert time.monotonic() < end
            time.sleep(0.02)
        spare = next(p for p in children_of(a.ppid) if p not in (a.pid, b.pid))
        os.kill(a.ppid, signal.SIGKILL)
        while alive(spare) and os.path.exists(f"/proc/{spare}/cmdline") and cmdline(spare) != [b""]:
            assert time.monotonic() < end
            time.sleep(0.02)
        assert a.say("echo still here") == b"echo still here\n"
        a.close()
        b.close()
    finally:
        la.stop()


def test_limits_apply_to_forked_sessions(svcdir):
    la = launch(svcdir, "-M", "1")
    try:
        first = Session(la)
        s = socket.create_connection(("127.0.0.1", la.port("fecho")), timeout=20)
        with s, s.makefile("rb") as f:
            assert f.read() == b""                  # refused: no greeting
        wait_log(la, "refused: too many connections from peer")
        first.say("exit 0")
        log_line(la, first.pid)
        first.close()
        again = Session(la)                         # the count went down
        again.close()
    finally:
        la.stop()


def test_sigterm_drains_forked_sessions(svcdir):
    la = launch(svcdir, grace="0.5")
    s = Session(la)
    forkserver = s.ppid
    la.proc.terminate()
    assert la.proc.wait(timeout=30) == 0
    assert " exit -15 " in log_line(la, s.pid)       # SIGTERM after the grace time
    assert s.file.read() == b""
    s.close()
    assert not alive(s.pid)
    end = time.monotonic() + 10
    while alive(forkserver) and b"upas.forkserver" in cmdline(forkserver):
        assert time.monotonic() < end, "fork server outlived the launcher"
        time.sleep(0.05)


def imap_transcript(addr) -> bytes:
    """Greeting, CRAM-MD5 login, SELECT, a FETCH and LOGOUT, byte for byte
    (the challenge aside)."""
    s = socket.create_connection(addr, timeout=20)
    f = s.makefile("rwb", buffering=0)
    out = [f.readline()]
    f.write(b"a AUTHENTICATE CRAM-MD5\r\n")
    chal = base64.b64decode(f.readline()[2:])
    out.append(b"+ CHALLENGE\r\n")
    digest = hmac.new(b"glenda-apop", chal, "md5").hexdigest()
    f.write(base64.b64encode(b"glenda " + digest.encode()) + b"\r\n")
    out.append(f.readline())
    # the capabilities the greeting and the login's OK carry are the
    # flags' (the mail host's imap4d offers STARTTLS, the second
    # launcher's does not); the code paths are what is compared
    out[0], out[2] = nocap(out[0]), nocap(out[2])
    for tag, cmd in ((b"b", b"SELECT INBOX"),
                     (b"c", b"FETCH 1:3 (UID FLAGS BODY.PEEK[HEADER])"), (b"d", b"LOGOUT")):
        f.write(tag + b" " + cmd + b"\r\n")
        while True:
            line = f.readline()
            out.append(line)
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                out.append(f.read(int(m.group(1))))
            if line.startswith(tag + b" ") or not line:
                break
    f.close()
    s.close()
    return b"".join(out)


def pop3_transcript(addr) -> bytes:
    s = socket.create_connection(addr, timeout=20)
    f = s.makefile("rwb", buffering=0)
    greeting = f.readline()
    chal = re.search(rb"<[^>]+>", greeting).group(0)
    out = [greeting.replace(chal, b"<CHALLENGE>")]
    digest = hashlib.md5(chal + b"glenda-apop").hexdigest().encode()
    for cmd in (b"APOP glenda " + digest, b"STAT", b"TOP 1 0", b"QUIT"):
        f.write(cmd + b"\r\n")
        out.append(f.readline())
        if cmd.startswith(b"TOP"):
            while out[-1] != b".\r\n":
                out.append(f.readline())
    f.close()
    s.close()
    return b"".join(out)


def test_real_servers_answer_alike_forked_and_execed(mail_host):
    """imap4d and pop3 through the fork server (mail_host's launcher) and
    through exec (a second launcher with LISTEN_FORKSERVER=0)."""
    env = dict(mail_host.env, LISTEN_GRACE="1", LISTEN_FORKSERVER="0")
    la = start_launcher(["-l", "pop3=tcp!127.0.0.1!0", "-l", "imap4d=tcp!127.0.0.1!0",
                         "pop3", "imap4d"], env)
    try:
        imap_transcript(mail_host.addrs["imap4d"])      # the first takes \Recent
        forked = imap_transcript(mail_host.addrs["imap4d"])
        execed = imap_transcript(("127.0.0.1", la.port("imap4d")))
        assert b"c OK" in forked and forked.count(b"\r\nSubject: ") >= 1
        assert forked == execed
        forked = pop3_transcript(mail_host.addrs["pop3"])
        execed = pop3_transcript(("127.0.0.1", la.port("pop3")))
        assert forked.startswith(b"+OK") and b"\r\n.\r\n" in forked
        assert forked == execed
    finally:
        la.stop()
    log = (mail_host.logdir / "listen.log").read_text()
    assert re.search(r"^listen: imap4d 127\.0\.0\.1!\d+ pid \d+ exit 0 ", log, re.M)


def test_missing_module_fails_as_exec_does(tmp_path):
    """The fork server imports nothing it cannot; the child meets the error
    as `python -m` would: on stderr (the launcher's) and exit status 1."""
    (tmp_path / "listen.conf").write_text(
        f"nomod tcp!127.0.0.1!0 {sys.executable} -m nosuchmodule_upas\n")
    for fork in ("1", "0"):
        env = dict(os.environ, LISTEN_GRACE="1", LISTEN_FORKSERVER=fork)
        la = start_launcher(["-c", str(tmp_path / "listen.conf"), "nomod"], env)
        try:
            s = socket.create_connection(("127.0.0.1", la.port("nomod")), timeout=20)
            with s, s.makefile("rb") as f:
                assert f.read() == b""
            assert re.search(r" pid \d+ exit 1 ", wait_log(la, "listen: nomod "))
            wait_log(la, "No module named nosuchmodule_upas")
        finally:
            la.stop()


def test_the_launcher_holds_a_pidfd_of_the_child(svcdir, monkeypatch):
    """The fork server opens it before it could reap the child, so a
    signal at shutdown cannot reach a process that reused the pid."""
    from upas.forkserver import ForkServer
    monkeypatch.setenv("PYTHONPATH", str(svcdir))
    fs = ForkServer("fsecho")
    ls = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(ls.getsockname())
    conn, _ = ls.accept()
    try:
        child = fs.spawn(["x"], conn)
        conn.close()
        f = client.makefile("rwb", buffering=0)
        assert int(f.readline().split()[1]) == child.pid
        with open(f"/proc/self/fdinfo/{child.pidfd}") as info:
            assert re.search(rf"^Pid:\s+{child.pid}$", info.read(), re.M)
        f.write(b"exit 4\n")
        assert child.wait() == 4 and child.pidfd is None
    finally:
        client.close()
        ls.close()
        fs.stop()
