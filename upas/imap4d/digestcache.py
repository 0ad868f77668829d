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
bare addresses get in an ENVELOPE.  Records are appended (one write by a
session, without the mail lock); a torn or corrupt record ends the reading
of the file, and the next write rewrites it whole (tmp + fsync + rename,
under the mail lock) with only the records of messages still in the
mailbox.  A file not starting with our magic line is someone else's: it is
neither read nor written.  Mode 0600: it holds headers of the user's mail
(the mailbox itself is 0662).  The cache is best effort: when it cannot be
read or written the answers are computed as without it.
"""
from __future__ import annotations

import hashlib
import os
import re
import zlib
from pathlib import Path

from upas import ns as nsmod

MAGIC = b"upas imap4d digest cache 1 "
SUFFIX = ".idx.imp"
MODE = 0o600                # headers of the user's mail: the user's only
SLACK = 64 << 10            # bytes of dead records tolerated before a rewrite
_HEAD = 17                  # b"R" + 8 hex length + 8 hex crc
_DIGEST = re.compile(rb"[0-9a-f]{40}\Z")
_KEY = re.compile(rb"[A-Za-z0-9.:-]{1,40}\Z")
# the sources whose code computes the kept answers
_SOURCES = ("imap4d/envelope.py", "imap4d/fetch.py", "imap4d/search.py",
            "imap4d/digestcache.py", "mail/mime.py", "mail/header.py")
_CODE: list[bytes] = []


def code_version() -> bytes:
    """A hash of the sources the kept answers come from (computed once)."""
    if not _CODE:
        h = hashlib.sha1()
        root = Path(__file__).resolve().parents[1]
        for rel in _SOURCES:
            try:
                h.update((root / rel).read_bytes())
            except OSError:
                h.update(b"?" + rel.encode())
        _CODE.append(h.hexdigest()[:16].encode())
    return _CODE[0]


def header_line(site: str) -> bytes:
    name = site.encode("utf-8", "replace").replace(b"\n", b"?")
    return MAGIC + code_version() + b" " + name + b"\n"


def record(digest: str, key: str, value: bytes) -> bytes:
    payload = b"%s %s %s" % (digest.encode(), key.encode(), value)
    return b"R%08x%08x" % (len(payload), zlib.crc32(payload)) + payload + b"\n"


def parse(data: bytes, header: bytes) -> tuple[str, dict[str, dict[str, bytes]], bool]:
    """(state, entries, torn) of a file's bytes.  state: "ok" (ours, current),
    "stale" (ours, but another format, code or site: not read),
    "foreign" (not ours); torn: bytes after the last good record."""
    if not data.startswith(MAGIC):
        return "foreign", {}, False
    if not data.startswith(header):
        return "stale", {}, False
    out, torn = parse_records(data, len(header))
    return "ok", out, torn


def parse_records(data: bytes, pos: int) -> tuple[dict[str, dict[str, bytes]], bool]:
    """The records from pos on; True if a bad one ends them before the end."""
    out: dict[str, dict[str, bytes]] = {}
    end = len(data)
    while pos < end:
        if end - pos < _HEAD or data[pos] != 0x52:          # "R"
            break
        try:
            n, crc = int(data[pos + 1:pos + 9], 16), int(data[pos + 9:pos + 17], 16)
        except ValueError:
            break
        stop = pos + _HEAD + n
        if stop >= end or data[stop] != 0x0A:
            break
        payload = data[pos + _HEAD:stop]
        if zlib.crc32(payload) != crc:
            break
        parts = payload.split(b" ", 2)
        if len(parts) != 3 or not _DIGEST.match(parts[0]) or not _KEY.match(parts[1]):
            break
        out.setdefault(parts[0].decode(), {})[parts[1].decode()] = parts[2]
        pos = stop + 1
    return out, pos < end


class DigestCache:
    """The kept answers of one mailbox, as this session knows them."""

    def __init__(self, ns: nsmod.Namespace, boxpath: str, site: str):
        self.ns = ns
        self.path = boxpath + SUFFIX
        self.dir = os.path.dirname(boxpath)
        self.header = header_line(site)
        self.entries: dict[str, dict[str, bytes]] = {}
        self.pending: list[bytes] = []
        self.state = "absent"
        self.torn = False
        self.size = 0
        self.stamp = None

    # -- reading ---------------------------------------------------------
    def refresh(self) -> None:
        """Take in what other sessions added since we last read the file."""
        try:
            d = self.ns.stat(self.path)
        except nsmod.Error:
            self.stamp, self.state, self.size, self.torn = None, "absent", 0, False
            return
        stamp = (d.qid, d.mtime, d.length)
        if stamp == self.stamp:
            return
        if not (self.stamp and self._load_tail(stamp)):
            self._load(stamp)

    def _load_tail(self, stamp) -> bool:
        """Read only the records others appended since we read the file
        (the same file, grown, and all of it good so far)."""
        if self.state != "ok" or self.torn or stamp[0].path != self.stamp[0].path \
                or stamp[2] <= self.size:
            return False
        real = self.ns.local_path(self.path)
        if real is None:
            return False
        with open(real, "rb") as f:
            if f.read(len(self.header)) != self.header:
                return False
            f.seek(self.size)
            data = f.read()
        entries, self.torn = parse_records(data, 0)
        for d, kv in entries.items():
            self.entries.setdefault(d, {}).update(kv)
        self.size += len(data)
        self.stamp = stamp
        return True

    def _load(self, stamp) -> None:
        try:
            data = self.ns.read(self.path)
        except (nsmod.Error, OSError):
            self.state, self.stamp = "foreign", None      # unreadable: leave it be
            return
        self.state, entries, self.torn = parse(data, self.header)
        for d, kv in entries.items():
            self.entries.setdefault(d, {}).update(kv)
        self.size, self.stamp = len(data), stamp

    def get(self, digest: str, key: str) -> bytes | None:
        kv = self.entries.get(digest)
        return kv.get(key) if kv else None

    def put(self, digest: str, key: str, value: bytes) -> None:
        """Keep an answer (written by flush)."""
        if self.get(digest, key) == value or not _DIGEST.match(digest.encode()):
            return                      # known, or not a digest we can name
        self.entries.setdefault(digest, {})[key] = value
        if self.state != "foreign":
            self.pending.append(record(digest, key, value))

    # -- writing ---------------------------------------------------------
    def flush(self, live: set[str]) -> None:
        """Write what was added; rewrite the file if it is absent, of an old
        format, torn, or mostly records of messages no longer in `live`."""
        if not self.pending or self.state == "foreign":
            self.pending.clear()
            return
        try:
            if self.state == "ok" and not self.torn and not self._bloated(live) \
                    and self._append():
                return
            self._rewrite(live)
        except Exception:                       # noqa: BLE001 -- best effort:
            pass                                # the answers stand without it
        finally:
            self.pending.clear()

    def _bloated(self, live: set[str]) -> bool:
        kept = sum(len(k) + len(v) + 60 for d in live if d in self.entries
                   for k, v in self.entries[d].items())
        return self.size > 2 * kept + SLACK

    def _append(self) -> bool:
        """One O_APPEND write of the pending records, if the file is still
        ours; False if it must be rewritten instead."""
        real = self.ns.local_path(self.path)
        if real is None:
            return False
        fd = os.open(real, os.O_RDWR | os.O_APPEND)
        try:
            if os.pread(fd, len(self.header), 0) != self.header:
                return False
            data = memoryview(b"".join(self.pending))
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        self.size += sum(len(r) for r in self.pending)
        d = self.ns.stat(self.path)
        # nobody else wrote meanwhile: what we hold is the file
        self.stamp = (d.qid, d.mtime, d.length) if d.length == self.size else None
        return True

    def _rewrite(self, live: set[str]) -> None:
        from upas.imap4d import imp      # its crash-safe write
        with self.ns.lock(self.dir):
            self.stamp = None
            self.refresh()                      # others' records since
            if self.state == "foreign":
                return
            body = [record(d, k, v) for d in sorted(live) if d in self.entries
                    for k, v in sorted(self.entries[d].items())]
            data = self.header + b"".join(body)
            real = self.ns.local_path(self.path)
            if real is not None and os.path.lexists(real + ".tmp"):
                os.unlink(real + ".tmp")        # a crash's: its mode would stay
            imp.write_atomic(self.ns, self.path, data, MODE)
        self.entries = {d: kv for d, kv in self.entries.items() if d in live}
        self.state, self.torn, self.size, self.stamp = "ok", False, len(data), None


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
