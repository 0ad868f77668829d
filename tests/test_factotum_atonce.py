"""A response to a factotum of ours in one round trip (lib/factotum.py
_response_at_once): the user's write, the response's, the read that says
done and authinfo sent together, each reply meaning what it meant one by
one.  The real factotum, auth server and keyfs (auth_stack)."""
import hashlib

import pytest

from lib import factotum as lf
from tests.test_factotum_auth import apop, bad_count


class Batches:
    """How many batches of rpc verbs (Twrite, Tread) a client's mux sends
    (its own method wrapped: nothing is answered differently)."""

    def __init__(self, rpc: lf.Rpc):
        self.n = 0
        mux = rpc.client.mux
        start_many = mux.start_many

        def counted(msgs):
            self.n += any(type(m).__name__ in ("Twrite", "Tread") for m in msgs)
            return start_many(msgs)
        mux.start_many = counted


def test_a_good_response_is_one_round_trip(auth_stack):
    c = lf.auth_challenge("proto=apop role=server", auth_stack.env["factotum"])
    assert c.rpc.client.walks_pipelined               # ours
    sent = Batches(c.rpc)
    ai = lf.auth_response(c, "glenda", apop(c.chal, auth_stack.users["glenda"][1]))
    assert (ai.cuid, ai.suid) == ("glenda", "glenda")
    assert sent.n == 1
    assert c.rpc is None                              # the conversation is over


def test_a_refused_response_leaves_the_conversation_for_another_try(auth_stack):
    before = bad_count(auth_stack, "bob")
    c = lf.auth_challenge("proto=apop role=server", auth_stack.env["factotum"])
    with pytest.raises(lf.AuthError, match="^remote: apop-fail bad response "):
        lf.auth_response(c, "bob", hashlib.md5(b"wrong").hexdigest())
    assert c.rpc is not None and bad_count(auth_stack, "bob") == before + 1
    # the read and authinfo sent after the refused write changed nothing
    ai = lf.auth_response(c, "bob", apop(c.chal, auth_stack.users["bob"][1]))
    assert ai.cuid == "bob" and bad_count(auth_stack, "bob") == 0


def test_a_refused_user_ends_the_conversation(auth_stack):
    c = lf.auth_challenge("proto=apop role=server user=glenda", auth_stack.env["factotum"])
    with pytest.raises(lf.FactotumError, match="^bad user$") as e:
        lf.auth_response(c, "bob", apop(c.chal, auth_stack.users["bob"][1]))
    assert not isinstance(e.value, lf.AuthError)
    assert c.rpc is None


def test_a_conversation_opened_ahead_is_used_and_starts_in_one_round_trip(auth_stack):
    """A fork server's spare opens its conversation before its connection
    (open_ahead); the login's challenge then costs one round trip: start
    and the read of the challenge together."""
    addr = auth_stack.env["factotum"]
    lf.open_ahead(addr)
    ahead = lf._ahead[1]
    sent = Batches(type("R", (), {"client": ahead})())
    c = lf.auth_challenge("proto=apop role=server", addr)
    assert c.rpc.client is ahead and lf._ahead is None
    assert sent.n == 1
    ai = lf.auth_response(c, "glenda", apop(c.chal, auth_stack.users["glenda"][1]))
    assert ai.cuid == "glenda"


def test_a_conversation_opened_ahead_of_a_factotum_gone_is_not_used(tmp_path):
    """The factotum restarted while the spare waited: its conversation is
    dropped and a new one dialled."""
    from tests.fixtures.factotum import short_namespace, start_factotum
    ns = short_namespace()
    f = start_factotum(ns)
    addr = f.addr
    lf.open_ahead(addr)
    stale = lf._ahead[1]
    f.stop()
    f = start_factotum(ns)
    try:
        rpc = lf.Rpc(addr)
        assert rpc.client is not stale and lf._ahead is None
        assert rpc.call("start", "proto=apop role=client")[0] == "ok"   # a live conversation
        rpc.close()
    finally:
        f.stop()
