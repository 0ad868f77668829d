"""TLS for imap4d: STARTTLS (RFC 3501 6.2.1) and implicit TLS (port 993).

Plan 9 had no STARTTLS and ran `tlssrv` in front of imap4d on 993; we do
both in the server (docs/decisions.md):

  * `-t certfile`: a PEM file holding the certificate chain and its private
    key.  With it, STARTTLS is offered before login.
  * `-T` (with `-t`): implicit TLS: the handshake comes first, as when the
    launcher starts imap4d behind its TLS port.

`TLSStream` runs ssl over any pair of byte callables (a socket, or the
stdin/stdout pipes of a launched server) through memory BIOs, so the same
code serves sockets and pipes.  The STARTTLS command reaches it through the
session's `starttls` hook, which the driver sets when it has a certificate.
"""
from __future__ import annotations

import threading
from typing import Callable

from upas.transport.tls import server_context  # noqa: F401 -- the driver's

from .table import NOTAUTH, capability, command

CHUNK = 16384


class TLSStream:
    """Server-side TLS over recv()/send() callables of the raw transport.

    IDLE's poller thread may send while the session thread waits for input,
    so the TLS object is used under a lock; the wait for raw bytes is not.
    """

    def __init__(self, ctx: ssl.SSLContext, recv: Callable[[], bytes],
                 send: Callable[[bytes], None]):
        import ssl
        self._recv, self._send = recv, send
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inb, self.outb, server_side=True)
        self.lock = threading.Lock()

    def _flush(self) -> None:
        data = self.outb.read()
        if data:
            self._send(data)

    def _fill(self) -> bool:
        data = self._recv()
        with self.lock:
            if not data:
                self.inb.write_eof()
                return False
            self.inb.write(data)
            return True

    def handshake(self) -> None:
        """Complete the handshake; raises ssl.SSLError or EOFError."""
        import ssl
        while True:
            with self.lock:
                try:
                    self.obj.do_handshake()
                    self._flush()
                    return
                except ssl.SSLWantReadError:
                    self._flush()
            if not self._fill():
                raise EOFError("end of input during TLS handshake")

    def recv(self) -> bytes:
        """Decrypted bytes; b"" at the end of input."""
        import ssl
        while True:
            with self.lock:
                try:
                    return self.obj.read(CHUNK)
                except ssl.SSLWantReadError:
                    self._flush()
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""
            if not self._fill():
                return b""

    def send(self, data: bytes) -> None:
        with self.lock:
            view = memoryview(data)
            while view:
                n = self.obj.write(view)
                view = view[n:]
                self._flush()


def install(s, ctx: ssl.SSLContext, recv: Callable[[], bytes],
            send: Callable[[bytes], None]) -> None:
    """Let session `s` (reading recv, writing send) start TLS on STARTTLS."""
    def start() -> None:
        stream = TLSStream(ctx, recv, send)
        stream.handshake()
        s._send, s.recv = stream.send, stream.recv
        s.tls = True
    s.starttls = start


def _offered(s) -> bool:
    return s.starttls is not None and not s.tls and s.state == NOTAUTH


@command("STARTTLS", states=NOTAUTH)
def cmd_starttls(s, req) -> None:
    if s.tls:
        return s.bad(req, "tls already started")
    if s.starttls is None:
        return s.no(req, "don't have any tls credentials")
    import ssl
    s.ok(req, "begin TLS negotiation now")
    # RFC 3501 6.2.1: nothing the client sent in the clear after the
    # command may be taken as if it came over TLS
    s.framer.buf.clear()
    try:
        s.starttls()
    except (ssl.SSLError, EOFError, OSError) as e:
        s.log(f"tls handshake failed: {e}")
        s.done = True


capability("STARTTLS", 70, when=_offered)
