"""What a fork server's spare imap4d does before its connection comes
(upas/forkserver.py): it opens the factotum conversation a LOGIN will
use (lib/factotum.py open_ahead), dials ratfs and agrees its version
(upas/ns.py ratfs_ahead: a login's ratification then sends only the
attach, as the user) and looks up the system's name, which the session
gives in its greeting's place (Plan 9 reads sysname when the process
starts; so does a spare).  Nothing of a user, no secret."""
from __future__ import annotations

import socket

from lib import factotum
from upas import ns

_sysname: str | None = None


def prepare() -> None:
    global _sysname
    factotum.open_ahead()
    ns.ratfs_ahead()
    _sysname = socket.getfqdn()


def sysname() -> str:
    """The system's name: the spare's lookup, else one made now."""
    return _sysname or socket.getfqdn() or socket.gethostname()
