"""Server-side TLS: the context every server builds, and one stream that
runs it over a socket or over a pair of pipes.

pop3 (STLS), imap4d (STARTTLS, -T) and the launcher (the implicit-TLS
ports 993 and 995) all use these.  The stream drives an ssl.SSLObject
through memory BIOs and does the raw reads and writes on file
descriptors itself, so a socket (one fd both ways) and the stdin/stdout
pipes of a launched server take the same path, and every wait for the
client's bytes has a deadline: a client that sends half a record holds a
session no longer than one that sends nothing.

`ssl` is imported where it is used: most sessions never start TLS, and
importing it is a noticeable part of a session process's start-up.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from upas.transport.wait import readable

if TYPE_CHECKING:
    import ssl

CHUNK = 64 * 1024           # raw bytes read at once; plaintext written at once


def server_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server context from a PEM file holding the certificate chain and,
    without `keyfile`, the private key too (Plan 9 keeps the key in
    factotum; here it sits beside the certificate).  Raises OSError
    (ssl.SSLError is one) or ValueError when they cannot be read."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2       # RFC 8996: nothing older
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


class ServerCert:
    """A server's `-t certfile`: read when the server starts, as Plan 9's
    pop3 and imap4d read theirs (an unreadable file, or one without a
    certificate, refuses the session: OSError or ValueError); its TLS
    context (the key parsed and checked against the certificate, ~2.5 ms
    of a session's start) made only when a client first asks for TLS.
    A key that does not fit then fails that handshake, as a Plan 9 key
    in factotum would (docs/decisions.md)."""

    def __init__(self, certfile: str, keyfile: str | None = None):
        with open(certfile, "rb") as f:
            if b"-----BEGIN CERTIFICATE-----" not in f.read():
                raise ValueError("no certificate in the file")
        self.certfile, self.keyfile = certfile, keyfile
        self._ctx: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        """The context (made on first use); OSError or ValueError if the
        file no longer gives one."""
        if self._ctx is None:
            self._ctx = server_context(self.certfile, self.keyfile)
        return self._ctx


class TLSStream:
    """The server side of one TLS connection over file descriptors `rfd`
    and `wfd` (the same fd for a socket).  Not for use by two threads.
    The fds are blocking (the servers) or not (the launcher's relay, which
    waits for wfd to take what is `unsent`)."""

    def __init__(self, ctx: ssl.SSLContext, rfd: int, wfd: int):
        import ssl
        self.rfd, self.wfd = rfd, wfd
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._obj = ctx.wrap_bio(self._in, self._out, server_side=True)
        self._unsent = bytearray()   # (a non-blocking wfd only)

    def handshake(self, until: float | None = None) -> str:
        """Run the handshake: its version and cipher.  TimeoutError if the
        client has not finished it by the monotonic time `until`; OSError
        (ssl.SSLError) if it fails."""
        self._pump(self._obj.do_handshake, until)
        return f"{self._obj.version()} {self._obj.cipher()[0]}"

    def recv(self, until: float | None = None) -> bytes:
        """Decrypted bytes; b"" at the end (close_notify or EOF).
        TimeoutError if no whole record came before `until`."""
        import ssl
        try:
            return self._pump(lambda: self._obj.read(CHUNK), until)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def recv_buffered(self) -> bytes | None:
        """Decrypted bytes from input already read from the fd (a poll of
        the fd cannot see it), without reading more: None if no whole
        record is there; b"" at the end."""
        import ssl
        try:
            data = self._obj.read(CHUNK)
        except ssl.SSLWantReadError:
            return None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""
        finally:
            self._flush()
        return data

    def send(self, data: bytes) -> None:
        """Encrypt and write all of data (a record's worth at a time, so the
        encrypted copy stays small)."""
        view = memoryview(data)
        while view:
            n = self._obj.write(view[:CHUNK])
            view = view[n:]
            self._flush()

    def close(self) -> None:
        """Send close_notify; the peer's is not waited for (RFC 8446 6.1)."""
        import ssl
        try:
            self._obj.unwrap()
        except (ssl.SSLError, ValueError):
            pass                    # SSLWantReadError: the peer's close_notify
        try:
            self._flush()
        except OSError:
            pass

    def _pump(self, op: Callable[[], object], until: float | None) -> object:
        """Run an SSLObject call, moving bytes between the BIOs and the fds
        until it needs no more input."""
        import ssl
        while True:
            try:
                result = op()
            except ssl.SSLWantReadError:
                self._flush()
                if not readable(self.rfd, until):
                    raise TimeoutError("no TLS record in time") from None
                try:
                    data = os.read(self.rfd, CHUNK)
                except BlockingIOError:     # (a non-blocking rfd) not yet after all
                    raise TimeoutError("no TLS record in time") from None
                if data:
                    self._in.write(data)
                else:
                    self._in.write_eof()
                continue
            self._flush()
            return result

    def unsent(self) -> bool:
        """Encrypted bytes a non-blocking wfd has not taken yet (flush
        sends them when it is writable)."""
        return bool(self._unsent)

    def flush(self) -> None:
        """Write what is encrypted; on a non-blocking wfd, as much as it
        takes (the rest stays unsent)."""
        self._flush()

    def _flush(self) -> None:
        data = self._out.read()
        if self._unsent:
            self._unsent += data
            data = self._unsent
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.wfd, view):]
        except BlockingIOError:
            pass
        self._unsent = bytearray(view)
