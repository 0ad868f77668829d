"""imap4d's digest cache: what FETCH and SEARCH derive from a message's
content, kept by digest.

upasfs names each message's content by its SHA-1 `digest` (which covers
every byte of the message, its From line included), and imap4d already
reads every digest at SELECT.  An answer computed from the content alone
-- RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE, where SEARCH finds a
message's texts -- is therefore the same for every message with that
digest, in every session, for ever: it can be kept and reused without
reading the message again, and can never be stale.  (Dovecot keeps the
same in dovecot.index.cache.)  What does not come from the content alone
(flags, UIDs, INTERNALDATE's "now" for a bad date) is never kept.

One file per mailbox, `<mailbox>.imap4d.imp` beside the `.imp` (a digest
cache: upas/mail/digestcache.py; it was `<mailbox>.idx.imp`, renamed at
first use):

    upas imap4d digest cache 1 <code> <site>\\n
    R<len:8 hex><crc32:8 hex><digest:40> <key> <value>\\n      one a record

<code> is a hash of the sources that compute the answers: a new version of
them starts a new cache instead of trusting an old one; <site> is what
bare addresses get in an ENVELOPE.  Records are appended, a torn or
corrupt tail ignored and the file rewritten whole under the mail lock, a
foreign file neither read nor written.  Mode 0600: it holds headers of
the user's mail.  The cache is best effort: when it cannot be read or
written the answers are computed as without it.
"""
from __future__ import annotations


from upas import ns as nsmod
from upas.mail import digestcache
from upas.mail.digestcache import DigestCache, record  # noqa: F401 -- the tests' too

MAGIC = b"upas imap4d digest cache 1 "
OLD_SUFFIX = ".idx.imp"     # its name before issue 15
MODE = 0o600                # headers of the user's mail: the user's only
# the sources whose code computes the kept answers
# (upasfs's among them: mbox.py and tree.py serve the files they read)
_SOURCES = ("imap4d/envelope.py", "imap4d/fetch.py", "imap4d/search.py",
            "imap4d/summary.py", "imap4d/dates.py",
            "imap4d/fetchcache.py", "mail/mime.py", "mail/header.py",
            "mail/mbox.py", "fs9p/tree.py")
_CODE: list[bytes] = []


def code_version() -> bytes:
    """A hash of the sources the kept answers come from (computed once)."""
    if not _CODE:
        _CODE.append(digestcache.code_hash(_SOURCES))
    return _CODE[0]


def header_line(site: str) -> bytes:
    name = site.encode("utf-8", "replace").replace(b"\n", b"?")
    return MAGIC + code_version() + b" " + name + b"\n"


def parse(data: bytes, header: bytes) -> tuple[str, dict[str, dict[str, bytes]], bool]:
    """(state, entries, torn) of a cache file's bytes (digestcache.parse)."""
    return digestcache.parse(data, MAGIC, header)


def path_for(boxpath: str) -> str:
    return digestcache.path_for(boxpath, "imap4d")


class FetchCache(DigestCache):
    """The kept answers of one mailbox, as this session knows them."""

    def __init__(self, ns: nsmod.Namespace, boxpath: str, site: str):
        path = path_for(boxpath)
        _rename_old(ns, boxpath + OLD_SUFFIX, path)
        super().__init__(ns, path, MAGIC, header_line(site), MODE)


def _rename_old(ns: nsmod.Namespace, old: str, new: str) -> None:
    """A cache under its old name takes the new one (best effort: another
    session may be doing the same)."""
    try:
        if ns.exists(old) and not ns.exists(new):
            ns.rename(old, new)
    except nsmod.Error:
        pass


_OPEN: dict[tuple[str, str], FetchCache] = {}
SMALL = 16          # fewer messages: answered directly unless the cache is read


def worth(ns: nsmod.Namespace, boxpath: str, site: str, n: int) -> bool:
    """Whether a command on n messages should use the cache: reading a big
    file costs more than computing a few answers directly."""
    c = _OPEN.get((boxpath, site))
    return n >= SMALL or (c is not None and c.ns is ns and c.stamp is not None)


def for_box(ns: nsmod.Namespace, boxpath: str, site: str) -> FetchCache:
    """The cache of a mailbox, brought up to date (one per process)."""
    key = (boxpath, site)
    c = _OPEN.get(key)
    if c is None or c.ns is not ns:
        _OPEN.clear()                   # one mailbox's answers held at a time
        c = _OPEN[key] = FetchCache(ns, boxpath, site)
    c.refresh()
    return c
