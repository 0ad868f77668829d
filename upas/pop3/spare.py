"""What a fork server's spare pop3 does before its connection comes
(upas/forkserver.py): it opens the factotum conversation that the APOP
greeting, or USER and PASS, will use (lib/factotum.py open_ahead).
Nothing of a user, no secret."""
from __future__ import annotations

from lib import factotum


def prepare() -> None:
    factotum.open_ahead()
