"""The POP view of a mailbox served by upasfs at /mail/fs/NAME (an FsView).

Plan 9's readmbox (docs/spec/servers.md §2.7): the message directories in numeric
order; for each, `digest`, the line count of `rawheader`, `lines` and the
length of `raw`.  A message whose files cannot be read is skipped and takes
no POP number.  Size = len(raw) + header lines + 1 + body lines, the size
after LF -> CRLF.  Deletion is `delete NAME N...` written to /mail/fs/ctl
(2.8).  Everything goes through the view (upas/mail/fsview.py).

Cost is the number of 9P requests.  Our upasfs gives every message's
number, digest and those sizes in one read of the view's `summary`
(docs/decisions.md), which is what a login reads.  From a upasfs without
one (plan9port's) Plan 9's reads are made: the digests, then the two small
files of each message together (ns.read_many), message after message, so
that upasfs parses each message once, and the stats of `raw` pipelined
(ns.stat_many).
RETR reads a message of up to ONE_READ bytes with its walk, open, read and
clunk pipelined, and when the client goes through the messages in order,
the small ones after it in the same round trip; while the client reads a
reply, the next batch is asked for (prefetch, called by the driver before
it waits), so upasfs reads it meanwhile.  A larger message is streamed in
bounded memory.  A copy read ahead is used for
POP3_READAHEAD_TTL seconds (default 1): within that time a RETR is
answered as if it had come when the copy was read.
"""
from __future__ import annotations

import time
from typing import Callable, Iterator, Sequence

from upas import config
from upas import ns as nsmod
from upas.mail.fsview import CHUNK, FsView, Summary
from upas.pop3.protocol import MailboxError, MessageInfo, atoi

DIGEST_MAX = 63
SCAN_BATCH = 512   # messages whose small files one read_many call reads
ONE_READ = 1 << 20        # RETR reads a message up to this size at once
AHEAD_MAX = 32            # messages read ahead for an in-order download,
AHEAD_ONE = CHUNK         # each at most this long,
AHEAD_BYTES = 512 * 1024  # all together at most this;
LOW_WATER = 8             # the batch in flight is taken in when fewer are in hand


class FsMailbox:
    """Messages of /mail/fs/NAME with their POP sizes and digests."""

    def __init__(self, view: FsView):
        self.view = view
        self._raw_len: dict[int, int] = {}
        # raw read ahead, by fsnum: (bytes, when read)
        self._ahead: dict[int, tuple[bytes, float]] = {}
        self._pending: tuple[list[int], Callable[[], list], float] | None = None
        self._next = -1                       # the fsnum after the last RETR
        self.messages: list[MessageInfo] = self._scan()
        self._index = {m.fsnum: i for i, m in enumerate(self.messages)}

    def _scan(self) -> list[MessageInfo]:
        view = self.view
        try:
            view.stat()
        except nsmod.Error as e:
            raise MailboxError(f"can't initialize upas/fs: {e}") from None
        summary = view.summary()
        if summary is not None:
            return self._summarized(summary)
        try:
            nums = view.numbers()
        except nsmod.Error as e:
            raise MailboxError(f"cannot read from {view.dir}: {e}") from None
        # one pipelined run, read as the other small files are
        digests = [d.decode("ascii", "replace") if d is not None else ""
                   for d in self._small_files(nums, ("digest",))]
        found: list[MessageInfo] = []
        for i in range(0, len(nums), SCAN_BATCH):
            found += self._scan_batch(nums[i:i + SCAN_BATCH], digests[i:i + SCAN_BATCH])
        return found

    def _summarized(self, summary: Summary) -> list[MessageInfo]:
        """The messages as the view's summary gives them."""
        out = []
        for n, d, (raw_len, size) in zip(summary.nums, summary.digests, summary.pop_sizes()):
            self._raw_len[n] = raw_len
            out.append(MessageInfo(n, d[:DIGEST_MAX], size))
        return out

    def _scan_batch(self, nums: list[int], digests: list[str]) -> list[MessageInfo]:
        """The messages of nums that can be read, in order, given their
        digests: their rawheader, lines and the length of raw are read."""
        todo = [(n, d) for n, d in zip(nums, digests) if d]
        files = self._small_files([n for n, _ in todo], ("rawheader", "lines"))
        sizes = self._raw_lengths([n for n, _ in todo])
        out = []
        for j, (n, d) in enumerate(todo):
            m = self._message(n, d, files[2 * j], files[2 * j + 1], next(sizes))
            if m is not None:
                out.append(m)
        return out

    def _small_files(self, nums: list[int], names: tuple[str, ...]) -> list[bytes | None]:
        """The named files of each message, message by message."""
        if not nums:
            return []
        files = [(n, f) for n in nums for f in names]
        try:
            return self.view.read_many(files, CHUNK)
        except nsmod.Error:
            return [None] * len(files)

    def _raw_lengths(self, nums: list[int]) -> Iterator[int | None]:
        """The length of each message's raw (None: no stat), in order."""
        if not nums:
            return iter(())
        try:
            dirs = self.view.stat_many([(n, "raw") for n in nums])
        except nsmod.Error:
            dirs = [None] * len(nums)
        return iter([None if d is None else d.length for d in dirs])

    def _message(self, n: int, digest: str, header: bytes | None,
                 lines: bytes | None, raw_len: int | None) -> MessageInfo | None:
        """One message as Plan 9 reads it, or None if any file fails."""
        if header is None or lines is None or raw_len is None:
            return None
        try:
            if len(header) < CHUNK:
                header_lines = header.count(b"\n")
            else:                   # a header longer than one read
                header_lines = sum(c.count(b"\n") for c in self._chunks(n, "rawheader"))
        except MailboxError:
            return None
        self._raw_len[n] = raw_len
        size = raw_len + header_lines + 1 + atoi(lines)
        return MessageInfo(n, digest[:DIGEST_MAX], size)

    def _chunks(self, n: int, rel: str, length: int | None = None,
                offset: int = 0) -> Iterator[bytes]:
        try:
            chunks = self.view.chunks(n, rel, length, offset)
        except nsmod.Error as e:
            raise MailboxError(str(e)) from None
        return _read_errors(chunks)

    def open_raw(self, fsnum: int) -> Iterator[bytes] | list[bytes]:
        """Open `raw` now (errors surface before +OK); its chunks."""
        # a message's raw never changes in upasfs: once its stat length is
        # read, the read that would only find EOF is skipped.
        length = self._raw_len.get(fsnum)
        if length is None or length > ONE_READ:
            return self._chunks(fsnum, "raw", length)
        data = self._take(fsnum)
        if data is None:
            data = self._read_ahead(fsnum)
        self._next = self._following(fsnum)
        if data is None:
            raise MailboxError("message disappeared")
        if len(data) < length:      # the mount reads less at a time
            return _prepend(data, self._chunks(fsnum, "raw", length - len(data), len(data)))
        if len(data) >= ONE_READ:   # a whole read: maybe not all of it
            return _prepend(data, self._chunks(fsnum, "raw", None, len(data)))
        return [data]

    def prefetch(self) -> None:
        """While the client reads a reply: when it goes through the messages
        in order, ask upasfs now for the next messages not yet read ahead,
        so that it reads them meanwhile (taken in by a later prefetch, or
        by a RETR that needs one first)."""
        if self._next < 0:
            return
        if self._pending is not None:
            # taken in here, while the client reads, once few messages are
            # left in hand (upasfs answered the batch RETRs ago, so nothing
            # is waited for), not by the RETR that needs the first of them
            if self._in_hand(LOW_WATER) >= LOW_WATER:
                return
            try:
                self._collect()
            except MailboxError:
                return              # the RETR that needs them will say
        start, have = self._next, 0
        while start in self._ahead and have <= AHEAD_MAX:
            start, have = self._following(start), have + 1
        if start < 0 or have > AHEAD_MAX or self._raw_len[start] > ONE_READ:
            return
        nums = self._batch(start)
        try:
            finish = self.view.read_many_begin(_raw(nums), max(ONE_READ, AHEAD_ONE))
        except nsmod.Error:
            return                  # the RETR that needs them will say
        self._pending = (nums, finish, time.monotonic())

    def _in_hand(self, most: int) -> int:
        """How many messages from the next one on are read ahead (at most `most`)."""
        n, have = self._next, 0
        while n >= 0 and n in self._ahead and have < most:
            n, have = self._following(n), have + 1
        return have

    def peek_next(self) -> bytes | None:
        """The raw open_raw gives for the message after the last RETR if
        it is read ahead and in hand now (nothing is waited for), as the
        same bytes object (Session.idle stuffs it ahead)."""
        got = self._ahead.get(self._next)
        if got is None or len(got[0]) != self._raw_len.get(self._next) or \
                time.monotonic() - got[1] > config.current().pop3_readahead_ttl:
            return None
        return got[0]

    def _take(self, fsnum: int) -> bytes | None:
        """fsnum's raw if it was read ahead less than $POP3_READAHEAD_TTL s ago."""
        if self._pending is not None and (fsnum in self._pending[0] or fsnum not in self._ahead):
            self._collect()
        got = self._ahead.pop(fsnum, None)
        if got is None or time.monotonic() - got[1] > config.current().pop3_readahead_ttl:
            return None
        return got[0]

    def _collect(self) -> None:
        """The replies to the prefetch; copies older than $POP3_READAHEAD_TTL go."""
        nums, finish, at = self._pending
        self._pending = None
        try:
            got = finish()
        except nsmod.Error as e:
            raise MailboxError(str(e)) from None
        now, ttl = time.monotonic(), config.current().pop3_readahead_ttl
        self._ahead = {n: v for n, v in self._ahead.items() if now - v[1] <= ttl}
        self._ahead.update((n, (d, at)) for n, d in zip(nums, got) if d is not None)

    def _read_ahead(self, fsnum: int) -> bytes | None:
        """raw of fsnum by one pipelined read; when the client goes through
        the messages in order (this one follows the last RETR), the small
        messages after it come in the same round trip, for the next RETRs.
        (raw never changes in upasfs; a copy is kept for $POP3_READAHEAD_TTL seconds.)"""
        nums = self._batch(fsnum) if fsnum == self._next else [fsnum]
        try:
            got = self.view.read_many(_raw(nums), max(ONE_READ, AHEAD_ONE))
        except nsmod.Error as e:
            raise MailboxError(str(e)) from None
        at = time.monotonic()
        self._ahead = {n: (d, at) for n, d in zip(nums[1:], got[1:]) if d is not None}
        return got[0]

    def _batch(self, fsnum: int) -> list[int]:
        """fsnum and the small messages after it not marked deleted, up
        to AHEAD_MAX of them and AHEAD_BYTES in all."""
        nums, total = [fsnum], self._raw_len[fsnum]
        for m in self._after(fsnum):
            length = self._raw_len[m.fsnum]
            if len(nums) > AHEAD_MAX or length > AHEAD_ONE or total + length > AHEAD_BYTES:
                break
            if not m.deleted:
                nums.append(m.fsnum)
                total += length
        return nums

    def _following(self, fsnum: int) -> int:
        """The fsnum of the next message not marked deleted, or -1 (by
        index, no generator: the read-ahead asks this several times a RETR)."""
        msgs = self.messages
        for i in range(self._index.get(fsnum, len(msgs)) + 1, len(msgs)):
            m = msgs[i]
            if not m.deleted:
                return m.fsnum
        return -1

    def _after(self, fsnum: int) -> Iterator[MessageInfo]:
        """The messages after fsnum (by index: no copy of the list)."""
        msgs = self.messages
        for i in range(self._index.get(fsnum, len(msgs)) + 1, len(msgs)):
            yield msgs[i]

    def delete(self, fsnums: Sequence[int]) -> None:
        try:
            self.view.delete(list(fsnums))
        except nsmod.Error as e:
            raise MailboxError(f"error deleting messages: {e}") from None


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _raw(nums: list[int]) -> list[tuple[int, str]]:
    return [(n, "raw") for n in nums]


def _read_errors(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks, a failed read (9P errors, hangups) as MailboxError."""
    try:
        yield from chunks
    except Exception as e:  # noqa: BLE001 -- ninep.Error and others
        raise MailboxError(f"read error: {e}") from None
