"""What a fork server's spare pop3 does before its connection comes
(upas/forkserver.py), step by step, each left out once the connection
is there: it opens the factotum conversation that the APOP greeting, or
USER and PASS, will use (lib/factotum.py open_ahead), and dials ratfs
and agrees its version (upas/ns.py ratfs_ahead: the login's
ratification then sends only the attach, as the user), as imap4d's
spare does.  Nothing of a user, no secret."""
from __future__ import annotations

from lib import factotum
from upas import ns

# run one by one by the fork server (upas/forkserver.py _spare_wait)
STEPS = (factotum.open_ahead, ns.ratfs_ahead)
