"""Logins through the real factotum + auth server (docs/spec/servers.md §3.5): CRAM-MD5
always, LOGIN and AUTHENTICATE PLAIN with -p, the p9cr flow with -c.
Each session starts its own upasfs (the Plan 9 `upas/fs -np` path)."""
import base64
import hashlib
import hmac
import re

import pytest

from lib.factotum import p9cr_response
from tests.fixtures.imap import without_capability_code as nocap

SECRET = {"glenda": "glenda-apop", "bob": "bob-apop"}
PASSWORD = {"glenda": "glenda-pw", "bob": "bob-pw"}


def cram_answer(chal_line: bytes, user: str, secret: str) -> bytes:
    chal = base64.b64decode(chal_line[2:].strip())
    digest = hmac.new(secret.encode(), chal, hashlib.md5).hexdigest()
    return base64.b64encode(f"{user} {digest}".encode())


@pytest.fixture
def srv(imap_factory):
    return imap_factory(posted_upasfs=False)


@pytest.fixture
def srv_p(imap_factory):
    return imap_factory(flags=("-p",), posted_upasfs=False)


def test_29_cram_challenge_and_cancel(srv):
    c = srv.connect()
    c.send(b"a AUTHENTICATE CRAM-MD5")
    line = c.line()
    assert line.startswith(b"+ ") and line.endswith(b"\r\n")
    assert re.fullmatch(rb"<[0-9a-f]+\.[0-9a-f]+@[^>]+>", base64.b64decode(line[2:].strip()))
    c.send(b"*")
    assert c.line() == b"a NO AUTHENTICATE failed client cancelled authentication\r\n"


@pytest.mark.parametrize("user", ["glenda", "bob"])
def test_cram_login_and_select_own_mailbox(srv, user):
    c = srv.connect()
    c.send(b"a AUTHENTICATE CRAM-MD5")
    c.send(cram_answer(c.line(), user, SECRET[user]))
    assert nocap(c.line()) == b"a OK AUTHENTICATE\r\n"
    r = c.cmd(b"b SELECT INBOX")
    assert r[-1] == b"b OK [READ-WRITE] SELECT INBOX completed\r\n"
    assert r[1] == (b"* 8 EXISTS\r\n" if user == "glenda" else b"* 3 EXISTS\r\n")
    assert c.cmd(b"c SELECT ../glenda/mbox") == [b"c NO SELECT bad mailbox\r\n"]


def test_cram_wrong_secret(srv):
    c = srv.connect()
    c.send(b"a AUTHENTICATE CRAM-MD5")
    c.send(cram_answer(c.line(), "glenda", "wrong"))
    assert c.line() == b"a NO AUTHENTICATE failed login failed\r\n"
    assert c.cmd(b"b SELECT INBOX") == [b"b BAD SELECT illegal command\r\n"]


def test_cram_without_space_is_fatal(srv):
    c = srv.connect()
    c.send(b"a AUTHENTICATE CRAM-MD5")
    c.line()
    c.send(base64.b64encode(b"glenda"))
    assert c.line() == b"* BYE bad auth response\r\n"
    assert c.closed()


def test_login_with_p(srv_p):
    c = srv_p.connect()
    assert c.cmd(b"a LOGIN glenda glenda-pw") == [b"a NO LOGIN failed check\r\n"]
    assert [nocap(x) for x in c.cmd(b'b login "glenda" glenda-apop')] == [b"b OK login succeeded\r\n"]
    assert c.cmd(b"c SELECT INBOX")[-1] == b"c OK [READ-WRITE] SELECT INBOX completed\r\n"


def test_authenticate_plain_with_p(srv_p, srv):
    c = srv_p.connect()
    resp = base64.b64encode(b"\0bob\0bob-apop")
    assert [nocap(x) for x in c.cmd(b"a AUTHENTICATE PLAIN " + resp)] == [b"a OK AUTHENTICATE\r\n"]
    c = srv_p.connect()
    c.send(b"a AUTHENTICATE PLAIN")
    assert c.line() == b"+ \r\n"
    c.send(base64.b64encode(b"\0bob\0wrong"))
    assert c.line() == b"a NO AUTHENTICATE failed login failed\r\n"
    c = srv.connect()                    # without -p
    assert c.cmd(b"a AUTHENTICATE PLAIN " + resp) == [b"a NO AUTHENTICATE plaintext passwords disallowed\r\n"]


def test_p9cr_login_flow(imap_factory):
    srv = imap_factory(flags=("-c",), posted_upasfs=False)
    c = srv.connect()
    r = c.cmd(b"a LOGIN glenda x")
    m = re.fullmatch(rb"\* NO \[ALERT\]  encrypt challenge: (\d+)\r\n", r[0])
    assert m and r[1] == b"a NO LOGIN succeeded\r\n"
    # a wrong answer gets a fresh challenge
    r = c.cmd(b"b LOGIN anyone 00000000")
    m = re.fullmatch(rb"\* NO \[ALERT\]  encrypt challenge: (\d+)\r\n", r[0])
    assert m and r[1] == b"b NO LOGIN succeeded\r\n"
    answer = p9cr_response(m.group(1).decode(), PASSWORD["glenda"]).encode()
    assert [nocap(x) for x in c.cmd(b"c LOGIN ignored " + answer)] == [b"c OK LOGIN succeeded\r\n"]
    assert c.cmd(b"d SELECT INBOX")[1] == b"* 8 EXISTS\r\n"


def test_c_and_p_exclusive(imap_factory):
    srv = imap_factory(flags=("-c", "-p"), auth=False, posted_upasfs=False)
    c = srv.connect()
    assert c.greeting == b"* BYE usage\r\n"
    srv.wait_idle()
    assert "imap4d: -c and -p are mutually exclusive" in srv.syslog()


def test_verbose_log_has_no_password(imap_factory):
    srv = imap_factory(flags=("-p", "-v"), posted_upasfs=False)
    c = srv.connect()
    assert [nocap(x) for x in c.cmd(b"a LOGIN glenda glenda-apop")] == [b"a OK LOGIN succeeded\r\n"]
    c.cmd(b"b LOGOUT")
    srv.wait_idle()
    log = srv.syslog()
    assert "glenda: logged in" in log and "a LOGIN ..." in log
    assert "glenda-apop" not in log
