"""IDLE (RFC 2177; docs/spec/servers.md §3.10).

Plan 9 polled every 15 s and ended IDLE on any line.  We report new mail,
expunges and flag changes made elsewhere within a fraction of a second
(docs/decisions.md): while the session waits for the client's line, a poller
thread runs the usual check (a stat of the upasfs directory, which makes
upasfs look at the file, and of the .imp) every IMAP_IDLE_POLL seconds
(default 0.2) and sends what changed.  Only `DONE` ends IDLE properly;
any other line ends it with BAD (docs/decisions.md).
"""
from __future__ import annotations

import threading

from upas import config

from .table import AUTH, EXPUNGES, SELECTED, capability, command


class Poller:
    """Report mailbox changes from a thread until stopped."""

    def __init__(self, s, interval: float | None = None):
        self.s = s
        self.interval = config.current().imap_idle_poll if interval is None else interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            if self.s.box is None:
                return
            try:
                self.s.report(expunges=True)
                self.s.flush()
            except Exception as e:  # the fs went away: stop polling, keep idling
                self.s.log(f"idle poll: {e}")
                return

    def __enter__(self) -> "Poller":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()


@command("IDLE", states=AUTH | SELECTED, updates=EXPUNGES)
def cmd_idle(s, req) -> None:
    if s.box is not None:
        s.report(expunges=True)
    s.continuation("idling, waiting for done")
    s.flush()
    with Poller(s):
        line = s.readline()
    if line is None:  # the client went away while idling
        s.done = True
        return
    if line.strip().upper() != b"DONE":
        return s.bad(req, "expected DONE")
    s.ok(req, "terminated")


capability("IDLE", 10)
