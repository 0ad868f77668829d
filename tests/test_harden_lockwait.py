"""Issue 17, item 8: L.mbox is 0666, as on Plan 9, so whoever can reach a
mailbox directory can hold its lock (the test process plays that local
user).  A session waits UPAS_SESSION_LOCK_TIMEOUT at most (30 s; 2 here),
then gets a clear error; nothing is deleted, nothing hidden, and once the
lock is free the same commands work.  Real pop3 and imap4d sessions."""
import time

import pytest

from upas.mail.lock import MailLock

pytestmark = pytest.mark.timeout(90)
WAIT = {"UPAS_SESSION_LOCK_TIMEOUT": "2"}


def count(mbox) -> int:
    return sum(1 for line in mbox.read_bytes().split(b"\n") if line.startswith(b"From "))


def test_pop3_quit_under_a_held_lock(pop3_factory):
    srv = pop3_factory(env=WAIT)
    box = srv.box("glenda")
    before = box.read_bytes()
    n = count(box)
    c = srv.connect()
    assert c.apop("glenda", "glenda-apop").startswith(b"+OK")
    assert c.cmd(b"DELE 1").startswith(b"+OK")
    with MailLock(str(box.parent)):
        t = time.monotonic()
        assert c.cmd(b"QUIT") == b"-ERR error deleting messages: can't lock mailbox\r\n"
        assert 1.5 < time.monotonic() - t < 15
        assert c.closed()
    assert box.read_bytes() == before                    # nothing lost
    c = srv.connect()
    assert c.apop("glenda", "glenda-apop").startswith(b"+OK")
    assert c.cmd(b"STAT").startswith(b"+OK %d " % n)     # nothing hidden
    assert c.cmd(b"DELE 1").startswith(b"+OK")
    assert c.cmd(b"QUIT").startswith(b"+OK")
    assert count(box) == n - 1


def test_imap_expunge_and_store_under_a_held_lock(imap_factory):
    srv = imap_factory(flags=("-a",), auth=False, posted_upasfs=False, env=WAIT)
    box = srv.box()
    before = box.read_bytes()
    n = count(box)
    c = srv.connect()
    assert c.cmd(b"s SELECT INBOX")[-1].startswith(b"s OK")
    assert c.cmd(b"d STORE 1 +FLAGS (\\Deleted)")[-1].startswith(b"d OK")
    with MailLock(str(box.parent)):
        t = time.monotonic()
        r = c.cmd(b"e EXPUNGE")
        assert r[-1] == b"e NO [INUSE] EXPUNGE failed: mailbox locked, try again later\r\n"
        assert not any(b"EXPUNGE\r\n" in x and x.startswith(b"* ") for x in r)
        r = c.cmd(b"f STORE 2 +FLAGS (\\Flagged)")
        assert r[-1] == b"f NO [INUSE] STORE failed: mailbox locked, try again later\r\n"
        assert time.monotonic() - t < 20
        assert c.cmd(b"n NOOP")[-1].startswith(b"n OK")
    assert box.read_bytes() == before
    r = c.cmd(b"g EXPUNGE")
    assert r[-1].startswith(b"g OK") and b"* 1 EXPUNGE\r\n" in r
    assert count(box) == n - 1
    c.cmd(b"z LOGOUT")
