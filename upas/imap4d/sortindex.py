"""What SORT and THREAD compare, for every message of a mailbox, in one
file read at C speed: `<mailbox>.sort.imp`.

A message's Summary (summary.py) comes from its content alone, so it is
kept by digest.  It was a record per message in the digest cache
(fetchcache.py); reading that back meant parsing every record of the
cache (FETCH's answers too) and a JSON document per message: 0.2 s for
10,000 messages, where Dovecot answers a warm SORT from its index in
10 ms.  Here the Summaries are kept by column, the messages in the
mailbox's order: a warm `SORT (DATE)` of the whole mailbox compares the
mailbox's digests with the file's (one bytes comparison) and parses the
one column it sorts by (its CRC, one json.loads of a list).

    imap4d sort index 1 <code>\\n       code: a hash of the computing sources
    <count>\\n
    <digest><digest>...\\n              count digests, 40 hex each, in mailbox order
    <field> <crc32, 8 hex> <JSON list of count values>\\n   a line per Summary field

A column is checked (its CRC, its length) when first parsed: a file
whose header or layout does not check, or a column whose CRC does not,
is not used (a damaged digest only makes its message unknown).  Beside
the mailbox, ending in `.imp` so that LIST leaves it out (`.sort` is a
reserved mailbox suffix: names.py); mode 0600 (header fields of the
user's mail); replaced whole (tmp + fsync + rename) under the mail lock,
so a reader sees the old file or the new one.  Best effort: without it
the Summaries are computed from the messages as before.  Deleting it is
always safe; DELETE and RENAME take it along (folders.py).
"""
from __future__ import annotations

import json
import os
import zlib
from operator import attrgetter
from typing import TYPE_CHECKING

from upas import ns as nsmod
from upas.imap4d.msgview import Picked
from upas.mail import digestcache, safewrite

if TYPE_CHECKING:
    from upas.imap4d.mailbox import Message

SUFFIX = ".sort.imp"
MAGIC = b"imap4d sort index 1 "
MODE = 0o600
LOCK_WAIT = 0.5         # a cache is not worth a longer wait for L.mbox
# the sources whose code computes a Summary (upasfs's serve the files it reads)
_SOURCES = ("imap4d/summary.py", "imap4d/envelope.py", "imap4d/dates.py",
            "imap4d/search.py", "imap4d/thread.py", "mail/header.py", "mail/mbox.py",
            "fs9p/tree.py")
# hashed at import: once in a fork server, not in each session it forks
_HEADER = MAGIC + digestcache.code_hash(_SOURCES) + b"\n"
_DIGEST = attrgetter("digest")


def path_for(box: str) -> str:
    return box + SUFFIX


def header() -> bytes:
    return _HEADER


def joined(msgs: list["Message"]) -> bytes:
    """The messages' digests as the file lists them (a lazy view's from
    its column: msgview.Picked)."""
    if isinstance(msgs, Picked):
        return msgs.digests()
    return "".join(map(_DIGEST, msgs)).encode("ascii", "replace")


class Index:
    """One file's contents: its digests and, parsed when first asked, its
    columns."""

    def __init__(self, fields: tuple[str, ...], count: int, digests: bytes,
                 lines: dict[str, tuple[int, memoryview]]):
        self.fields, self.count, self.digests = fields, count, digests
        self._lines = lines
        self._cols: dict[str, list] = {}
        self._pos: dict[str, int] | None = None
        self._rows: list | None = None

    def column(self, name: str) -> list | None:
        """A field's values in file order (None: the line is bad)."""
        col = self._cols.get(name)
        if col is None:
            crc, text = self._lines[name]
            if zlib.crc32(text) != crc:
                return None
            try:
                col = json.loads(bytes(text))
            except ValueError:
                return None
            if not isinstance(col, list) or len(col) != self.count:
                return None
            self._cols[name] = col
        return col

    def answer(self, name: str) -> str | None:
        """A kept answer (add()), if the file has it and it checks."""
        got = self._lines.get(name)
        if got is None or name in self.fields or zlib.crc32(got[1]) != got[0]:
            return None
        try:
            v = json.loads(bytes(got[1]))
        except ValueError:
            return None
        return v if isinstance(v, str) else None

    def rows(self, make) -> list | None:
        """Every message's Summary, made by make(values) (kept)."""
        if self._rows is None:
            cols = [self.column(f) for f in self.fields]
            if any(c is None for c in cols):
                return None
            self._rows = list(map(make, zip(*cols)))
        return self._rows

    def position(self, digest: str) -> int | None:
        if self._pos is None:
            d = self.digests.decode("ascii")
            self._pos = {d[i:i + 40]: i // 40 for i in range(0, len(d), 40)}
        return self._pos.get(digest)


def parse(data: bytes, fields: tuple[str, ...]) -> Index | None:
    """The index in a file's bytes; None unless whole, ours and current
    (the columns' CRCs are checked when they are parsed)."""
    head = header()
    if not data.startswith(head) or not data.endswith(b"\n"):
        return None
    at = len(head)
    end = data.find(b"\n", at)
    try:
        count = int(data[at:end])
    except ValueError:
        return None
    at, end = end + 1, end + 1 + 40 * count
    if data.find(b"\n", at) != end:
        return None
    digests = data[at:end]
    view = memoryview(data)
    lines: dict[str, tuple[int, memoryview]] = {}
    names = []
    while end != len(data) - 1:
        at = end + 1
        end = data.find(b"\n", at)
        sp = data.find(b" ", at, end)
        sp2 = data.find(b" ", sp + 1, end) if sp >= 0 else -1
        if sp2 < 0:
            return None
        try:
            name, crc = data[at:sp].decode("ascii"), int(data[sp + 1:sp2], 16)
        except ValueError:
            return None
        names.append(name)
        lines[name] = (crc, view[sp2 + 1:end])
    if names[:len(fields)] != list(fields):
        return None
    return Index(fields, count, digests, lines)


def render(msgs: list["Message"], rows: list[tuple], fields: tuple[str, ...]) -> bytes:
    cols = list(zip(*rows)) if rows else [()] * len(fields)
    out = [header(), b"%d\n" % len(msgs), joined(msgs), b"\n"]
    for f, c in zip(fields, cols):
        text = json.dumps(list(c), ensure_ascii=True, separators=(",", ":")).encode()
        out.append(b"%s %08x %s\n" % (f.encode(), zlib.crc32(text), text))
    return b"".join(out)


# the file of each mailbox as this process last read it, by its stat
_OPEN: dict[str, tuple[object, Index | None]] = {}


def load(ns: nsmod.Namespace, box: str, fields: tuple[str, ...]) -> Index | None:
    """The mailbox's index, read again only if the file changed."""
    path = path_for(box)
    try:
        d = ns.stat(path)
    except nsmod.Error:
        _OPEN.pop(box, None)
        return None
    stamp = (d.qid, d.mtime, d.length)
    got = _OPEN.get(box)
    if got is not None and got[0] == stamp:
        return got[1]
    try:
        idx = parse(ns.read(path), fields)
    except (nsmod.Error, OSError):
        idx = None
    _OPEN.clear()                       # one mailbox's held at a time
    _OPEN[box] = (stamp, idx)
    return idx


def write(ns: nsmod.Namespace, box: str, msgs: list["Message"], rows: list[tuple],
          fields: tuple[str, ...]) -> None:
    """Replace the file with these messages' Summaries (summary.Summary,
    tuples of the fields) (best effort)."""
    data = render(msgs, rows, fields)
    try:
        with ns.lock(os.path.dirname(box), LOCK_WAIT):
            safewrite.replace(ns, path_for(box), data, MODE)
    except Exception:                   # noqa: BLE001 -- a busy lock, a full disk:
        return                          # the Summaries stand without it
    _OPEN.pop(box, None)


def add(ns: nsmod.Namespace, box: str, idx: Index, name: str, value: str) -> None:
    """Keep an answer computed from the whole of idx (a THREAD of every
    message it lists) as a line of its file, if the file is still the
    one idx was read from (best effort)."""
    line = json.dumps(value, ensure_ascii=True).encode()
    path = path_for(box)
    try:
        with ns.lock(os.path.dirname(box), LOCK_WAIT):
            data = ns.read(path)
            now = parse(data, idx.fields)
            if now is None or now.digests != idx.digests or name in now._lines:
                return
            safewrite.replace(ns, path, data + b"%s %08x %s\n" % (
                name.encode(), zlib.crc32(line), line), MODE)
    except Exception:                   # noqa: BLE001 -- computed again next time
        return
    _OPEN.pop(box, None)
