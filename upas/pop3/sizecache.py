"""pop3's sizes of messages it has read, by digest: `<mailbox>.pop3.imp`.

Loading a mailbox (servers.md 2.7) reads four upasfs files per message;
three of them (`rawheader`, `lines`, the stat of `raw`) only give what a
message's bytes determine, and its `digest` (SHA-1 of those bytes) names
them.  So the size and raw length found for a digest hold for every
mailbox and every later session: a session reads each `digest` and only a
message not in the file costs the other three reads.  Dovecot keeps sizes
in its index for the same reason.

The file lives beside the mailbox in /mail/box/USER, reached through the
name space, and ends in `.imp` (hidden from LIST like Plan 9's .imp).
It is append-only: a header line, then one record a line,
`DIGEST RAWLEN SIZE CHECK`, CHECK being the CRC-32 of the rest of the
line.  A record that fails its check (a torn tail, two writers at once) is
ignored, a file whose header is not ours is ignored and replaced; when
most records are of messages no longer in the mailbox the file is
rewritten crash-safely (tmp + fsync + rename).
"""
from __future__ import annotations

import binascii
import os

from upas import ns as nsmod

MAGIC = b"upas/pop3 sizes 1\n"
SUFFIX = ".pop3.imp"
MAXFILE = 64 << 20          # a larger file is not ours: ignored
SLACK = 1024                # records of gone messages tolerated before compaction


def cache_path(box: str, user: str) -> str | None:
    """Where the cache of mailbox `box` lives: only a mailbox of the user's
    own /mail/box/USER has one."""
    prefix = f"/mail/box/{user}/"
    if not box.startswith(prefix) or box.endswith("/"):
        return None
    return box + SUFFIX


def _record(digest: bytes, raw_len: int, size: int) -> bytes:
    line = b"%s %d %d" % (digest, raw_len, size)
    return b"%s %08x\n" % (line, binascii.crc32(line))


def _parse(data: bytes) -> dict[bytes, tuple[int, int]] | None:
    """The records of a file's bytes; None if it is not ours."""
    if not data.startswith(MAGIC):
        return None
    out: dict[bytes, tuple[int, int]] = {}
    for line in data[len(MAGIC):].split(b"\n"):
        body, _, check = line.rpartition(b" ")
        if len(check) != 8 or not body:
            continue
        try:
            if int(check, 16) != binascii.crc32(body):
                continue
            digest, raw_len, size = body.split(b" ")
            out[digest] = (int(raw_len), int(size))
        except ValueError:
            continue
    return out


class SizeCache:
    """The records of one mailbox's cache file, and those to add."""

    def __init__(self, ns: nsmod.Namespace, path: str):
        self.ns, self.path = ns, path
        self.entries: dict[bytes, tuple[int, int]] = {}
        self._new: list[bytes] = []
        self._valid = False         # the file is ours: append to it
        self._torn = False          # its last line lacks its newline
        self._load()

    def _load(self) -> None:
        try:
            if self.ns.stat(self.path).length > MAXFILE:
                return
            data = self.ns.read(self.path)
        except nsmod.Error:
            return
        got = _parse(data)
        if got is not None:
            self.entries, self._valid = got, True
            self._torn = not data.endswith(b"\n")

    def get(self, digest: bytes) -> tuple[int, int] | None:
        """(raw length, POP size) of the message with this digest."""
        return self.entries.get(digest)

    def add(self, digest: bytes, raw_len: int, size: int) -> None:
        if digest not in self.entries and b" " not in digest and b"\n" not in digest:
            self.entries[digest] = (raw_len, size)
            self._new.append(_record(digest, raw_len, size))

    def save(self, live: set[bytes]) -> None:
        """Write what was added; rewrite the file when it is not ours or
        holds many records of messages gone (`live`: the digests now in
        the mailbox).  Failures are ignored: the cache only saves reads."""
        try:
            real = self.ns.local_path(self.path)
        except nsmod.Error:
            return
        if real is None:            # a 9P-mounted store: no cache written
            return
        gone = len(self.entries) - len(live & self.entries.keys())
        try:
            if not self._valid or gone > max(SLACK, len(live)):
                self._rewrite(real, live)
            elif self._new:
                self._append(real)
        except OSError:
            pass
        self._new = []

    def _append(self, real: str) -> None:
        data = b"".join(self._new)
        if self._torn:
            data = b"\n" + data
        fd = os.open(real, os.O_WRONLY | os.O_APPEND)
        try:
            _write_all(fd, data)    # records: a torn one fails its check
        finally:
            os.close(fd)
        self._torn = False

    def _rewrite(self, real: str, live: set[bytes]) -> None:
        recs = [_record(d, *v) for d, v in self.entries.items() if d in live]
        tmp = real + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, MAGIC + b"".join(recs))
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, real)
        from upas.mail.mbox import fsync_dir
        fsync_dir(real)
        self._valid, self._torn = True, False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
