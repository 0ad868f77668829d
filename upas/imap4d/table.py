"""The imap4d command table and capability registry.

Every IMAP command is a handler registered here with a decorator, so that
modules of either part of imap4d add commands without editing the session
or each other.  Every module of the package is imported by
``load_commands()`` before the first command, so a new module registers its
commands just by existing.

Writing a handler::

    from upas.imap4d.table import command, AUTH, SELECTED
    from upas.imap4d import parser as p

    def parse_status(r: p.Reader):          # runs after "<tag> STATUS "
        name = r.astring()
        r.sp()
        items = r.paren_list(r.atom)
        return name, items                  # any object: becomes req.args
        # (r.end() is checked by the session after this returns)

    @command("STATUS", states=AUTH | SELECTED, parse=parse_status,
             updates=EXPUNGES)
    def status(s: "Session", req: Request) -> None:
        name, items = req.args
        s.untagged(f"STATUS {name} (MESSAGES 3)")   # sends "* STATUS ..."
        s.ok(req, "completed")                      # "<tag> OK STATUS completed"

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
    entry's ``updates`` says: ``EXPUNGES`` (check, then EXISTS/RECENT/FETCH
    and ``* n EXPUNGE``), ``NO_EXPUNGES`` (FETCH/STORE/SEARCH: never an
    expunge, RFC 3501 7.4.1) or ``None`` (nothing).
  * Raising ``parser.ParseError(msg)`` from ``parse`` gives
    ``<tag> BAD <cmd> <msg>`` and the rest of the line is discarded.

A handler that needs more input (AUTHENTICATE, IDLE) calls
``s.await_line(take, poll=None)`` and returns: ``take(line)`` runs when the
client's next line comes (bytes without CRLF; None at end of input), and
until then the driver calls ``poll()`` (IDLE's reports).  The session does
no I/O: output goes to its driver, which sends it when input is awaited.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable


class State(enum.Flag):
    NOTAUTH = enum.auto()
    AUTH = enum.auto()
    SELECTED = enum.auto()


NOTAUTH, AUTH, SELECTED = State.NOTAUTH, State.AUTH, State.SELECTED
ANY = NOTAUTH | AUTH | SELECTED

# what the session reports before the tagged reply
EXPUNGES = "expunges"
NO_EXPUNGES = "no-expunges"


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


@dataclass
class Command:
    name: str                    # upper case
    states: State
    handler: Callable[..., None]
    parse: Callable[..., Any] | None = None
    updates: str | None = None
    uid: bool = False            # also valid as "UID <name>"
    # called with (session, req-so-far, text-before-literal) before a
    # synchronising literal is accepted; returns None to go on, or a tagged
    # reply text (e.g. "NO [TRYCREATE] APPEND mailbox does not exist") to
    # refuse it (APPEND: "sent only after the mailbox checks pass").
    literal_check: Callable[..., str | None] | None = None
    optional: bool = False       # the arguments may be absent (args None)


COMMANDS: dict[str, Command] = {}


def command(name: str, states: State, parse: Callable[..., Any] | None = None,
            updates: str | None = None, uid: bool = False,
            literal_check: Callable[..., str | None] | None = None,
            optional: bool = False):
    """Register the decorated function as the handler of IMAP command NAME.

    ``parse(reader)`` parses what follows the command and its space; with
    ``optional=True`` a command line ending after the name gives args None.
    ``uid=True`` also allows ``UID NAME``."""
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        COMMANDS[name.upper()] = Command(name.upper(), states, fn, parse,
                                         updates, uid, literal_check, optional)
        return fn
    return register


def lookup(name: str, state: State) -> Command | None:
    """The command NAME if it is legal in STATE, else None."""
    c = COMMANDS.get(name.upper())
    if c is None or not (c.states & state):
        return None
    return c


@dataclass(order=True)
class Capability:
    order: int
    name: str = field(compare=False)
    when: Callable[[Any], bool] | None = field(default=None, compare=False)


CAPABILITIES: dict[str, Capability] = {}


def capability(name: str, order: int, when: Callable[[Any], bool] | None = None) -> None:
    """Advertise NAME in CAPABILITY, at position ORDER, when when(session) is true.

    The order of Plan 9's line: IMAP4REV1 0, IDLE 10, NAMESPACE 20,
    UIDPLUS 50, LOGINDISABLED 80, AUTH=CRAM-MD5 90, AUTH=PLAIN 91;
    extensions go between 20 and 80.
    """
    CAPABILITIES[name] = Capability(order, name, when)


def capability_line(session: Any) -> str:
    """``CAPABILITY IMAP4REV1 ...`` for this session's state and options."""
    names = [c.name for c in sorted(CAPABILITIES.values())
             if c.when is None or c.when(session)]
    return "CAPABILITY " + " ".join(names)


def load_commands() -> None:
    """Import every module of this package (except __main__), so that each
    registers its commands: a new module needs no edit anywhere else."""
    import importlib
    import pkgutil
    from pathlib import Path
    for m in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not m.name.startswith("_"):
            importlib.import_module(f"{__package__}.{m.name}")
