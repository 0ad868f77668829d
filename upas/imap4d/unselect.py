"""UNSELECT (RFC 3691): leave the selected state without expunging."""
from __future__ import annotations

from .select import close_box
from .table import SELECTED, capability, command


@command("UNSELECT", states=SELECTED)
def cmd_unselect(s, req) -> None:
    close_box(s)
    s.ok(req, "completed")


capability("UNSELECT", 40)
