"""Mailbox names: from the client's modified UTF-7 to a path under
/mail/box/USER, and back (docs/spec/servers.md §3.6, docs/decisions.md).

A client name is decoded from modified UTF-7 and checked component by
component.  We are stricter than Plan 9's okMbox, which examined only the
last component (so `a/../b` passed): here no component may be `..`, a
leading `/` is refused, and every component is checked against the files
upas and imap4d keep beside the mailboxes (L.mbox, *.imp, imap.subscribed,
temporary files...).  So nothing outside /mail/box/USER and none of the
bookkeeping files can ever be named.

`INBOX` in any case is the file `mbox` (docs/decisions.md: mapped everywhere);
the literal name `mbox` is refused, as in 9front, so that each mailbox has
one name.
"""
from __future__ import annotations

from dataclasses import dataclass

import contextvars

from . import mutf7

__all__ = ["BadName", "Name", "INBOX", "INBOX_FILE", "parse", "display", "is_listable", "box_path"]

INBOX = "INBOX"
INBOX_FILE = "mbox"
MAXPATH = 256  # docs/spec/servers.md §3.14: mailbox path 256 bytes (BL: len + 4 < 256)

# Files of the mail directory itself (first component only).
_STOP = frozenset({"mbox", "pipeto", "pipefrom", "forward", "names", "headers",
                   "imap.ok", "imap.subscribed", "imap.uidvalidity", "dead.letter"})
_PREFIXES = ("L.", "imap-tmp.")
# .imp shadow files, crash-safe temporaries, 9front's index files; and
# `.kw`, `.save`, `.modseq`, `.upasfs`, `.imap4d`, `.pop3`, `.mark` and `.sort`,
# because the keywords of mailbox B live in `B.kw.imp` (imp.py), its save
# dates in `B.save.imp` (savedate.py), its MODSEQs in `B.modseq.imp`
# (modseq.py), upasfs's index of it in `B.upasfs.imp` (mail/mboxindex.py),
# imap4d's digest cache in `B.imap4d.imp` (mail/digestcache.py; pop3's was
# `B.pop3.imp`), SELECT's record of upasfs's listing in `B.mark.imp`
# (selectmark.py) and SORT's and THREAD's index in `B.sort.imp`
# (sortindex.py), which would be the shadow files of mailboxes so named.
_SUFFIXES = (".imp", ".tmp", ".idx", ".kw", ".save", ".modseq", ".upasfs", ".imap4d",
             ".pop3", ".mark", ".sort")


# How mailbox names look on the wire: modified UTF-7 (IMAP4rev1, RFC 3501
# 5.1.3) or, once a session has enabled IMAP4rev2, UTF-8 (RFC 9051 5.1).
# The session sets it before each command (one session per process; a
# context variable all the same, so that nothing else has to carry it).
UTF8: contextvars.ContextVar[bool] = contextvars.ContextVar("utf8_names", default=False)


def decode(wire: str | bytes) -> str:
    """The text of a name or pattern as the client sent it; raises
    mutf7.DecodeError (modified UTF-7) or UnicodeDecodeError (UTF-8)."""
    if not UTF8.get():
        return mutf7.decode(wire)
    return wire.decode("utf-8") if isinstance(wire, bytes) else wire


def encode(text: str) -> str:
    """The wire form of a name's text."""
    return text if UTF8.get() else mutf7.encode(text)


class BadName(ValueError):
    """Not an acceptable mailbox name; str() is a short reason."""


@dataclass(frozen=True)
class Name:
    path: str     # relative to /mail/box/USER, cleaned, no trailing slash
    folder: bool  # the client's name ended in `/` (CREATE makes a directory)

    @property
    def inbox(self) -> bool:
        return self.path == INBOX_FILE


def _check_component(comp: str, first: bool) -> None:
    if comp == "..":
        raise BadName("`..' in mailbox name")
    if first and comp in _STOP:
        raise BadName(f"reserved name {comp}")
    if comp.startswith(_PREFIXES) or comp.endswith(_SUFFIXES) or ".imp." in comp:
        raise BadName(f"reserved name {comp}")
    if comp.startswith("-"):
        raise BadName("name starts with `-'")


def parse(wire: str | bytes) -> Name:
    """The Name for a client's mailbox argument; raises BadName."""
    try:
        text = decode(wire)
    except mutf7.DecodeError as e:
        raise BadName(f"mailbox name not in modified utf-7: {e}") from None
    except UnicodeDecodeError:
        raise BadName("mailbox name not in utf-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise BadName("control character in mailbox name")
    if text.isascii() and text.upper() == INBOX:
        return Name(INBOX_FILE, False)
    if text.startswith("/"):
        raise BadName("absolute mailbox name")
    folder = text.endswith("/")
    comps = [c for c in text.split("/") if c not in ("", ".")]
    if not comps:
        raise BadName("empty mailbox name")
    if comps[0].isascii() and comps[0].upper() == INBOX:
        raise BadName("INBOX has no inferiors")
    for i, comp in enumerate(comps):
        _check_component(comp, i == 0)
    path = "/".join(comps)
    if len(path.encode("utf-8")) + 4 >= MAXPATH:
        raise BadName("mailbox name too long")
    return Name(path, folder)


def display(path: str) -> str:
    """The wire form (modified UTF-7, or UTF-8) of a path relative to the mail dir."""
    return INBOX if path == INBOX_FILE else encode(path)


def is_listable(path: str) -> bool:
    """True when `path` is a name a client could use (LIST shows only these)."""
    if path == INBOX_FILE:
        return True
    try:
        return parse(encode(path)).path == path
    except BadName:
        return False


def box_path(user: str, path: str) -> str:
    """The namespace path of a mailbox (or folder) of `user`."""
    return f"/mail/box/{user}/{path}" if path else f"/mail/box/{user}"
