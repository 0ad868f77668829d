"""Ratification (servers.md 1.3, 3.14): with -r, a logged-in client's IP
is made trusted for SMTP relay by (re)creating /mail/ratify/trusted/IP#32,
at most once every 5 minutes, on login and on NOOP/CHECK.  Failures are
silent, as in Plan 9."""
from __future__ import annotations

import re
import time

from upas import ns as nsmod

INTERVAL = 5 * 60


def peer_ip(remote: str) -> str | None:
    """`ip!port` -> ip, if it looks like an address (never a path)."""
    ip = remote.split("!", 1)[0]
    return ip if re.fullmatch(r"[0-9A-Fa-f.:]{1,63}", ip) else None


def ratify(s) -> None:
    ip = peer_ip(s.opts.remote) if s.opts.remote else None
    if ip is None or s.ns is None:
        return
    now = time.monotonic()
    last = s.extra.get("ratified")
    if last is not None and now - last < INTERVAL:
        return
    s.extra["ratified"] = now
    path = f"/mail/ratify/trusted/{ip}#32"
    try:
        if s.ns.exists(path):
            s.ns.remove(path)
        s.ns.create(path, 0o666)
    except (nsmod.Error, OSError):
        pass
