"""A message of a mailbox as an imap4d session knows it: where upasfs
has it (its number in the view, its digest), what the .imp says of it
(uid, flags, keywords), and the small files kept once read."""
from __future__ import annotations

from typing import AbstractSet

from upas.imap4d.imp import FLAG_CHARS

# shared by every message that has none: a session makes 10,000 messages
# at a SELECT and most never get keywords or a cached file (a list and a
# dict each would be ~150 bytes a message and a tenth of a warm SELECT)
NO_KEYWORDS: list[str] = []
RECENT = frozenset({"\\Recent"})   # a new message's flags, shared


class Message:
    __slots__ = ("fsnum", "digest", "uid", "flags", "keywords", "expunged",
                 "file_recent", "_cache")

    def __init__(self, fsnum: int, digest: str, uid: int = 0,
                 flags: AbstractSet[str] = frozenset()) -> None:
        self.fsnum = fsnum
        self.digest = digest
        self.uid = uid
        # replaced, never changed in place: often the frozenset every
        # message with these flags shares (imp.flagset)
        self.flags: AbstractSet[str] = flags
        # replaced, never changed in place (the empty one is shared)
        self.keywords: list[str] = NO_KEYWORDS
        self.expunged = False             # gone from the fs, not yet reported
        # the .imp still holds its \\Recent (or does not know it yet): what
        # a read-only view writes back as `r` (EXAMINE and STATUS keep
        # \\Recent); a message made from its .imp line has the line's
        self.file_recent = "\\Recent" in flags
        self._cache: dict | None = None

    @property
    def cache(self) -> dict:
        """prefetch.Files keeps files here (made at the first use)."""
        if self._cache is None:
            self._cache = {}
        return self._cache

    def __repr__(self) -> str:
        return f"Message({self.fsnum}, {self.digest!r}, uid={self.uid}, flags={set(self.flags)})"

    def flag_list(self) -> list[str]:
        """Flags in Plan 9's order, then keywords."""
        return [f for _, f in FLAG_CHARS if f in self.flags] + self.keywords
