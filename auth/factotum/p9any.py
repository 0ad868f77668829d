"""p9any: negotiate the protocol, then relay to it (docs/spec/fs-auth.md §3.7).

Server: read `v.2 p9sk1@dom ...`, write `p9sk1 dom`, read `OK`, then p9sk1.
Client: write the offer, read the choice, write `OK`, then p9sk1.
Every message is NUL-terminated.  Version 1 offers (no `v.2`) skip the OK.
"""
from __future__ import annotations

from lib.attrs import del_attr, find, parse_attrs, quote, set_attrs, tokenize
from .keys import Key, NoKey
from .p9sk1 import P9sk1
from .proto import (EBADARG, ENEGOTIATION, ESTABLISHED, Context, Failure, NeedKey, Protocol,
                    TooSmall, is_client)

NEGOTIABLE = {P9sk1.name: P9sk1}


def _proto_of(token: str):
    """findneg: the negotiable protocol named before any '@'."""
    return NEGOTIABLE.get(token.split("@", 1)[0])


def _dom_of(token: str) -> str:
    return token.split("@", 1)[1] if "@" in token else ""


class P9any(Protocol):
    name = "p9any"

    def __init__(self, ctx: Context, attrs: list):
        super().__init__(ctx, attrs)
        self.sub: Protocol | None = None
        self.version = 1
        self.keyasked = 0
        self._phase = "CNeedProtos" if is_client(attrs) else "SHaveProtos"

    @property
    def phase(self) -> str:
        if self.sub is not None and self.sub.established:
            return ESTABLISHED
        return self._phase

    @property
    def ai(self):
        return self.sub.ai if self.sub is not None else None

    @ai.setter
    def ai(self, value) -> None:
        pass                   # the sub-protocol's AuthInfo is the answer

    def _start_sub(self, cls, key: Key) -> None:
        """setupfss: the sub-protocol shares our attributes."""
        set_attrs(self.attrs, parse_attrs(f"proto={quote(cls.name)} dom={quote(key.get('dom') or '')}"))
        self.sub = cls(self.ctx, self.attrs)

    # --- server ---

    def _offer(self, n: int) -> bytes:
        offers = []
        for name in NEGOTIABLE:
            want = set_attrs([*self.attrs], parse_attrs(f"proto={quote(name)} dom?"))
            skip = 0
            while True:
                try:
                    k = self.ctx.ring.find(want, "", skip=skip)
                except NoKey:
                    break
                offers.append(f"{name}@{k.get('dom')}")
                skip += 1
        if not offers:
            raise Failure(ENEGOTIATION)
        data = ("v.2 " + " ".join(offers)).encode() + b"\0"
        if len(data) > n:
            raise TooSmall(len(data))
        self._phase = "SNeedProto"
        return data

    def _choose(self, data: bytes) -> None:
        if not data or data[-1] != 0:
            raise TooSmall(len(data) + 1)
        tokens = tokenize(data[:-1].decode("utf-8", "replace"))
        if len(tokens) != 2:
            raise Failure(EBADARG)
        cls = _proto_of(tokens[0])
        if cls is None:
            raise Failure(ENEGOTIATION)
        try:
            key = self.ctx.ring.find(del_attr(self.attrs, "proto"),
                                     f"proto={quote(tokens[0])} dom={quote(tokens[1])} role=server")
        except NoKey:
            raise Failure(ENEGOTIATION) from None
        self._start_sub(cls, key)
        self._phase = "SHaveOK"          # we always offer v.2

    # --- client ---

    def _pick(self, data: bytes) -> None:
        if not data or data[-1] != 0:
            raise TooSmall(2048)
        tokens = tokenize(data[:-1].decode("utf-8", "replace"))
        if tokens and tokens[0].startswith("v."):
            if tokens[0] != "v.2":
                raise Failure("unknown version of p9any")
            self.version = 2
        offers = tokens[1:] if self.version == 2 else tokens
        anew = del_attr(del_attr(self.attrs, "proto"), "role")
        for token in offers:
            cls = _proto_of(token)
            if cls is None:
                continue
            key = self._client_key(cls, _dom_of(token), anew)
            if key is not None:
                self.subdom = _dom_of(token)
                self._start_sub(cls, key)
                self._phase = "CHaveProto"
                return
        self._ask(offers, anew)

    def _client_key(self, cls, dom: str, anew: list) -> Key | None:
        user = find(anew, "user")
        templates = []
        if user is None or user == self.ctx.sysuser:
            templates.append((del_attr(anew, "user"), "speakfor"))
        templates.append((anew, "client"))
        for attrs, role in templates:
            try:
                return self.ctx.ring.find(
                    attrs, f"proto={quote(cls.name)} dom={quote(dom)} role={role} {cls.keyprompt}")
            except NoKey:
                continue
        return None

    def _ask(self, offers: list[str], anew: list) -> None:
        """No usable key: ask for one for the offers in turn (needkey)."""
        while self.keyasked < len(offers):
            token = offers[self.keyasked]
            self.keyasked += 1
            cls = _proto_of(token)
            if cls is None:
                continue
            try:
                self.ctx.ring.find(anew, f"proto={quote(cls.name)} dom={quote(_dom_of(token))} "
                                         f"role=client {cls.keyprompt}")
            except NoKey as e:
                if e.template:
                    raise NeedKey(e.template) from None
        raise Failure(ENEGOTIATION)

    # --- the rpc verbs ---

    def read(self, n: int) -> bytes:
        if self._phase == "SHaveProtos":
            return self._offer(n)
        if self._phase == "CHaveProto":
            data = f"{self.sub.name} {self.subdom}".encode() + b"\0"
            if len(data) > n:
                raise TooSmall(len(data))
            self._phase = "CNeedOK" if self.version == 2 else "CRelay"
            return data
        if self._phase == "SHaveOK":
            if n < 3:
                raise TooSmall(3)
            self._phase = "SRelay"
            return b"OK\0"
        if self._phase in ("CRelay", "SRelay"):
            return self.sub.read(n)
        raise self.phase_error("read")

    def write(self, data: bytes) -> None:
        if self._phase == "CNeedProtos":
            self._pick(data)
        elif self._phase == "SNeedProto":
            self._choose(data)
        elif self._phase == "CNeedOK":
            if len(data) < 3:
                raise TooSmall(3)
            if data.split(b"\0", 1)[0] != b"OK":
                raise Failure("server gave up")
            self._phase = "CRelay"
        elif self._phase in ("CRelay", "SRelay"):
            self.sub.write(data)
        else:
            raise self.phase_error("write")

    def close(self) -> None:
        if self.sub is not None:
            self.sub.close()
