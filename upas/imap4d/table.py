"""The imap4d command table and the CAPABILITY line: one static table, as
pop3's protocol.COMMANDS.  A command is an entry here; its handler and
argument parser live in the module of its concern (request.py shows how
one is written).

An entry gives the states the command is legal in, the parser of what
follows its name, what the session reports before its tagged reply
(`updates`: EXPUNGES, NO_EXPUNGES or None, see request.py), whether `UID`
may prefix it, APPEND's check before a literal is accepted, and whether
its arguments may be absent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from upas.imap4d import (append, auth, basic, copy, expunge, fetch, folders, ident,
                         idle, listing, move, quota, search, select, sort, starttls, store,
                         thread, unselect)
from upas.imap4d.request import ANY, AUTH, NOTAUTH, SELECTED, State

# what the session reports before the tagged reply
EXPUNGES = "expunges"
NO_EXPUNGES = "no-expunges"


@dataclass(frozen=True)
class Command:
    handler: Callable[..., None] | None     # None: UID, resolved by the session
    states: State
    parse: Callable[..., Any] | None = None
    updates: str | None = None
    uid: bool = False            # also valid as "UID <name>"
    # called with (session, req-so-far, text-before-literal, size) before a
    # synchronising literal is accepted; returns None to go on, or a tagged
    # reply text (e.g. "NO [TRYCREATE] APPEND mailbox does not exist") to
    # refuse it (APPEND: "sent only after the mailbox checks pass").
    literal_check: Callable[..., str | None] | None = None
    optional: bool = False       # the arguments may be absent (args None)


COMMANDS: dict[str, Command] = {
    "APPEND": Command(append.cmd_append, AUTH | SELECTED, append.parse_append, EXPUNGES,
                      literal_check=append.literal_check),
    "AUTHENTICATE": Command(auth.authenticate, NOTAUTH, auth.parse_authenticate),
    "CAPABILITY": Command(basic.capability_cmd, ANY, updates=EXPUNGES),
    "CHECK": Command(basic.check, SELECTED, updates=EXPUNGES),
    "CLOSE": Command(select.close, SELECTED),
    "COPY": Command(copy.copy, SELECTED, copy.parse_copy, EXPUNGES, uid=True),
    "CREATE": Command(folders.cmd_create, AUTH | SELECTED, folders.parse_one, EXPUNGES),
    "DELETE": Command(folders.cmd_delete, AUTH | SELECTED, folders.parse_one, EXPUNGES),
    "ENABLE": Command(ident.cmd_enable, AUTH, ident.parse_enable),
    "EXAMINE": Command(select.examine, AUTH | SELECTED, select.parse_mailbox),
    "EXPUNGE": Command(expunge.expunge_handler, SELECTED, expunge.parse_expunge,
                       uid=True, optional=True),
    "FETCH": Command(fetch.fetch, SELECTED, fetch.parse_fetch, NO_EXPUNGES, uid=True),
    "GETQUOTA": Command(quota.cmd_getquota, AUTH | SELECTED, quota.parse_root, EXPUNGES),
    "GETQUOTAROOT": Command(quota.cmd_getquotaroot, AUTH | SELECTED, quota.parse_root, EXPUNGES),
    "ID": Command(ident.cmd_id, ANY, ident.parse_id),
    "IDLE": Command(idle.cmd_idle, AUTH | SELECTED, updates=EXPUNGES),
    "LIST": Command(listing.cmd_list, AUTH | SELECTED, listing.parse_list, EXPUNGES),
    "LOGIN": Command(auth.login, NOTAUTH, auth.parse_login),
    "LOGOUT": Command(basic.logout, ANY),
    "LSUB": Command(listing.cmd_lsub, AUTH | SELECTED, listing.parse_lsub, EXPUNGES),
    "MOVE": Command(move.cmd_move, SELECTED, copy.parse_copy, uid=True),
    "NAMESPACE": Command(folders.cmd_namespace, AUTH | SELECTED, updates=EXPUNGES),
    "NOOP": Command(basic.noop, ANY, updates=EXPUNGES),
    "RENAME": Command(folders.cmd_rename, AUTH | SELECTED, folders.parse_two, EXPUNGES),
    "SEARCH": Command(search.search, SELECTED, search.parse_search, NO_EXPUNGES, uid=True),
    "SELECT": Command(select.select, AUTH | SELECTED, select.parse_mailbox),
    "SORT": Command(sort.cmd_sort, SELECTED, sort.parse_sort, NO_EXPUNGES, uid=True),
    "STARTTLS": Command(starttls.cmd_starttls, NOTAUTH),
    "STATUS": Command(folders.cmd_status, AUTH | SELECTED, folders.parse_status, EXPUNGES),
    "STORE": Command(store.store, SELECTED, store.parse_store, NO_EXPUNGES, uid=True),
    "SUBSCRIBE": Command(folders.cmd_subscribe, AUTH | SELECTED, folders.parse_one, EXPUNGES),
    "THREAD": Command(thread.cmd_thread, SELECTED, thread.parse_thread, NO_EXPUNGES, uid=True),
    "UID": Command(None, SELECTED),
    "UNSELECT": Command(unselect.cmd_unselect, SELECTED),
    "UNSUBSCRIBE": Command(folders.cmd_unsubscribe, AUTH | SELECTED, folders.parse_one,
                           EXPUNGES),
    "X-EXIT": Command(basic.logout, ANY),       # Plan 9's LOGOUT without expunge: the same
}


def lookup(name: str, state: State) -> Command | None:
    """The command NAME if it is legal in STATE, else None."""
    c = COMMANDS.get(name.upper())
    if c is None or not (c.states & state):
        return None
    return c


# The CAPABILITY line in Plan 9's order (IMAP4REV1 IDLE NAMESPACE ...
# LOGINDISABLED AUTH=CRAM-MD5 AUTH=PLAIN), our extensions in between; each
# with the condition it is listed on, if any.
CAPABILITIES: list[tuple[str, Callable[[Any], bool] | None]] = [
    ("IMAP4REV1", None),
    ("IDLE", None),
    ("NAMESPACE", None),
    ("CHILDREN", None),
    ("LIST-EXTENDED", None),
    ("SPECIAL-USE", None),
    ("LIST-STATUS", None),
    ("UNSELECT", None),
    ("ID", None),
    ("ENABLE", None),
    ("MOVE", None),
    # searching, sorting, threading (issue 18)
    ("SORT", None),
    ("SORT=DISPLAY", None),
    ("THREAD=ORDEREDSUBJECT", None),
    ("THREAD=REFERENCES", None),
    ("ESEARCH", None),
    ("ESORT", None),
    ("SEARCHRES", None),
    ("WITHIN", None),
    ("STATUS=SIZE", None),
    ("QUOTA", None),
    ("QUOTA=RES-STORAGE", None),
    ("UIDPLUS", None),          # UID EXPUNGE, COPYUID and APPENDUID
    ("LITERAL+", None),         # parser.Framer takes {n+}
    ("STARTTLS", starttls.offered),
    ("LOGINDISABLED", lambda s: not auth.cleartext_ok(s)),
    ("AUTH=CRAM-MD5", None),
    ("AUTH=PLAIN", auth.cleartext_ok),
]


def capability_line(session: Any) -> str:
    """``CAPABILITY IMAP4REV1 ...`` for this session's state and options."""
    return "CAPABILITY " + " ".join(name for name, when in CAPABILITIES
                                    if when is None or when(session))
