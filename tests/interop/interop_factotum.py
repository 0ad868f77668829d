"""plan9port's factotum beside our auth server and servers.

- Its server roles (apop, cram, p9cr) and the p9sk1 client role against
  our authsrv, which it finds through $PLAN9/ndb/local (issue 14, row 3).
- Our pop3 (APOP, USER/PASS) and imap4d (LOGIN, AUTHENTICATE CRAM-MD5)
  authenticating through it with lib/factotum (row 5).
"""
from __future__ import annotations

import hashlib
import hmac
import socket
import threading

import pytest

from auth import demo
from lib import factotum as lf
from tests.fixtures.transcript import Tap, Transcript, finished
from tests.interop import sessions
from tests.interop.conftest import record

USER = "glenda"
PASSWORD, SECRET = demo.USERS[USER]


def apop(chal: str, secret: str = SECRET) -> str:
    return hashlib.md5(chal.encode() + secret.encode()).hexdigest()


def cram(chal: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), chal.encode(), hashlib.md5).hexdigest()


def _as_transcript(name: str, about: str, conns) -> Transcript:
    return Transcript(name, about, "plan9port factotum (auth server client)", "server",
                      "bytes", conns)


# -- row 3: plan9port's factotum against our authsrv ------------------------------

@pytest.mark.parametrize("proto,digest", [("apop", apop), ("cram", cram)])
def test_apop_cram_server_role_through_our_authsrv(p9p, p9p_factotum, proto, digest):
    """A wrong answer is refused (and the conversation goes on), the right
    one gives the user's AuthInfo; the AS saw one connection."""
    f = p9p_factotum
    since = len(f.as_tap.connections)
    c = lf.auth_challenge(f"proto={proto} role=server", f.addr)
    assert c.chal.startswith("<") and c.chal.endswith(f"@{demo.AUTHDOM}>")
    with pytest.raises(lf.AuthError, match="^authentication failed$"):
        lf.auth_response(c, USER, "0" * 32)
    ai = lf.auth_response(c, USER, digest(c.chal))
    assert (ai.cuid, ai.suid, ai.secret) == (USER, USER, b"")
    conns = finished(f.as_tap, since, 1)
    assert len(conns) == 1
    record(_as_transcript(f"factotum-authsrv-{proto}",
                               f"plan9port factotum, {proto} server role: the AS challenge, "
                               f"a wrong response, the right one", conns), "interop_factotum")


def test_p9cr_server_role_through_our_authsrv(p9p, p9p_factotum):
    f = p9p_factotum
    since = len(f.as_tap.connections)
    assert lf.auth_userpasswd(USER, PASSWORD, f.addr).cuid == USER
    with pytest.raises(lf.AuthError):
        lf.auth_userpasswd(USER, "not-the-password", f.addr)
    conns = finished(f.as_tap, since, 2)
    record(_as_transcript("factotum-authsrv-p9cr",
                               "plan9port factotum, p9cr server role (auth_userpasswd): "
                               "the right password, then a wrong one", conns),
           "interop_factotum")


def test_p9sk1_between_two_conversations_through_our_authsrv(p9p, p9p_factotum):
    """The client role gets its tickets from our AS (AuthTreq); the server
    role checks them: both end with the same AuthInfo and secret."""
    f = p9p_factotum
    f.ctl(f"key proto=p9sk1 dom={demo.AUTHDOM} user={USER} role=client !password={PASSWORD}")
    since = len(f.as_tap.connections)
    a, b = socket.socketpair()
    out: dict = {}

    def run(name, sock, attrs):
        try:
            out[name] = lf.auth_proxy(sock, attrs, f.addr)
        except Exception as e:          # noqa: BLE001 - asserted below
            out[name] = e
    threads = [threading.Thread(target=run, args=("client", a, f"proto=p9sk1 role=client "
                                                   f"dom={demo.AUTHDOM} user={USER}")),
               threading.Thread(target=run, args=("server", b, f"proto=p9sk1 role=server "
                                                   f"dom={demo.AUTHDOM}"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    a.close()
    b.close()
    assert out["client"].cuid == out["server"].cuid == USER, out
    assert out["client"].secret == out["server"].secret and len(out["client"].secret) == 8
    conns = finished(f.as_tap, since, 1)
    record(_as_transcript("factotum-authsrv-p9sk1",
                               "plan9port factotum, p9sk1 client role: the ticket request",
                               conns), "interop_factotum")


# -- row 5: our servers through plan9port's factotum ---------------------------------

@pytest.fixture
def through_p9p(p9p_factotum, servers, tmp_path):
    """Our servers' environment, factotum being plan9port's behind a Tap."""
    f = p9p_factotum
    tap = Tap(f.addr, listen="unix!" + str(tmp_path / "factotum.tap"))
    env = dict(f.env, MAILROOT=str(sessions.mailroot(servers.base)), factotum=tap.addr,
               auth=f.servers.auth, POP3_DELAY_SCALE="0")
    env.pop("upasfs", None)
    env.pop("PLAN9", None)
    yield tap, env
    tap.close()


LOGINS = [
    ("factotum-pop3-apop", "upas.pop3", ["-p"], sessions.pop3_apop_wrong_then_right, 1,
     "our pop3 -p: APOP with a wrong secret, then the right one"),
    ("factotum-pop3-pass", "upas.pop3", ["-p"], sessions.pop3_user_pass, 2,
     "our pop3 -p: USER/PASS"),
    ("factotum-imap4d-login", "upas.imap4d", ["-p", "-s", "imap.test"],
     sessions.imap_login_wrong_then_right, 2,
     "our imap4d -p: LOGIN with a wrong secret, then the right one"),
    ("factotum-imap4d-cram", "upas.imap4d", ["-p", "-s", "imap.test"], sessions.imap_cram, 1,
     "our imap4d: AUTHENTICATE CRAM-MD5"),
]


@pytest.mark.parametrize("name,module,flags,session,conversations,about", LOGINS,
                         ids=[row[0] for row in LOGINS])
def test_our_logins_through_p9p_factotum(p9p, servers, through_p9p, name, module, flags,
                                         session, conversations, about):
    """The session logs in (a wrong secret refused first where it says
    so), in as many factotum conversations as recorded: pop3 keeps its
    greeting's for APOP and its retries but starts one for PASS, imap4d
    starts one for each LOGIN."""
    tap, env = through_p9p
    a = servers.start(module, flags, env)
    session(a.addr)
    conns = finished(tap, 0, conversations)
    assert len(conns) == conversations
    record(Transcript(name, about, "plan9port factotum (9pserve)", "client", "9p", conns),
           "interop_factotum")
