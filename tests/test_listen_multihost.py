"""Several machines, the Plan 9 way: one storage host serving upasfs,
factotum, ratfs and the auth server over 9P/TCP, and two frontends
(launcher + pop3/imap4d) mounting them.  Real network namespaces on a
bridge the test creates (tests/fixtures/netns.py; needs root and `ip netns`),
the frontends unable to see the store's files.  IMAP on frontends:
tests/test_frontends.py."""
import hashlib
import poplib
import re

import pytest

pytestmark = pytest.mark.timeout(120)


def apop(addr, user, secret):
    p = poplib.POP3(addr, 11110, timeout=20)
    chal = re.search(rb"<[^>]+>", p.getwelcome()).group(0)
    resp = p._shortcmd(f"APOP {user} " + hashlib.md5(chal + secret).hexdigest())
    assert resp.startswith(b"+OK"), resp
    return p


@pytest.fixture
def three_hosts(cluster):
    yield cluster.net, cluster.store, cluster.fronts["fe1"], cluster.fronts["fe2"], cluster.mailroot


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
