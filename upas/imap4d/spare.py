"""What a fork server's spare imap4d does before its connection comes
(upas/forkserver.py), step by step, each left out once the connection
is there: it looks up the system's name, which the session gives in its
greeting's place (Plan 9 reads sysname when the process starts; so does
a spare); opens the factotum conversation a LOGIN will use
(lib/factotum.py open_ahead); dials ratfs and agrees its version
(upas/ns.py ratfs_ahead: a login's ratification then sends only the
attach, as the user); and rehearses a session's first commands
(_rehearse).  Nothing of a user, no secret."""
from __future__ import annotations

import hashlib
import hmac
import socket

from lib import factotum
from upas import ns

_sysname: str | None = None


def _lookup_sysname() -> None:
    global _sysname
    _sysname = socket.getfqdn()


def _rehearse() -> None:
    """A greeting, CAPABILITY, NOOP and a LOGIN without its arguments (a
    BAD) on a session of no connection, its output dropped; a CRAM
    digest; a default name space, dropped before anything in it is
    dialled.  Only for what they touch: each function, code object and
    constant they use is written (its reference count) in this process,
    a page fault each (~2.6 us) taken here and not after the connection
    (~140 of a LOGIN's ~320, the greeting's ~25)."""
    from upas.imap4d.session import Options, Session
    s = Session(Options(), lambda user: None, lambda ev: None)
    s.start()
    s.feed(b"a CAPABILITY\r\nb NOOP\r\nc LOGIN\r\n")
    hmac.new(b"key", b"<challenge>", hashlib.md5).hexdigest()
    ns.Namespace.default("none").close()


# run one by one by the fork server (upas/forkserver.py _spare_wait)
STEPS = (_lookup_sysname, factotum.open_ahead, ns.ratfs_ahead, _rehearse)


def sysname() -> str:
    """The system's name: the spare's lookup, else one made now."""
    return _sysname or socket.getfqdn() or socket.gethostname()
