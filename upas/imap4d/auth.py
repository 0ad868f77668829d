"""Logins (docs/spec/servers.md §3.5): AUTHENTICATE CRAM-MD5 always; LOGIN and
AUTHENTICATE PLAIN with -p (or under TLS); the p9cr LOGIN flow with -c;
-a preauthenticated.  Every check goes through factotum (lib/factotum.py):
the server never sees a password database.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Callable

from lib import username
from upas import config, loginfail
from upas import ns as nsmod
from upas.imap4d import parser as p
from upas.imap4d.ratify import ratify
from upas.imap4d.request import Bye, Request, State

MAXUSER = 64


def cleartext_ok(s) -> bool:
    return s.opts.plaintext or s.opts.p9cr or s.tls


class AuthFailed(Exception):
    """factotum said no, or could not be asked; str() is its reason."""


class Refused(AuthFailed):
    """The peer address has tried too often (upas/loginfail.py)."""


# ------------------------------------------------------------ throttling

def guarded(s, check_fn: Callable[[], str], state=None) -> str:
    """check_fn() (a login check: the user it authenticated), counted for
    the peer address (wait, or Refused) and, on failure, Plan 9 pop3's
    per-connection delays: the reply waits 10, 20, 40 ... seconds, and
    the 21st failure ends the session.  `state`: a challenge to close if
    the attempt is refused unchecked."""
    g = s.extra.get("guard")
    if g is None:
        g = s.extra["guard"] = loginfail.Guard(s.opts.peer or None)
    wait = g.begin()
    if wait is None:
        if state is not None:
            getattr(state, "close", lambda: None)()
        _failed(s, sleep=False)
        raise Refused(g.refusal)
    if wait:
        s.sleep(wait)
    try:
        cuid = check_fn()
    except AuthFailed:
        g.failed()
        _failed(s)
        raise
    # the attempt is taken back once the tagged OK is sent (a locked file
    # update, ~0.3 ms, off the login's reply); a session that dies first
    # leaves it to count as a failure, as one that dies while checking
    s.extra.setdefault(AFTER_REPLY, []).append(g.succeeded)
    return cuid


AFTER_REPLY = "after_reply"


def after_reply(s) -> None:
    """What a login left to do once its reply is sent: the driver runs it
    before it waits for the client again, and when the session ends."""
    for fn in s.extra.pop(AFTER_REPLY, ()):
        fn()


def _failed(s, sleep: bool = True) -> None:
    tries = s.extra.get("tries", 0)
    if tries >= loginfail.MAX_FAILURES:
        raise Bye("too many login failures")
    s.extra["tries"] = tries + 1
    if sleep:
        s.sleep(min(loginfail.FIRST_DELAY * 2 ** (tries + 1), loginfail.MAX_DELAY)
                * config.current().imap4d_delay_scale)


def _refusal(s, req: Request, e: AuthFailed, text: str) -> None:
    """NO for a failed login: the refusal of an address says so."""
    if isinstance(e, Refused):
        s.no(req, str(e), code="UNAVAILABLE")
    else:
        s.no(req, text)


# ------------------------------------------------------------ factotum seam

def _factotum():
    from lib import factotum
    return factotum


def challenge(proto: str, user: str | None = None):
    """A server-role challenge from factotum: returns the state object
    whose ``chal`` is the challenge text."""
    fmt = f"proto={proto} role=server" + (f" user={user}" if user else "")
    try:
        return _factotum().auth_challenge(fmt)
    except Exception as e:
        raise AuthFailed(str(e) or "can't get challenge") from None


def check(state, user: str | None, resp: str) -> str:
    """Verify a response through factotum: the user it authenticated (the
    AuthInfo's cuid, which the session becomes, as Plan 9's setupuser
    does); raise AuthFailed on refusal."""
    if user is not None and not username.valid(user):
        getattr(state, "close", lambda: None)()
        raise AuthFailed("bad user name")
    try:
        info = _factotum().auth_response(state, user, resp)
    except Exception as e:
        getattr(state, "close", lambda: None)()    # no retries here: free it
        raise AuthFailed(str(e) or "login failed") from None
    if info is None or not username.valid(info.cuid) or (user is not None and info.cuid != user):
        raise AuthFailed("login failed")
    return info.cuid


def chal_text(state) -> str:
    c = state.chal
    return c.decode("ascii", "replace") if isinstance(c, bytes) else str(c)


# ------------------------------------------------------------ becoming the user

def setup_user(s, user: str) -> None:
    """After authentication: the user's namespace, then the authenticated
    state.  Failures end the session as Plan 9's setupuser does."""
    try:
        s.ns = s.namespace(user)
    except Exception as e:
        raise Bye(f"can't initialize mail system: {e}") from None
    if not s.ns.exists(f"/mail/box/{user}"):
        raise Bye("can't open user's mailbox")
    s.user = user
    s.state = State.AUTH
    s.log("logged in")
    ratify(s)
    nsmod.drop_ahead()          # ratfs dialled by the spare, if not used


# ------------------------------------------------------------ LOGIN

def parse_login(r: p.Reader):
    user = r.astring()
    r.sp()
    return user, r.astring()


def login(s, req: Request) -> None:
    user = req.args[0].decode("utf-8", "replace")[:MAXUSER]
    password = req.args[1].decode("utf-8", "replace")
    if s.opts.p9cr:
        return p9cr_login(s, req, user, password)
    if not cleartext_ok(s):
        s.no(req, "plaintext passwords disallowed")
        return
    try:
        user = guarded(s, lambda: password_check(user, password))
    except AuthFailed as e:
        _refusal(s, req, e, "failed check")
        return
    setup_user(s, user)
    logged_in(s, req, "succeeded")


def logged_in(s, req: Request, text: str) -> None:
    """The tagged OK of a login, with the capabilities as they are now
    that the user is in (RFC 3501 7.1: the client need not ask again)."""
    s.ok(req, text, code=s.capability_line())


def password_check(user: str, password: str) -> str:
    """Plan 9's -p check: answer a CRAM challenge with the password as key,
    so it succeeds exactly when the password is the APOP/CRAM secret."""
    if not username.valid(user):
        raise AuthFailed("bad user name")
    st = challenge("cram")
    digest = hmac.new(password.encode(), chal_text(st).encode(), hashlib.md5).hexdigest()
    return check(st, user, digest)


def p9cr_login(s, req: Request, user: str, password: str) -> None:
    """-c: the first LOGIN gets a challenge, the next one's password is the
    response (its user argument is ignored)."""
    pending = s.extra.get("p9cr")
    if pending is not None:
        st, who = pending
        try:
            cuid = guarded(s, lambda: check(st, None, password), st)  # p9cr: the user went in at start
        except Refused as e:
            s.extra.pop("p9cr", None)
            return _refusal(s, req, e, "")
        except AuthFailed:
            s.extra.pop("p9cr", None)
            return p9cr_challenge(s, req, who)
        s.extra.pop("p9cr", None)
        if cuid != who:
            s.no(req, "failed check")
            return
        setup_user(s, cuid)
        logged_in(s, req, "succeeded")
        return
    p9cr_challenge(s, req, user)


def p9cr_challenge(s, req: Request, user: str) -> None:
    try:
        if not username.valid(user):
            raise AuthFailed("bad user name")
        st = challenge("p9cr", user)
    except AuthFailed as e:
        s.no(req, f"failed check [{e}]")
        return
    s.extra["p9cr"] = (st, user)
    s.untagged(f"NO [ALERT]  encrypt challenge: {chal_text(st)}")
    s.no(req, "succeeded")          # sic: Plan 9's text


# ------------------------------------------------------------ AUTHENTICATE

def parse_authenticate(r: p.Reader):
    mech = r.atom()
    initial = None
    if r.peek() == 0x20:
        r.sp()
        # mutt 2.2 (gsasl) sends `AUTHENTICATE CRAM-MD5 ` once SASL-IR is
        # offered: a space and no response, taken as none (Dovecot does)
        if not r.at_end():
            initial = r.atom(extra=b"=")
    return mech, initial


def authenticate(s, req: Request) -> None:
    mech, initial = req.args
    if mech.upper() == "CRAM-MD5":
        if initial is not None:
            # the server speaks first in CRAM-MD5 (RFC 4959 section 3)
            s.bad(req, "no initial response in CRAM-MD5")
            return
        return cram(s, req)
    if mech.upper() == "PLAIN":
        return plain(s, req, initial)
    s.no(req, "unsupported authentication protocol")


def _cancelled(line: bytes | None) -> bool:
    return line is None or line.strip() in (b"", b"*")


def cram(s, req: Request) -> None:
    try:
        st = challenge("cram")
    except AuthFailed:
        s.no(req, "failed can't get challenge")
        return
    s.continuation(base64.b64encode(chal_text(st).encode()).decode())
    s.await_line(lambda line: cram_response(s, req, st, line))


def cram_response(s, req: Request, st, line: bytes | None) -> None:
    if line is None:
        raise Bye("end of input")
    if _cancelled(line):
        s.no(req, "failed client cancelled authentication")
        return
    try:
        text = base64.b64decode(line.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        s.no(req, "failed login failed")
        return
    if " " not in text:
        raise Bye("bad auth response")
    user, digest = text.split(" ", 1)
    user = user[:MAXUSER - 1]
    try:
        user = guarded(s, lambda: check(st, user, digest.strip()), st)
    except AuthFailed as e:
        _refusal(s, req, e, "failed login failed")
        return
    setup_user(s, user)
    logged_in(s, req, "")


def plain(s, req: Request, initial: str | None) -> None:
    if not cleartext_ok(s):
        s.no(req, "plaintext passwords disallowed")
        return
    if initial is None:
        s.continuation("")
        s.await_line(lambda line: plain_response(s, req, line))
        return
    plain_login(s, req, "" if initial == "=" else initial)    # `=`: empty (RFC 4959)


def plain_response(s, req: Request, line: bytes | None) -> None:
    if line is None:
        raise Bye("end of input")
    if _cancelled(line) and line.strip() != b"":
        s.no(req, "failed client cancelled authentication")
        return
    plain_login(s, req, line.strip().decode("ascii", "replace"))


def plain_login(s, req: Request, initial: str) -> None:
    try:
        fields = base64.b64decode(initial, validate=True).split(b"\0")
    except binascii.Error:
        fields = []
    if len(fields) != 3:
        s.no(req, "failed login failed")
        return
    user = fields[1].decode("utf-8", "replace")[:MAXUSER]
    authz = fields[0].decode("utf-8", "replace")
    if authz and authz != user:
        s.no(req, "failed login failed")
        return
    try:
        user = guarded(s, lambda: password_check(user, fields[2].decode("utf-8", "replace")))
    except AuthFailed as e:
        _refusal(s, req, e, "failed login failed")
        return
    setup_user(s, user)
    logged_in(s, req, "")
