"""apop and cram: MD5 challenge/response, both roles (docs/spec/fs-auth.md §2.5).

Client: write the challenge, read the hex response.
Server (the Plan 9 conversation, which libauth's auth_challenge and
auth_response expect): read the AS's challenge, write the user, write the
32-digit response; the AS checks it against the user's secret and answers
with a ticket and authenticator under the host's key.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from auth.records import ASError, AuthType, Ticketreq

from lib import username

from lib.attrs import find, quote, set_attrs
from .aschecked import ASChecked
from .keys import Key
from .proto import EASPROTO, Context, Failure, is_client, set_attr

MD5HEX = 32
MAXCHAL = 128          # the challenge buffer of apop.c


def addkey(key: Key) -> None:
    """apop and cram keys are used as they are (replacekey)."""


class Apop(ASChecked):
    name = "apop"
    keyprompt = "!password?"
    astype = AuthType.AuthApop

    def __init__(self, ctx: Context, attrs: list):
        super().__init__(ctx, attrs)
        if is_client(attrs):
            self.phase = "CNeedChal"
            return
        self.key = self.find_authkey()
        self._challenge()
        self.phase = "SHaveChal"

    # --- client ---

    def response(self, chal: bytes, password: bytes) -> str:
        """APOP: MD5(challenge || password), lower-case hex."""
        return hashlib.md5(chal + password).hexdigest()

    def _respond(self, chal: bytes) -> None:
        key = self.findkey(self.keyprompt)
        password = key.get("!password")
        if password is None:
            raise Failure("key has no password")
        set_attrs(self.attrs, key.attrs)
        self.resp = self.response(chal, password.encode()).encode()
        self.phase = "CHaveResp"

    # --- server ---

    def _challenge(self) -> None:
        """dochal: ask the AS for a challenge during start."""
        dom, user = self.key.get("dom"), self.key.get("user")
        if dom is None or user is None:
            raise Failure("apop/dochal cannot happen")
        self.tr = Ticketreq(self.astype, authdom=dom, hostid=user)
        try:
            self.conn = self.ctx.authdial(dom)
            self.conn.send(self.tr.pack())
            self.chal = self.conn.reply(MAXCHAL)
        except ASError as e:
            self.close()
            raise Failure(str(e)) from None
        if len(self.chal) <= 5:
            self.close()
            raise Failure(EASPROTO)

    def _set_user(self, data: bytes) -> None:
        user = data.decode("utf-8", "replace")
        if not username.valid(user):    # a NUL would cut the AS's copy short
            raise Failure("bad user name")
        wanted = find(self.attrs, "user")
        if wanted is not None and wanted != user:
            raise Failure("bad user")
        set_attr(self.attrs, f"user={quote(user)}")
        self.user = user
        self.phase = "SNeedResp"

    def _check(self, data: bytes) -> None:
        """doreply: the AS verifies; a refusal lets the caller try again."""
        if len(data) != MD5HEX:
            raise Failure("response not MD5 digest")
        self.tr.chal = secrets.token_bytes(8)
        self.tr.uid = self.user
        try:
            self.verdict(self.tr.pack() + data)
        except Failure:
            self.phase = "SNeedUser"
            raise

    def give_challenge(self, n: int) -> bytes:
        self.phase = "SNeedUser"
        return self.chal[:n]

    writes = {"CNeedChal": _respond, "SNeedUser": _set_user, "SNeedResp": _check}


class Cram(Apop):
    name = "cram"
    astype = AuthType.AuthCram

    def response(self, chal: bytes, password: bytes) -> str:
        """CRAM-MD5: HMAC-MD5(key = password, data = challenge), upper-case (%H)."""
        return hmac.new(password, chal, hashlib.md5).hexdigest().upper()
