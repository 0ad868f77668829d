"""factotum with the real auth server and keyfs, through lib/factotum.

auth_stack: keyfs + authsrv + a factotum holding the host key (upas,
upas.local); users glenda and bob with the demo secrets.  The server roles
follow the Plan 9 conversation (docs/spec/fs-auth.md §2.5) and verify through the AS.
docs/spec/fs-auth.md facts 15, 16, 19, 27, 28; docs/decisions.md "Reference dialect".
"""
import hashlib
import hmac
import re
import socket
import threading

import pytest

from auth import crypt
from lib import factotum as lf
from upas import ninep
from tests.fixtures.factotum import short_namespace, start_factotum

CHAL = re.compile(r"^<[0-9a-f]+\.[0-9a-f]+@[^>]+>$")


def apop(chal: str, secret: str) -> str:
    return hashlib.md5(chal.encode() + secret.encode()).hexdigest()


def cram(chal: str, secret: str) -> str:
    return hmac.new(secret.encode(), chal.encode(), hashlib.md5).hexdigest()


def keyfs_read(stack, path: str) -> bytes:
    with stack.servers.keys_client() as c:
        return c.read(path)


def bad_count(stack, user: str) -> int:
    return int(keyfs_read(stack, f"{user}/log").decode().strip() or "0")


def add_user(stack, user: str, password: str, secret: str, status: str = "ok") -> None:
    """Create a user through keyfs's tree, as changeuser does."""
    with stack.servers.keys_client() as c:
        c.create(user, perm=ninep.DMDIR | 0o777, mode="r").close()
        c.write(f"{user}/key", crypt.passtokey(password))
        c.write(f"{user}/secret", secret.encode())
        if status != "ok":
            c.write(f"{user}/status", status.encode())


def rpc_session(addr):
    c = ninep.Client.dial(addr)
    f = c.open("rpc", "rw")

    def rpc(request: bytes) -> bytes:
        f.write(request)
        return f.read(4096)
    return c, rpc


def test_apop_login(auth_stack):
    addr = auth_stack.env["factotum"]
    c = lf.auth_challenge("proto=apop role=server", addr)
    assert CHAL.match(c.chal)
    ai = lf.auth_response(c, "glenda", apop(c.chal, auth_stack.users["glenda"][1]))
    assert (ai.cuid, ai.suid, ai.cap, ai.secret) == ("glenda", "glenda", "", b"")


def test_apop_wrong_secret_fails_reaches_log_and_can_retry(auth_stack):       # docs/spec/fs-auth.md fact 16
    addr = auth_stack.env["factotum"]
    before = bad_count(auth_stack, "bob")
    c = lf.auth_challenge("proto=apop role=server", addr)
    with pytest.raises(lf.AuthError, match="^remote: apop-fail bad response "):
        lf.auth_response(c, "bob", apop(c.chal, "not-the-secret"))
    assert bad_count(auth_stack, "bob") == before + 1
    ai = lf.auth_response(c, "bob", apop(c.chal, auth_stack.users["bob"][1]))   # same fd
    assert ai.cuid == "bob"
    assert bad_count(auth_stack, "bob") == 0                     # success writes `good`


def test_apop_plan9_conversation_word_for_word(auth_stack):                   # docs/spec/fs-auth.md facts 15, 16, 19
    client, rpc = rpc_session(auth_stack.env["factotum"])
    with client:
        assert rpc(b"start proto=apop role=server") == b"ok"
        reply = rpc(b"read")
        assert reply.startswith(b"ok <")
        chal = reply[3:].decode()
        assert CHAL.match(chal)
        assert rpc(b"write glenda") == b"ok"
        assert rpc(b"write " + b"0" * 31) == b"error response not MD5 digest"
        digest = apop(chal, auth_stack.users["glenda"][1]).upper()   # either case
        assert rpc(b"write " + digest.encode()) == b"ok"
        assert rpc(b"read") == b"done haveai"
        assert rpc(b"authinfo") == b"ok " + bytes.fromhex("0600676c656e64610600676c656e646100000000")
        assert b"user=glenda" in rpc(b"attr")


def test_apop_start_user_must_match(auth_stack):
    client, rpc = rpc_session(auth_stack.env["factotum"])
    with client:
        assert rpc(b"start proto=apop role=server user=glenda") == b"ok"
        rpc(b"read")
        assert rpc(b"write bob") == b"error bad user"


def test_cram_login_and_failure(auth_stack):
    addr = auth_stack.env["factotum"]
    before = bad_count(auth_stack, "glenda")
    c = lf.auth_challenge("proto=cram role=server", addr)
    assert CHAL.match(c.chal)
    with pytest.raises(lf.AuthError, match="^remote: cram-fail bad response "):
        lf.auth_response(c, "glenda", cram(c.chal, "glenda-wrong"))
    assert bad_count(auth_stack, "glenda") == before + 1
    ai = lf.auth_response(c, "glenda", cram(c.chal, auth_stack.users["glenda"][1]))
    assert ai.cuid == ai.suid == "glenda"


def test_cram_client_role_answers_our_server(auth_stack):
    """factotum as client (auth_respond) against factotum as server."""
    addr = auth_stack.env["factotum"]
    auth_stack.factotum.ctl("key proto=cram server=upas.local user=bob !password=bob-apop")
    c = lf.auth_challenge("proto=cram role=server", addr)
    resp, user = lf.auth_respond(c.chal, "proto=cram role=client server=upas.local", addr)
    assert user == "bob" and resp == resp.upper()
    assert lf.auth_response(c, user, resp.lower()).cuid == "bob"


def test_p9cr_netkey_vector_and_login(auth_stack):                            # docs/spec/fs-auth.md fact 28
    assert lf.p9cr_response("12345", "password") == "7d682065"
    add_user(auth_stack, "netkey", "password", "netkey-apop")
    ai = lf.auth_userpasswd("netkey", "password", auth_stack.env["factotum"])
    assert ai.cuid == ai.suid == "netkey"
    with pytest.raises(lf.AuthError, match="^remote: chal-fail bad response "):
        lf.auth_userpasswd("netkey", "wrong-password", auth_stack.env["factotum"])


def test_p9cr_conversation(auth_stack):
    client, rpc = rpc_session(auth_stack.env["factotum"])
    with client:
        assert rpc(b"start proto=p9cr role=server") == \
            b"error no user name specified in start msg"
        assert rpc(b"start proto=p9cr role=server user=glenda") == b"ok"
        chal = rpc(b"read")
        assert re.fullmatch(rb"ok \d{1,5}", chal)
        resp = lf.p9cr_response(chal[3:].decode(), auth_stack.users["glenda"][0])
        assert rpc(b"write " + resp.encode()) == b"ok"
        assert rpc(b"read") == b"done haveai"


def proxy_pair(client_addr, server_addr, client_attrs="proto=p9any role=client",
               server_attrs="proto=p9any role=server"):
    """auth_proxy on both ends of a socketpair; the two outcomes."""
    a, b = socket.socketpair()
    out = {}

    def run(name, sock, attrs, addr):
        try:
            out[name] = lf.auth_proxy(sock, attrs, addr)
        except Exception as e:              # reported by the assertions below
            out[name] = e
        finally:
            sock.close()

    t = threading.Thread(target=run, args=("server", b, server_attrs, server_addr))
    t.start()
    run("client", a, client_attrs, client_addr)
    t.join(30)
    return out["client"], out["server"]


@pytest.fixture(scope="module")
def glenda_factotum(auth_stack):
    ns = short_namespace()
    f = start_factotum(ns, service="glenda", authaddr=auth_stack.authaddr,
                       keys=("proto=p9sk1 dom=upas.local user=glenda !password=glenda-pw",))
    yield f
    f.stop()


def test_p9sk1_mutual_authentication_two_factotums(auth_stack, glenda_factotum):
    cli, srv = proxy_pair(glenda_factotum.addr, auth_stack.env["factotum"])
    assert isinstance(cli, lf.AuthInfo), cli
    assert isinstance(srv, lf.AuthInfo), srv
    assert len(cli.secret) == 8 and cli.secret == srv.secret
    assert cli.cuid == srv.cuid == "glenda"
    cli2, srv2 = proxy_pair(glenda_factotum.addr, auth_stack.env["factotum"],
                            "proto=p9sk1 role=client", "proto=p9sk1 role=server")
    assert cli2.secret == srv2.secret != cli.secret


def test_garbled_ticket_and_toosmall(auth_stack, glenda_factotum):
    client, rpc = rpc_session(auth_stack.env["factotum"])
    with client:
        assert rpc(b"start proto=p9sk1 role=server") == b"ok"
        assert rpc(b"write 1234") == b"toosmall 8"
        assert rpc(b"write 12345678") == b"ok"
        treq = rpc(b"read")[3:]
        assert len(treq) == 141
        assert rpc(b"write " + bytes(85)) == b"error auth server protocol botch"
        assert rpc(b"write " + bytes(40)) == b"toosmall 85"
    # everything still answers
    assert auth_stack.factotum.alive() and glenda_factotum.alive()
    test_apop_login(auth_stack)


def test_missing_key_is_needkey(auth_stack):
    ns = short_namespace()
    empty = start_factotum(ns, service="empty", authaddr=auth_stack.authaddr)
    try:
        cli, srv = proxy_pair(empty.addr, auth_stack.env["factotum"])
        assert isinstance(cli, lf.NeedKey)
        assert cli.template == "!password? dom=upas.local proto=p9sk1 user?"
        with pytest.raises(lf.NeedKey) as e:
            lf.auth_challenge("proto=apop role=server", empty.addr)
        assert e.value.template == "dom? proto=p9sk1 user?"
    finally:
        empty.stop()
    test_apop_login(auth_stack)


def test_wrong_domain(auth_stack):
    with pytest.raises(lf.NeedKey) as e:
        lf.auth_challenge("proto=apop role=server dom=wrong.dom", auth_stack.env["factotum"])
    assert e.value.template == "dom=wrong.dom proto=p9sk1 user?"
    test_apop_login(auth_stack)


def test_disabled_user(auth_stack):
    add_user(auth_stack, "gone", "gone-pw", "gone-apop", status="disabled")
    c = lf.auth_challenge("proto=apop role=server", auth_stack.env["factotum"])
    with pytest.raises(lf.AuthError, match="^remote: apop-fail bad response "):
        lf.auth_response(c, "gone", apop(c.chal, "gone-apop"))
    c.close()
    with pytest.raises(lf.AuthError, match="^remote: chal-fail bad response "):
        lf.auth_userpasswd("gone", "gone-pw", auth_stack.env["factotum"])
    assert auth_stack.factotum.alive()
    test_apop_login(auth_stack)


def test_ctl_listing_hides_the_host_secret(auth_stack):                      # docs/spec/fs-auth.md fact 18
    with ninep.Client.dial(auth_stack.env["factotum"]) as c:
        listing = c.read("ctl").decode()
    assert "key proto=p9sk1 dom=upas.local user=upas !password?\n" in listing
    assert "upas-host-pw" not in listing and "bob-apop" not in listing


def test_parallel_logins(auth_stack):
    """Conversations run side by side on one factotum and one AS."""
    addr = auth_stack.env["factotum"]
    results = []

    def login(user):
        try:
            c = lf.auth_challenge("proto=apop role=server", addr)
            results.append(lf.auth_response(c, user, apop(c.chal, auth_stack.users[user][1])).cuid)
        except Exception as e:               # collected, then asserted
            results.append(e)

    threads = [threading.Thread(target=login, args=(u,)) for u in ["glenda", "bob"] * 6]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["bob"] * 6 + ["glenda"] * 6
