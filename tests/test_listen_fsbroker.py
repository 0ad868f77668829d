"""The launcher's -u: one upasfs per user kept alive across sessions
behind the posted `upasfs` (upas/fsbroker.py), restarted when it dies."""
import hashlib
import imaplib
import os
import poplib
import re
import signal
import ssl
import time
from pathlib import Path

import pytest

from upas.ninep.client import Client, Error
from tests.fixtures.host import start_host

pytestmark = pytest.mark.timeout(120)


def upasfs_pids(host, user):
    """user's upasfs processes started by this host's launcher (other hosts
    may run on the machine at the same time)."""
    launcher = dict(host.procs)["listen"].pid
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if ppid == launcher and b"upas.fs9p" in argv and f"upasfs.{user}".encode() in argv:
                pids.append(int(d.name))
    return pids


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = start_host(tmp_path_factory.mktemp("run"), keep_fs=True)
    try:
        yield h
    finally:
        h.stop()


def apop(host, user, secret):
    h, port = host.addrs["pop3"]
    p = poplib.POP3(h, port, timeout=20)
    chal = re.search(rb"<[^>]+>", p.getwelcome()).group(0)
    assert p._shortcmd(f"APOP {user} " + hashlib.md5(chal + secret).hexdigest()
                       ).startswith(b"+OK")
    return p


def imap(host, user, secret):
    h, port = host.addrs["imaps"]
    ctx = ssl.create_default_context(cafile=str(host.cafile))
    ctx.check_hostname = False
    m = imaplib.IMAP4_SSL(h, port, ssl_context=ctx, timeout=20)
    assert m.login(user, secret)[0] == "OK"
    return m


def test_sessions_share_the_users_upasfs(host):
    p = apop(host, "glenda", b"glenda-apop")
    n = p.stat()[0]
    p.quit()
    pids = upasfs_pids(host, "glenda")
    assert len(pids) == 1
    m = imap(host, "glenda", "glenda-apop")
    assert int(m.select("INBOX", readonly=True)[1][0]) == n
    m.shutdown()
    p = apop(host, "glenda", b"glenda-apop")
    assert p.stat()[0] == n
    p.quit()
    assert upasfs_pids(host, "glenda") == pids          # the same process all along
    b = apop(host, "bob", b"bob-apop")            # bob gets his own
    b.quit()
    assert len(upasfs_pids(host, "bob")) == 1


def test_a_dead_upasfs_is_restarted(host):
    apop(host, "glenda", b"glenda-apop").quit()
    (old,) = upasfs_pids(host, "glenda")
    os.kill(old, signal.SIGKILL)
    time.sleep(0.2)
    p = apop(host, "glenda", b"glenda-apop")
    assert p.stat()[0] > 0
    p.quit()
    (new,) = upasfs_pids(host, "glenda")
    assert new != old


def test_only_users_with_mail_get_one(host):
    addr = f"unix!{host.env['NAMESPACE']}/upasfs"
    with pytest.raises(Error, match="^permission denied$"):
        Client.dial(addr, uname="mallory")
    with pytest.raises(Error, match="^permission denied$"):
        Client.dial(addr, uname="../glenda")
    assert upasfs_pids(host, "mallory") == []
    with Client.dial(addr, uname="glenda") as c:   # a 9P session with glenda's upasfs
        assert "ctl" in [s.name for s in c.readdir("")]
        # the broker answers the pipelining probe for the upasfs behind it
        assert c.walks_pipelined is True
