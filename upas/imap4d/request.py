"""What an imap4d command handler works with, besides the session: the
session's states, the Request it answers, and Bye, which ends the session.

Writing a handler (its entry goes in table.py)::

    from upas.imap4d import parser as p
    from upas.imap4d.request import Request

    def parse_status(r: p.Reader):          # runs after "<tag> STATUS "
        name = r.astring()
        r.sp()
        items = r.paren_list(r.atom)
        return name, items                  # any object: becomes req.args
        # (r.end() is checked by the session after this returns)

    def status(s: "Session", req: Request) -> None:
        name, items = req.args
        s.untagged(f"STATUS {name} (MESSAGES 3)")   # sends "* STATUS ..."
        s.ok(req, "completed")                      # "<tag> OK STATUS completed"

    # table.py:  "STATUS": Command(folders.status, AUTH | SELECTED,
    #                              folders.parse_status, EXPUNGES),

The handler receives the session (``s``: the user, the selected mailbox
``s.box``, the namespace ``s.ns``, the options ``s.opts``) and a Request:
``req.tag``, ``req.name`` (the command exactly as the client typed it, which
Plan 9 echoes in replies), ``req.uid`` (True under ``UID``), ``req.args``.

Responses:
  * ``s.untagged(text)`` sends ``* text``; ``s.send(raw_bytes)`` sends bytes
    as they are (literals); ``s.continuation(text)`` sends ``+ text``.
  * ``s.ok(req, text)``, ``s.no(req, text)``, ``s.bad(req, text)`` send the
    tagged reply ``<tag> OK <cmd> <text>`` (cmd = the echoed name, prefixed
    with ``uid `` under UID).  ``code=`` puts a response code first:
    ``s.ok(req, "completed", code="READ-WRITE")`` ->
    ``a OK [READ-WRITE] SELECT completed``.  ``s.tagged(req, line)`` sends
    ``<tag> line`` verbatim for the odd replies (``a OK foo CREATE completed``).
  * Before an OK or NO the session reports pending mailbox changes as the
    table entry's ``updates`` says: ``EXPUNGES`` (check, then
    EXISTS/RECENT/FETCH and ``* n EXPUNGE``), ``NO_EXPUNGES``
    (FETCH/STORE/SEARCH: never an expunge, RFC 3501 7.4.1) or ``None``.
  * Raising ``parser.ParseError(msg)`` from ``parse`` gives
    ``<tag> BAD <cmd> <msg>`` and the rest of the line is discarded;
    raising ``Bye(reason)`` sends ``* BYE reason`` and ends the session.

A handler that needs more input (AUTHENTICATE, IDLE) calls
``s.await_line(take, poll=None)`` and returns: ``take(line)`` runs when the
client's next line comes (bytes without CRLF; None at end of input), and
until then the driver calls ``poll()`` (IDLE's reports).  The session does
no I/O: output goes to its driver, which sends it when input is awaited;
``s.sleep(seconds)`` has the driver wait (the failed-login delays).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class State(enum.Flag):
    NOTAUTH = enum.auto()
    AUTH = enum.auto()
    SELECTED = enum.auto()


NOTAUTH, AUTH, SELECTED = State.NOTAUTH, State.AUTH, State.SELECTED
ANY = NOTAUTH | AUTH | SELECTED


@dataclass
class Request:
    tag: str
    name: str                    # as typed, e.g. "select" or "FETCH"
    args: Any = None
    uid: bool = False

    @property
    def echo(self) -> str:
        """The command as Plan 9 echoes it in tagged replies."""
        return ("uid " + self.name) if self.uid else self.name


class Bye(Exception):
    """End the session after sending ``* BYE <reason>``."""
