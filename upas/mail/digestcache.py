"""A digest cache: what a server derives from messages, kept by digest
in a file beside the mailbox, `<mailbox>.<server>.imp`.

upasfs names each message's content by its SHA-1 `digest` (which covers
every byte of the message, its From line included).  Whatever a server
derives from the content alone is therefore the same for every message
with that digest, in every session, for ever: it can be kept and reused
without reading the message again, and can never be stale.  imap4d keeps
its FETCH and SEARCH answers in one (imap4d/fetchcache.py); pop3 kept
its sizes in one until upasfs's `summary` gave them in one read (issue
16); Dovecot's dovecot.index.cache is the model.
The file's name ends in `.imp`, which LIST hides, and names.py reserves
`.<server>` as a mailbox suffix, so it is no mailbox's shadow file.

    <header>\\n                                                   the owner's
    R<len:8 hex><crc32:8 hex><digest:40> <key> <value>\\n         one a record

The header starts with the owner's magic; the rest of it says what the
records depend on (a format version, the code that computed them): a
file with another header is "stale" and replaced, one without the magic
is "foreign" and neither read nor written.  Records are appended (one
write by a session, without the mail lock); a torn or corrupt record ends
the reading of the file, and the next write rewrites it whole (tmp +
fsync + rename, under the mail lock) with only the records of messages
still in the mailbox.  The file is best effort: when it cannot be read or
written, the owner computes its answers as without it.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
import zlib
from pathlib import Path

from upas import ns as nsmod
from upas.mail import safewrite

SLACK = 64 << 10            # bytes of dead records tolerated before a rewrite
LOCK_WAIT = 0.5             # seconds a rewrite waits for the mail lock
TORN_RECHECK = 0.01         # seconds before a torn-looking file is read again
_HEAD = 17                  # b"R" + 8 hex length + 8 hex crc
_DIGEST = re.compile(rb"[0-9a-f]{40}\Z")
_KEY = re.compile(rb"[A-Za-z0-9.:-]{1,40}\Z")


def code_hash(sources: tuple[str, ...]) -> bytes:
    """16 hex digits of a hash of the sources (paths under upas/) whose code
    computed a file's contents: another version of them, another hash."""
    h = hashlib.sha1()
    root = Path(__file__).resolve().parents[1]
    for rel in sources:
        try:
            h.update((root / rel).read_bytes())
        except OSError:
            h.update(b"?" + rel.encode())
    return h.hexdigest()[:16].encode()


def record(digest: str, key: str, value: bytes) -> bytes:
    payload = b"%s %s %s" % (digest.encode(), key.encode(), value)
    return b"R%08x%08x" % (len(payload), zlib.crc32(payload)) + payload + b"\n"


def parse(data: bytes, magic: bytes, header: bytes
          ) -> tuple[str, dict[str, dict[str, bytes]], bool]:
    """(state, entries, torn) of a file's bytes.  state: "ok" (ours, current),
    "stale" (ours, but another header: not read), "foreign" (not ours);
    torn: bytes after the last good record."""
    if not data.startswith(magic):
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


def is_digest(digest: str) -> bool:
    return bool(_DIGEST.match(digest.encode()))


# those that keep one, or kept one (pop3: a file left from it still goes
# with its mailbox: folders.py)
SERVERS = ("imap4d", "pop3")


def path_for(boxpath: str, server: str) -> str:
    """Where `server` keeps the digest cache of the mailbox at boxpath."""
    return f"{boxpath}.{server}.imp"


class DigestCache:
    """One such file, as this session knows it."""

    def __init__(self, ns: nsmod.Namespace, path: str, magic: bytes, header: bytes,
                 mode: int = 0o600):
        assert header.startswith(magic) and header.endswith(b"\n")
        self.ns, self.path, self.dir = ns, path, os.path.dirname(path)
        self.magic, self.header, self.mode = magic, header, mode
        self.entries: dict[str, dict[str, bytes]] = {}
        self.pending: list[bytes] = []
        self.state = "absent"
        self.torn = False
        self.size = 0
        self.stamp = None

    # -- reading ---------------------------------------------------------
    def refresh(self, retried: bool = False) -> None:
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
        if self.torn and not retried:
            # maybe another session's append caught half-written (a write
            # to a file is not atomic for readers): look once more before
            # the next flush takes the file for torn and rewrites it
            time.sleep(TORN_RECHECK)
            self.stamp = None
            self.refresh(retried=True)

    def _load_tail(self, stamp) -> bool:
        """Read only the records others appended since we read the file
        (the same file, grown, and all of it good so far)."""
        if self.state != "ok" or self.torn or stamp[0].path != self.stamp[0].path \
                or stamp[2] <= self.size:
            return False
        try:
            with self.ns.open(self.path, "r") as f:
                if f.read(len(self.header)) != self.header:
                    return False
                f.seek(self.size)
                data = f.read()
        except (nsmod.Error, OSError):
            return False
        entries, self.torn = parse_records(data, 0)
        self._take(entries)
        self.size += len(data)
        self.stamp = stamp
        return True

    def _load(self, stamp) -> None:
        try:
            data = self.ns.read(self.path)
        except (nsmod.Error, OSError):
            self.state, self.stamp = "foreign", None      # unreadable: leave it be
            return
        self.state, entries, self.torn = parse(data, self.magic, self.header)
        self._take(entries)
        self.size, self.stamp = len(data), stamp

    def _take(self, entries: dict[str, dict[str, bytes]]) -> None:
        for d, kv in entries.items():
            self.entries.setdefault(d, {}).update(kv)

    def get(self, digest: str, key: str) -> bytes | None:
        kv = self.entries.get(digest)
        return kv.get(key) if kv else None

    def put(self, digest: str, key: str, value: bytes) -> None:
        """Keep a value (written by flush)."""
        if self.get(digest, key) == value or not is_digest(digest):
            return                      # known, or not a digest we can name
        self.entries.setdefault(digest, {})[key] = value
        if self.state != "foreign":
            self.pending.append(record(digest, key, value))

    # -- writing ---------------------------------------------------------
    def flush(self, live: set[str]) -> None:
        """Write what was added; rewrite the file if it is absent, stale,
        torn, or mostly records of messages no longer in `live`."""
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
        """One write of the pending records at the end of the file, if it
        still begins with our header; False if it must be rewritten."""
        d = self.ns.append(self.path, b"".join(self.pending), prefix=self.header)
        if d is None:
            return False
        self.size += sum(len(r) for r in self.pending)
        # nobody else wrote meanwhile: what we hold is the file
        self.stamp = (d.qid, d.mtime, d.length) if d.length == self.size else None
        return True

    def _rewrite(self, live: set[str]) -> None:
        # a cache is not worth a wait: a busy L.mbox (a delivery, a mailbox
        # rewrite) leaves the file as it is until a later flush
        with self.ns.lock(self.dir, LOCK_WAIT):
            self.stamp = None
            self.refresh()                      # others' records since
            if self.state == "foreign":
                return
            body = [record(d, k, v) for d in sorted(live) if d in self.entries
                    for k, v in sorted(self.entries[d].items())]
            data = self.header + b"".join(body)
            safewrite.replace(self.ns, self.path, data, self.mode)
        self.entries = {d: kv for d, kv in self.entries.items() if d in live}
        self.state, self.torn, self.size, self.stamp = "ok", False, len(data), None
