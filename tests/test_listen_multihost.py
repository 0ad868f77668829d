"""Several machines, the Plan 9 way: one storage host serving upasfs,
factotum, ratfs and the auth server over 9P/TCP, and two frontends
(launcher + pop3/imap4d) mounting them.  Real network namespaces on a
bridge the test creates (needs root and `ip netns`)."""
import hashlib
import os
import poplib
import re
import secrets
import shutil
import subprocess
import sys
import threading

import pytest

pytestmark = pytest.mark.timeout(120)


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def netns_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    name = "upchk" + secrets.token_hex(3)
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True)
    if r.returncode:
        return f"ip netns add fails: {r.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


class Net:
    """A bridge in our namespace (address .1) and one netns per host."""

    def __init__(self):
        self.tag = secrets.token_hex(2)
        self.prefix = f"10.{200 + int(self.tag[:2], 16) % 50}.{int(self.tag[2:], 16)}"
        self.bridge = f"upbr{self.tag}"
        self.hosts: dict[str, str] = {}
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.prefix}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def add(self, name: str) -> str:
        n = len(self.hosts) + 2
        ns, veth = f"up{self.tag}{name}", f"upv{self.tag}{n}"
        addr = f"{self.prefix}.{n}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", veth, "master", self.bridge, "up")
        for cmd in (["addr", "add", f"{addr}/24", "dev", "eth0"], ["link", "set", "eth0", "up"],
                    ["link", "set", "lo", "up"]):
            sh("ip", "-n", ns, *cmd)
        self.hosts[name] = ns
        return addr

    def close(self):
        for ns in self.hosts.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def runhost(net, name, args, rundir, procs):
    env = dict(os.environ, POP3_DELAY_SCALE="0", LISTEN_GRACE="1")
    p = subprocess.Popen(["ip", "netns", "exec", net.hosts[name], sys.executable, "-m",
                          "upas.runhost", "-d", str(rundir), *args],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    timer = threading.Timer(60, p.kill)
    timer.start()
    out = []
    for line in p.stdout:
        out.append(line)
        if line.startswith("Ctrl-C stops everything"):
            break
    timer.cancel()
    if p.poll() is not None:
        raise RuntimeError(f"{name}: {''.join(out)} {p.stderr.read()}")
    return "".join(out)


def apop(addr, user, secret):
    p = poplib.POP3(addr, 11110, timeout=20)
    chal = re.search(rb"<[^>]+>", p.getwelcome()).group(0)
    resp = p._shortcmd(f"APOP {user} " + hashlib.md5(chal + secret).hexdigest())
    assert resp.startswith(b"+OK"), resp
    return p


@pytest.fixture
def three_hosts(tmp_path):
    why = netns_usable()
    if why:
        pytest.skip(why)
    net = Net()
    procs = []
    try:
        store = net.add("store")
        fe1, fe2 = net.add("fe1"), net.add("fe2")
        runhost(net, "store", ["-R", "store", "-h", store], tmp_path / "store", procs)
        for name, addr in (("fe1", fe1), ("fe2", fe2)):
            runhost(net, name, ["-R", "frontend", "-h", addr, "-S", store],
                    tmp_path / name, procs)
        yield net, store, fe1, fe2, tmp_path / "store" / "mail"
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        net.close()


def test_two_frontends_share_one_store(three_hosts):
    net, store, fe1, fe2, mailroot = three_hosts
    p1 = apop(fe1, "glenda", b"glenda-apop")
    n, _ = p1.stat()
    uidl1 = p1.uidl()[1]
    p1.quit()
    p2 = apop(fe2, "glenda", b"glenda-apop")
    assert p2.uidl()[1] == uidl1                 # the same mailbox
    first = uidl1[0].split()[1]
    assert p2.dele(1).startswith(b"+OK")
    p2.quit()
    p1 = apop(fe1, "glenda", b"glenda-apop")     # the deletion is seen through fe1
    assert p1.stat()[0] == n - 1
    assert first not in [u.split()[1] for u in p1.uidl()[1]]
    p1.quit()
    mbox = (mailroot / "box" / "glenda" / "mbox").read_bytes()
    assert mbox.count(b"\nFrom ") + mbox.startswith(b"From ") == n - 1
    # another user through the other frontend: his own mailbox on the store
    b = apop(fe2, "bob", b"bob-apop")
    bob = (mailroot / "box" / "bob" / "mbox").read_bytes()
    assert b.stat()[0] == bob.count(b"\nFrom ") + bob.startswith(b"From ")
    b.quit()
    # both frontends ratified the client through the store's ratfs
    from upas.ninep.client import Client
    with Client.dial(f"tcp!{store}!11569", uname="glenda") as c:
        assert c.stat(f"trusted/{net.prefix}.1").name == f"{net.prefix}.1#32"
