"""upas/pop3 [-a mailboxfile] [-d debugfile] [-p] [-r peeraddr] [-t certfile] [-e]

One POP3 session on stdin/stdout (a socket, or a pair of pipes), as Plan 9's
upas/pop3 run by listen(8).  The protocol is upas.pop3.protocol; this is the
thin driver: flags, buffered I/O flushed before each read (which permits
pipelining), STLS with Python's ssl, the failed-login sleeps.

-t takes a PEM file holding the certificate chain and its private key (Plan
9 keeps the key in factotum; here it sits beside the certificate).  -e turns
on the RFC 2449/5034 additions (CAPA SASL/RESP-CODES/AUTH-RESP-CODE/
IMPLEMENTATION, AUTH CRAM-MD5 and PLAIN, response codes) which change Plan 9
replies and are therefore off by default.  Unknown flags are ignored, as
Plan 9 does.  POP3_DELAY_SCALE multiplies the failed-login delays;
POP3_IDLE_TIMEOUT (seconds, default 600) ends a session that sends no
whole command line for that long; POP3_LOGIN_TIMEOUT (seconds, default
60) ends one not logged in that long after it connected;
POP3_READAHEAD_TTL (seconds, default 1) bounds how long a message read
ahead for an in-order download is kept (mailbox.py).
"""
from __future__ import annotations

import os
import select
import socket
import stat
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, BinaryIO, Callable

from upas import config
from upas.mail import lock
from upas.pop3.protocol import (OVERLONG, Close, LineSplitter, Session, Sleep,
                                StartTLS)

if TYPE_CHECKING:
    import ssl                 # imported for -t and STLS only (start-up time)

ARGFLAGS = "adrt"          # flags that take a value (EARGF)
BUFMAX = 64 * 1024         # flush the output buffer beyond this
IOV_MAX = 512              # buffers handed to one writev
USAGE = "usage: upas/pop3 [-a authmboxfile] [-d debugfile] [-p] [-r remote] [-t cert]\n"


class UsageError(Exception):
    pass


def parse_flags(argv: list[str]) -> list[tuple[str, str]]:
    """Plan 9 ARGBEGIN: clustered flags, a value glued on or in the next
    argument; `--` or a non-flag ends the options; unknown flags are kept
    (the caller ignores them)."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            break
        j = 1
        while j < len(arg):
            c = arg[j]
            if c in ARGFLAGS:
                value = arg[j + 1:]
                if not value:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(c)
                    value = argv[i]
                out.append((c, value))
                break
            out.append((c, ""))
            j += 1
        i += 1
    return out


# ---------------------------------------------------------------- transport
class Conn:
    """stdin/stdout with an output buffer; TLS on a socket or on pipes."""

    def __init__(self, rfd: int = 0, wfd: int = 1):
        self.rfd, self.wfd = rfd, wfd
        self.out: list[bytes] = []     # written, not yet sent: sent by writev
        self.outlen = 0
        self.sock: socket.socket | None = None
        if stat.S_ISSOCK(os.fstat(rfd).st_mode):
            self.sock = socket.socket(fileno=os.dup(rfd))
        self.tls: ssl.SSLSocket | ssl.SSLObject | None = None
        self._bio_in: ssl.MemoryBIO | None = None
        self._bio_out: ssl.MemoryBIO | None = None

    def peer(self) -> str | None:
        if self.sock is None:
            return None
        try:
            addr = self.sock.getpeername()
        except OSError:
            return None
        return addr[0] if isinstance(addr, tuple) else None

    # -- raw I/O
    # (TLS on a socket is an SSLSocket; on pipes an SSLObject with BIOs)
    def _recv(self) -> bytes:
        if self.tls is None:
            return os.read(self.rfd, BUFMAX)
        if self._bio_in is None:
            return self.tls.recv(BUFMAX)
        return self._bio_read()

    def _send(self, chunks: list[bytes]) -> None:
        if self.tls is None:
            _writev_all(self.wfd, chunks)
            return
        data = b"".join(chunks)
        if self._bio_in is None:
            self.tls.sendall(data)
        else:
            self.tls.write(data)
            self._bio_flush()

    # -- buffered
    def recv(self, idle: Callable[[], None] | None = None,
             until: float | None = None) -> bytes:
        """Bytes, or b"" at EOF; TimeoutError if none come before the
        monotonic time `until`.  `idle` runs once the output is sent,
        before waiting."""
        self.flush()
        if idle is not None:
            idle()
        wait = None if until is None else max(0.0, until - time.monotonic())
        try:
            if not self._pending() and not select.select([self.rfd], [], [], wait)[0]:
                raise TimeoutError
            return self._recv()
        except TimeoutError:
            raise
        except OSError:             # ssl.SSLError and ConnectionError too
            return b""

    def _pending(self) -> bool:
        """Decrypted bytes already buffered by TLS (select cannot see them)."""
        if self.tls is None:
            return False
        return self.tls.pending() > 0 or bool(self._bio_in and self._bio_in.pending)

    def write(self, data: bytes) -> None:
        self.out.append(data)
        self.outlen += len(data)
        if self.outlen >= BUFMAX:
            self.flush()

    def flush(self) -> None:
        if self.out:
            chunks, self.out, self.outlen = self.out, [], 0
            self._send(chunks)

    # -- TLS
    def start_tls(self, ctx: ssl.SSLContext) -> str:
        import ssl
        self.flush()
        if self.sock is not None:
            self.tls = ctx.wrap_socket(self.sock, server_side=True)
        else:
            self._bio_in, self._bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = ctx.wrap_bio(self._bio_in, self._bio_out, server_side=True)
            self._pump(obj.do_handshake)
            self.tls = obj
        return f"{self.tls.version()} {self.tls.cipher()[0]}"

    def _pump(self, op: Callable[[], object]) -> object:
        """Run an SSLObject call, moving bytes between the BIOs and the fds."""
        import ssl
        while True:
            try:
                result = op()
            except ssl.SSLWantReadError:
                self._bio_flush()
                data = os.read(self.rfd, BUFMAX)
                if not data:
                    self._bio_in.write_eof()
                else:
                    self._bio_in.write(data)
                continue
            self._bio_flush()
            return result

    def _bio_read(self) -> bytes:
        import ssl
        try:
            return self._pump(lambda: self.tls.read(BUFMAX))
        except ssl.SSLZeroReturnError:
            return b""

    def _bio_flush(self) -> None:
        data = self._bio_out.read()
        if data:
            _write_all(self.wfd, data)

    def close(self) -> None:
        try:
            self.flush()
        except OSError:
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _writev_all(fd: int, chunks: list) -> None:
    """Send the chunks as they are (no joining copy), IOV_MAX at a time."""
    i = 0
    while i < len(chunks):
        batch = chunks[i:i + IOV_MAX]
        n = os.writev(fd, batch)
        for c in batch:
            if n < len(c):
                break
            n -= len(c)
            i += 1
        else:
            continue
        chunks[i] = memoryview(chunks[i])[n:]   # partly written: the rest


# ---------------------------------------------------------------- main
class Options:
    def __init__(self) -> None:
        self.preauth: str | None = None
        self.debug: BinaryIO | None = None
        self.allow_clear = False
        self.peer: str | None = None
        self.tls_ctx: ssl.SSLContext | None = None
        self.extensions = False


def tls_context(certfile: str) -> ssl.SSLContext:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile)
    return ctx


def options(flags: list[tuple[str, str]], conn: Conn) -> Options | str:
    """Options, or the text of a fatal -ERR (as Plan 9, before the greeting)."""
    o = Options()
    for c, value in flags:
        if c == "a":
            o.preauth = value
        elif c == "d":
            fd = os.open(value, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            o.debug = os.fdopen(fd, "wb", buffering=0)
        elif c == "p":
            o.allow_clear = True
        elif c == "r":
            o.peer = value.split("!", 1)[0][:63]
        elif c == "t":
            try:
                o.tls_ctx = tls_context(value)
            except (OSError, ValueError) as e:     # ssl.SSLError is an OSError
                return f"cannot read TLS certificate: {getattr(e, 'strerror', None) or e}"
        elif c == "e":
            o.extensions = True
    if o.peer is None:
        o.peer = conn.peer()
    return o


def serve(session: Session, conn: Conn, tls_ctx: ssl.SSLContext | None,
          debug: Callable[[bytes], None] | None) -> None:
    """The command loop: read, answer every complete line, flush, repeat.
    A session that sends no whole line for POP3_IDLE_TIMEOUT seconds
    (default 10 minutes, RFC 1939's minimum autologout timer), or is not
    logged in POP3_LOGIN_TIMEOUT seconds after it connected, is closed
    without a reply (RFC 1939 section 3), deleting nothing; bytes alone
    restart no timer, so a byte every few minutes holds no session."""
    splitter = LineSplitter()
    pending: deque = deque()     # lines read but not yet answered
    cfg = config.current()
    login_until = time.monotonic() + cfg.pop3_login_timeout
    if not _carry_out(session.start(), session, conn, splitter, tls_ctx, debug):
        return
    idle_until = time.monotonic() + cfg.pop3_idle_timeout
    eof = False
    while True:
        if not pending:
            if eof:
                return
            try:
                data = conn.recv(session.idle, idle_until if session.loggedin
                                 else min(idle_until, login_until))
            except TimeoutError:
                if debug:
                    debug(b"<timeout: session closed>\n")
                return
            if data:
                pending.extend(splitter.feed(data))
            else:
                eof = True
                pending.extend(splitter.eof())
            continue
        item = pending.popleft()
        events = session.overlong() if item is OVERLONG else session.handle(item)
        if not _carry_out(events, session, conn, splitter, tls_ctx, debug, pending):
            return
        idle_until = time.monotonic() + cfg.pop3_idle_timeout    # from the answer on


def _carry_out(events, session, conn, splitter, tls_ctx, debug, pending=None) -> bool:
    """Do what the session asked; False when the session is over."""
    for ev in events:
        if isinstance(ev, bytes):
            conn.write(ev)
        elif isinstance(ev, Sleep):
            time.sleep(max(ev.seconds, 0))
        elif isinstance(ev, StartTLS):
            # plaintext the client pipelined after STLS is not to be trusted
            splitter.discard()
            if pending is not None:
                pending.clear()
            try:
                info = conn.start_tls(tls_ctx)
            except OSError as e:                   # ssl.SSLError too
                if debug:
                    debug(f"tls: handshake failed: {e}\n".encode())
                return False
            if debug:
                debug(f"tls: {info}\n".encode())
            session.tls_started()
        elif isinstance(ev, Close):
            conn.close()
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    from upas.loginfail import Guard
    from upas.pop3.auth import FactotumAuth
    from upas.pop3.host import NamespaceHost

    argv = sys.argv[1:] if argv is None else argv
    lock.for_sessions()
    try:
        flags = parse_flags(argv)
    except UsageError:
        sys.stderr.write(USAGE)
        return 1
    conn = Conn()
    opts = options(flags, conn)
    if isinstance(opts, str):
        conn.write(f"-ERR {opts}\r\n".encode())
        conn.close()
        return 0
    debug = opts.debug.write if opts.debug else None
    host = NamespaceHost()
    session = Session(FactotumAuth(), host, allow_clear=opts.allow_clear,
                      tls_cert=opts.tls_ctx is not None, peer=opts.peer,
                      preauth_box=opts.preauth, extensions=opts.extensions,
                      delay_scale=config.current().pop3_delay_scale, debug=debug, guard=Guard(opts.peer))
    try:
        serve(session, conn, opts.tls_ctx, debug)
    except (BrokenPipeError, ConnectionError) + _tls_errors():
        pass   # the client went away: nothing more to do, nothing deleted
    finally:
        host.close()
    return 0


def _tls_errors() -> tuple:
    """ssl.SSLError if TLS was used (without it, no such error is raised)."""
    ssl = sys.modules.get("ssl")
    return (ssl.SSLError,) if ssl is not None else ()


if __name__ == "__main__":
    sys.exit(main())
