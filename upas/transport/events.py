"""What a sans-I/O session hands its driver besides the bytes to send.

pop3's and imap4d's sessions never touch a socket: they give the driver
`bytes` to send and these requests, in order, and the driver (their
__main__.py, over conn.Conn) carries them out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Sleep:
    """Send what was said so far, then wait this many seconds (the
    failed-login delays) before carrying out the next event."""
    seconds: float


@dataclass(frozen=True)
class Flush:
    """Send what was said so far now, not when the buffer fills or the
    next command is awaited: the first lines of a long reply, for the
    client to read while the rest is made."""


@dataclass(frozen=True)
class StartTLS:
    """Send what was said so far, then run the TLS server handshake.  The
    session has dropped every byte it had buffered: plaintext the client
    sent after the command must not count as if it came over TLS."""


@dataclass(frozen=True)
class StartDeflate:
    """Send what was said so far as it is, then deflate everything both
    ways (COMPRESS=DEFLATE, RFC 4978).  The session has no bytes of the
    client's buffered: it refuses COMPRESS when it has."""


@dataclass(frozen=True)
class Close:
    """Send what was said so far and end the session."""


Event = Union[bytes, Sleep, Flush, StartTLS, StartDeflate, Close]


class Hangup(Exception):
    """The client is gone: what the session says can no longer be sent.
    Raised by the driver's output; a session lets it pass (no reply can
    reach anybody) and the driver ends the session."""
