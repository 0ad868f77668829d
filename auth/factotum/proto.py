"""What every factotum protocol shares: outcomes, AuthInfo, the context.

A protocol is a small state machine driven by the rpc `read` and `write`
verbs (docs/spec/fs-auth.md §2.5).  Its methods return data or raise one of the
outcomes below; rpc.py turns those into the reply words (`error`,
`needkey`, `phase`, `toosmall`).  Phase names follow Plan 9's, because they
appear in `phase` replies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from auth.records import AuthInfo

from lib.attrs import Attr, find, parse_attrs, quote, set_attrs
from .keys import Keyring, NoKey

# Error texts of Plan 9's factotum (main.c).
EASPROTO = "auth server protocol botch"
EBADARG = "invalid argument"
EBADKEY = "bad key"
ENEGOTIATION = "negotiation failed, no common protocols or keys"
ETOOLARGE = "rpc too large"

ESTABLISHED = "Established"


class Failure(Exception):
    """`error <text>`"""


class NeedKey(Exception):
    """`needkey <template>`"""

    def __init__(self, template: str):
        super().__init__(template)
        self.template = template


class PhaseError(Exception):
    """`phase <text>`"""


class TooSmall(Exception):
    """`toosmall <n>`: resend with n bytes in all."""

    def __init__(self, n: int):
        super().__init__(str(n))
        self.n = n


@dataclass
class Context:
    """What a conversation may use: the keys and a way to reach the AS."""
    ring: Keyring
    authdial: Callable[[str | None], object]   # dom -> asclient.Connection
    sysuser: str = ""


class Protocol:
    """Base of the protocol state machines.  `attrs` is the conversation's
    attribute list, shared with rpc so that `attr` shows what was learned."""

    name = ""
    keyprompt = ""
    phase = ""

    def __init__(self, ctx: Context, attrs: list[Attr]):
        self.ctx = ctx
        self.attrs = attrs
        self.ai: AuthInfo | None = None

    @property
    def established(self) -> bool:
        return self.phase == ESTABLISHED

    def read(self, n: int) -> bytes:
        raise self.phase_error("read")

    def write(self, data: bytes) -> None:
        raise self.phase_error("write")

    def close(self) -> None:
        pass

    def phase_error(self, op: str) -> PhaseError:
        return PhaseError(f"protocol phase error: {op} in state {self.phase}")

    def findkey(self, template: str, attrs: list[Attr] | None = None, **kw):
        """Keyring.find with NoKey turned into needkey or a failure."""
        try:
            return self.ctx.ring.find(self.attrs if attrs is None else attrs, template, **kw)
        except NoKey as e:
            if e.template is not None:
                raise NeedKey(e.template) from None
            raise Failure(str(e)) from None

    def find_authkey(self):
        """findp9authkey: the host's p9sk1 key for server roles."""
        dom = find(self.attrs, "dom")
        if dom is not None:
            return self.findkey(f"proto=p9sk1 dom={quote(dom)} role=server user?", attrs=[])
        return self.findkey("proto=p9sk1 role=server dom? user?", attrs=[])


def is_client(attrs: list[Attr]) -> bool:
    """isclient: role=client or role=server, else a failure."""
    role = find(attrs, "role")
    if role is None:
        raise Failure("role not specified")
    if role == "server":
        return False
    if role == "client":
        return True
    raise Failure(f"unknown role {quote(role)}")


def set_attr(attrs: list[Attr], text: str) -> None:
    """setattr(fss->attr, ...)"""
    set_attrs(attrs, parse_attrs(text))
