"""Issue 17, item 7: a NUL (or any control character) in a user name.

CRAM-MD5 as `glenda\\0bob` with glenda's secret passed the auth chain (the
ticket request is a C string, cut at the NUL) and imap4d went on with the
name the client sent.  Now every taker of a user name refuses control
characters first (lib/username.py), and the servers become the user that
factotum vouches for (the AuthInfo's cuid, as Plan 9's setupuser).
Real sockets: imap4d, pop3, factotum's rpc.
"""
import base64
import hashlib
import hmac

import pytest

from lib import factotum as lf
from lib import username
from tests.fixtures.imap import without_capability_code as nocap

pytestmark = pytest.mark.timeout(60)

NAMES = [b"glenda\0bob", b"glenda\0", b"glenda\x01", b"glenda\x7f", b"gl\x1benda",
         "glenda\u0085".encode()]


def cram(chal: bytes, secret: bytes) -> str:
    return hmac.new(secret, chal, hashlib.md5).hexdigest()


def test_valid():
    assert username.valid("glenda") and username.valid("gl\u00e9nda")
    for n in NAMES:
        assert not username.valid(n.decode("utf-8", "surrogateescape")), n
    assert not username.valid("") and not username.valid(b"\xff".decode("utf-8", "surrogateescape"))


@pytest.mark.parametrize("name", NAMES)
def test_imap_cram_with_control_character_refused(imap_factory, name):
    srv = imap_factory(flags=("-v",))
    c = srv.connect()
    c.send(b"a AUTHENTICATE CRAM-MD5")
    chal = base64.b64decode(c.line()[2:].strip())
    resp = name + b" " + cram(chal, b"glenda-apop").encode()
    c.send(base64.b64encode(resp))
    assert c.line() == b"a NO AUTHENTICATE failed login failed\r\n"
    # the session lives on and a good login still works
    c.send(b"b AUTHENTICATE CRAM-MD5")
    chal = base64.b64decode(c.line()[2:].strip())
    c.send(base64.b64encode(b"glenda " + cram(chal, b"glenda-apop").encode()))
    assert nocap(c.line()) == b"b OK AUTHENTICATE\r\n"
    assert c.cmd(b"c SELECT INBOX")[-1].startswith(b"c OK")
    c.cmd(b"z LOGOUT")
    srv.wait_idle()
    assert "internal error" not in srv.syslog()


def test_imap_login_literal_with_nul_refused(imap_factory):
    srv = imap_factory(flags=("-p",))
    c = srv.connect()
    c.send(b"a LOGIN {10}")
    assert c.line().startswith(b"+ ")
    c.sock.sendall(b"glenda\0bob glenda-apop\r\n")
    assert c.until(b"a") == [b"a NO LOGIN failed check\r\n"]
    assert nocap(c.cmd(b"b LOGIN glenda glenda-apop")[-1]) == b"b OK LOGIN succeeded\r\n"


@pytest.mark.parametrize("name", NAMES)
def test_pop3_apop_with_control_character_refused(pop3_factory, name):
    srv = pop3_factory(["-e", "-p"])
    c = srv.connect()
    digest = hashlib.md5(c.chal.encode() + b"glenda-apop").hexdigest().encode()
    assert c.cmd(b"APOP " + name + b" " + digest) == b"-ERR bad mailbox name\r\n"
    assert c.cmd(b"USER " + name) == b"-ERR bad mailbox name\r\n"
    assert c.cmd(b"AUTH CRAM-MD5").startswith(b"+ ")


def test_pop3_auth_cram_with_nul_refused(pop3_factory):
    srv = pop3_factory(["-e"])
    c = srv.connect()
    chal = base64.b64decode(c.cmd(b"AUTH CRAM-MD5")[2:].strip())
    resp = b"glenda\0bob " + cram(chal, b"glenda-apop").encode()
    assert c.cmd(base64.b64encode(resp)) == b"-ERR bad mailbox name\r\n"
    assert c.apop("glenda", "glenda-apop").startswith(b"+OK")


def test_factotum_refuses_control_characters(auth_stack):
    addr = auth_stack.factotum.addr
    for name in ("glenda\0bob", "glenda\x01"):
        c = lf.auth_challenge("proto=cram role=server", addr)
        with pytest.raises(lf.FactotumError, match="bad user name"):
            lf.auth_response(c, name, cram(c.chal.encode(), b"glenda-apop"))
        c.close()
    c = lf.auth_challenge("proto=cram role=server", addr)
    assert lf.auth_response(c, "glenda", cram(c.chal.encode(), b"glenda-apop")).cuid == "glenda"
