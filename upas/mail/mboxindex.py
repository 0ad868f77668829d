"""upasfs's index of a Plan 9 mbox: `<mailbox>.upasfs.imp` beside it.

The equivalent of 9front upas/fs's `<mailbox>.idx` (idx.c): what upasfs
learnt by reading a mailbox, so that a new upasfs does not read and parse
an unchanged mailbox again (docs/decisions.md, "upasfs index").

    upasfs index 1 <code>\\n
    <dev> <ino> <size> <mtime_ns> <ctime_ns> <tail> <trusted> <count>\\n
    <count entry lines, <elen> bytes in all, SHA-1 <esha1>>
    <dbytes bytes of details, one after the other in entry order>
    <elen:16 digits> <dbytes:16 digits> <esha1>\\n

The first line names the format and the code that computed the contents
(a hash of the parser's sources): any other first line is not ours, or
stale, and the index is not used.  The second line is the mailbox file it
describes: its stat and the SHA-1 of its last 4 KiB, as mbox.py's change
detection keys a file.  An entry line per message, in file order:

    <digest> <start> <end> <fromlen> <ids> <flags> <hdrsize> <hdrlines> <bodysize> <lines> <crs> <dlen> <dcrc>

(where the message lies, how many object ids it takes, its flags without
`recent`, the sizes and line counts of its rawheader and rawbody and the
CRs in its raw), and its detail: the parsed message (header fields, type,
disposition, part tree with offsets relative to the message; JSON, with
its length and CRC-32 on the entry line; absent for a message not parsed
yet).  Everything but the second line is keyed by the message's digest
(the SHA-1 of all its bytes), so it cannot be stale for that content.

A new upasfs uses the index wholesale only if the mailbox file's key is
the second line's and that key was `trusted` when written (the file's
mtime and ctime older than the read by $UPASFS_INDEX_RACY seconds: a
write in place within the file system's timestamp tick of the read could
otherwise hide behind an unchanged stat -- git's "racily clean" rule).
Otherwise the file is read and hashed as without an index, each
message's entry found by its digest instead of parsing it.  The file is replaced whole (tmp, fsync,
rename, fsync of the directory) under L.mbox; a torn or corrupt one fails
its checks and is not used.  Mode 0600: it holds header fields of the
user's mail.  Deleting it is always safe.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from typing import Callable, Iterable

from upas import config
from upas.mail import digestcache, mime

MAGIC = b"upasfs index "
VERSION = b"1"
SUFFIX = ".upasfs.imp"
MODE = 0o600
_HEAD_MAX = 4096              # the two header lines are shorter than this
_TRAILER = 75                 # b"%016d %016d %s\n" % (elen, dbytes, SHA-1 hex)
_ROWS = 4096                  # entry lines made and written at a time
_SIZES = struct.Struct("<5Q")
_SOURCES = ("mail/mime.py", "mail/header.py", "mail/mbox.py", "mail/mboxindex.py")
_CODE: list[bytes] = []
# the Part slots a detail keeps (the rest is the buffer and serving state)
_NOT_KEPT = {"buf", "id", "name", "parts", "dbody", "opened", "_lens"}
FIELDS = tuple(s for s in mime.Part.__slots__ if s not in _NOT_KEPT)


def path_for(mailbox: str) -> str:
    return mailbox + SUFFIX


def code_version() -> bytes:
    """A hash of the sources whose code computes the contents."""
    if not _CODE:
        _CODE.append(digestcache.code_hash(_SOURCES))
    return _CODE[0]


def first_line() -> bytes:
    return MAGIC + VERSION + b" " + code_version() + b"\n"


# -- per message ------------------------------------------------------------

@dataclass(slots=True)
class Entry:
    """What the index says of one message."""
    digest: bytes
    start: int
    end: int
    fromlen: int
    nids: int
    flags: int
    sizes: bytes                             # see sizes()
    detail: int | None                       # a place (Details), 0: none kept


def sizes(data: bytes, fromlen: int) -> bytes:
    """(len(rawheader), its newlines, len(rawbody), lines, CRs in raw) of the
    stored message `data`, as upasfs's files have them, packed (a message
    keeps 40 bytes, not a tuple of five ints: see unpack_sizes)."""
    m = mime.parse_offsets(data, 0, len(data), 0)
    return _SIZES.pack(m.hend - m.header, data.count(b"\n", m.header, m.hend),
                       len(data) - m.body, data.count(b"\n", m.body), data.count(b"\r", fromlen))


def unpack_sizes(packed: bytes) -> tuple[int, int, int, int, int]:
    return _SIZES.unpack(packed)


class Unkept(Exception):
    """A part that a detail cannot describe (its bytes are not the message's)."""


def encode(part: mime.Part) -> bytes | None:
    """The detail of a parsed message, or None when it has a part whose
    bytes are not at offsets of the message (an encoded message/rfc822)."""
    try:
        return json.dumps(_encode(part, part.id, part.buf), separators=(",", ":"),
                          ensure_ascii=True).encode()
    except Unkept:
        return None


def _encode(p: mime.Part, top: int, buf) -> list:
    if p.buf is not buf or p.dbody is not None:
        raise Unkept
    vals = []
    for f in FIELDS:
        v = getattr(p, f)
        if isinstance(v, bytes):
            v = v.decode("latin-1")
        elif v is not None and not isinstance(v, int):
            raise Unkept
        vals.append(v)
    return [p.id - top, vals, [_encode(c, top, buf) for c in p.parts],
            buf.count(b"\n", p.body, p.bend)]


def decode(detail: bytes, buf, mid: int, name: str) -> mime.Part:
    """The message's parsed tree, its bytes to come from `buf` (ValueError
    if the detail is not one encode() made)."""
    try:
        return _decode(json.loads(detail), buf, mid, name)
    except (TypeError, IndexError, KeyError, AttributeError, RecursionError) as e:
        raise ValueError(f"bad index detail: {e}") from None


def _decode(node: list, buf, mid: int, name: str) -> mime.Part:
    rel, vals, kids, lines = node
    if len(vals) != len(FIELDS) or not isinstance(rel, int) or not isinstance(lines, int):
        raise ValueError("bad index detail")
    p = mime.Part(buf, mid + rel, name)
    for f, v in zip(FIELDS, vals):
        setattr(p, f, v.encode("latin-1") if isinstance(v, str) else v)
    p.parts = [_decode(k, buf, mid, str(i + 1)) for i, k in enumerate(kids)]
    if isinstance(buf, LazyBytes):
        buf.counts[(b"\n", p.body, p.bend)] = lines      # the `lines` file
    return p


class LazyBytes:
    """A message's bytes, read when first needed (an index's parsed tree
    serves its header fields and line counts without them).  Offers what
    mime.Part's files use of a buffer; its length, and the counts the
    detail recorded, are known without reading."""

    __slots__ = ("_n", "_load", "_data", "counts")

    def __init__(self, n: int, load: Callable[[], bytes]):
        self._n, self._load, self._data = n, load, None
        self.counts: dict[tuple, int] = {}

    def _get(self) -> bytes:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, k):
        return self._get()[k]

    def find(self, *a) -> int:
        return self._get().find(*a)

    def count(self, *a) -> int:
        n = self.counts.get(a)
        return self._get().count(*a) if n is None else n


# -- where details are ----------------------------------------------------

INDEX, SPILL = 0, 1         # the index file, the spill file (Details)
_MAXDETAIL = 1 << 24


def place(kind: int, off: int, n: int, crc: int) -> int:
    """A detail's place as one int (a message keeps one)."""
    return ((((off << 24) | n) << 32 | crc) << 1) | kind


def unplace(p: int) -> tuple[int, int, int, int]:
    """(kind, offset, length, crc) of a place."""
    crc = (p >> 1) & 0xFFFFFFFF
    rest = p >> 33
    return p & 1, rest >> 24, rest & (_MAXDETAIL - 1), crc


class Details:
    """The files a mailbox's details are read from: its index as last
    read or written, and a spill file holding those parsed since (an
    unnamed temporary file, 0600), so that upasfs keeps one int per
    message in memory, not its tree."""

    def __init__(self) -> None:
        self.index_fd: int | None = None
        self._spill = None
        self._spill_size = 0

    def keep(self, d: bytes) -> int:
        """The place of a new detail (0: too large to keep)."""
        if not d or len(d) >= _MAXDETAIL:
            return 0
        if self._spill is None:
            self._spill = tempfile.TemporaryFile()
        off = self._spill_size
        os.pwrite(self._spill.fileno(), d, off)
        self._spill_size += len(d)
        return place(SPILL, off, len(d), zlib.crc32(d))

    def raw(self, p: int) -> bytes:
        """The bytes at a place, as they are (zeros where a file ends)."""
        kind, off, n, _ = unplace(p)
        fd = self.index_fd if kind == INDEX else self._spill and self._spill.fileno()
        try:
            got = os.pread(fd, n, off) if fd is not None else b""
        except OSError:
            got = b""
        return got + bytes(n - len(got))

    def read(self, p: int) -> bytes | None:
        """The detail at a place, if it is whole."""
        d = self.raw(p)
        return d if zlib.crc32(d) == unplace(p)[3] else None

    def use_index(self, fd: int, spilled: bool = False) -> None:
        """Details are now in the index file fd (and the spilled ones
        copied there, if `spilled`)."""
        if self.index_fd is not None:
            os.close(self.index_fd)
        self.index_fd = fd
        if spilled and self._spill is not None:
            self._spill.truncate(0)
            self._spill_size = 0

    def close(self) -> None:
        if self.index_fd is not None:
            os.close(self.index_fd)
            self.index_fd = None
        if self._spill is not None:
            self._spill.close()
            self._spill, self._spill_size = None, 0


# -- the file ---------------------------------------------------------------

@dataclass
class Loaded:
    """An index read from disk: its key, entries and the open file their
    details are read from."""
    key: tuple
    trusted: bool
    entries: list[Entry]
    fd: int

    def by_digest(self) -> dict[bytes, Entry]:
        return {e.digest: e for e in self.entries}


def load(path: str) -> Loaded | None:
    """The index at path, if it is ours, current and whole; else None."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        got = _load(fd)
    except (ValueError, OSError):
        got = None
    if got is None:
        os.close(fd)
    return got


def _load(fd: int) -> Loaded | None:
    head = os.pread(fd, _HEAD_MAX, 0)
    first = first_line()
    if not head.startswith(first):
        return None
    nl = head.find(b"\n", len(first))
    if nl < 0:
        return None
    f = head[len(first):nl].split(b" ")
    if len(f) != 8:
        return None
    key = (int(f[0]), int(f[1]), int(f[2]), int(f[3]), int(f[4]),
           b"" if f[5] == b"-" else bytes.fromhex(f[5].decode()))
    trusted, count = f[6] == b"1", int(f[7])
    hlen = nl + 1
    size = os.fstat(fd).st_size
    t = os.pread(fd, _TRAILER, size - _TRAILER).split(b" ") if size >= _TRAILER else []
    if len(t) != 3 or len(t[2]) != 41 or not t[2].endswith(b"\n"):
        return None                                 # torn
    elen, dbytes = int(t[0]), int(t[1])
    if hlen + elen + dbytes + _TRAILER != size:
        return None
    lines = os.pread(fd, elen, hlen)
    if len(lines) != elen or hashlib.sha1(lines).hexdigest().encode() != t[2][:40]:
        return None
    entries = _entries(lines, count, hlen + elen, dbytes)
    return None if entries is None else Loaded(key, trusted, entries, fd)


def _entries(lines: bytes, count: int, doff: int, dbytes: int) -> list[Entry] | None:
    rows = lines.split(b"\n")
    if rows.pop() != b"" or len(rows) != count:
        return None
    out = []
    off = doff
    for r in rows:
        f = r.split(b" ")
        if len(f) != 13 or len(f[0]) != 40:
            return None
        n = [int(x) for x in f[1:]]
        dlen = n[10]
        detail = place(INDEX, off, dlen, n[11]) if 0 < dlen < _MAXDETAIL else None
        off += dlen
        out.append(Entry(f[0], n[0], n[1], n[2], n[3], n[4], _SIZES.pack(*n[5:10]), detail))
    return out if off == doff + dbytes else None


def foreign(path: str) -> bool:
    """Is there a file at path that is not an index of ours (of any
    version)?  It is left alone: it may be some mailbox's shadow file."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC))
        return not MAGIC.startswith(head)       # an empty or cut one is ours
    except FileNotFoundError:
        return False
    except OSError:
        return True


def is_trusted(key: tuple, read_ns: int) -> bool:
    """Was the file read at read_ns long enough after its last change that
    a later write must show in its stat?  (A file changed this recently
    may change again unseen: timestamp ticks of the file systems we know
    are finer than $UPASFS_INDEX_RACY.)"""
    racy_ns = config.current().upasfs_index_racy * 1e9
    return read_ns - max(key[3], key[4]) >= racy_ns


def write(path: str, key: tuple, trusted: bool, entries: list[Entry],
          details: Details) -> tuple[int, list[int | None]]:
    """Replace the index at path crash-safely (the caller holds L.mbox),
    the entries' details copied from their places (one that fails its
    CRC is copied as read, and fails it again when used).  Written as it
    is made (a 100,000-message index is not held in memory).  Returns
    the new file, open, and each entry's detail's place in it."""
    tail = key[5].hex() if key[5] else "-"
    head = first_line() + b"%d %d %d %d %d %s %d %d\n" % (
        key[:5] + (tail.encode(), trusted, len(entries)))
    h = hashlib.sha1()
    elen = [0]

    def chunks() -> Iterable[bytes]:
        yield head
        dbytes = 0
        for i in range(0, len(entries), _ROWS):
            rows = []
            for e in entries[i:i + _ROWS]:
                dlen, crc = unplace(e.detail)[2:] if e.detail else (0, 0)
                rows.append(b"%s %d %d %d %d %d %d %d %d %d %d %d %d\n" % (
                    (e.digest, e.start, e.end, e.fromlen, e.nids, e.flags)
                    + _SIZES.unpack(e.sizes) + (dlen, crc)))
                dbytes += dlen
            block = b"".join(rows)
            h.update(block)
            elen[0] += len(block)
            yield block
        for e in entries:
            if e.detail:
                yield details.raw(e.detail)
        yield b"%016d %016d %s\n" % (elen[0], dbytes, h.hexdigest().encode())

    fd = _replace(path, chunks())
    off, out = len(head) + elen[0], []
    for e in entries:
        _, _, n, crc = unplace(e.detail) if e.detail else (0, 0, 0, 0)
        out.append(place(INDEX, off, n, crc) if n else None)
        off += n
    return fd, out


def _replace(path: str, chunks: Iterable[bytes]) -> int:
    """tmp + fsync + rename + directory fsync; the new file stays open."""
    tmp = path + ".tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, MODE)
    try:
        os.fchmod(fd, MODE)
        for c in chunks:
            view = memoryview(c)
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
        os.rename(tmp, path)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return fd
