"""CAPABILITY, NOOP, CHECK, LOGOUT and x-exit."""
from __future__ import annotations

from upas.imap4d.ratify import ratify
from upas.imap4d.request import Request


def capability_cmd(s, req: Request) -> None:
    s.untagged(s.capability_line())
    s.ok(req, "")


def noop(s, req: Request) -> None:
    s.ok(req)
    ratify(s)


def check(s, req: Request) -> None:
    s.ok(req)
    ratify(s)


def logout(s, req: Request) -> None:
    """docs/decisions.md: LOGOUT does not expunge (only CLOSE and EXPUNGE do).
    So `x-exit`, which Plan 9 kept to leave without expunging, is the same."""
    s.untagged("BYE logging out")      # Plan 9: bare `* BYE` (resp-text needs a text)
    s.ok(req)
    s.done = True
