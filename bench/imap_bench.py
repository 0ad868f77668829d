"""IMAP: ours beside Dovecot's imap on the same 10,000-message mailbox.

Timed steps, one after the other on each server: SELECT INBOX cold (no
.imp / no index), SELECT INBOX warm (a second session), FETCH 1:* (UID FLAGS
RFC822.SIZE ENVELOPE), FETCH 1:* BODY.PEEK[], SEARCH TEXT <word>.  Ours:
`python -m upas.imap4d -a` per connection (the socket as stdin/stdout)
over a posted upasfs, as the launcher runs it.  Dovecot runs privately on
loopback when /usr/sbin/dovecot exists (`--install-dovecot` tries
`apt-get install dovecot-imapd` once); otherwise its column is skipped.

    python -m bench.imap_bench [-n MESSAGES] [--install-dovecot]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pop3_bench import (DOVECOT, descendants, free_port, mail_owner,  # noqa: E402
                              make_corpus, vmhwm_kb)

TIMEOUT = 900
STEPS = ("SELECT cold", "SELECT warm", "FETCH envelope", "FETCH body", "SEARCH TEXT")
WORD = "factotum"


class Client:
    """A lean IMAP client: reads in big chunks, skips literals by count."""

    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=TIMEOUT)
        self.buf = bytearray()
        self.greeting = self.readline()
        self.n = 0

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

    def skip(self, n: int) -> None:
        while len(self.buf) < n:
            self._fill()
        del self.buf[:n]

    def cmd(self, text: str) -> tuple[int, bytes]:
        """Run a command; (untagged lines, the tagged reply)."""
        self.n += 1
        tag = b"t%d" % self.n
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        count = 0
        while True:
            line = self.readline()
            while (m := re.search(rb"\{(\d+)\}\r\n$", line)):
                self.skip(int(m.group(1)))
                line = self.readline()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text}: {line!r}")
                return count, line
            count += 1


def session(addr, login: str | None) -> Client:
    c = Client(addr)
    if login:
        c.cmd(login)
    return c


def timed(results: dict, name: str, fn) -> None:
    t = time.perf_counter()
    fn()
    results[name] = time.perf_counter() - t


def run_steps(addr, login: str | None, peak) -> dict:
    """The timed steps; peak() (the servers' VmHWM) is read before LOGOUT."""
    r: dict = {}
    c = session(addr, login)
    timed(r, "SELECT cold", lambda: c.cmd("SELECT INBOX"))
    c.cmd("LOGOUT")
    c = session(addr, login)
    timed(r, "SELECT warm", lambda: c.cmd("SELECT INBOX"))
    timed(r, "FETCH envelope", lambda: c.cmd("FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)"))
    timed(r, "FETCH body", lambda: c.cmd("FETCH 1:* BODY.PEEK[]"))
    timed(r, "SEARCH TEXT", lambda: c.cmd(f"SEARCH TEXT {WORD}"))
    r["hits"] = c.cmd(f"SEARCH TEXT {WORD}")
    r["peak_kb"] = peak()
    c.cmd("LOGOUT")
    return r


# ---------------------------------------------------------------- ours
def run_ours(box: Path, tmp: Path) -> dict:
    from tests.fixtures.imap import _Acceptor, _posted_upasfs

    root = tmp / "mail"
    (root / "box" / "glenda").mkdir(parents=True)
    shutil.copy(box, root / "box" / "glenda" / "mbox")
    ns = tempfile.mkdtemp(prefix="ns.", dir="/tmp")
    env = dict(os.environ, MAILROOT=str(root), NAMESPACE=ns, user="glenda", USER="glenda",
               LOGNAME="glenda")
    env.pop("upasfs", None)
    fs = _posted_upasfs(env, "glenda")
    acc = _Acceptor([sys.executable, "-m", "upas.imap4d", "-a", "-s", "bench"], env,
                    str(tmp / "imap.log"))
    try:
        r = run_steps(acc.listener.getsockname()[:2], None,
                      lambda: sum(vmhwm_kb(p) for p in [fs.pid] + [x for proc in acc.procs
                                                                    for x in descendants(proc.pid)]))
    finally:
        acc.stop()
        fs.terminate()
        fs.wait(10)
        shutil.rmtree(ns, ignore_errors=True)
    return r


# ---------------------------------------------------------------- Dovecot
DOVECOT_CONF = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = mbox:{tmp}/home/mail:INBOX={tmp}/home/inbox:INDEX={tmp}/home/index
service imap-login {{
  inet_listener imap {{
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


def install_dovecot() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "dovecot-imapd"], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def run_dovecot(box: Path, tmp: Path) -> dict | None:
    if not os.path.exists(DOVECOT) or not os.path.exists("/usr/lib/dovecot/imap"):
        return None
    for d in ("mail", "index"):
        (tmp / "home" / d).mkdir(parents=True)
    shutil.copy(box, tmp / "home" / "inbox")
    port = free_port()
    uid, gid = mail_owner(tmp)
    if os.getuid() == 0:
        os.chown(tmp / "home" / "index", uid, gid)
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
            return sum(vmhwm_kb(p) for p in descendants(master.pid)
                       if Path(f"/proc/{p}/comm").exists()
                       and Path(f"/proc/{p}/comm").read_text().strip() == "imap")
        r = run_steps(("127.0.0.1", port), "LOGIN glenda bench", peak)
    finally:
        master.terminate()
        master.wait(10)
    return r


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000, help="messages in the corpus")
    ap.add_argument("--install-dovecot", action="store_true")
    args = ap.parse_args(argv)
    if args.install_dovecot and not os.path.exists("/usr/lib/dovecot/imap"):
        install_dovecot()
    with tempfile.TemporaryDirectory(prefix="imapbench.", dir="/tmp") as d:
        tmp = Path(d)
        box = tmp / "corpus.mbox"
        size = make_corpus(box, args.n)
        print(f"imap: {args.n} messages, {size / 1e6:.1f} MB mbox")
        (tmp / "ours").mkdir()
        ours = run_ours(box, tmp / "ours")
        (tmp / "dovecot").mkdir()
        dove = run_dovecot(box, tmp / "dovecot")
        print(f"{'step':<16} {'upas-py':>10} {'dovecot':>10} {'ratio':>8}")
        for step in STEPS:
            o = ours[step]
            if dove:
                print(f"{step:<16} {o:9.2f}s {dove[step]:9.2f}s {o / dove[step]:7.1f}x")
            else:
                print(f"{step:<16} {o:9.2f}s {'skipped':>10}")
        print(f"peak memory      {ours['peak_kb'] / 1024:8.1f}MB"
              + (f" {dove['peak_kb'] / 1024:8.1f}MB" if dove else "  (dovecot-imapd not installed)"))
        print(f"SEARCH TEXT {WORD}: {ours['hits'][0]} lines"
              + (f" / {dove['hits'][0]}" if dove else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
