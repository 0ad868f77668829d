"""What a fork server's spare imap4d does before its connection comes
(upas/forkserver.py): it opens the factotum conversation a LOGIN will
use (lib/factotum.py open_ahead).  Nothing of a user, no secret."""
from __future__ import annotations

from lib import factotum


def prepare() -> None:
    factotum.open_ahead()
