"""The real authsrv over TCP, with keys from the real keyfs (docs/spec/fs-auth.md §3.5/§3.6; facts 25-28)."""
import re
import secrets
import socket
import time

import pytest

from auth import crypt, demo
from auth.records import (ASError, AuthType, Authenticator, Passwordreq, RecordNum, Ticket,
                          Ticketreq, read_reply)
from tests.fixtures.auth import running_auth

HOSTKEY = crypt.passtokey(demo.HOST_PASSWORD)
APOP, CRAM = AuthType.AuthApop, AuthType.AuthCram


class AS:
    """A raw connection to the auth server."""

    def __init__(self, addr: str):
        _, host, port = addr.split("!")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.f = self.sock.makefile("rb")

    def send(self, b: bytes) -> None:
        self.sock.sendall(b)

    def raw(self, n: int) -> bytes:
        return self.f.read(n)

    def close(self):
        self.f.close()
        self.sock.close()

    def challenge(self, kind: int) -> bytes:
        self.send(Ticketreq(kind, authdom=demo.AUTHDOM, hostid=demo.HOSTID).pack())
        return read_reply(self.f, 128)

    def respond(self, kind: int, user: str, hexresp: str | bytes, chal: bytes = b"C" * 8):
        tr = Ticketreq(kind, authdom=demo.AUTHDOM, chal=chal, hostid=demo.HOSTID, uid=user)
        self.send(tr.pack() + (hexresp.encode() if isinstance(hexresp, str) else hexresp))


@pytest.fixture
def auth_servers(auth_servers_module):
    """One keyfs + authsrv per module; tests that change a user make a fresh one."""
    return auth_servers_module


@pytest.fixture
def user(auth_servers):
    return auth_servers.new_user("as")


@pytest.fixture
def conn(auth_servers):
    c = AS(auth_servers.auth)
    yield c
    c.close()


def _check_ticket_pair(reply: bytes, chal: bytes, user: str):
    """docs/spec/fs-auth.md fact 27: AuthOK + Khost{AuthTs, chal, user, user, Kn} + Kn{AuthAc, chal, 0}."""
    assert len(reply) == 86 and reply[0] == AuthType.AuthOK
    t = Ticket.unpack(reply[1:73], HOSTKEY)
    assert (t.num, t.chal, t.cuid, t.suid) == (RecordNum.AuthTs, chal, user, user)
    a = Authenticator.unpack(reply[73:86], t.key)
    assert (a.num, a.chal, a.id) == (RecordNum.AuthAc, chal, 0)


def test_okvar_challenge_framing_fs_auth_fact25(conn):
    conn.send(Ticketreq(APOP, authdom=demo.AUTHDOM, hostid=demo.HOSTID).pack())
    head = conn.raw(6)
    assert head[0] == 9
    n = int(head[1:6])
    assert head[1:6] == b"%-5d" % n
    chal = conn.raw(n)
    assert re.fullmatch(rb"<[0-9a-f]{1,8}[0-9a-f]{1,8}\.[0-9a-f]{1,8}[0-9a-f]{1,8}@upas\.local>", chal)


@pytest.mark.parametrize("kind,digest,upper", [(APOP, crypt.apop_digest, False),
                                               (CRAM, crypt.cram_digest, True)])
def test_apop_cram_success_86_bytes_fs_auth_fact27(auth_servers, conn, user, kind, digest, upper):
    with auth_servers.keys_client() as k:
        k.write(f"{user}/log", b"bad")
    chal = conn.challenge(kind)
    resp = digest(chal, (user + "-apop").encode())
    mine = secrets.token_bytes(8)
    conn.respond(kind, user, resp.upper() if upper else resp, mine)
    _check_ticket_pair(conn.raw(86), mine, user)
    with auth_servers.keys_client() as k:
        assert k.read(f"{user}/log") == b"0\n"     # `good` reached keyfs


def test_demo_users_apop(conn):
    for name, (_, secret) in demo.USERS.items():
        chal = conn.challenge(APOP)
        conn.respond(APOP, name, crypt.apop_digest(chal, secret.encode()), b"demo-usr")
        _check_ticket_pair(conn.raw(86), b"demo-usr", name)


def test_apop_failure_65_bytes_reaches_keyfs_log_and_retry_works(auth_servers, conn, user):
    chal = conn.challenge(APOP)
    conn.respond(APOP, user, crypt.apop_digest(chal, b"wrong"))
    err = conn.raw(65)
    assert err[0] == 5 and err[1:].rstrip(b"\0") == b"apop-fail bad response 127.0.0.1"
    with auth_servers.keys_client() as k:
        assert k.read(f"{user}/log") == b"1\n"
    # S may repeat step 3 with the same challenge
    conn.respond(APOP, user, crypt.apop_digest(chal, (user + "-apop").encode()), b"12345678")
    _check_ticket_pair(conn.raw(86), b"12345678", user)
    with auth_servers.keys_client() as k:
        assert k.read(f"{user}/log") == b"0\n"


def test_cram_failure(conn):
    chal = conn.challenge(CRAM)
    conn.respond(CRAM, "bob", crypt.cram_digest(chal, b"glenda-apop"))
    with pytest.raises(ASError, match="^remote: cram-fail bad response 127.0.0.1$"):
        read_reply(conn.f, 85)


def test_unknown_user_looks_like_wrong_response(conn):
    chal = conn.challenge(APOP)
    conn.respond(APOP, "glenda", "0" * 32)
    known = conn.raw(65)
    conn.respond(APOP, "nosuchuser", crypt.apop_digest(chal, b""))
    assert conn.raw(65) == known


def test_disabled_user_fails(auth_servers, conn, user):
    with auth_servers.keys_client() as k:
        k.write(f"{user}/status", b"disabled")
    chal = conn.challenge(APOP)
    conn.respond(APOP, user, crypt.apop_digest(chal, (user + "-apop").encode()))
    assert conn.raw(65)[0] == 5


def test_seventh_failure_ends_connection(conn, user):
    conn.challenge(APOP)
    for _ in range(7):
        conn.respond(APOP, user, "f" * 32)
        assert conn.raw(65)[0] == 5
    assert conn.raw(1) == b""


def test_p9cr_challenge_response_fs_auth_fact28(auth_servers, conn, user):
    assert crypt.netcrypt(crypt.passtokey("password"), "12345") == "7d682065"
    tr = Ticketreq(AuthType.AuthChal, authdom=demo.AUTHDOM, chal=b"p9crchal", hostid=demo.HOSTID,
                   uid=user)
    conn.send(tr.pack())
    reply = conn.raw(17)
    assert reply[0] == AuthType.AuthOK
    chal = reply[1:].rstrip(b"\0")
    assert chal.isdigit() and int(chal) < 100000 and reply[1 + len(chal):] == bytes(16 - len(chal))
    resp = crypt.netcrypt(crypt.passtokey(user + "-pw"), chal)
    conn.send(resp.encode().ljust(16, b"\0"))
    _check_ticket_pair(conn.raw(86), b"p9crchal", user)
    # a wrong response on a fresh challenge: AuthErr, counted in keyfs
    conn.send(tr.pack())
    conn.raw(17)
    conn.send(b"00000000".ljust(16, b"\0"))
    assert conn.raw(65)[0] == 5
    with auth_servers.keys_client() as k:
        assert k.read(f"{user}/log") == b"1\n"


def test_ticket_request_speaks_for(conn):
    keys = {u: crypt.passtokey(pw) for u, (pw, _) in demo.USERS.items()}
    conn.send(Ticketreq(AuthType.AuthTreq, authid=demo.HOSTID, authdom=demo.AUTHDOM,
                        chal=b"schalleN", hostid=demo.HOSTID, uid="glenda").pack())
    r = read_reply(conn.f, 144)
    tc, ts = Ticket.unpack(r[:72], HOSTKEY), Ticket.unpack(r[72:], HOSTKEY)
    assert (tc.num, ts.num) == (RecordNum.AuthTc, RecordNum.AuthTs)
    assert tc.cuid == ts.cuid == "glenda" and tc.suid == ts.suid == "glenda"
    assert tc.key == ts.key and tc.chal == ts.chal == b"schalleN"
    # bob speaks only for himself: no suid, and the tickets open with no real key
    conn.send(Ticketreq(AuthType.AuthTreq, authid=demo.HOSTID, authdom=demo.AUTHDOM,
                        chal=b"schalleN", hostid="bob", uid="glenda").pack())
    r = read_reply(conn.f, 144)
    # (a wrong key still yields the right num byte 1 time in 256: compare
    # num and challenge together, which chance matches 1 time in 2**72)
    bad_c, bad_s = Ticket.unpack(r[:72], keys["bob"]), Ticket.unpack(r[72:], HOSTKEY)
    assert (bad_c.num, bad_c.chal) != (RecordNum.AuthTc, b"schalleN")
    assert (bad_s.num, bad_s.chal) != (RecordNum.AuthTs, b"schalleN")
    # and himself he may speak for
    conn.send(Ticketreq(AuthType.AuthTreq, authid=demo.HOSTID, authdom=demo.AUTHDOM,
                        chal=b"schalleN", hostid="bob", uid="bob").pack())
    r = read_reply(conn.f, 144)
    assert Ticket.unpack(r[:72], keys["bob"]).suid == "bob"


def test_change_password_and_secret(auth_servers, conn, user):
    conn.send(Ticketreq(AuthType.AuthPass, authdom=demo.AUTHDOM, chal=b"pwchalle", hostid=user,
                        uid=user).pack())
    t = Ticket.unpack(read_reply(conn.f, 72), crypt.passtokey(user + "-pw"))
    assert t.num == RecordNum.AuthTp and t.cuid == user
    conn.send(Passwordreq(AuthType.AuthPass, "not-the-pw", "x", 0, "").pack(t.key))
    with pytest.raises(ASError, match="^remote: bad password$"):
        read_reply(conn.f, 0)
    conn.send(Passwordreq(AuthType.AuthPass, user + "-pw", "new-pw", 1, "new-apop").pack(t.key))
    assert read_reply(conn.f, 0) == b""
    with auth_servers.keys_client() as k:
        assert k.read(f"{user}/key") == crypt.passtokey("new-pw")
        assert k.read(f"{user}/secret") == b"new-apop"


def test_garbage_and_unknown_type_close_connection_service_stays(auth_servers):
    c = AS(auth_servers.auth)
    c.send(bytes([99]) + b"\xee" * 140)
    assert c.raw(1) == b""
    c.close()
    c = AS(auth_servers.auth)
    c.send(b"short garbage")
    c.close()
    c = AS(auth_servers.auth)
    chal = c.challenge(APOP)
    c.respond(APOP, "bob", crypt.apop_digest(chal, b"bob-apop"), b"abcdefgh")
    _check_ticket_pair(c.raw(86), b"abcdefgh", "bob")
    c.close()


def test_idle_connection_dropped():
    with running_auth(idle=0.5) as srv:
        c = AS(srv.auth)
        t0 = time.monotonic()
        assert c.raw(1) == b""
        assert time.monotonic() - t0 < 5
        c.close()


def test_no_secret_in_logs(auth_servers, conn):
    chal = conn.challenge(APOP)
    conn.respond(APOP, "glenda", crypt.apop_digest(chal, b"glenda-apop"))
    conn.raw(86)
    chal = conn.challenge(APOP)
    conn.respond(APOP, "glenda", crypt.apop_digest(chal, b"guess"))
    conn.raw(65)
    conn.close()
    time.sleep(0.1)
    text = auth_servers.log("authsrv") + auth_servers.log("keyfs")
    assert "apop-ok glenda" in text and "apop-fail glenda" in text
    for secret in ("glenda-apop", "glenda-pw", demo.AUTHKEY_PASSWORD, crypt.apop_digest(chal, b"guess")):
        assert secret not in text


def test_secret_and_key_read_together(auth_servers, monkeypatch):
    """The APOP/CRAM check's secret and its ticket's host key come from
    keyfs in one write of requests (one round trip), and are what the
    one-file reads give: a missing user or host, or a name that is no
    user's file name, gives None for it."""
    import os
    from auth.authsrv import KeyfsFiles, KeyStore
    from upas.ninep.mux import Mux
    u, host = auth_servers.new_user(), auth_servers.new_user("h")
    store = KeyStore(KeyfsFiles(os.path.join(auth_servers.namespace, auth_servers.keys)))
    assert store.secret(u) == f"{u}-apop".encode()      # dialled; its writes counted below
    writes = []
    send = Mux._send

    def counted(self, *a, **kw):
        writes.append(1)
        return send(self, *a, **kw)
    monkeypatch.setattr(Mux, "_send", counted)
    assert store.secret_and_key(u, host) == (f"{u}-apop".encode(), crypt.passtokey(f"{host}-pw"))
    assert len(writes) == 1
    assert store.secret_and_key("nobody", host) == (None, store.key(host))
    assert store.secret_and_key(u, "nobody") == (store.secret(u), None)
    assert store.secret_and_key("..", "a/b") == (None, None)
