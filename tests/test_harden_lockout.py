"""Issue 17, item 3: a guesser from one address gets slower and then
refused, and does not lock the user out anywhere else (upas/loginfail.py,
auth/keydb.py, auth/authsrv.py; docs/decisions.md "Login throttling").

Real pop3 and imap4d sessions through the real auth chain (factotum ->
authsrv -> keyfs); the guesser connects from 127.0.0.2, the user from
127.0.0.1 (both loopback, so the servers see two peers).
"""
import base64
import hashlib
import hmac
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from auth import crypt, demo
from auth.records import AuthType, Ticketreq, read_reply
from upas import loginfail
from tests.fixtures.auth import running_auth
from tests.fixtures.imap import without_capability_code as nocap

pytestmark = pytest.mark.timeout(120)
GUESSER = "127.0.0.2"


def throttled(tmp_path, scale="0.01"):
    return {"UPAS_LOGINFAIL_DIR": str(tmp_path / "loginfail"), "UPAS_LOGIN_DELAY_SCALE": scale}


class Pop:
    """A raw POP3 client from a chosen source address."""

    def __init__(self, addr, source="127.0.0.1"):
        self.sock = socket.create_connection(addr, timeout=30, source_address=(source, 0))
        self.f = self.sock.makefile("rb")
        self.chal = re.search(rb"<[^>]+>", self.f.readline()).group(0)

    def apop(self, user, secret):
        d = hashlib.md5(self.chal + secret.encode()).hexdigest()
        self.sock.sendall(f"APOP {user} {d}\r\n".encode())
        return self.f.readline()

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.f.readline()
        except OSError:
            pass
        self.sock.close()


def fresh(stack, user):
    """No bad attempts, no purgatory (the auth stack is the module's)."""
    with stack.servers.keys_client() as k:
        k.write(f"{user}/status", b"ok")


def at_once(fn, n, timeout):
    """fn run n times at once, each on its own thread; back when all are."""
    threads = [threading.Thread(target=fn) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def bad_count(stack, user):
    with stack.servers.keys_client() as k:
        return int(k.read(f"{user}/log").decode())


def test_parallel_guesses_from_one_address_do_not_lock_the_user_out(pop3_factory, auth_stack,
                                                                     tmp_path):
    srv = pop3_factory(env=throttled(tmp_path))
    fresh(auth_stack, "bob")
    replies = []

    def guess():
        c = Pop(srv.addr, GUESSER)
        replies.append(c.apop("bob", "wrong-secret"))
        c.close()
    at_once(guess, 30, 60)
    assert len(replies) == 30
    refused = [r for r in replies if b"too many failed logins" in r]
    assert all(r.startswith(b"-ERR") for r in replies)
    assert len(refused) == 30 - loginfail.LIMIT
    assert bad_count(auth_stack, "bob") == loginfail.LIMIT     # below keyfs's MAXBAD
    # bob, elsewhere, logs in at once
    t = time.monotonic()
    c = Pop(srv.addr)
    assert c.apop("bob", "bob-apop").startswith(b"+OK")
    c.close()
    assert time.monotonic() - t < 5
    # the guesser's address stays refused, even with the right secret
    c = Pop(srv.addr, GUESSER)
    assert b"too many failed logins" in c.apop("bob", "bob-apop")
    c.close()


def test_a_guesser_gets_slower(pop3_factory, tmp_path):
    srv = pop3_factory(env=throttled(tmp_path, "0.05"))
    took = []
    for i in range(loginfail.LIMIT + 1):
        c = Pop(srv.addr, GUESSER)
        t = time.monotonic()
        r = c.apop("glenda", "nope")
        took.append(time.monotonic() - t)
        c.close()
        assert r.startswith(b"-ERR")
    free, slowed = took[:loginfail.FREE], took[loginfail.FREE:loginfail.LIMIT]
    assert max(free) < 0.5
    # 2, 4, 8, 16, 30, 30 seconds at scale 1 (0.05 here)
    for i, secs in enumerate(slowed):
        want = min(loginfail.BASE * 2 ** i, loginfail.MAXWAIT) * 0.05
        assert secs >= want * 0.9, took
    assert slowed[-1] > 1.0 > slowed[0]
    assert took[-1] < 0.5                               # refused at once


def cram_once(c, user, secret):
    c.send(b"a AUTHENTICATE CRAM-MD5")
    line = c.line()
    if not line.startswith(b"+ "):
        return line
    chal = base64.b64decode(line[2:].strip())
    d = hmac.new(secret, chal, hashlib.md5).hexdigest().encode()
    c.send(base64.b64encode(user + b" " + d))
    return c.line()


def test_imap_cram_failures_get_pop3s_delays_and_21st_ends(imap_factory, auth_stack):
    fresh(auth_stack, "glenda")
    srv = imap_factory(env={"IMAP4D_DELAY_SCALE": "0.0001"})
    c = srv.connect()
    took = []
    for i in range(loginfail.MAX_FAILURES):
        t = time.monotonic()
        assert cram_once(c, b"glenda", b"wrong") == b"a NO AUTHENTICATE failed login failed\r\n"
        took.append(time.monotonic() - t)
    # 10, 20, 40 ... 1800 seconds at scale 1, as pop3's
    want = [min(loginfail.FIRST_DELAY * 2 ** (k + 1), loginfail.MAX_DELAY) * 1e-4
            for k in range(len(took))]
    for secs, least in zip(took, want):
        assert secs >= least, took
    # the delays grow: the last attempt waits for most of the difference
    # between the last and the first delay (a difference, so that one
    # slow round trip on a loaded machine does not decide it)
    assert took[-1] - took[0] > 0.5 * (want[-1] - want[0]), took
    assert cram_once(c, b"glenda", b"wrong") == b"* BYE too many login failures\r\n"
    fresh(auth_stack, "glenda")


def test_imap_guesser_address_refused_user_elsewhere_fine(imap_factory, auth_stack, tmp_path):
    fresh(auth_stack, "glenda")
    srv = imap_factory(env=throttled(tmp_path, "0"), remote=True)   # -r: the relay hides the peer
    from tests.fixtures.imap import ImapClient
    c = ImapClient.__new__(ImapClient)
    c.sock = socket.create_connection(srv.addr, timeout=20, source_address=(GUESSER, 0))
    c.file = c.sock.makefile("rb")
    c.greeting = c.line()
    for i in range(loginfail.LIMIT):
        assert cram_once(c, b"glenda", b"wrong") == b"a NO AUTHENTICATE failed login failed\r\n"
    assert cram_once(c, b"glenda", b"glenda-apop") == (
        b"a NO [UNAVAILABLE] AUTHENTICATE too many failed logins from your address; "
        b"try again later\r\n")
    ok = srv.connect()                                  # from 127.0.0.1
    assert nocap(cram_once(ok, b"glenda", b"glenda-apop")) == b"a OK AUTHENTICATE\r\n"


def test_authsrv_limits_guesses_per_connection_and_address():
    """201 fast APOP guesses took 0.28 s; now an address gets BURST fast
    failures, then one per REFILL seconds (scaled 0.01 here), and each
    connection waits after each failure; the right answer still works."""
    scale = 0.01
    with running_auth(env={"AUTHSRV_DELAY_SCALE": str(scale)}) as srv:
        _, host, port = srv.auth.split("!")
        n, t = 0, time.monotonic()
        conn_waits = []
        while n < 201:
            s = socket.create_connection((host, int(port)), timeout=30)
            f = s.makefile("rb")
            s.sendall(Ticketreq(AuthType.AuthApop, authdom=demo.AUTHDOM, hostid=demo.HOSTID).pack())
            chal = read_reply(f, 128)
            for _ in range(6):                          # the 7th failure ends the connection
                tr = Ticketreq(AuthType.AuthApop, authdom=demo.AUTHDOM, chal=b"C" * 8,
                               hostid=demo.HOSTID, uid="bob")
                t0 = time.monotonic()
                s.sendall(tr.pack() + crypt.apop_digest(chal, b"guess").encode())
                assert f.read(1)[0] == AuthType.AuthErr
                f.read(64)
                conn_waits.append(time.monotonic() - t0)
                n += 1
            s.close()
        took = time.monotonic() - t
        assert took >= (201 - 20) * 1.0 * scale, took
        # a right answer from the same address is answered (after its wait;
        # glenda: bob is in keyfs's purgatory after 201 failures)
        s = socket.create_connection((host, int(port)), timeout=30)
        f = s.makefile("rb")
        s.sendall(Ticketreq(AuthType.AuthApop, authdom=demo.AUTHDOM, hostid=demo.HOSTID).pack())
        chal = read_reply(f, 128)
        tr = Ticketreq(AuthType.AuthApop, authdom=demo.AUTHDOM, chal=b"C" * 8,
                       hostid=demo.HOSTID, uid="glenda")
        s.sendall(tr.pack() + crypt.apop_digest(chal, b"glenda-apop").encode())
        assert f.read(1)[0] == AuthType.AuthOK
        s.close()


def test_keyfs_retries_in_purgatory_do_not_extend_it(auth_servers):
    with auth_servers.keys_client() as k:
        user = auth_servers.new_user("pg")
        for _ in range(10):
            k.write(f"{user}/log", b"bad")
        assert k.read(f"{user}/log") == b"10\n"
        with pytest.raises(Exception, match="purgatory"):
            k.read(f"{user}/secret")
        for _ in range(5):                              # the user's own retries
            k.write(f"{user}/log", b"bad")
        assert k.read(f"{user}/log") == b"10\n"


def test_fifty_good_logins_at_once_from_one_address_are_not_slowed(imap_factory, tmp_path):
    """Issue 16: logins in flight are no failures.  Fifty sessions from
    127.0.0.1 (an office behind NAT) log in at once; with the waits scaled
    so that a first one would be 60 s (BASE * 30), every login answers OK
    well before that, and the address is left with nothing counted."""
    env = throttled(tmp_path, "30")
    srv = imap_factory(flags=("-p",), env=env, remote=True)     # -r: the peer is known
    replies, took = [], []

    def login():
        c = srv.connect()
        t = time.monotonic()
        replies.append(nocap(c.cmd(b"a LOGIN glenda glenda-apop")[-1]))
        took.append(time.monotonic() - t)
        c.cmd(b"b LOGOUT")
        c.close()
    at_once(login, 50, 100)
    assert len(replies) == 50 and all(r.startswith(b"a OK ") for r in replies), replies
    assert max(took) < loginfail.BASE * 30
    assert not list((tmp_path / "loginfail").iterdir())    # nothing left to count


def test_a_guess_waits_for_its_turn_behind_parallel_checks(tmp_path):
    """LIMIT - failures attempts of an address are checked at once; the
    next queues until there is room: a failure takes its place (so the
    guesses checked and failed never pass LIMIT), a success makes room."""
    d = str(tmp_path)
    checking = [loginfail.Guard("10.0.0.1!1", d) for _ in range(loginfail.LIMIT)]
    assert [g.begin() for g in checking] == [0.0] * loginfail.LIMIT
    late = loginfail.Guard("10.0.0.1!2", d)
    got = []
    t = threading.Thread(target=lambda: got.append(late.begin()))
    t.start()
    t.join(0.3)
    assert t.is_alive() and not got                     # queued
    checking[0].failed()                                # one answered, wrongly
    t.join(0.3)
    assert t.is_alive() and not got                     # 8 checking + 1 failure
    checking[1].succeeded()                             # one logged in
    t.join(10)
    assert got == [0.0]                                 # 1 failure: no wait yet
    for g in checking[2:] + [late]:
        g.failed()
    assert loginfail.Guard("10.0.0.1!3", d).begin() is None    # LIMIT failures


def test_an_address_with_too_many_logins_in_flight_is_refused(tmp_path):
    d = str(tmp_path)
    guards = [loginfail.Guard("10.0.0.2!1", d) for _ in range(loginfail.LIMIT)]
    for g in guards:
        g.begin()
    with open(tmp_path / "10.0.0.2", "a") as f:           # the others queued, alive
        f.writelines(f"{time.time():.6f} {os.getpid()} wait\n"
                     for _ in range(loginfail.INFLIGHT - loginfail.LIMIT))
    g = loginfail.Guard("10.0.0.2!2", d)
    assert g.begin() is None and g.refusal == loginfail.BUSY
    for g in guards:
        g.succeeded()


def test_an_attempt_of_a_dead_session_counts_as_failed(tmp_path):
    d = str(tmp_path)
    p = subprocess.Popen(["true"])
    p.wait()                                            # a pid that no longer runs
    dead = p.pid
    (tmp_path / "10.0.0.3").write_text(f"{time.time():.6f} {dead}\n" * loginfail.LIMIT)
    g = loginfail.Guard("10.0.0.3!1", d)
    assert g.begin() is None and g.refusal == loginfail.REFUSED
