"""Our pop3 and imap4d reading mail through plan9port's upas/fs (issue 14,
row 4): a plan9port host whose factotum and upas/fs are plan9port's.

plan9port's upas/fs opens /mail/box/USER/mbox on the host and takes
attaches from its own user only, so it runs as the invoking user with a
private /mail (PrivateMail), and so do our servers, whose user is that
user too (a keyfs entry for pop3's APOP).  Every answer is compared with
the same session over our own upasfs on the same mailbox; plan9port's
9pserve must survive every FETCH of every part (it dereferenced NULL
when a walk to a part that is not there was followed by a Topen).
"""
from __future__ import annotations

import hashlib
import os
import pwd
import shutil

import pytest

from auth import crypt
from tests.fixtures.pop3 import PopClient
from tests.fixtures.transcript import Tap, Transcript, finished
from tests.interop import sessions
from tests.interop.conftest import record
from tests.interop.plan9port import Daemon, wait_posted
from upas.ninep.codec import DMDIR

USER = pwd.getpwuid(os.getuid()).pw_name     # plan9port's upas/fs serves only its owner
SECRET = "interop-apop"


@pytest.fixture
def p9p_host(p9p, p9p_factotum, private_mail, servers):
    """plan9port's upas/fs (`upas/fs -s`) on a fresh /mail/box/USER/mbox,
    reached through a Tap; the environment for our servers."""
    box = private_mail.dir / "box" / USER
    if box.exists():
        shutil.rmtree(box)
    sessions.mailbox_for(private_mail.dir, USER)
    _keyfs_user(p9p_factotum.servers)
    ns = p9p_factotum.ns
    fs = Daemon(private_mail.wrap([p9p.bin("upas/fs"), "-s"]), p9p.env(ns),
                servers.base / "upasfs.log")
    tap = None
    try:
        wait_posted(os.path.join(ns, "upasfs"), fs)
        tap = Tap("unix!" + os.path.join(ns, "upasfs"),
                  listen="unix!" + str(servers.base / "upasfs.tap"))
        env = dict(p9p_factotum.env, upasfs=tap.addr, factotum=p9p_factotum.addr,
                   auth=p9p_factotum.servers.auth, POP3_DELAY_SCALE="0",
                   USER=USER, LOGNAME=USER, user=USER)
        for var in ("MAILROOT", "PLAN9"):
            env.pop(var, None)
        yield fs, tap, env
    finally:
        if tap:
            tap.close()
        fs.stop()


def _keyfs_user(auth) -> None:
    with auth.keys_client() as c:
        if USER in c.readdir_names(""):
            return
        c.create(USER, DMDIR | 0o777, "r").close()
        c.write(f"{USER}/key", crypt.passtokey(USER + "-pw"))
        c.write(f"{USER}/secret", SECRET.encode())


def _ours(env: dict, base) -> dict:
    """The same environment, mail through a upasfs of our own."""
    ns = base / "ns-ours"
    ns.mkdir(mode=0o700, exist_ok=True)
    ours = dict(env, NAMESPACE=str(ns))
    ours.pop("upasfs")
    return ours


def _alive(p9p, env, fs) -> bool:
    r = p9p.run(["9p", "ls", "upasfs"], env)
    return fs.alive() and r.returncode == 0 and b"mbox" in r.stdout


def test_imap4d_fetches_every_part_over_p9p_upasfs(p9p, p9p_host, servers, private_mail):
    fs, tap, env = p9p_host
    a = servers.start("upas.imap4d", ["-a", "-s", "imap.test"], env, wrap=private_mail.wrap)
    since = len(tap.connections)
    first = sessions.imap_every_part(a.addr)
    conns = finished(tap, since, 1)
    assert not any(b"BYE upas/fs" in line for line in first), first
    assert all(line.startswith(b"* ") or line.endswith(b"completed\r\n") or line.startswith(
        b"s OK") for line in first), [x for x in first if b" OK " not in x][:5]
    for _ in range(sessions.RUNS - 1):                  # new sessions, the same upas/fs
        assert sessions.imap_every_part(a.addr) == first
        assert _alive(p9p, p9p.env(env["NAMESPACE"]), fs)
    record(Transcript("upasfs-imap4d", "our imap4d -a: SELECT INBOX and FETCH of every "
                           f"part ({sessions.RUNS} times), over plan9port's upas/fs (9pserve)",
                           "plan9port upas/fs -s (9pserve)", "client", "9p", conns),
           "interop_upasfs")
    b = servers.start("upas.imap4d", ["-a", "-s", "imap.test"], _ours(env, servers.base),
                      wrap=private_mail.wrap)
    assert sessions.imap_every_part(b.addr) == first


def test_pop3_reads_every_message_over_p9p_upasfs(p9p, p9p_host, servers, private_mail):
    fs, tap, env = p9p_host
    a = servers.start("upas.pop3", [], env, wrap=private_mail.wrap)
    since = len(tap.connections)
    first = sessions.pop3_every_message(a.addr, USER, SECRET)
    conns = finished(tap, since, 1)
    assert first[0] == f"+OK mailbox is /mail/box/{USER}/mbox\r\n".encode()
    assert first[1].startswith(b"+OK 8 ") and first[-1] == b"+OK\r\n"
    assert sessions.pop3_every_message(a.addr, USER, SECRET) == first
    assert _alive(p9p, p9p.env(env["NAMESPACE"]), fs)
    record(Transcript("upasfs-pop3", "our pop3: APOP, STAT, LIST, UIDL, RETR and TOP "
                           "of every message, over plan9port's upas/fs (9pserve)",
                           "plan9port upas/fs -s (9pserve)", "client", "9p", conns),
           "interop_upasfs")
    b = servers.start("upas.pop3", [], _ours(env, servers.base), wrap=private_mail.wrap)
    assert sessions.pop3_every_message(b.addr, USER, SECRET) == first


def test_missing_mailbox_says_where(p9p, p9p_host, servers, private_mail):
    """/mail/box/USER/mbox gone from the host: the error says where
    plan9port's upas/fs looked, not just `No such file or directory`."""
    fs, tap, env = p9p_host
    fs.stop()                                  # it holds the mailbox open
    (private_mail.dir / "box" / USER / "mbox").unlink()
    ns = env["NAMESPACE"]
    fs2 = Daemon(private_mail.wrap([p9p.bin("upas/fs"), "-n", "-s"]), p9p.env(ns),
                 servers.base / "upasfs2.log")
    try:
        wait_posted(os.path.join(ns, "upasfs"), fs2)
        a = servers.start("upas.pop3", [], dict(env, upasfs="unix!" + os.path.join(ns, "upasfs")),
                          wrap=private_mail.wrap)
        c = PopClient(a.addr)
        digest = hashlib.md5(c.chal.encode() + SECRET.encode()).hexdigest()
        assert c.cmd(f"APOP {USER} {digest}".encode()) == (
            f"-ERR upas/fs cannot open /mail/box/{USER}/mbox: No such file or directory "
            "(it must exist on the host upas/fs runs on)\r\n").encode()
        c.close()
    finally:
        fs2.stop()
