"""p9cr: textual challenge/response checked by the AS (docs/spec/fs-auth.md §2.5).

Server (Plan 9's order, used by auth_userpasswd and imap4d -c): the user is
named in `start`; read the decimal challenge; write the response.  The
client role answers a challenge with the user's p9sk1 password (netcrypt).
"""
from __future__ import annotations

from auth import crypt
from lib import username
from lib.attrs import find, parse_attrs, set_attrs
from auth.records import (ASError, AUTHENTLEN, ANAMELEN, AuthInfo, AuthType, Authenticator,
                          NETCHLEN, RecordNum, TICKETLEN, Ticket, Ticketreq)

from .proto import EASPROTO, EBADARG, ESTABLISHED, Context, Failure, Protocol, TooSmall, is_client

MAXCHAL = 64


class P9cr(Protocol):
    name = "p9cr"
    keyprompt = "user? !password?"

    def __init__(self, ctx: Context, attrs: list):
        super().__init__(ctx, attrs)
        self.conn = None
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

    def _check(self, data: bytes) -> None:
        if len(data) > MAXCHAL:
            raise Failure(EBADARG)
        if self.conn is None:
            raise Failure(EASPROTO)
        try:
            self.conn.send(data[:NETCHLEN].ljust(NETCHLEN, b"\0"))
            buf = self.conn.reply(TICKETLEN + AUTHENTLEN)
        except ASError as e:
            raise Failure(str(e)) from None
        t = Ticket.unpack(buf[:TICKETLEN], self.key.data)
        if t.num != RecordNum.AuthTs or t.chal != self.tr.chal:
            raise Failure(EASPROTO)
        self.key.successes += 1
        a = Authenticator.unpack(buf[TICKETLEN:], t.key)
        if a.num != RecordNum.AuthAc or a.chal != self.tr.chal or a.id != 0:
            raise Failure(EASPROTO)
        self.close()
        self.ai = AuthInfo(t.cuid, t.suid)
        self.phase = ESTABLISHED

    def write(self, data: bytes) -> None:
        if self.phase == "CNeedChal":
            if len(data) >= MAXCHAL:
                raise Failure(EBADARG)
            self.resp = crypt.netkey_response(self.key.data, data).encode()
            self.phase = "CHaveResp"
        elif self.phase == "SNeedResp":
            self._check(data)
        else:
            raise self.phase_error("write")

    def read(self, n: int) -> bytes:
        if self.phase == "CHaveResp":
            self.phase = ESTABLISHED
            return self.resp[:n]
        if self.phase == "SHaveChal":
            if len(self.chal) > n:
                raise TooSmall(len(self.chal))
            self.phase = "SNeedResp"
            return self.chal
        raise self.phase_error("read")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
