"""IDLE (RFC 2177; docs/spec/servers.md §3.10).

Plan 9 polled every 15 s and ended IDLE on any line.  We report new mail,
expunges and flag changes made elsewhere within a fraction of a second
(docs/decisions.md): while IDLE waits for the client's line, the driver
has the session poll every IMAP_IDLE_POLL seconds (default 0.2): the
usual check (a stat of the upasfs directory, which makes upasfs look at
the file, and of the .imp), and what changed is sent.  Only `DONE` ends
IDLE properly; any other line ends it with BAD (docs/decisions.md).
"""
from __future__ import annotations

from upas.transport.events import Hangup


def cmd_idle(s, req) -> None:
    if s.box is not None:
        s.report(expunges=True)
    s.continuation("idling, waiting for done")
    s.await_line(lambda line: done(s, req, line),
                 poll=(lambda: poll(s)) if s.box is not None else None)


def poll(s) -> bool:
    """Report what changed; False once there is nothing more to poll."""
    if s.box is None:
        return False
    try:
        s.report(expunges=True)
    except Hangup:
        raise
    except Exception as e:  # the fs went away: stop polling, keep idling
        s.log(f"idle poll: {e}")
        return False
    return True


def done(s, req, line: bytes | None) -> None:
    if line is None:  # the client went away while idling
        s.done = True
        return
    if line.strip().upper() != b"DONE":
        return s.bad(req, "expected DONE")
    s.ok(req, "terminated")
