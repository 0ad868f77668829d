"""Lean POP3 and IMAP clients for the bench: they read in big chunks and
skip literals by count, so that the client is never the bottleneck."""
from __future__ import annotations

import re
import socket

TIMEOUT = 1800
_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class _Lines:
    def __init__(self, addr: tuple[str, int]):
        self.sock = socket.create_connection(addr, timeout=TIMEOUT)
        self.buf = bytearray()
        self.greeting = self.readline()

    def _fill(self) -> None:
        data = self.sock.recv(1 << 18)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def readline(self) -> bytes:
        start = 0
        while (i := self.buf.find(b"\n", start)) < 0:
            start = len(self.buf)
            self._fill()
        line = bytes(self.buf[:i + 1])
        del self.buf[:i + 1]
        return line

    def close(self) -> None:
        self.sock.close()


class Pop3(_Lines):
    def cmd(self, line: str) -> bytes:
        self.sock.sendall(line.encode() + b"\r\n")
        reply = self.readline()
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"{line.split()[0]}: {reply!r}")
        return reply

    def multi(self) -> bytes:
        """The data of a multi-line reply, without the final "." line."""
        while len(self.buf) < 3:
            self._fill()
        if self.buf.startswith(b".\r\n"):
            del self.buf[:3]
            return b""
        start = 0
        while (i := self.buf.find(b"\r\n.\r\n", start)) < 0:
            start = max(0, len(self.buf) - 4)
            self._fill()
        data = bytes(self.buf[:i + 2])
        del self.buf[:i + 5]
        return data


class Imap(_Lines):
    n = 0
    tagged = b""            # the last tagged reply

    def skip(self, n: int) -> None:
        while len(self.buf) < n:
            self._fill()
        del self.buf[:n]

    def cmd(self, text: str, literal: bytes | None = None, keep: bool = False) -> int:
        """Run a command (with one synchronizing literal at its end);
        the count of untagged lines (kept in .untagged if `keep`, literals
        left out).  A reply other than OK raises."""
        self.untagged: list[bytes] = []
        self.n += 1
        tag = b"t%d" % self.n
        if literal is None:
            self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text.encode() + b" {%d}\r\n" % len(literal))
            if not self.readline().startswith(b"+"):
                raise RuntimeError(f"{text}: no continuation")
            self.sock.sendall(literal + b"\r\n")
        count = 0
        while True:
            line = self.readline()
            while (m := _LITERAL.search(line)):
                self.skip(int(m.group(1)))
                line = self.readline()
            if keep and not line.startswith(tag + b" "):
                self.untagged.append(line)
            if line.startswith(tag + b" "):
                self.tagged = line
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text}: {line!r}")
                return count
            count += 1
