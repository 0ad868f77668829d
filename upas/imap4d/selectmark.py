"""What lets a SELECT skip reading upasfs's listing: `<mailbox>.mark.imp`.

A SELECT needs every message's number and digest in upasfs (the digests
pair the messages with the `.imp`'s lines).  upasfs's `mark` (one line:
its instance, the view's object id, its version, the message count;
docs/decisions.md) read again unchanged proves the same upasfs lists the
same messages under the same numbers.  So a session that has read the
listing (upasfs's `summary`, which starts with the mark) writes down the
mark, the mailbox file's stat and the listing; a later SELECT that reads
the same mark and stats the same mailbox file takes the listing from
here and reads no file of a message.  Anything else (no file, another
mark, another stat, a file not whole) and SELECT reads the listing from
upasfs as before.

The file, beside the mailbox, ends in `.imp` so that LIST leaves it out
(`.mark` is a reserved mailbox suffix: names.py); mode 0600; replaced
whole (tmp + fsync + rename) under the mail lock, so a crash leaves the
old file or the new one, and a file cut short fails the count check:

    imap4d mark 1\\n
    <mark line>\\n
    <qid.path> <qid.vers> <length> of the mailbox file\\n
    <numbers as ranges: 1-9990 9992 9994-10001>\\n
    <digest>\\n                  one a message, in order
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from upas import ns as nsmod
from upas.mail import safewrite
from upas.imap4d import sequenceset
from upas.imap4d.msgview import ListLike

SUFFIX = ".mark.imp"
MAGIC = b"imap4d mark 1\n"


@dataclass(frozen=True)
class Listing:
    """upasfs's listing of a view, as proved by its mark."""
    mark: str
    boxkey: str                 # the mailbox file's stat (key())
    nums: list[int]
    digests: Sequence[str]      # a list, or Digests (read from a file)
    # the file, whose digest lines from column_at on imp.lines_of compares
    # with the .imp's column as they are; empty when not read from a file
    column: bytes = field(default=b"", compare=False, repr=False)
    column_at: int = field(default=0, compare=False, repr=False)


class Digests(ListLike, Sequence[str]):
    """A record's digest lines where they lie in its bytes: one decoded
    when asked for (a lazy view's message made: msgview.py), all of them
    at the first walk (a listing merged by upasfs's numbers).  A SELECT
    that takes the .imp's lines compares them as columns (imp.lines_of)
    and makes a few messages: 10,000 strings, and their ~200 fresh pages,
    were a tenth of a QRESYNC reconnect's SELECT."""
    __slots__ = ("data", "at", "n", "_all")

    def __init__(self, data: bytes, at: int, n: int) -> None:
        self.data, self.at, self.n = data, at, n
        self._all: list[str] | None = None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k):
        if isinstance(k, slice):
            return self.as_list()[k]
        at = self.at + 41 * range(self.n)[k]
        return self.data[at:at + 40].decode("ascii")

    def joined(self, lo: int, hi: int) -> bytes:
        """The digests of lines lo..hi joined with nothing between them
        (sortindex.joined), from the record's bytes, none decoded."""
        return self.data[self.at + 41 * lo:self.at + 41 * hi].replace(b"\n", b"")

    def as_list(self) -> list[str]:
        if self._all is None:
            self._all = str(memoryview(self.data)[self.at:], "ascii").split("\n")[:-1]
        return self._all


def path_for(box: str) -> str:
    return box + SUFFIX


def key(d: nsmod.Dir) -> str:
    """The mailbox file's stat as recorded: inode, a checksum of its
    mtime, ctime and size in ns (ns.py's qid.vers), and its length."""
    return f"{d.qid.path} {d.qid.vers} {d.length}"


def render(got: Listing) -> bytes:
    return b"".join([MAGIC, got.mark.encode("ascii"), b"\n", got.boxkey.encode("ascii"), b"\n",
                     _ranges(got.nums).encode("ascii"), b"\n",
                     "".join(d + "\n" for d in got.digests).encode("ascii")])


def parse(data: bytes | None) -> Listing | None:
    """The record in a file's bytes; None unless it is whole and ours.
    The digest lines are checked where they lie in `data` (a copy of a
    420 KB record is 100 fresh pages of a new session), and decoded when
    asked for (Digests)."""
    if not data or not data.startswith(MAGIC) or not data.endswith(b"\n"):
        return None
    try:
        at = len(MAGIC)
        ends = []
        for _ in range(3):
            ends.append(data.index(b"\n", at))
            at = ends[-1] + 1
        mark, boxkey, ranges = data[len(MAGIC):ends[2]].decode("ascii").split("\n")
        count = int(mark.split()[3])
        nums = _unranges(ranges)
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    # a digest a line, each 40 characters: checked whole, not line by line
    if count != len(nums) or len(data) - at != 41 * count or \
            data[at + 40::41] != b"\n" * count:
        return None
    if not data.isascii():              # (as the digests' decode would find)
        return None
    return Listing(mark, boxkey, nums, Digests(data, at, count), data, at)


def read(ns: nsmod.Namespace, box: str) -> tuple[bytes | None, Listing | None]:
    """The file's bytes and what they record (None, None: no file)."""
    try:
        data = ns.read(path_for(box))
    except nsmod.Error:
        return None, None
    return data, parse(data)


def write(ns: nsmod.Namespace, box: str, data: bytes) -> None:
    """Replace the file (the caller holds the mail lock).  Best effort: a
    later SELECT without it reads upasfs's listing."""
    try:
        safewrite.replace(ns, path_for(box), data)
    except (nsmod.Error, OSError):
        pass


def _ranges(nums: list[int]) -> str:
    return sequenceset.sequence_set(nums, " ", "-")


def _unranges(text: str) -> list[int]:
    out: list[int] = []
    for r in text.split():
        lo, _, hi = r.partition("-")
        a, b = int(lo), int(hi or lo)
        if b < a or (out and a <= out[-1]):
            raise ValueError(r)
        out.extend(range(a, b + 1))
    return out
