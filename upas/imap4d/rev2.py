"""IMAP4rev2 (RFC 9051) beside IMAP4rev1: what changes for a session once
the client has sent `ENABLE IMAP4rev2` (RFC 9051 appendix E).

- no `* n RECENT` and no `\\Recent` flag anywhere (E.6);
- SELECT and EXAMINE send the mailbox's `* LIST` and no `[UNSEEN n]`
  (6.3.2), the LIST with OLDNAME when the name given was not in its
  normal form (`inbox`, `a//b`: 6.3.9.7), and `* OK [CLOSED]` when they close a mailbox that was
  selected (7.1);
- SEARCH answers with ESEARCH (6.4.4: `* ESEARCH (TAG "t") [UID] ALL set`,
  ALL being what a SEARCH without RETURN asks);
- STATUS takes DELETED (6.3.11), in rev1 too (a client that does not know
  it does not ask);
- mailbox names are UTF-8, not modified UTF-7, both ways (5.1; names.UTF8,
  set by the session for each command), and quoted strings may hold UTF-8.

IMAP4rev2 is listed in CAPABILITY (and so can be enabled) only once
imap4d has everything RFC 9051 makes part of it: the extensions it
folds in (REQUIRED, found in the CAPABILITY table).  The test knob
IMAP4D_REV2_ANYWAY lists it regardless, so that the rules above are
tested before then (docs/decisions.md).
"""
from __future__ import annotations

from typing import Iterable

from upas import config
from upas.imap4d.envelope import quote
from upas.imap4d.sequenceset import sequence_set

NAME = "IMAP4rev2"
# RFC 9051 appendix E: the extensions IMAP4rev2 includes, by the
# capability a rev1 server lists for each (LITERAL+ covers LITERAL-)
REQUIRED = ("NAMESPACE", "UNSELECT", "UIDPLUS", "ESEARCH", "SEARCHRES", "ENABLE", "IDLE",
            "SASL-IR", "LIST-EXTENDED", "LIST-STATUS", "MOVE", "LITERAL+", "BINARY",
            "SPECIAL-USE", "STATUS=SIZE", "CHILDREN")


def missing(capabilities: Iterable[str]) -> list[str]:
    """What IMAP4rev2 needs that imap4d lacks, given the names it lists."""
    have = set(capabilities)
    return [c for c in REQUIRED if c not in have]


def offered(capabilities: Iterable[str]) -> bool:
    return not missing(capabilities) or config.current().imap4d_rev2_anyway


def on(s) -> bool:
    """The session follows IMAP4rev2's rules."""
    return NAME.upper() in s.enabled


def flag_text(s, m) -> str:
    """A message's flags as FETCH shows them: without \\Recent under rev2."""
    flags = m.flag_list()
    if on(s):
        flags = [f for f in flags if f != "\\Recent"]
    return " ".join(flags)


def select_list(given: str, shown: str) -> str:
    """SELECT's LIST (6.3.2); OLDNAME names what the client sent when it
    differs from the normal name (appendix B: `select inbox`)."""
    line = f'LIST () "/" {quote(shown)}'
    return line if given == shown else f'{line} ("OLDNAME" ({quote(given)}))'


def esearch(tag: str, uid: bool, hits: list[int]) -> str:
    """The ESEARCH response to a SEARCH without RETURN (RFC 9051 6.4.4,
    RFC 4731 3.1: ALL, left out when nothing matched)."""
    words = [f"ESEARCH (TAG {quote(tag)})"]
    if uid:
        words.append("UID")
    if hits:
        words.append("ALL " + sequence_set(sorted(hits)))
    return " ".join(words)
