"""Running plan9port's own programs beside ours (`make interop`).

`Plan9port.find()` is the build $PLAN9 names, or None (with why, for the
skip).  Its programs run with $PLAN9/bin on the path and a $NAMESPACE of
the test's choosing; daemons (upas/fs, factotum, mailfs) are started in a
session of their own, and everything in that session (the daemon, the
9pserve it forked) is ended by process id at the end: a upas/fs whose
9pserve is gone spins on its pipe.

plan9port's upas/fs opens mailboxes at their host path (/mail/box/USER),
so `PrivateMail` gives a process a /mail of its own: a bind mount of a
temporary directory in a private mount name space (root only; /mail must
exist as the mount point, and is made empty if it does not).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

NEEDED = ("9p", "9pserve", "factotum", "upas/fs", "mailfs")


class Plan9port:
    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def find(cls) -> tuple["Plan9port | None", str]:
        root = os.environ.get("PLAN9")
        if not root:
            return None, "$PLAN9 is not set (point it at a built plan9port)"
        missing = [b for b in NEEDED if not os.access(os.path.join(root, "bin", b), os.X_OK)]
        if missing:
            return None, f"$PLAN9={root} lacks {', '.join(missing)} (build upas, upas/nfs)"
        return cls(Path(root)), ""

    def bin(self, name: str) -> str:
        return str(self.root / "bin" / name)

    def env(self, namespace: str, plan9: str | None = None, **extra: str) -> dict:
        """plan9 (default: the build) is $PLAN9 as the program sees it:
        factotum finds the auth server through $PLAN9/ndb/local."""
        env = dict(os.environ, PLAN9=plan9 or str(self.root), NAMESPACE=namespace,
                   PATH=f"{os.environ.get('PATH', '/usr/bin:/bin')}:{self.root / 'bin'}")
        env.pop("DISPLAY", None)
        env.update(extra)
        return env

    def overlay(self, where: Path, ndb_local: str) -> str:
        """A $PLAN9 that is the build but for ndb/local: every other entry
        is a link into the build.  Returns its path."""
        where.mkdir(parents=True)
        for entry in self.root.iterdir():
            if entry.name != "ndb":
                (where / entry.name).symlink_to(entry)
        (where / "ndb").mkdir()
        (where / "ndb" / "local").write_text(ndb_local)
        return str(where)

    def run(self, argv: list[str], env: dict, input: bytes | None = None,
            timeout: float = 30, wrap: Callable[[list[str]], list[str]] | None = None
            ) -> subprocess.CompletedProcess:
        argv = [self.bin(argv[0]), *argv[1:]]
        return subprocess.run(wrap(argv) if wrap else argv, env=env, input=input,
                              capture_output=True, timeout=timeout)


class Daemon:
    """A plan9port daemon and whatever it forks, in a session of its own."""

    def __init__(self, argv: list[str], env: dict, log: Path):
        # argv[0] as a user's $PATH gives it: daemons put it in their
        # errors, which the recorded transcripts keep
        with open(log, "ab") as err:
            self.proc = subprocess.Popen([os.path.basename(argv[0]), *argv[1:]],
                                         executable=argv[0], env=env, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, start_new_session=True)
        self.sid = self.proc.pid
        self.log = log

    def members(self) -> list[int]:
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.sid and fields[0] != "Z":   # field 6: session
                pids.append(int(d))
        return pids

    def alive(self) -> bool:
        # a scan of /proc can miss a process that forks and exits meanwhile
        for _ in range(5):
            if self.members():
                return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.members():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3
            while self.members() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self.members():
                break
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def wait_posted(path: str, daemon: Daemon, timeout: float = 20) -> None:
    """Until the unix socket at path accepts a connection."""
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return
        except OSError:
            if not daemon.alive():
                raise RuntimeError(f"exited: {daemon.log.read_text(errors='replace')}")
            time.sleep(0.05)
        finally:
            s.close()
    raise RuntimeError(f"{path} was not posted: {daemon.log.read_text(errors='replace')}")


class PrivateMail:
    """A temporary directory that the wrapped processes see as /mail."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.made_mountpoint = False

    @staticmethod
    def why_not() -> str:
        if os.geteuid() != 0:
            return "a private /mail (mount name space) needs root"
        if not shutil.which("unshare"):
            return "a private /mail needs unshare(1)"
        return ""

    def setup(self) -> None:
        if not os.path.isdir("/mail"):
            os.mkdir("/mail", 0o755)
            self.made_mountpoint = True

    def teardown(self) -> None:
        if self.made_mountpoint:
            try:
                os.rmdir("/mail")
            except OSError:
                pass

    def wrap(self, argv: list[str]) -> list[str]:
        # the system's mount(8): plan9port has a mount of its own
        mount = shutil.which("mount", path="/usr/bin:/bin:/usr/sbin:/sbin") or "mount"
        return ["unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c", f'{mount} --bind "$0" /mail && exec "$@"', str(self.dir), *argv]
