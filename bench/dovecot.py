"""Dovecot, the reference: installed on request, configured privately on
loopback high ports (imap and pop3) over a copy of the bench mailbox.
Its limit of connections per user and address is 100, as our launcher's
(bench/ours.py): at the default 10, 50 concurrent sessions are refused.

    with Dovecot(workdir, mbox) as d: d.imap_addr, d.pop3_addr, d.peak_kb()
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from bench.procs import descendants, pss_kb, tree_cpu_seconds, vmhwm_kb

MASTER = "/usr/sbin/dovecot"
BINARIES = ("/usr/lib/dovecot/imap", "/usr/lib/dovecot/pop3")
PACKAGES = ("dovecot-imapd", "dovecot-pop3d")
USER, PASSWORD = "glenda", "bench"

CONF = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = mbox:{home}/mail:INBOX={home}/inbox:INDEX={home}/index
mbox_lazy_writes = yes
pop3_uidl_format = %08Xu%08Xv
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
}}
service anvil {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
protocol pop3 {{
  mail_max_userip_connections = 100
}}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}
}}
"""


def installed() -> bool:
    return os.path.exists(MASTER) and all(os.path.exists(b) for b in BINARIES)


def install() -> bool:
    """apt-get install, once; True if Dovecot is there afterwards."""
    if not installed():
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", *PACKAGES], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return installed()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    name = "dovecot"
    imap_login = f"LOGIN {USER} {PASSWORD}"
    pop3_login = (f"USER {USER}", f"PASS {PASSWORD}")

    def __init__(self, tmp: Path, mbox: Path):
        self.tmp, self.mbox = tmp, mbox
        self.home = tmp / "home"
        self.imap_addr = ("127.0.0.1", free_port())
        self.pop3_addr = ("127.0.0.1", free_port())
        self.master: subprocess.Popen | None = None

    def __enter__(self) -> "Dovecot":
        self.reset()
        uid, gid = self._owner()
        conf = self.tmp / "dovecot.conf"
        conf.write_text(CONF.format(tmp=self.tmp, home=self.home, uid=uid, gid=gid,
                                    imap=self.imap_addr[1], pop3=self.pop3_addr[1],
                                    password=PASSWORD))
        self.master = subprocess.Popen([MASTER, "-F", "-c", str(conf)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        for addr in (self.imap_addr, self.pop3_addr):
            while True:
                try:
                    socket.create_connection(addr, timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.master.poll() is not None:
                        self.__exit__()
                        raise RuntimeError(f"dovecot did not start; see {self.tmp}/dovecot.log")
                    time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        if self.master and self.master.poll() is None:
            self.master.terminate()
            self.master.wait(10)

    def reset(self) -> None:
        """A fresh copy of the mailbox and no index: the cold state."""
        shutil.rmtree(self.home, ignore_errors=True)
        for d in ("mail", "index"):
            (self.home / d).mkdir(parents=True)
        shutil.copy(self.mbox, self.home / "inbox")
        self._owner()

    def drop_index(self) -> None:
        shutil.rmtree(self.home / "index", ignore_errors=True)
        (self.home / "index").mkdir()
        self._owner()

    def _owner(self) -> tuple[int, int]:
        """Dovecot refuses uid 0 for mail: as root, hand the copy to nobody."""
        if os.getuid() != 0:
            return os.getuid(), os.getgid()
        import pwd
        nobody = pwd.getpwnam("nobody")
        for d in (self.tmp.parent, self.tmp):
            os.chmod(d, 0o755)
        for dirpath, _, files in os.walk(self.home):
            os.chown(dirpath, nobody.pw_uid, nobody.pw_gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), nobody.pw_uid, nobody.pw_gid)
        return nobody.pw_uid, nobody.pw_gid

    def session_pss_kb(self) -> list[int]:
        """PSS of each session's process (`imap`, `pop3`) now."""
        return [pss_kb(p) for p in self._session_pids()]

    def _session_pids(self) -> list[int]:
        out = []
        for p in descendants(self.master.pid) if self.master else []:
            try:
                comm = Path(f"/proc/{p}/comm").read_text().strip()
            except OSError:
                continue
            if comm in ("imap", "pop3"):
                out.append(p)
        return out

    def cpu_seconds(self) -> float:
        """CPU Dovecot's processes have spent so far (master, auth, logins,
        sessions)."""
        return tree_cpu_seconds(self.master.pid) if self.master else 0.0

    def peak_kb(self) -> int:
        """VmHWM of the processes serving mail sessions now (imap, pop3)."""
        return sum(vmhwm_kb(p) for p in self._session_pids())
