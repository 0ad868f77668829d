"""The subscription list, /mail/box/USER/imap.subscribed (docs/spec/servers.md §3.10).

Plan 9's format: one name per line, `#` lines are comments; a missing file
is created as `#imap4 subscription list\\nINBOX\\n`.  Names are stored as
Plan 9 stores them: the client's name decoded from modified UTF-7 (so a
UTF-8 file), with INBOX written `INBOX`.  Every read-modify-write happens
under the mail lock and replaces the file crash-safely.
"""
from __future__ import annotations

from upas import ns as nsmod
from upas.mail import safewrite

from . import names

FILE = "imap.subscribed"
HEADER = "#imap4 subscription list\n"
INITIAL = (HEADER + "INBOX\n").encode()


def _path(user: str) -> str:
    return names.box_path(user, FILE)


def _parse(data: bytes) -> list[str]:
    out = []
    for line in data.decode("utf-8", "replace").split("\n"):
        line = line.strip(" \t\r")
        if line and not line.startswith("#"):
            out.append(line)
    return out


def read(ns, user: str) -> list[str]:
    """The subscribed names (Plan 9 form), creating the file if missing."""
    try:
        return _parse(ns.read(_path(user)))
    except nsmod.Error:
        pass
    with ns.lock(names.box_path(user, "")):
        if not ns.exists(_path(user)):
            _replace(ns, user, INITIAL)
        return _parse(ns.read(_path(user)))


def stored_name(name: names.Name) -> str:
    """How a mailbox is written in imap.subscribed."""
    return names.INBOX if name.inbox else name.path


def _replace(ns, user: str, data: bytes) -> None:
    safewrite.replace(ns, _path(user), data)


def _edit(ns, user: str, fn) -> None:
    with ns.lock(names.box_path(user, "")):
        try:
            data = ns.read(_path(user))
        except nsmod.Error:
            data = INITIAL
        lines = data.decode("utf-8", "replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        new = fn(lines)
        if new != lines:
            _replace(ns, user, ("\n".join(new) + "\n").encode())


def add(ns, user: str, entry: str) -> None:
    """Append `entry` unless that exact line is present."""
    _edit(ns, user, lambda ls: ls if entry in ls else ls + [entry])


def remove(ns, user: str, entry: str) -> None:
    """Remove the exact line `entry` (absent is fine)."""
    _edit(ns, user, lambda ls: [ln for ln in ls if ln != entry])


def rename(ns, user: str, old: str, new: str) -> None:
    """Follow a RENAME: `old` and everything under `old/` move to `new`."""
    def move(ls):
        out = []
        for ln in ls:
            if ln == old:
                ln = new
            elif ln.startswith(old + "/"):
                ln = new + ln[len(old):]
            out.append(ln)
        return out
    _edit(ns, user, move)
