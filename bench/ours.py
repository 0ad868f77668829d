"""Our servers for the bench, run as the launcher runs them: one
`python -m upas.imap4d -a` per IMAP connection over the user's posted
upasfs, and one `python -m upas.pop3 -p` per POP3 connection with the real
auth chain (keyfs + authsrv + factotum), starting upasfs for its session
(Plan 9's way).  Both over a copy of the bench mailbox.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.procs import descendants, vmhwm_kb

USER = "glenda"


class Ours:
    name = "upas-py"
    imap_login = None                        # -a: preauthenticated
    pop3_login = (f"USER {USER}", "PASS glenda-apop")

    def __init__(self, tmp: Path, mbox: Path):
        self.tmp, self.mbox = tmp, mbox
        self.box = tmp / "mail" / "box" / USER
        self.stack = contextlib.ExitStack()
        self.fs: subprocess.Popen | None = None
        self.fs_peak = 0

    def __enter__(self) -> "Ours":
        from tests.fixtures.auth import running_auth
        from tests.fixtures.factotum import HOST_KEY, start_factotum
        from tests.fixtures.acceptor import Acceptor as ImapAcceptor
        from tests.fixtures.acceptor import Acceptor as Pop3Acceptor
        try:
            self.box.mkdir(parents=True)
            shutil.copy(self.mbox, self.box / "mbox")
            self.ns = tempfile.mkdtemp(prefix="ns.", dir="/tmp")   # short socket paths
            self.stack.callback(shutil.rmtree, self.ns, True)
            self.env = dict(os.environ, MAILROOT=str(self.tmp / "mail"), NAMESPACE=self.ns,
                            user=USER, USER=USER, LOGNAME=USER)
            self.env.pop("upasfs", None)
            self._start_fs()
            self.stack.callback(self._stop_fs)
            imap = ImapAcceptor([sys.executable, "-m", "upas.imap4d", "-a", "-s", "bench"],
                                self.env, str(self.tmp / "imap.log"))
            self.stack.callback(imap.stop)
            servers = self.stack.enter_context(running_auth())
            fact = start_factotum(servers.namespace, authaddr=servers.auth, keys=(HOST_KEY,))
            self.stack.callback(fact.stop)
            penv = dict(self.env, NAMESPACE=servers.namespace, factotum=fact.addr,
                        auth=servers.auth, POP3_DELAY_SCALE="0")
            pop3 = Pop3Acceptor([sys.executable, "-m", "upas.pop3", "-p"], penv,
                                str(self.tmp / "pop3.log"), False)
            self.stack.callback(pop3.stop)
        except BaseException:
            self.stack.close()
            raise
        self.acceptors = (imap, pop3)
        self.imap_addr = imap.listener.getsockname()[:2]
        self.pop3_addr = pop3.listener.getsockname()[:2]
        return self

    def __exit__(self, *exc) -> None:
        self.stack.close()

    def _start_fs(self) -> None:
        from tests.fixtures.acceptor import start_posted_upasfs as _posted_upasfs
        self.fs = _posted_upasfs(self.env, USER)

    def _stop_fs(self) -> None:
        if self.fs and self.fs.poll() is None:
            self.fs_peak = max(self.fs_peak, vmhwm_kb(self.fs.pid))
            self.fs.terminate()
            self.fs.wait(10)

    def reset(self) -> None:
        """A fresh copy of the mailbox, no .imp, a new upasfs: the cold state."""
        self._stop_fs()
        for f in self.box.iterdir():
            if f.is_file():
                f.unlink()
            else:
                shutil.rmtree(f)
        shutil.copy(self.mbox, self.box / "mbox")
        self._start_fs()

    def drop_index(self) -> None:
        """imap4d's index of the mailbox is its .imp file."""
        for f in self.box.glob("*.imp"):
            f.unlink()

    def upasfs_peak_kb(self) -> int:
        live = vmhwm_kb(self.fs.pid) if self.fs and self.fs.poll() is None else 0
        return max(self.fs_peak, live)

    def peak_kb(self) -> int:
        """VmHWM of the posted upasfs and of every live session process
        (a pop3 session's own upasfs included)."""
        pids = [self.fs.pid] if self.fs else []
        for acc in self.acceptors:
            for proc in acc.procs:
                if proc.poll() is None:
                    pids += descendants(proc.pid)
        return sum(vmhwm_kb(p) for p in pids)
