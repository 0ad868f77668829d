"""Waiting for a client's bytes with a deadline (conn.py and tls.py)."""
from __future__ import annotations

import select
import time


def readable(fd: int, until: float | None) -> bool:
    """Wait until fd has input (or its end, or an error) or the monotonic
    time `until` (None: no limit); whether it has.  poll, not select: the
    launcher's fds may be above FD_SETSIZE."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    while True:
        ms = None if until is None else max(0, int((until - time.monotonic()) * 1000 + 0.999))
        try:
            return bool(p.poll(ms))
        except InterruptedError:
            continue
