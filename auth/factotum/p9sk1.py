"""p9sk1: Plan 9 shared-key mutual authentication, both roles (docs/spec/fs-auth.md §3.6).

Client: read CHc; write the Ticketreq; read ticket + authenticator; write
the server's authenticator.  Server: write CHc; read the Ticketreq; write
ticket + authenticator; read the server authenticator.  Both end with an
AuthInfo whose secret is des56to64 of the ticket's nonce key.
"""
from __future__ import annotations

import secrets

from auth import crypt
from auth.records import (ASError, AUTHENTLEN, AuthInfo, AuthType, Authenticator, CHALLEN,
                          DESKEYLEN, RecordNum, TICKETLEN, TICKREQLEN, Ticket, Ticketreq)

from lib.attrs import del_attr, find, parse_attrs, quote, set_attrs, show_attrs
from .keys import Key, CtlError, NoKey
from .proto import (EASPROTO, EBADKEY, ESTABLISHED, Context, Failure, NeedKey, Protocol,
                    TooSmall, is_client)


def addkey(key: Key) -> None:
    """p9skaddkey: the DES key from !hex or !password."""
    hexkey, password = key.get("!hex"), key.get("!password")
    if hexkey is not None:
        try:
            data = bytes.fromhex(hexkey)
        except ValueError:
            data = b""
        if len(data) != DESKEYLEN or len(hexkey) != 2 * DESKEYLEN:
            raise CtlError("malformed key data")
        key.data = data
    elif password is not None:
        key.data = crypt.passtokey(password)
    else:
        raise CtlError("no key data")


class P9sk1(Protocol):
    name = "p9sk1"
    keyprompt = "user? !password?"

    def __init__(self, ctx: Context, attrs: list):
        super().__init__(ctx, attrs)
        self.key: Key | None = None
        if is_client(attrs):
            self.cchal = secrets.token_bytes(CHALLEN)
            self.phase = "CHaveChal"
            return
        want = set_attrs([*attrs], parse_attrs("proto=p9sk1"))
        self.key = self.findkey("user? dom?", attrs=want)
        self.tr = Ticketreq(AuthType.AuthTreq, authid=self.key.get("user") or "",
                            authdom=self.key.get("dom") or "", chal=secrets.token_bytes(CHALLEN))
        self.phase = "SNeedChal"

    # --- client ---

    def _client_key(self) -> bool:
        """Pick the key to ask for tickets with; True when speaking for sysuser."""
        base = set_attrs(del_attr(del_attr(self.attrs, "role"), "user"), parse_attrs("proto=p9sk1"))
        user = find(self.attrs, "user")
        dom = quote(self.tr.authdom)
        speaker = None
        if user is None or user == self.ctx.sysuser:
            try:
                speaker = self.ctx.ring.find(base, f"role=speakfor dom={dom} user?")
            except NoKey:
                speaker = None
        want = [*base] + (parse_attrs(f"user={quote(user)}") if user is not None else [])
        self.want = want
        try:
            self.key = self.findkey(f"role=client dom={dom} {self.keyprompt}", attrs=want)
            return False
        except (Failure, NeedKey):
            if speaker is None:
                raise
        self.key = speaker
        return True

    def _get_tickets(self, treq: bytes) -> bytes:
        """gettickets: from the AS, else invent them when we are the server too."""
        dom = self.key.get("dom")
        try:
            if dom is None:
                raise ASError("auth key has no domain")
            conn = self.ctx.authdial(dom)
            try:
                return conn.get_tickets(treq)
            finally:
                conn.close()
        except ASError as e:
            if self.tr.authid != self.tr.hostid:
                raise Failure(str(e)) from None
        t = Ticket(RecordNum.AuthTc, self.tr.chal, self.tr.uid, self.tr.uid,
                   secrets.token_bytes(DESKEYLEN))
        tc = t.pack(self.key.data)
        t.num = RecordNum.AuthTs
        return tc + t.pack(self.key.data)

    def _treq(self, data: bytes) -> None:
        if len(data) < TICKREQLEN:
            raise TooSmall(TICKREQLEN)
        self.tr = Ticketreq.unpack(data[:TICKREQLEN])
        speakfor = self._client_key()
        self.tr.type = AuthType.AuthTreq
        self.tr.hostid = self.key.get("user") or ""
        self.tr.uid = self.ctx.sysuser if speakfor else self.tr.hostid
        tickets = self._get_tickets(self.tr.pack())
        self.t = Ticket.unpack(tickets[:TICKETLEN], self.key.data)
        if self.t.num != RecordNum.AuthTc:
            if self.key.successes == 0 and not speakfor:
                self.ctx.ring.disable(self.key)
            if not speakfor:
                raise NeedKey(f"{show_attrs(self.want)} {self.keyprompt}")
            raise Failure(EBADKEY)
        self.key.successes += 1
        auth = Authenticator(RecordNum.AuthAc, self.tr.chal, 0).pack(self.t.key)
        self.tbuf = tickets[TICKETLEN:] + auth
        self.phase = "CHaveTicket"

    def _server_auth(self, data: bytes) -> None:
        if len(data) < AUTHENTLEN:
            raise TooSmall(AUTHENTLEN)
        a = Authenticator.unpack(data[:AUTHENTLEN], self.t.key)
        if a.num != RecordNum.AuthAs or a.chal != self.cchal or a.id != 0:
            raise Failure(EASPROTO)
        self._established()

    # --- server ---

    def _ticket(self, data: bytes) -> None:
        if len(data) < TICKETLEN + AUTHENTLEN:
            raise TooSmall(TICKETLEN + AUTHENTLEN)
        t = Ticket.unpack(data[:TICKETLEN], self.key.data)
        if t.num != RecordNum.AuthTs or t.chal != self.tr.chal:
            raise Failure(EASPROTO)
        a = Authenticator.unpack(data[TICKETLEN:TICKETLEN + AUTHENTLEN], t.key)
        if a.num != RecordNum.AuthAc or a.chal != self.tr.chal or a.id != 0:
            raise Failure(EASPROTO)
        self.t = t
        self.tbuf = Authenticator(RecordNum.AuthAs, self.cchal, 0).pack(t.key)
        self.phase = "SHaveAuth"

    def _established(self) -> None:
        self.ai = AuthInfo(self.t.cuid, self.t.suid, "", crypt.des56to64(self.t.key))
        self.phase = ESTABLISHED

    # --- the rpc verbs ---

    def read(self, n: int) -> bytes:
        sizes = {"CHaveChal": CHALLEN, "SHaveTreq": TICKREQLEN,
                 "CHaveTicket": TICKETLEN + AUTHENTLEN, "SHaveAuth": AUTHENTLEN}
        if self.phase not in sizes:
            raise self.phase_error("read")
        if n < sizes[self.phase]:
            raise TooSmall(sizes[self.phase])
        if self.phase == "CHaveChal":
            self.phase = "CNeedTreq"
            return self.cchal
        if self.phase == "SHaveTreq":
            self.phase = "SNeedTicket"
            return self.tr.pack()
        if self.phase == "CHaveTicket":
            self.phase = "CNeedAuth"
            return self.tbuf
        self._established()
        return self.tbuf

    def write(self, data: bytes) -> None:
        if self.phase == "SNeedChal":
            if len(data) < CHALLEN:
                raise TooSmall(CHALLEN)
            self.cchal = bytes(data[:CHALLEN])
            self.phase = "SHaveTreq"
        elif self.phase == "CNeedTreq":
            self._treq(data)
        elif self.phase == "SNeedTicket":
            self._ticket(data)
        elif self.phase == "CNeedAuth":
            self._server_auth(data)
        else:
            raise self.phase_error("write")
