"""The POP view of a mailbox served by upasfs at /mail/fs/NAME.

Plan 9's readmbox (servers.md 2.7): the message directories in numeric
order; for each, `digest`, the line count of `rawheader`, `lines` and the
length of `raw`.  A message whose files cannot be read is skipped and takes
no POP number.  Size = len(raw) + header lines + 1 + body lines, the size
after LF -> CRLF.  Deletion is one `delete NAME N...` written to
/mail/fs/ctl (2.8).  Everything goes through the namespace.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

from upas import ns as nsmod
from upas.pop3.protocol import MailboxError, MessageInfo, atoi

FSROOT = "/mail/fs"
DIGEST_MAX = 63
SCAN_THREADS = 8   # 9P requests in flight while scanning a big mailbox
CHUNK = 64 * 1024


class FsMailbox:
    """Messages of /mail/fs/NAME with their POP sizes and digests."""

    def __init__(self, ns: nsmod.Namespace, name: str = "mbox"):
        self.ns = ns
        self.name = name
        self.dir = f"{FSROOT}/{name}"
        self._raw_len: dict[int, int] = {}
        self.messages: list[MessageInfo] = self._scan()

    def _scan(self) -> list[MessageInfo]:
        try:
            self.ns.stat(self.dir)
        except nsmod.Error as e:
            raise MailboxError(f"can't initialize upas/fs: {e}") from None
        try:
            entries = self.ns.readdir(self.dir)
        except nsmod.Error as e:
            raise MailboxError(f"cannot read from {self.dir}: {e}") from None
        nums = sorted(int(d.name) for d in entries if d.name.isdigit())
        # the small files of every message are read with their 9P requests
        # pipelined (ns.read_many); only the stats go out one by one
        digests = self._many(nums, "digest", DIGEST_MAX)
        headers = self._many(nums, "rawheader", CHUNK)
        lines = self._many(nums, "lines", 99)
        files = list(zip(nums, digests, headers, lines))
        if len(nums) < 2 * SCAN_THREADS:
            found = [self._message(*f) for f in files]
        else:
            with ThreadPoolExecutor(SCAN_THREADS) as pool:
                found = list(pool.map(lambda f: self._message(*f), files))
        return [m for m in found if m is not None]

    def _many(self, nums: list[int], name: str, count: int) -> list[bytes | None]:
        try:
            return self.ns.read_many([f"{self.dir}/{n}/{name}" for n in nums], count)
        except nsmod.Error:
            return [None] * len(nums)

    def _message(self, n: int, digest: bytes | None, header: bytes | None,
                 lines: bytes | None) -> MessageInfo | None:
        """One message as Plan 9 reads it, or None if any file fails."""
        d = f"{self.dir}/{n}"
        if digest is None or header is None or lines is None:
            return None
        try:
            if len(header) < CHUNK:
                header_lines = header.count(b"\n")
            else:                   # a header longer than one read
                header_lines = sum(c.count(b"\n") for c in self._chunks(f"{d}/rawheader"))
            body_lines = atoi(lines)
            raw_len = self.ns.stat(f"{d}/raw").length
        except (nsmod.Error, MailboxError):
            return None
        self._raw_len[n] = raw_len
        size = raw_len + header_lines + 1 + body_lines
        return MessageInfo(n, digest.decode("ascii", "replace"), size)

    def _chunks(self, path: str, length: int | None = None) -> Iterator[bytes]:
        try:
            f = self.ns.open(path, "r")
        except nsmod.Error as e:
            raise MailboxError(str(e)) from None
        return _chunks(f, length)

    def open_raw(self, fsnum: int) -> Iterator[bytes]:
        """Open `raw` now (errors surface before +OK); stream its chunks."""
        # a message's raw never changes in upasfs: once its stat length is
        # read, the read that would only find EOF is skipped.
        return self._chunks(f"{self.dir}/{fsnum}/raw", self._raw_len.get(fsnum))

    def delete(self, fsnums: Sequence[int]) -> None:
        cmd = " ".join(["delete", self.name, *map(str, fsnums)])
        try:
            self.ns.write(f"{FSROOT}/ctl", cmd.encode())
        except nsmod.Error as e:
            raise MailboxError(f"error deleting messages: {e}") from None


def _chunks(f, length: int | None = None) -> Iterator[bytes]:
    """Chunks of the open file until a read returns nothing, or `length`."""
    got = 0
    try:
        while length is None or got < length:
            try:
                data = f.read(CHUNK)
            except Exception as e:  # 9P errors (ninep.Error), hangups
                raise MailboxError(f"read error: {e}") from None
            if not data:
                return
            got += len(data)
            yield data
    finally:
        try:
            f.close()
        except Exception:
            pass

