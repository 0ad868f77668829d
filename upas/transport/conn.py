"""A session's connection: stdin and stdout (a socket from the launcher or
inetd, or a pair of pipes), with the output buffered and sent by writev,
input awaited until a deadline, TLS started on request (tls.py), and
COMPRESS=DEFLATE above it on request (deflate.py).

Output is sent whenever input is awaited (so a client may pipeline), and
at once beyond BUFMAX.  `Deadlines` keeps a session's two clocks: the
idle time, restarted by whole commands only, and the login deadline.
"""
from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Callable

from lib.writev import IOV_MAX, writev_all  # noqa: F401 -- IOV_MAX: tests
from upas.transport import stop
from upas.transport.deflate import Deflater, DeflateError, Inflater
from upas.transport.events import Flush, Hangup, Sleep
from upas.transport.tls import TLSStream
from upas.transport.wait import readable

if TYPE_CHECKING:
    import ssl

BUFMAX = 64 * 1024         # flush the output buffer beyond this; read at most this

IDLE, LOGIN = "idle", "login"       # which deadline Deadlines.next gives


def peer_address(fd: int) -> str | None:
    """The peer's IP address when fd is an internet socket, else None."""
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    try:
        addr = s.getpeername()
        return addr[0] if isinstance(addr, tuple) else None
    except OSError:
        return None
    finally:
        s.close()


class Conn:
    """Buffered byte I/O on two file descriptors (the same one for a
    socket); after start_tls, TLS over them; after start_deflate, every
    byte deflated above that."""

    def __init__(self, rfd: int = 0, wfd: int = 1):
        self.rfd, self.wfd = rfd, wfd
        self.out: list[bytes] = []     # written, not yet sent: sent by writev
        self.outlen = 0
        self.tls: TLSStream | None = None
        self.deflater: Deflater | None = None
        self.inflater: Inflater | None = None

    # -- output
    def write(self, data: bytes) -> None:
        self.out.append(data)
        self.outlen += len(data)
        if self.outlen >= BUFMAX:
            self.flush()

    def flush(self) -> None:
        """Send what is buffered; Hangup if the client is gone."""
        if not self.out:
            return
        chunks, self.out, self.outlen = self.out, [], 0
        if self.deflater is not None:
            chunks = [self.deflater.compress(b"".join(chunks))]
        try:
            if self.tls is None:
                writev_all(self.wfd, chunks)
            else:
                self.tls.send(b"".join(chunks))
        except OSError as e:                # ssl.SSLError too
            raise Hangup(str(e)) from None

    def emit(self, ev: bytes | Sleep | Flush) -> None:
        """Carry out a session's output event: bytes are sent (buffered);
        a Flush sends what is buffered; a Sleep sends it, then waits."""
        if isinstance(ev, Flush):
            self.flush()
        elif isinstance(ev, Sleep):
            self.flush()
            time.sleep(max(ev.seconds, 0))
        else:
            self.write(ev)

    # -- input
    def recv(self, until: float | None = None,
             meanwhile: Callable[[], None] | None = None) -> bytes:
        """Bytes from the client, after sending what we owe it; b"" at its
        end.  TimeoutError if none come before the monotonic time `until`;
        stop.Stopping if the launcher shuts down meanwhile.  `meanwhile`
        runs once the output is sent, before waiting."""
        self.flush()
        if meanwhile is not None:
            meanwhile()
        if self.inflater is None:
            return self._recv(until)
        try:
            while not self.inflater.ended:
                data = self.inflater.inflate()      # what the last read held back
                if data:
                    return data
                raw = self._recv(until)
                if not raw:
                    break
                data = self.inflater.inflate(raw)
                if data:
                    return data
        except DeflateError:                # not deflate: as the end of input
            pass
        return b""

    def _recv(self, until: float | None) -> bytes:
        """The bytes under the deflate layer (TLS's plaintext, or the fd's)."""
        try:
            with stop.waiting():
                if self.tls is not None:
                    return self.tls.recv(until)
                if not readable(self.rfd, until):
                    raise TimeoutError("no input in time")
                return os.read(self.rfd, BUFMAX)
        except TimeoutError:
            raise
        except OSError:                     # ssl.SSLError and ConnectionError too
            return b""

    # -- TLS
    def start_tls(self, ctx: ssl.SSLContext, until: float | None = None) -> str:
        """Send what is buffered, then run the TLS handshake (by `until`):
        its version and cipher.  Raises OSError (ssl.SSLError,
        TimeoutError) if it fails."""
        self.flush()
        self.tls = TLSStream(ctx, self.rfd, self.wfd)
        return self.tls.handshake(until)

    # -- COMPRESS=DEFLATE
    def start_deflate(self) -> None:
        """Send what is buffered as it is; from now on everything is
        deflated both ways (RFC 4978 3: right after the tagged OK)."""
        self.flush()
        self.deflater = Deflater()
        self.inflater = Inflater(BUFMAX)

    def close(self) -> None:
        """Send what is buffered (if the client is still there) and, under
        TLS, close_notify.  The fds stay open: they are stdin and stdout."""
        try:
            self.flush()
        except Hangup:
            return
        if self.tls is not None:
            self.tls.close()


class Deadlines:
    """A session's two clocks: it ends when no whole command came for
    `idle` seconds, or when it is not logged in `login` seconds after it
    connected.  Bytes alone restart neither, so a byte every few minutes
    holds no session (docs/running.md, "Limits, timeouts and throttles")."""

    def __init__(self, idle: float, login: float):
        now = time.monotonic()
        self.idle = idle
        self.idle_until = now + idle
        self.login_until = now + login

    def restart(self) -> None:
        """A whole command was answered: the idle time starts again."""
        self.idle_until = time.monotonic() + self.idle

    def next(self, logged_in: bool) -> tuple[float, str]:
        """The monotonic time the session ends if nothing comes, and which
        clock that is (IDLE or LOGIN)."""
        if not logged_in and self.login_until < self.idle_until:
            return self.login_until, LOGIN
        return self.idle_until, IDLE
