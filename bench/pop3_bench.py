"""POP3 full download: ours beside Dovecot's pop3 on the same mailbox.

One session per server: log in, STAT, UIDL, RETR every message, QUIT.
Printed: wall time, MB/s, and the peak RSS (VmHWM) of the processes serving
the session (ours: pop3 + its upasfs; Dovecot: its pop3 process).  Ours runs
the real chain: keyfs + authsrv + factotum, `python -m upas.pop3` per
connection with the socket as stdin/stdout, upasfs started for the session.
Dovecot runs privately on loopback with a generated config when
/usr/sbin/dovecot exists (`apt-get install dovecot-pop3d`, tried once with
--install-dovecot); otherwise it is skipped.

    python -m bench.pop3_bench [-n MESSAGES] [--install-dovecot]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.corpus import make_corpus  # noqa: E402  (the shared bench mailbox)

DOVECOT = "/usr/sbin/dovecot"
TIMEOUT = 600


# ---------------------------------------------------------------- client
@dataclass
class Result:
    name: str
    seconds: float
    messages: int
    octets: int
    peak_kb: int
    digest: str

    def row(self) -> str:
        mbs = self.octets / self.seconds / 1e6 if self.seconds else 0
        return (f"{self.name:<10} {self.seconds:8.2f} s {mbs:8.1f} MB/s "
                f"{self.messages:7d} msgs {self.peak_kb / 1024:8.1f} MB peak")


class Client:
    """A lean POP3 client: reads in big chunks so that it is not the bottleneck."""

    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=TIMEOUT)
        self.buf = bytearray()
        self.greeting = self.readline()

    def _fill(self) -> None:
        data = self.sock.recv(1 << 18)
        if not data:
            raise EOFError
        self.buf += data

    def readline(self) -> bytes:
        while (i := self.buf.find(b"\n")) < 0:
            self._fill()
        line = bytes(self.buf[:i + 1])
        del self.buf[:i + 1]
        return line

    def cmd(self, line: str) -> bytes:
        self.sock.sendall(line.encode() + b"\r\n")
        reply = self.readline()
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"{line.split()[0]}: {reply!r}")
        return reply

    def multi(self) -> bytes:
        """The data of a multi-line reply, without the final "." line."""
        while len(self.buf) < 3:
            self._fill()
        if self.buf.startswith(b".\r\n"):
            del self.buf[:3]
            return b""
        start = 0
        while (i := self.buf.find(b"\r\n.\r\n", start)) < 0:
            start = max(0, len(self.buf) - 4)
            self._fill()
        data = bytes(self.buf[:i + 2])
        del self.buf[:i + 5]
        return data


def download(addr, login: list[str], peak) -> Result:
    """The session; `peak()` is called before QUIT for the servers' VmHWM."""
    t = time.perf_counter()
    c = Client(addr)
    for line in login:
        c.cmd(line)
    n = int(c.cmd("STAT").split()[1])
    c.cmd("UIDL")
    c.multi()
    h = hashlib.sha1()
    octets = 0
    for i in range(1, n + 1):
        c.cmd(f"RETR {i}")
        data = c.multi()
        octets += len(data)
        h.update(data)
    kb = peak()
    c.cmd("QUIT")
    return Result("", time.perf_counter() - t, n, octets, kb, h.hexdigest()[:12])


def vmhwm_kb(pid: int) -> int:
    try:
        m = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(x) for x in task.read_text().split()]
            except OSError:
                pass
    return out


# ---------------------------------------------------------------- ours
def run_ours(box: Path, tmp: Path) -> Result:
    from tests.fixtures.auth import running_auth          # keyfs + authsrv
    from tests.fixtures.factotum import HOST_KEY, start_factotum
    from tests.fixtures.pop3 import _Acceptor

    root = tmp / "mail"
    (root / "box" / "glenda").mkdir(parents=True)
    shutil.copy(box, root / "box" / "glenda" / "mbox")
    with running_auth() as servers:
        fact = start_factotum(servers.namespace, authaddr=servers.auth, keys=(HOST_KEY,))
        env = dict(os.environ, NAMESPACE=servers.namespace, factotum=fact.addr,
                   auth=servers.auth, MAILROOT=str(root), POP3_DELAY_SCALE="0")
        env.pop("upasfs", None)
        acc = _Acceptor([sys.executable, "-m", "upas.pop3", "-p"], env, str(tmp / "pop3.log"), False)
        try:
            def peak() -> int:
                return sum(vmhwm_kb(p) for proc in acc.procs for p in descendants(proc.pid))
            r = download(acc.listener.getsockname()[:2], ["USER glenda", "PASS glenda-apop"], peak)
        finally:
            acc.stop()
            fact.stop()
    r.name = "upas-py"
    return r


# ---------------------------------------------------------------- Dovecot
DOVECOT_CONF = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = mbox:{tmp}/home/mail:INBOX={tmp}/home/inbox
mbox_lazy_writes = yes
pop3_uidl_format = %08Xu%08Xv
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = static
  args = password=bench
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home
}}
"""


def mail_owner(tmp: Path) -> tuple[int, int]:
    """Dovecot refuses uid 0 for mail: as root, hand the copy to nobody."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    import pwd
    nobody = pwd.getpwnam("nobody")
    for d in (tmp.parent, tmp):
        os.chmod(d, 0o755)
    for p in [tmp / "home", tmp / "home" / "mail", tmp / "home" / "inbox"]:
        os.chown(p, nobody.pw_uid, nobody.pw_gid)
    return nobody.pw_uid, nobody.pw_gid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_dovecot() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "dovecot-pop3d"], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def run_dovecot(box: Path, tmp: Path) -> Result | None:
    if not os.path.exists(DOVECOT):
        return None
    (tmp / "home" / "mail").mkdir(parents=True)
    shutil.copy(box, tmp / "home" / "inbox")
    port = free_port()
    uid, gid = mail_owner(tmp)
    conf = tmp / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(tmp=tmp, port=port, uid=uid, gid=gid))
    master = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or master.poll() is not None:
                    print("dovecot did not start; see", tmp / "dovecot.log")
                    return None
                time.sleep(0.1)

        def peak() -> int:
            pids = [p for p in descendants(master.pid)
                    if Path(f"/proc/{p}/comm").exists()
                    and Path(f"/proc/{p}/comm").read_text().strip() == "pop3"]
            return sum(vmhwm_kb(p) for p in pids)
        r = download(("127.0.0.1", port), ["USER glenda", "PASS bench"], peak)
    finally:
        master.terminate()
        master.wait(10)
    r.name = "dovecot"
    return r


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000, help="messages in the corpus")
    ap.add_argument("--install-dovecot", action="store_true")
    args = ap.parse_args(argv)
    if args.install_dovecot and not os.path.exists(DOVECOT):
        install_dovecot()
    with tempfile.TemporaryDirectory(prefix="pop3bench.", dir="/tmp") as d:
        tmp = Path(d)
        box = tmp / "corpus.mbox"
        size = make_corpus(box, args.n)
        print(f"pop3 full download: {args.n} messages, {size / 1e6:.1f} MB mbox")
        (tmp / "ours").mkdir()
        ours = run_ours(box, tmp / "ours")
        print(ours.row())
        (tmp / "dovecot").mkdir()
        dove = run_dovecot(box, tmp / "dovecot")
        if dove is None:
            print("dovecot    skipped (dovecot-pop3d not installed)")
            return 0
        print(dove.row())
        print(f"ratio      {ours.seconds / dove.seconds:8.2f} x Dovecot's time"
              f"  (same bytes: {ours.octets == dove.octets}, {ours.digest} / {dove.digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
