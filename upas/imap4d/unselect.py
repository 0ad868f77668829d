"""UNSELECT (RFC 3691): leave the selected state without expunging."""
from __future__ import annotations

from .select import close_box


def cmd_unselect(s, req) -> None:
    close_box(s)
    s.ok(req, "completed")
