"""p9cr: textual challenge/response checked by the AS (docs/spec/fs-auth.md §2.5).

Server (Plan 9's order, used by auth_userpasswd and imap4d -c): the user is
named in `start`; read the decimal challenge; write the response.  The
client role answers a challenge with the user's p9sk1 password (netcrypt).
"""
from __future__ import annotations

from auth import crypt
from lib import username
from lib.attrs import find, parse_attrs, set_attrs
from auth.records import ASError, ANAMELEN, AuthType, NETCHLEN, Ticketreq

from .aschecked import ASChecked
from .proto import EASPROTO, EBADARG, Context, Failure, TooSmall, is_client

MAXCHAL = 64


class P9cr(ASChecked):
    name = "p9cr"
    keyprompt = "user? !password?"

    def __init__(self, ctx: Context, attrs: list):
        super().__init__(ctx, attrs)
        if is_client(attrs):
            want = set_attrs([*attrs], parse_attrs("proto=p9sk1"))
            self.key = self.findkey(f"role=client {self.keyprompt}", attrs=want)
            self.phase = "CNeedChal"
            return
        self.key = self.find_authkey()
        user = find(attrs, "user")
        if user is None:
            raise Failure("no user name specified in start msg")
        if len(user.encode()) >= ANAMELEN:
            raise Failure("user name too long")
        if not username.valid(user):
            raise Failure("bad user name")
        self._challenge(user)
        self.phase = "SHaveChal"

    def _challenge(self, user: str) -> None:
        """getchal: an AuthChal request; the AS answers a decimal number."""
        dom = self.key.get("dom") or ""
        self.tr = Ticketreq(AuthType.AuthChal, authdom=dom, hostid=self.key.get("user") or "",
                            uid=user)
        try:
            self.conn = self.ctx.authdial(dom)
        except ASError:
            raise Failure(EASPROTO) from None
        try:
            self.conn.send(self.tr.pack())
            self.chal = self.conn.reply(NETCHLEN).split(b"\0", 1)[0]
        except ASError as e:
            self.close()
            raise Failure(str(e)) from None

    def _respond(self, data: bytes) -> None:
        if len(data) >= MAXCHAL:
            raise Failure(EBADARG)
        self.resp = crypt.netkey_response(self.key.data, data).encode()
        self.phase = "CHaveResp"

    def _check(self, data: bytes) -> None:
        if len(data) > MAXCHAL:
            raise Failure(EBADARG)
        self.verdict(data[:NETCHLEN].ljust(NETCHLEN, b"\0"))

    def give_challenge(self, n: int) -> bytes:
        if len(self.chal) > n:
            raise TooSmall(len(self.chal))
        self.phase = "SNeedResp"
        return self.chal

    writes = {"CNeedChal": _respond, "SNeedResp": _check}
