"""The `[CAPABILITY ...]` response code in the greeting and in the tagged
OK of a login (RFC 3501 7.1: "CAPABILITY ... followed by a list of
capabilities ... can be used ... in the initial OK or PREAUTH response"
so the client need not send CAPABILITY), and SASL-IR (RFC 4959): the
initial response on the AUTHENTICATE line, `=` for an empty one.

RFC 4959's examples (section 4), read in its text as vendored by MailKit
(github.com/jstedfast/MailKit, rfc/rfc4959.txt), all four after C01
CAPABILITY under TLS; here -p allows them in the clear, the user is ours
(the RFC's `dGVzdAB0ZXN0AHRlc3Q=` is test/test/test, a user we do not
have) and the OK texts are ours (`[CAPABILITY ...] AUTHENTICATE` for
`Success (tls protection)`):
  1. A01 AUTHENTICATE PLAIN with an initial response:
     test_rfc4959_example_1_plain_initial_response.
  2. A01 AUTHENTICATE PLAIN, `+ ` (a space after the plus, as the RFC
     notes), then the response: test_rfc4959_example_2_plain_without.
  3, 4. AUTHENTICATE EXTERNAL with `=` and without: not tests; we offer
     no EXTERNAL (no client certificates), so `=` is tested with PLAIN
     instead (test_authenticate_empty_initial_response)."""
import base64
import re

import pytest

from tests.test_imap_auth import SECRET, cram_answer

CODE = re.compile(rb"\[(CAPABILITY [^\]]*)\] ")


def code(line: bytes) -> bytes:
    m = CODE.search(line)
    assert m, line
    return m.group(1)


def answered(c) -> bytes:
    """What CAPABILITY answers now, without the `* ` and CRLF."""
    r = c.cmd(b"z CAPABILITY")
    assert r[-1] == b"z OK CAPABILITY\r\n"
    return r[0][2:-2]


@pytest.fixture
def srv_p(imap_factory):
    return imap_factory(flags=("-p",), posted_upasfs=False)


def test_greeting_carries_the_capabilities(srv_p):
    c = srv_p.connect()
    assert re.fullmatch(rb"\* OK \[CAPABILITY IMAP4REV1 [^\]]*\] imap.test IMAP4rev1 server ready\r\n",
                        c.greeting)
    assert code(c.greeting) == answered(c)
    assert b" SASL-IR " in code(c.greeting)


def test_login_ok_carries_the_post_login_capabilities(srv_p):
    c = srv_p.connect()
    r = c.cmd(b"a LOGIN glenda glenda-apop")
    assert len(r) == 1 and re.fullmatch(rb"a OK \[CAPABILITY [^\]]*\] LOGIN succeeded\r\n", r[0])
    assert code(r[0]) == answered(c)


def test_preauth_greeting_carries_them(imap_preauth):
    c = imap_preauth.connect()
    assert re.fullmatch(rb"\* PREAUTH \[CAPABILITY IMAP4REV1 [^\]]*\] imap.test IMAP4rev1 server "
                        rb"ready user glenda authenticated\r\n", c.greeting)
    assert code(c.greeting) == answered(c)


def test_rfc4959_example_1_plain_initial_response(srv_p):
    """RFC 4959 section 4's first example, with our user: one round trip."""
    c = srv_p.connect()
    assert {b"SASL-IR", b"AUTH=PLAIN"} <= set(c.cmd(b"C01 CAPABILITY")[0].split())
    ir = base64.b64encode(b"\0glenda\0glenda-apop")
    r = c.cmd(b"A01 AUTHENTICATE PLAIN " + ir)
    assert len(r) == 1 and re.fullmatch(rb"A01 OK \[CAPABILITY [^\]]*\] AUTHENTICATE\r\n", r[0])
    assert code(r[0]) == answered(c)
    assert c.cmd(b"b SELECT INBOX")[-1] == b"b OK [READ-WRITE] SELECT INBOX completed\r\n"


def test_rfc4959_example_2_plain_without(srv_p):
    """RFC 4959 section 4's second example: no initial response, so an
    empty challenge `+ ` first; the response then logs in."""
    c = srv_p.connect()
    c.send(b"A01 AUTHENTICATE PLAIN")
    assert c.line() == b"+ \r\n"
    c.send(base64.b64encode(b"\0glenda\0glenda-apop"))
    assert re.fullmatch(rb"A01 OK \[CAPABILITY [^\]]*\] AUTHENTICATE\r\n", c.line())


def test_authenticate_empty_initial_response(srv_p):
    """`=` is a zero-length initial response (RFC 4959 section 3): for
    PLAIN that is no credentials, refused, and never a continuation."""
    c = srv_p.connect()
    assert c.cmd(b"a AUTHENTICATE PLAIN =") == [b"a NO AUTHENTICATE failed login failed\r\n"]
    assert c.cmd(b"b NOOP") == [b"b OK NOOP completed\r\n"]


def test_cram_md5_takes_no_initial_response(srv_p):
    """The server speaks first in CRAM-MD5: an initial response is BAD
    (RFC 4959 section 3), and the login still works after."""
    c = srv_p.connect()
    assert c.cmd(b"a AUTHENTICATE CRAM-MD5 Zm9v") == [
        b"a BAD AUTHENTICATE no initial response in CRAM-MD5\r\n"]
    c.send(b"b AUTHENTICATE CRAM-MD5")
    c.send(cram_answer(c.line(), "glenda", SECRET["glenda"]))
    assert re.fullmatch(rb"b OK \[CAPABILITY [^\]]*\] AUTHENTICATE\r\n", c.line())


def test_mechanism_then_a_space_is_no_initial_response(srv_p):
    """mutt 2.2 with gsasl sends `AUTHENTICATE CRAM-MD5 ` (a trailing
    space) once SASL-IR is offered: the challenge follows as without it."""
    c = srv_p.connect()
    c.send(b"a AUTHENTICATE CRAM-MD5 ")
    c.send(cram_answer(c.line(), "glenda", SECRET["glenda"]))
    assert re.fullmatch(rb"a OK \[CAPABILITY [^\]]*\] AUTHENTICATE\r\n", c.line())
