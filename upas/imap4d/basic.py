"""CAPABILITY, NOOP, CHECK, LOGOUT, x-exit, and the UID prefix entry."""
from __future__ import annotations

from upas.imap4d.ratify import ratify
from upas.imap4d.table import (ANY, EXPUNGES, SELECTED, Request, capability,
                               capability_line, command)

capability("IMAP4REV1", 0)
capability("UIDPLUS", 50)        # UID EXPUNGE and COPYUID here, APPENDUID in part 2
capability("LITERAL+", 60)       # parser.Framer takes {n+}


@command("CAPABILITY", states=ANY, updates=EXPUNGES)
def capability_cmd(s, req: Request) -> None:
    s.untagged(capability_line(s))
    s.ok(req, "")


@command("NOOP", states=ANY, updates=EXPUNGES)
def noop(s, req: Request) -> None:
    s.ok(req)
    ratify(s)


@command("CHECK", states=SELECTED, updates=EXPUNGES)
def check(s, req: Request) -> None:
    s.ok(req)
    ratify(s)


@command("LOGOUT", states=ANY)
def logout(s, req: Request) -> None:
    """docs/decisions.md: LOGOUT does not expunge (only CLOSE and EXPUNGE do).
    So `x-exit`, which Plan 9 kept to leave without expunging, is the same."""
    s.untagged("BYE logging out")      # Plan 9: bare `* BYE` (resp-text needs a text)
    s.ok(req)
    s.done = True


command("X-EXIT", states=ANY)(logout)


@command("UID", states=SELECTED)
def uid(s, req: Request) -> None:
    raise AssertionError("the session resolves UID subcommands")   # never called
