"""A mail store restarts cleanly (issue 19): a killed upasfs broker left
its users' upasfs running, posted and holding their mailboxes, and every
session after a restart started another that died with `address in use`
while the orphans served the mail.  Now the next broker adopts them: one
upasfs per user after a restart, the same processes, no tracebacks, and
stopping the store stops them."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from upas.ninep.client import Client
from upas.ninep.dial import dial

pytestmark = pytest.mark.timeout(120)

USERS = ("glenda", "bob")


def upasfs_pids(nsdir: str) -> dict[str, list[int]]:
    """Every process on the machine serving `upasfs.USER` in nsdir."""
    found: dict[str, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"upas.fs9p" in argv and f"NAMESPACE={nsdir}".encode() in env:
            (name,) = [a for a in argv if a.startswith(b"upasfs.")]
            found.setdefault(name.decode().removeprefix("upasfs."), []).append(int(d.name))
    return found


class Broker:
    def __init__(self, tmp: Path):
        self.ns = str(tmp / "ns")
        self.addr = f"unix!{tmp}/broker"
        mail = tmp / "mail"
        subprocess.run(["cp", "-r", str(Path(__file__).parent.parent / "testdata" / "mail"),
                        str(mail)], check=True)
        self.env = dict(os.environ, NAMESPACE=self.ns, MAILROOT=str(mail))
        self.logs: list[Path] = []
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = Path(self.ns).parent / f"broker{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "upas.fsbroker", "-s", self.addr],
                                         env=self.env, stderr=err)
        end = time.monotonic() + 20
        while True:     # (a killed broker's socket file is there, refusing)
            try:
                dial(self.addr).close()
                return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < end
                time.sleep(0.02)

    def session(self, user: str) -> int:
        """A session's view of the user's inbox: its message count."""
        with Client.dial(self.addr, uname=user) as c:
            c.write("ctl", f"open /mail/box/{user}/mbox mbox".encode())
            return len([n for n in c.readdir_names("mbox") if n.isdigit()])


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    if b.proc and b.proc.poll() is None:
        b.proc.terminate()
        b.proc.wait(10)
    for pids in upasfs_pids(b.ns).values():
        for pid in pids:
            os.kill(pid, signal.SIGKILL)


def test_a_restarted_broker_adopts_the_upasfs_of_a_killed_one(broker):
    broker.start()
    counts = {u: broker.session(u) for u in USERS}
    before = upasfs_pids(broker.ns)
    assert sorted(before) == sorted(USERS) and all(len(p) == 1 for p in before.values())
    broker.proc.kill()                      # the store's broker dies
    broker.proc.wait()
    assert upasfs_pids(broker.ns) == before  # its children live on, posted
    broker.start()
    for _ in range(5):                      # sessions after the restart
        assert {u: broker.session(u) for u in USERS} == counts
    assert upasfs_pids(broker.ns) == before  # adopted: no second upasfs
    broker.proc.terminate()                 # a stop stops what it adopted
    broker.proc.wait(20)
    assert upasfs_pids(broker.ns) == {}
    log = broker.logs[1].read_text()
    assert "Traceback" not in log and "address in use" not in log, log
    assert "adopted upasfs for glenda" in log


def test_a_dead_adopted_upasfs_is_started_again(broker):
    broker.start()
    n = broker.session("glenda")
    broker.proc.kill()
    broker.proc.wait()
    broker.start()
    (pid,) = upasfs_pids(broker.ns)["glenda"]
    os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 10
    while upasfs_pids(broker.ns).get("glenda"):
        assert time.monotonic() < end
        time.sleep(0.02)
    assert broker.session("glenda") == n
    (new,) = upasfs_pids(broker.ns)["glenda"]
    assert new != pid
