"""Our servers for the bench, run as a host runs them: `make run`'s
upas/runhost.py (keyfs, authsrv, factotum, ratfs and the launcher) over a
copy of the bench mailbox as glenda's.  The launcher (upas/listen.py -u)
forks a `python -m upas.imap4d -p` or `python -m upas.pop3 -p` per
connection from its fork servers (`exec=True`: exec'd, LISTEN_FORKSERVER=0)
and keeps one upasfs per user alive behind its broker; clients log in
with LOGIN or USER/PASS, checked by factotum and the auth server.
`-p` allows those plaintext logins, as the Dovecot configuration does
(disable_plaintext_auth = no); `-M 100` lets the 50 concurrent sessions
of one peer in (the launcher's default allows 10 per peer).

Peak memory: the user's upasfs (VmHWM) and every session process with
its descendants (PSS: a forked session shares its fork server's pages).
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from bench.procs import (children, cmdline, descendants, ppid, pss_kb, tree_cpu_seconds,
                         vmhwm_kb)

USER = "glenda"
PASSWORD = "glenda-apop"        # the demo user's mail secret (auth/demo.py)


class Ours:
    name = "upas-py"
    imap_login = f"LOGIN {USER} {PASSWORD}"
    pop3_login = (f"USER {USER}", f"PASS {PASSWORD}")

    def __init__(self, tmp: Path, mbox: Path, exec_: bool = False):
        self.tmp, self.mbox, self.exec = tmp, mbox, exec_
        self.rundir = tmp / "run"
        self.box = self.rundir / "mail" / "box" / USER
        self.host = None
        self.fs_peak = 0

    def __enter__(self) -> "Ours":
        from upas.runhost import PORTS, TESTDATA, Host
        shutil.copytree(TESTDATA, self.rundir / "mail")
        self._fresh_box()
        # every bench client comes from 127.0.0.1, as an office behind NAT:
        # the per-address login count (upas/loginfail.py) stays on
        env = {"POP3_DELAY_SCALE": "0", "LISTEN_FORKSERVER": "0" if self.exec else "1"}
        self.host = Host(self.rundir, ports={"pop3": 0, "imap4d": 0},
                         logdir=self.tmp / "log", extra_env=env,
                         listen_flags=["-M", "100", "-F", "imap4d=-p", "-F", "pop3=-p"])
        assert set(self.host.ports) <= set(PORTS)
        self.host.start()
        self.imap_addr = self.host.addrs["imap4d"]
        self.pop3_addr = self.host.addrs["pop3"]
        return self

    def __exit__(self, *exc) -> None:
        if self.host:
            self._stop_fs()
            self.host.stop()
            self.host = None

    def _fresh_box(self) -> None:
        shutil.rmtree(self.box, ignore_errors=True)
        self.box.mkdir(parents=True)
        shutil.copy(self.mbox, self.box / "mbox")

    @property
    def launcher_pid(self) -> int:
        return dict(self.host.procs)["listen"].pid

    def _upasfs(self) -> list[int]:
        """The per-user upasfs processes the launcher's broker started."""
        return [p for p in children(self.launcher_pid) if "upas.fs9p" in cmdline(p)]

    def _sessions(self) -> list[int]:
        """Session processes: the fork servers' children or exec'd servers,
        with their descendants; not a fork server's spare (a child forked
        ahead, with no connection yet: its stdin is not a socket)."""
        top = children(self.launcher_pid)       # fork servers, upasfs, exec'd sessions
        forkservers = {p for p in top if "upas.forkserver" in cmdline(p)}
        skip = {self.launcher_pid, *forkservers, *(p for p in top if "upas.fs9p" in cmdline(p))}
        skip |= {p for f in forkservers for p in children(f) if not _connected(p)}
        return [p for p in descendants(self.launcher_pid) if p not in skip]

    def _stop_fs(self) -> None:
        """End the user's upasfs (its peak kept); the broker starts a new one
        for the next session."""
        for pid in self._upasfs():
            self.fs_peak = max(self.fs_peak, vmhwm_kb(pid))
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            end = time.monotonic() + 10
            while pid in self._upasfs() and time.monotonic() < end:
                time.sleep(0.05)

    def reset(self) -> None:
        """A fresh copy of the mailbox, no .imp, a new upasfs: the cold state."""
        self._stop_fs()
        self._fresh_box()

    def drop_index(self) -> None:
        """imap4d's index of the mailbox is its .imp file."""
        for f in self.box.glob("*.imp"):
            f.unlink()

    def upasfs_peak_kb(self) -> int:
        live = [vmhwm_kb(p) for p in self._upasfs()] if self.host else []
        return max([self.fs_peak, *live])

    def session_pss_kb(self) -> list[int]:
        """PSS of each session now: its process and its descendants."""
        sessions = set(self._sessions())
        return [sum(pss_kb(q) for q in descendants(p)) for p in sessions
                if ppid(p) not in sessions]

    def cpu_seconds(self) -> float:
        """CPU the host's processes have spent so far (the launcher, its
        sessions and upasfs, factotum, the auth server...)."""
        return sum(tree_cpu_seconds(p.pid) for _, p in self.host.procs)

    def peak_kb(self) -> int:
        return (sum(vmhwm_kb(p) for p in self._upasfs()) +
                sum(pss_kb(p) for p in self._sessions()))


def _connected(pid: int) -> bool:
    """Whether the process's stdin is a socket (a session's connection)."""
    try:
        return os.readlink(f"/proc/{pid}/fd/0").startswith("socket:")
    except OSError:
        return False
