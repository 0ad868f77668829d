"""pass: a repository for a user name and password; client only.

`start proto=pass service=... server=...` then `read` gives the two
rc-quoted fields (auth_getuserpasswd).
"""
from __future__ import annotations

from lib.attrs import quote, set_attrs
from .keys import Key
from .proto import ESTABLISHED, Context, Failure, Protocol, TooSmall


def addkey(key: Key) -> None:
    """pass keys need nothing beyond their attributes."""


class Pass(Protocol):
    name = "pass"
    keyprompt = "user? !password?"

    def __init__(self, ctx: Context, attrs: list):
        super().__init__(ctx, attrs)
        self.key = self.findkey(self.keyprompt)
        set_attrs(self.attrs, self.key.attrs)
        self.phase = "HavePass"

    def read(self, n: int) -> bytes:
        if self.phase != "HavePass":
            raise self.phase_error("read")
        user, password = self.key.get("user"), self.key.get("!password")
        if user is None or password is None:
            raise Failure("passread cannot happen")
        data = f"{quote(user)} {quote(password)}".encode()
        if len(data) > n:
            raise TooSmall(len(data))
        self.phase = ESTABLISHED
        return data
