"""upas/pop3 [-a mailboxfile] [-d debugfile] [-p] [-r peeraddr] [-t certfile] [-e]

One POP3 session on stdin/stdout (a socket, or a pair of pipes), as Plan 9's
upas/pop3 run by listen(8).  The protocol is upas.pop3.protocol; this is the
thin driver: flags, and the session's events carried out on the shared
connection (upas/transport: output flushed before each read, which permits
pipelining; STLS; the failed-login sleeps; the idle and login deadlines).

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
import sys
from collections import deque
from typing import BinaryIO, Callable, Iterable

from upas import config
from upas.mail import lock
from upas.pop3.protocol import OVERLONG, LineSplitter, Session
from upas.transport import stop
from upas.transport.conn import Conn, Deadlines, peer_address
from upas.transport.events import Close, Event, Hangup, StartTLS
from upas.transport.tls import ServerCert


ARGFLAGS = "adrt"          # flags that take a value (EARGF)
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


# ---------------------------------------------------------------- main
class Options:
    def __init__(self) -> None:
        self.preauth: str | None = None
        self.debug: BinaryIO | None = None
        self.allow_clear = False
        self.peer: str | None = None
        self.tls_cert: ServerCert | None = None
        self.extensions = False


def options(flags: list[tuple[str, str]], fd: int = 0) -> Options | str:
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
                o.tls_cert = ServerCert(value)
            except (OSError, ValueError) as e:     # ssl.SSLError is an OSError
                return f"cannot read TLS certificate: {getattr(e, 'strerror', None) or e}"
        elif c == "e":
            o.extensions = True
    if o.peer is None:
        o.peer = peer_address(fd)
    return o


class Driver:
    """The command loop: read, answer every complete line, flush, repeat.
    A session that sends no whole line for POP3_IDLE_TIMEOUT seconds
    (default 10 minutes, RFC 1939's minimum autologout timer), or is not
    logged in POP3_LOGIN_TIMEOUT seconds after it connected, is closed
    without a reply (RFC 1939 section 3), deleting nothing."""

    def __init__(self, session: Session, conn: Conn, tls_cert: ServerCert | None,
                 debug: Callable[[bytes], None] | None):
        self.session, self.conn, self.tls_cert, self.debug = session, conn, tls_cert, debug
        cfg = config.current()
        self.clock = Deadlines(cfg.pop3_idle_timeout, cfg.pop3_login_timeout)
        self.splitter = LineSplitter()
        self.pending: deque = deque()     # lines read but not yet answered

    def run(self) -> None:
        session, pending = self.session, self.pending
        if not self.carry_out(session.start()):
            return
        self.clock.restart()
        eof = False
        while True:
            if not pending:
                if eof:
                    return
                try:
                    data = self.conn.recv(self.deadline(), session.idle)
                except TimeoutError:
                    if self.debug:
                        self.debug(b"<timeout: session closed>\n")
                    return
                if data:
                    pending.extend(self.splitter.feed(data))
                else:
                    eof = True
                    pending.extend(self.splitter.eof())
                continue
            item = pending.popleft()
            events = session.overlong() if item is OVERLONG else session.handle(item)
            if not self.carry_out(events):
                return
            self.clock.restart()             # from the answer on

    def deadline(self) -> float:
        return self.clock.next(self.session.loggedin)[0]

    def carry_out(self, events: Iterable[Event]) -> bool:
        """Do what the session asked; False when the session is over."""
        for ev in events:
            if isinstance(ev, StartTLS):
                if not self.start_tls():
                    return False
            elif isinstance(ev, Close):
                self.conn.close()
                return False
            else:
                self.conn.emit(ev)
        return True

    def start_tls(self) -> bool:
        # plaintext the client pipelined after STLS is not to be trusted
        self.splitter.discard()
        self.pending.clear()
        try:
            self.conn.flush()                  # the OK first, as Plan 9's
            info = self.conn.start_tls(self.tls_cert.context(), self.deadline())
        except (OSError, ValueError) as e:     # ssl.SSLError, TimeoutError too
            if self.debug:
                self.debug(f"tls: handshake failed: {e}\n".encode())
            return False
        if self.debug:
            self.debug(f"tls: {info}\n".encode())
        self.session.tls_started()
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
    opts = options(flags)
    if isinstance(opts, str):
        conn.write(f"-ERR {opts}\r\n".encode())
        conn.close()
        return 0
    debug = opts.debug.write if opts.debug else None
    host = NamespaceHost()
    session = Session(FactotumAuth(), host, allow_clear=opts.allow_clear,
                      tls_cert=opts.tls_cert is not None, peer=opts.peer,
                      preauth_box=opts.preauth, extensions=opts.extensions,
                      delay_scale=config.current().pop3_delay_scale, debug=debug, guard=Guard(opts.peer))
    stop.install()
    try:
        Driver(session, conn, opts.tls_cert, debug).run()
    except Hangup:
        pass   # the client went away: nothing more to do, nothing deleted
    except stop.Stopping:   # the launcher is shutting down: nothing deleted
        stop.goodbye(conn, b"-ERR server shutting down\r\n")
    finally:
        host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
