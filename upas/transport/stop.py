"""A session's goodbye when its launcher shuts down.

The launcher lets sessions finish for $LISTEN_GRACE seconds, then sends
each server SIGTERM.  A server that was simply killed ended its session
with EOF; with `install()` the SIGTERM ends the session's wait for its
client with `Stopping` (Conn.recv waits inside `waiting()`), so the
driver can say goodbye (`* BYE`, `-ERR`) and end the session as a
client's hang-up would (a POP3 session deletes nothing).  A SIGTERM that
comes while a command is being carried out is kept until the next wait:
the command finishes, its reply is sent, and no reply is cut in two.
"""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Iterator

from upas.transport.events import Hangup

_pending = False        # SIGTERM came
_waiting = False        # the session is waiting for its client


class Stopping(Exception):
    """The launcher is shutting down: say goodbye and end the session."""


def install() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum, frame) -> None:
    global _pending
    _pending = True
    if _waiting:
        raise Stopping()


@contextmanager
def waiting() -> Iterator[None]:
    """Around a wait for the client: Stopping if SIGTERM came or comes."""
    global _waiting
    _waiting = True         # before the check: a SIGTERM now raises at once
    try:
        if _pending:
            raise Stopping()
        yield
    finally:
        _waiting = False


def goodbye(conn: Any, line: bytes) -> None:
    """Send the last line on a transport Conn, if the client is still
    there to read it."""
    try:
        conn.write(line)
        conn.close()
    except Hangup:
        pass
