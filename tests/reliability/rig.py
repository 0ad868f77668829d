"""The servers under test, as processes on one temporary MAILROOT.

`Rig(base)` holds a MAILROOT with box/glenda/{mbox,saved}, a NAMESPACE with
a posted upasfs (`python -m upas.fs9p -n -p -s`, restartable after a kill),
and starts preauthenticated sessions (`imap4d -a`, `pop3 -a BOX`) on a
socketpair, and `python -m upas.mbappend` deliveries.  Nothing is mocked.
RELIABILITY_DEBUG=1 leaves the servers' stderr on the rig's, and
RELIABILITY_IMAP_V=1 adds imap4d's -v (each command and failure logged).
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from tests.fixtures.auth import running_auth
from tests.fixtures.factotum import HOST_KEY, start_factotum
from upas import ninep

REPO = Path(__file__).resolve().parents[2]
USER = "glenda"
TIMEOUT = float(os.environ.get("RELIABILITY_TIMEOUT", "60"))   # 24 clients on 2 cores are slow


class SessionError(Exception):
    pass


class LineSession:
    """A server process talking over one end of a socketpair."""

    def __init__(self, argv: list[str], env: dict):
        mine, theirs = socket.socketpair()
        # the server's stderr is kept to explain a hang-up (see line())
        self.errors = None if os.environ.get("RELIABILITY_DEBUG") else tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=self.errors,
                                     env=env, cwd=str(REPO))
        theirs.close()
        mine.settimeout(TIMEOUT)
        self.sock = mine
        self.file = mine.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        line = self.file.readline()
        if not line:
            raise SessionError("connection closed" + self._why())
        return line

    def _why(self) -> str:
        """The exit status and the last of the server's stderr."""
        try:
            code = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            return " (server still running)"
        tail = b""
        if self.errors is not None:
            self.errors.seek(0)
            tail = self.errors.read()[-600:]
        return f" (server exit {code}; stderr {tail!r})"

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.close()

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass
        if self.errors is not None:
            self.errors.close()
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Imap(LineSession):
    def __init__(self, env: dict):
        super().__init__([sys.executable, "-m", "upas.imap4d", "-a", "-s", "imap.test"]
                         + (["-v"] if os.environ.get("RELIABILITY_IMAP_V") else []), env)
        self.tagn = 0
        greeting = self.line()
        if not greeting.startswith(b"* PREAUTH"):
            raise SessionError(greeting)

    def start(self, command: bytes, literal: bytes | None = None) -> bytes:
        """Send a command (with a synchronising literal), return its tag."""
        self.tagn += 1
        tag = b"t%d" % self.tagn
        if literal is None:
            self.send(tag + b" " + command + b"\r\n")
            return tag
        self.send(tag + b" " + command + b" {%d}\r\n" % len(literal))
        cont = self.line()
        if not cont.startswith(b"+"):
            raise SessionError(cont)
        self.send(literal + b"\r\n")
        return tag

    def until(self, tag: bytes) -> list[bytes]:
        out = []
        while True:
            line = self.line()
            while line.endswith(b"}\r\n") and b"{" in line:
                n = int(line[line.rindex(b"{") + 1:-3])
                line += self.file.read(n) + self.line()
            out.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SessionError(line)
                return out

    def cmd(self, command: bytes, literal: bytes | None = None) -> list[bytes]:
        return self.until(self.start(command, literal))

    def fetch_tokens(self) -> dict[int, tuple[str, int, set[str]]]:
        """seq -> (token, uid, flags) of the selected mailbox."""
        out = {}
        pat = re.compile(rb"\* (\d+) FETCH \(.*?UID (\d+).*?FLAGS \(([^)]*)\)", re.S)
        for line in self.cmd(b"FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"):
            m = pat.match(line)
            tok = re.search(rb"<([0-9a-z-]+)@ledger>", line)
            if m:
                out[int(m.group(1))] = (tok.group(1).decode() if tok else None,
                                        int(m.group(2)), set(m.group(3).decode().split()))
        return out


class Pop(LineSession):
    def __init__(self, env: dict, box: str):
        super().__init__([sys.executable, "-m", "upas.pop3", "-a", box], env)
        greeting = self.line()
        if not greeting.startswith(b"+OK"):
            raise SessionError(greeting)

    def cmd(self, command: bytes) -> bytes:
        self.send(command + b"\r\n")
        reply = self.line()
        if not reply.startswith(b"+OK"):
            raise SessionError(reply)
        return reply

    def multi(self, command: bytes) -> list[bytes]:
        self.cmd(command)
        out = []
        while (line := self.line()) != b".\r\n":
            out.append(line)
        return out

    def tokens(self) -> dict[int, str]:
        """message number -> token, from TOP n 0 (a message another
        session deleted meanwhile answers -ERR and is left out)."""
        out = {}
        for row in self.multi(b"LIST"):
            n = int(row.split()[0])
            try:
                head = b"".join(self.multi(b"TOP %d 0" % n))
            except SessionError as e:
                reply = e.args[0]
                if not (isinstance(reply, bytes) and reply.startswith(b"-ERR")):
                    raise
                continue
            m = re.search(rb"<([0-9a-z-]+)@ledger>", head)
            out[n] = m.group(1).decode() if m else None
        return out


class Rig:
    def __init__(self, base: Path):
        self.base = Path(base)
        self.mailroot = self.base / "mail"
        (self.mailroot / "box" / USER).mkdir(parents=True)
        (self.mailroot / "lib").mkdir()
        # pop3 asks factotum for its APOP challenge even with -a, as Plan 9:
        # keyfs + authsrv + a factotum holding the host key, as auth_stack
        self._stack = ExitStack()
        auth = self._stack.enter_context(running_auth())
        self.namespace = auth.namespace
        self.env = dict(os.environ, MAILROOT=str(self.mailroot), NAMESPACE=self.namespace,
                        user=USER, USER=USER, LOGNAME=USER,
                        upasfs="unix!" + os.path.join(self.namespace, "upasfs"),
                        UPASFS_READ_LOCK_WAIT="2",
                        # upasfs writes its index at every change, and a
                        # restarted one trusts it at once (no racy window)
                        UPASFS_INDEX_DELAY="0", UPASFS_INDEX_RACY="0",
                        factotum="unix!" + os.path.join(self.namespace, "factotum"),
                        auth=auth.auth)
        self.fs: subprocess.Popen | None = None
        self.factotum = start_factotum(self.namespace, authaddr=auth.auth, keys=(HOST_KEY,))

    def path(self, box: str) -> str:
        return str(self.mailroot / "box" / USER / box)

    def start_fs(self) -> None:
        self.fs = subprocess.Popen([sys.executable, "-m", "upas.fs9p", "-n", "-p", "-s"],
                                   env=self.env, cwd=str(REPO))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.fs.poll() is not None:
                raise RuntimeError(f"upasfs exited with {self.fs.returncode}")
            try:
                ninep.Client.dial(self.env["upasfs"], uname=USER).close()
                return
            except (OSError, ninep.Error):
                time.sleep(0.05)
        raise RuntimeError("upasfs did not post")

    def fs_alive(self) -> bool:
        return self.fs is not None and self.fs.poll() is None

    def kill_fs(self) -> None:
        if self.fs_alive():
            os.kill(self.fs.pid, signal.SIGKILL)
            self.fs.wait()

    def imap(self) -> Imap:
        return Imap(self.env)

    def pop(self, box: str = "mbox") -> Pop:
        return Pop(self.env, f"/mail/box/{USER}/{box}")

    def deliver(self, msg: bytes, box: str = "mbox") -> subprocess.Popen:
        """Start `python -m upas.mbappend` (the message on its stdin)."""
        p = subprocess.Popen([sys.executable, "-m", "upas.mbappend", "-f", "ledger@example.com",
                              f"/mail/box/{USER}/{box}"], stdin=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=self.env, cwd=str(REPO))
        p.stdin.write(msg)
        p.stdin.close()
        return p

    def __enter__(self) -> "Rig":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.factotum.stop()
        if self.fs_alive():
            self.fs.terminate()
            try:
                self.fs.wait(5)
            except subprocess.TimeoutExpired:
                self.fs.kill()
                self.fs.wait()
        self._stack.close()
