"""An open 9P file (plan9port's CFid): a file-like object on one fid.

read(n) issues one Tread when n <= iounit (as factotum's rpc file needs),
read() reads to EOF with Treads pipelined, write() sends iounit-sized
Twrites, readline() reads whole iounits ahead.  Closing clunks the fid --
a read-only one without a round trip of its own (Client.clunk_later).
"""
from __future__ import annotations

import io
import os
from typing import Any, Iterator

from . import codec
from .codec import OREAD, ORDWR, OWRITE, Qid, Stat
from .server import Error


class File(io.RawIOBase):
    """An open 9P fid. read(n) issues one Tread when n <= iounit;
    read() reads to EOF; write() sends iounit-sized Twrites."""

    def __init__(self, client: Any, fid: int, qid: Qid, iounit: int,   # client: a Client
                 mode: int):
        super().__init__()
        self.client, self.fid, self.qid = client, fid, qid
        self.iounit = min(iounit, client.iounit)
        self.mode = mode
        self.offset = 0
        self._rbuf, self._rpos, self._rbuf_off = b"", 0, -1   # readline

    def readable(self) -> bool:
        return self.mode & 3 in (OREAD, ORDWR, 3)

    def writable(self) -> bool:
        return self.mode & 3 in (OWRITE, ORDWR)

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self._check()
        if n is None or n < 0:
            data = self.client.readall(self.fid, self.offset, self.iounit)
            self.offset += len(data)
            return data
        out: list[bytes] = []
        while n > 0:
            data = self.client.tread(self.fid, self.offset, min(n, self.iounit))
            self.offset += len(data)
            out.append(data)
            n -= len(data)
            if len(data) < self.iounit:   # one Tread unless it came back full
                break
        return b"".join(out)

    readall = read

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def write(self, data: Any) -> int:
        self._check()
        self._rbuf_off = -1
        view = memoryview(bytes(data))
        total = 0
        while True:
            chunk = view[total:total + self.iounit]
            n = self.client.twrite(self.fid, self.offset, bytes(chunk))
            self.offset += n
            total += n
            if n < len(chunk):
                raise Error("short write")
            if total >= len(view):
                return total

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self.offset = offset
        elif whence == os.SEEK_CUR:
            self.offset += offset
        elif whence == os.SEEK_END:
            self.offset = self.stat().length + offset
        else:
            raise ValueError("bad whence")
        return self.offset

    def tell(self) -> int:
        return self.offset

    def stat(self) -> Stat:
        self._check()
        return self.client.rpc(codec.Tstat(0, self.fid)).stat

    def readdir(self) -> list[Stat]:
        """All entries of an open directory (read from offset 0)."""
        self.offset = 0
        out: list[Stat] = []
        while True:
            data = self.client.tread(self.fid, self.offset, self.iounit)
            if not data:
                return out
            self.offset += len(data)
            out.extend(Stat.unpack_many(data))

    def readline(self, size: int | None = -1) -> bytes:
        """One line. Reads whole iounits ahead; the buffer is used only
        while the offset is where it left it (seek/write drop it)."""
        self._check()
        limit = -1 if size is None else size
        out: list[bytes] = []
        got = 0
        while limit < 0 or got < limit:
            if self._rbuf_off != self.offset or self._rpos >= len(self._rbuf):
                self._rbuf = self.client.tread(self.fid, self.offset, self.iounit)
                self._rbuf_off, self._rpos = self.offset, 0
                if not self._rbuf:
                    break
            buf, pos = self._rbuf, self._rpos
            nl = buf.find(b"\n", pos)
            end = len(buf) if nl < 0 else nl + 1
            if limit >= 0:
                end = min(end, pos + limit - got)
            out.append(buf[pos:end])
            got += end - pos
            self.offset += end - pos
            self._rpos, self._rbuf_off = end, self.offset
            if buf[end - 1:end] == b"\n":
                break
        return b"".join(out)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        while line := self.readline():
            lines.append(line)
        return lines

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        """Chunks of up to iounit bytes until EOF."""
        while True:
            data = self.read(self.iounit)
            if not data:
                return
            yield data

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def close(self) -> None:
        if not self.closed:
            super().close()
            if self.mode == OREAD:          # nothing can hang on its clunk
                self.client.clunk_later(self.fid)
            else:
                self.client.clunk_quietly(self.fid)

    def close_later(self) -> None:
        """Close, the Tclunk going out with the next request: for a file
        written to a server that does nothing at a clunk but forget the
        fid (keyfs), whose Rwrite already said the write was done."""
        if not self.closed:
            super().close()
            self.client.clunk_later(self.fid)
