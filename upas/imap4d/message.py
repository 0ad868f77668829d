"""A message of a mailbox as an imap4d session knows it: where upasfs
has it (its number in the view, its digest), what the .imp says of it
(uid, flags, keywords), and the small files kept once read."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import AbstractSet

from upas.imap4d.imp import FLAG_CHARS


@dataclass(eq=False, slots=True)
class Message:
    fsnum: int
    digest: str
    uid: int = 0
    # replaced, never changed in place: often the frozenset every message
    # with these flags shares (imp.flagset)
    flags: AbstractSet[str] = field(default_factory=set)
    keywords: list[str] = field(default_factory=list)
    expunged: bool = False            # gone from the fs, not yet reported
    # the .imp still holds its \\Recent (or does not know it yet): what a
    # read-only view writes back as `r` (EXAMINE and STATUS keep \\Recent)
    file_recent: bool = True
    cache: dict = field(default_factory=dict)    # prefetch.Files keeps files here

    def flag_list(self) -> list[str]:
        """Flags in Plan 9's order, then keywords."""
        return [f for _, f in FLAG_CHARS if f in self.flags] + self.keywords
