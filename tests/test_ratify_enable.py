"""enableaddr (upas/ratify/enable.py) against a real ratfs: Plan 9's
`if(access(buf, 0) >= 0 && remove(buf) < 0) return; create(buf, ...)`,
whatever order of requests makes it (docs/spec/servers.md §1.3)."""
from __future__ import annotations

import pytest

from upas.ns import Namespace
from upas.ratify.enable import enableaddr

pytestmark = pytest.mark.timeout(30)

PATH = "/mail/ratify/trusted/192.0.2.7#32"


@pytest.fixture
def mounted(ratfs):
    made = []

    def ns(user: str) -> Namespace:
        n = Namespace(user)
        n.mount("/mail/ratify", ratfs.addr, uname=user)
        made.append(n)
        return n
    yield ns
    for n in made:
        n.close()


def test_an_address_not_there_is_created(mounted):
    ns = mounted("glenda")
    assert not ns.exists(PATH)
    enableaddr(ns, "192.0.2.7!1234")
    assert ns.stat(PATH).uid == "glenda"


def test_an_address_there_is_removed_and_created_again(mounted):
    ns = mounted("glenda")
    enableaddr(ns, "192.0.2.7")
    first = ns.stat(PATH).qid
    enableaddr(ns, "192.0.2.7")
    again = ns.stat(PATH)
    assert again.uid == "glenda" and again.qid != first     # a new file: its clock restarted


def test_another_users_entry_is_left_and_nothing_created(mounted):
    bob, glenda = mounted("bob"), mounted("glenda")
    enableaddr(bob, "192.0.2.7")
    before = bob.stat(PATH)
    enableaddr(glenda, "192.0.2.7")          # its remove is refused: silent, as Plan 9's
    after = glenda.stat(PATH)
    assert (after.uid, after.qid) == ("bob", before.qid)


def test_a_spares_connection_ratifies_with_the_attach_unanswered(ratfs):
    """A login's ratification on the connection a spare dialled ahead
    (ns.dial_ahead): the attach goes out, and the remove's walk after it
    before its reply is read (ninep.Client.attach_begin); the real ratfs
    still makes the entry as the user, twice over (created, then
    replaced), and a third session attached as another user is refused
    its remove and creates nothing."""
    from upas import ns as nsmod
    made = []

    def ratify(user: str) -> Namespace:
        nsmod.dial_ahead(ratfs.addr)
        assert nsmod._ahead is not None
        n = Namespace(user)
        n.mount("/mail/ratify", ratfs.addr, lazy=True, uname=user, ours=True)
        made.append(n)
        enableaddr(n, "192.0.2.7!993")
        assert nsmod._ahead is None         # the connection made ahead was used
        return n
    try:
        first = ratify("glenda").stat(PATH)
        again = ratify("glenda").stat(PATH)
        assert first.uid == again.uid == "glenda" and again.qid != first.qid
        other = ratify("bob").stat(PATH)
        assert (other.uid, other.qid) == ("glenda", again.qid)
    finally:
        nsmod.drop_ahead()
        for n in made:
            n.close()
