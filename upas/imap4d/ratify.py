"""Ratification (docs/spec/servers.md §1.3, §3.14): with -r, a logged-in client's IP
is made trusted for SMTP relay by (re)creating /mail/ratify/trusted/IP#32,
at most once every 5 minutes, on login and on NOOP/CHECK.  Failures are
silent, as in Plan 9."""
from __future__ import annotations

import time

from upas.ratify.enable import enableaddr

INTERVAL = 5 * 60


def ratify(s) -> None:
    if not s.opts.remote or s.ns is None:
        return
    now = time.monotonic()
    last = s.extra.get("ratified")
    if last is not None and now - last < INTERVAL:
        return
    s.extra["ratified"] = now
    enableaddr(s.ns, s.opts.remote)
