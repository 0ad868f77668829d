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
        _remove_any(ns, path)
        ns.create(path, 0o666)
    except (nsmod.Error, OSError):
        pass


ABSENT = "file does not exist"      # our ratfs's and the host's text (upas/ns.py)


def _remove_any(ns: nsmod.Namespace, path: str) -> None:
    """Plan 9's `if(access(buf, 0) >= 0 && remove(buf) < 0) return`, in
    one round trip to ratfs where it can be: the remove is tried first
    (a reconnect finds the file there), and the file looked for only if
    it failed for another reason than not being there (another user's
    entry: an Error, and nothing is created); a server whose text for a
    missing file differs is asked as before."""
    try:
        ns.remove(path)
    except nsmod.Error as e:
        if str(e) == ABSENT or not ns.exists(path):
            return
        raise
