"""factotum's connections to the auth server dialled ahead
(auth/factotum/asclient.py AheadDialler): each conversation gets a
connection of its own, the one dialled while the last went on; one the
AS has hung up on meanwhile (its idle timeout) is not used."""
import socket
import time

import pytest

from auth.factotum.asclient import AheadDialler

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server():
    """A TCP listener standing for the AS: its accepted connections, in order."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    yield lst
    lst.close()


def accept(lst, timeout=5.0):
    lst.settimeout(timeout)
    return lst.accept()[0]


def peer_of(conn):
    return conn.sock.getsockname()


def two(lst):
    """The next two connections accepted, by their peer's address (the
    call's own dial and the one ahead race)."""
    conns = [accept(lst), accept(lst)]
    return {c.getpeername(): c for c in conns}


def stored(d):
    """Wait until the connection dialled ahead is the dialler's to give."""
    end = time.monotonic() + 5
    while not d.ready and time.monotonic() < end:
        time.sleep(0.001)
    assert d.ready


def test_each_conversation_its_own_connection_the_next_dialled_ahead(server):
    addr = "tcp!127.0.0.1!%d" % server.getsockname()[1]
    d = AheadDialler(addr)
    first = d(None)                          # nothing ahead yet: dialled now ...
    got = two(server)                        # ... and the next, without a call
    assert peer_of(first) in got
    ahead = next(c for p, c in got.items() if p != peer_of(first))
    stored(d)
    second = d(None)
    assert peer_of(second) == ahead.getpeername()
    accept(server).close()                   # and the one after it
    # each connection is the conversation's: what it sends reaches the AS on it alone
    second.send(b"x" * 141)
    assert ahead.recv(141) == b"x" * 141
    first.close()
    second.close()


def test_a_connection_the_as_closed_is_not_used(server):
    addr = "tcp!127.0.0.1!%d" % server.getsockname()[1]
    d = AheadDialler(addr)
    first = d(None)
    got = two(server)
    stale = next(c for p, c in got.items() if p != peer_of(first))
    stored(d)
    stale.close()                            # the one dialled ahead, timed out by the AS
    time.sleep(0.05)
    conn = d(None)
    got = two(server)                        # dialled for this call, and the next
    assert peer_of(conn) in got
    conn.send(b"y")
    assert got[peer_of(conn)].recv(1) == b"y"
    conn.close()
    first.close()


def test_no_auth_server_the_call_fails_as_a_dial_does():
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    port = lst.getsockname()[1]
    lst.close()                              # nobody listens there
    d = AheadDialler("tcp!127.0.0.1!%d" % port)
    from auth.records import ASError
    with pytest.raises(ASError):
        d(None)
