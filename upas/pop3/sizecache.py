"""pop3's sizes of messages it has read, by digest: `<mailbox>.pop3.imp`.

Loading a mailbox (docs/spec/servers.md §2.7) reads four upasfs files per message;
three of them (`rawheader`, `lines`, the stat of `raw`) only give what a
message's bytes determine, and its `digest` (SHA-1 of those bytes) names
them.  So the size and raw length found for a digest hold for every
mailbox and every later session: a session reads each `digest` and only a
message not in the file costs the other three reads.  Dovecot keeps sizes
in its index for the same reason.

The file lives beside the mailbox in /mail/box/USER, reached through the
name space, and ends in `.imp` (hidden from LIST like Plan 9's .imp).  It
is a digest cache (upas/mail/digestcache.py: append-only records with a
CRC each, a torn tail ignored, rewritten crash-safely under the mail lock
with only the messages still in the mailbox): one record a message, key
SIZE, value `RAWLEN SIZE`.
"""
from __future__ import annotations

from upas import ns as nsmod
from upas.mail import digestcache
from upas.mail.digestcache import DigestCache

MAGIC = b"upas pop3 sizes "
HEADER = MAGIC + b"1\n"
KEY = "SIZE"


def cache_path(box: str, user: str) -> str | None:
    """Where the cache of mailbox `box` lives: only a mailbox of the user's
    own /mail/box/USER has one."""
    prefix = f"/mail/box/{user}/"
    if not box.startswith(prefix) or box.endswith("/"):
        return None
    return digestcache.path_for(box, "pop3")


class SizeCache:
    """The sizes one mailbox's file holds, and those to add."""

    def __init__(self, ns: nsmod.Namespace, path: str):
        self.file = DigestCache(ns, path, MAGIC, HEADER)
        self.file.refresh()

    def get(self, digest: str) -> tuple[int, int] | None:
        """(raw length, POP size) of the message with this digest."""
        v = self.file.get(digest, KEY)
        if v is None:
            return None
        try:
            raw_len, size = v.split(b" ")
            return int(raw_len), int(size)
        except ValueError:
            return None

    def add(self, digest: str, raw_len: int, size: int) -> None:
        self.file.put(digest, KEY, b"%d %d" % (raw_len, size))

    def save(self, live: set[str]) -> None:
        """Write what was added (`live`: the digests now in the mailbox).
        Failures are ignored: the cache only saves reads."""
        self.file.flush(live)
