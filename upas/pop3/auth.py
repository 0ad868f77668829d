"""The Authenticator of protocol.Session: factotum through lib/factotum.py.

`proto=apop role=server` for the greeting, APOP and PASS (docs/spec/servers.md §2.6),
`proto=cram role=server` for AUTH CRAM-MD5.  Every factotum failure becomes
protocol.AuthError with factotum's text, which Plan 9 shows after
`authentication failed: ` at the 21st failure.
"""
from __future__ import annotations

from lib import factotum
from upas.pop3.protocol import AuthError


class FactotumChallenge:
    """One server-role conversation; a rejected answer may be retried."""

    def __init__(self, state: factotum.Chalstate):
        self._state = state
        self.chal = state.chal

    def respond(self, user: str, response: str) -> str:
        try:
            return factotum.auth_response(self._state, user, response).cuid
        except factotum.FactotumError as e:
            raise AuthError(str(e)) from None

    def close(self) -> None:
        self._state.close()


class FactotumAuth:
    def __init__(self, addr: str | None = None):
        self.addr = addr

    def challenge(self, proto: str = "apop") -> FactotumChallenge:
        try:
            return FactotumChallenge(factotum.auth_challenge(f"proto={proto} role=server", self.addr))
        except factotum.FactotumError as e:
            raise AuthError(str(e)) from None
