"""enableaddr: what pop3 and imap4d do after a login (docs/spec/servers.md §1.3).

The client's address is made trusted for SMTP relay by removing and
creating /mail/ratify/trusted/IP#32 through the namespace (the removal
restarts ratfs's two-hour clock).  Failures are silent, as in Plan 9.
"""
from __future__ import annotations

import re

from upas import ns as nsmod

_ADDRESS = re.compile(r"[0-9A-Fa-f.:]{1,63}")


def peer_ip(remote: str) -> str | None:
    """`ip!port` -> ip, if it looks like an address (never a path)."""
    ip = remote.split("!", 1)[0]
    return ip if _ADDRESS.fullmatch(ip) else None


def enableaddr(ns: nsmod.Namespace, remote: str) -> None:
    """(Re)create trusted/IP#32 for the peer `remote` (`ip` or `ip!port`)."""
    ip = peer_ip(remote)
    if ip is None:
        return
    path = f"/mail/ratify/trusted/{ip}#32"
    try:
        if ns.exists(path):
            ns.remove(path)
        ns.create(path, 0o666)
    except (nsmod.Error, OSError):
        pass
