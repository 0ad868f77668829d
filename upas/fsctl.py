"""Asking the upas/fs at /mail/fs to open a mailbox: `open PATH NAME`.

The upas/fs may be ours or plan9port's.  Either opens PATH on the host it
runs on, plan9port's at that very path (/mail/box/USER/...), whatever
$MAILROOT says here; when the file is not there its error is the bare
system text (`No such file or directory`), which says nothing of where
it looked: the error raised here does.
"""
from __future__ import annotations

from lib.rcquote import quote
from upas import ns as nsmod

CTL = "/mail/fs/ctl"
MISSING = ("No such file or directory", "does not exist")


def open_mailbox(ns: nsmod.Namespace, path: str, name: str) -> None:
    """Open path under name in the upas/fs (the same again is a no-op);
    raise nsmod.Error, naming path and where it must be, if it is missing."""
    try:
        ns.write(CTL, f"open {quote(path)} {quote(name)}".encode())
    except nsmod.Error as e:
        text = str(e)
        if any(m in text for m in MISSING):
            raise type(e)(f"upas/fs cannot open {path}: {text} (it must exist "
                          f"on the host upas/fs runs on)") from None
        raise
