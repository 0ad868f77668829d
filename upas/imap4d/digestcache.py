"""What FETCH and SEARCH derive from a message's content, kept by digest.

upasfs names each message's content by its SHA-1 `digest` (which covers
every byte of the message, its From line included), and imap4d already
reads every digest at SELECT.  An answer computed from the content alone
-- RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE, where SEARCH finds a
message's texts -- is therefore the same for every message with that
digest, in every session, for ever: it can be kept and reused without
reading the message again, and can never be stale.  (Dovecot keeps the
same in dovecot.index.cache.)  What does not come from the content alone
(flags, UIDs, INTERNALDATE's "now" for a bad date) is never kept.

One file per mailbox, `<mailbox>.idx.imp` beside the `.imp` (LIST hides
`.imp` files, and `.idx` is a reserved mailbox suffix, so no mailbox's
shadow file can have this name):

    upas imap4d digest cache 1 <code> <site>\\n
    R<len:8 hex><crc32:8 hex><digest:40> <key> <value>\\n      one a record

<code> is a hash of the sources that compute the answers: a new version of
them starts a new cache instead of trusting an old one; <site> is what
bare addresses get in an ENVELOPE.  The file is a digest file
(upas/mail/digestfile.py: records appended, a torn or corrupt tail
ignored and the file rewritten whole under the mail lock, a foreign file
neither read nor written).  Mode 0600: it holds headers of the user's mail
(the mailbox itself is 0662).  The cache is best effort: when it cannot be
read or written the answers are computed as without it.
"""
from __future__ import annotations


from upas import ns as nsmod
from upas.mail import digestfile
from upas.mail.digestfile import DigestFile, record  # noqa: F401 -- the tests' too

MAGIC = b"upas imap4d digest cache 1 "
SUFFIX = ".idx.imp"
MODE = 0o600                # headers of the user's mail: the user's only
# the sources whose code computes the kept answers
# (upasfs's among them: mbox.py and tree.py serve the files they read)
_SOURCES = ("imap4d/envelope.py", "imap4d/fetch.py", "imap4d/search.py",
            "imap4d/summary.py", "imap4d/dates.py",
            "imap4d/digestcache.py", "mail/mime.py", "mail/header.py",
            "mail/mbox.py", "fs9p/tree.py")
_CODE: list[bytes] = []


def code_version() -> bytes:
    """A hash of the sources the kept answers come from (computed once)."""
    if not _CODE:
        _CODE.append(digestfile.code_hash(_SOURCES))
    return _CODE[0]


def header_line(site: str) -> bytes:
    name = site.encode("utf-8", "replace").replace(b"\n", b"?")
    return MAGIC + code_version() + b" " + name + b"\n"


def parse(data: bytes, header: bytes) -> tuple[str, dict[str, dict[str, bytes]], bool]:
    """(state, entries, torn) of a cache file's bytes (digestfile.parse)."""
    return digestfile.parse(data, MAGIC, header)


class DigestCache(DigestFile):
    """The kept answers of one mailbox, as this session knows them."""

    def __init__(self, ns: nsmod.Namespace, boxpath: str, site: str):
        super().__init__(ns, boxpath + SUFFIX, MAGIC, header_line(site), MODE)


_OPEN: dict[tuple[str, str], DigestCache] = {}
SMALL = 16          # fewer messages: answered directly unless the cache is read


def worth(ns: nsmod.Namespace, boxpath: str, site: str, n: int) -> bool:
    """Whether a command on n messages should use the cache: reading a big
    file costs more than computing a few answers directly."""
    c = _OPEN.get((boxpath, site))
    return n >= SMALL or (c is not None and c.ns is ns and c.stamp is not None)


def for_box(ns: nsmod.Namespace, boxpath: str, site: str) -> DigestCache:
    """The cache of a mailbox, brought up to date (one per process)."""
    key = (boxpath, site)
    c = _OPEN.get(key)
    if c is None or c.ns is not ns:
        _OPEN.clear()                   # one mailbox's answers held at a time
        c = _OPEN[key] = DigestCache(ns, boxpath, site)
    c.refresh()
    return c
