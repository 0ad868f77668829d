"""imap4d [-acpv] [-d site] [-s servername]: one IMAP session on stdin/stdout.

The connection (stdin/stdout: a socket from the launcher or inetd, or
pipes) is a small buffered I/O layer; with `-t certfile` TLS (tls.py) is
layered over it for STARTTLS, and `-T` starts TLS before the greeting
(implicit TLS, port 993).  Mail is reached through the namespace only: /mail/box
from $MAILROOT, /mail/fs from $upasfs, the posted `upasfs`, or an upasfs
started for the session on a socketpair (as Plan 9's `upas/fs -np`).
"""
from __future__ import annotations

import getopt
import os
import select
import socket
import sys
import threading
import time

from upas import config
from upas import ns as nsmod
from upas.mail import lock
from upas.imap4d.session import Options, Session

USAGE = "usage: imap4d [-acpvT] [-d site] [-r remote] [-s servername] [-t certfile]"


class Connection:
    """Buffered byte I/O on two file descriptors.  TLS (tls.py) runs on
top of send/recv: the output is flushed whenever input is awaited."""

    def __init__(self, rfd: int = 0, wfd: int = 1):
        self.rfd, self.wfd = rfd, wfd
        self.out = bytearray()
        self.lock = threading.Lock()      # IDLE's poller writes from a thread
        now, cfg = time.monotonic(), config.current()
        self.idle_until = now + cfg.imap4d_idle_timeout
        self.login_until: float | None = now + cfg.imap4d_login_timeout

    def activity(self, authenticated: bool) -> None:
        """A whole command was read (Session.on_command): the idle time
        starts again, and after a login the login deadline is gone.  Bytes
        alone restart nothing: a byte every few minutes holds no session."""
        self.idle_until = time.monotonic() + config.current().imap4d_idle_timeout
        if authenticated:
            self.login_until = None

    # -- raw
    def _raw_read(self) -> bytes:
        """Bytes, or b"" at EOF.  A client that sends no whole command for
        IMAP4D_IDLE_TIMEOUT seconds (default 30 minutes, RFC 3501 5.4), or
        has not logged in IMAP4D_LOGIN_TIMEOUT seconds (default 60) after
        connecting, is logged out; no lock is held while we wait, so a
        stalled client blocks nobody."""
        login = self.login_until is not None and self.login_until < self.idle_until
        until = self.login_until if login else self.idle_until
        try:
            ready, _, _ = select.select([self.rfd], [], [], max(0.0, until - time.monotonic()))
            if ready:
                return os.read(self.rfd, 65536)
        except OSError:
            return b""
        why = "no login in time" if login else "idle for too long"
        self.send(f"* BYE Autologout; {why}\r\n".encode())
        self.flush()
        raise EOFError("timeout")            # main() ends the session quietly

    def _raw_write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.wfd, view)
            except BrokenPipeError:
                raise EOFError from None
            view = view[n:]

    # -- buffered
    def send(self, data: bytes) -> None:
        with self.lock:
            self.out += data
            if len(self.out) >= 65536:
                self._flush_locked()

    def flush(self) -> None:
        with self.lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self.out:
            data, self.out = bytes(self.out), bytearray()
            self._raw_write(data)

    def recv(self) -> bytes:
        """Bytes from the client (after flushing what we owe it); b"" at EOF."""
        try:
            self.flush()
        except EOFError:
            return b""
        return self._raw_read()


def socket_peer(fd: int) -> str:
    """The peer's IP when fd is a TCP socket (inetd, systemd), else ""."""
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        return ""
    try:
        addr = s.getpeername()
        return addr[0] if isinstance(addr, tuple) else ""
    except OSError:
        return ""
    finally:
        s.close()


def make_namespace(user: str) -> nsmod.Namespace:
    """The user's name space (newns): /mail/box/USER and /mail/fs."""
    # the stand-in for auth_chuid: 9P attaches are made as the user
    os.environ["user"] = os.environ["USER"] = os.environ["LOGNAME"] = user
    ns = nsmod.Namespace.default(user)
    ns.confine(user)
    if not ns.mounted("/mail/fs"):
        posted = nsmod._posted("upasfs")
        try:
            if posted is None:
                raise nsmod.Error("no posted upasfs")
            ns.mount("/mail/fs", posted)
        except nsmod.Error:             # none, or a stale socket: our own
            ns.mount_child("/mail/fs", nsmod.python_argv("upas.fs9p", "-i", "-np"),
                           env=dict(os.environ))
    return ns


def default_names(servername: str | None, site: str | None) -> tuple[str, str]:
    """Plan 9's defaults: the system name; site from $site or the name."""
    name = servername or socket.getfqdn() or socket.gethostname()
    if site:
        return name, site
    envsite = config.current().site
    if envsite and "." in name:
        return name, f"{envsite}.{name.split('.', 1)[1]}"
    return name, envsite or name


def parse_args(argv: list[str]) -> Options:
    opts, args = getopt.getopt(argv, "acpvTd:s:r:t:")
    o = Options()
    servername = site = None
    for flag, val in opts:
        if flag == "-a":
            o.preauth = True
        elif flag == "-c":
            o.p9cr = True
        elif flag == "-p":
            o.plaintext = True
        elif flag == "-v":
            o.verbose = True
        elif flag == "-d":
            site = val
        elif flag == "-s":
            servername = val
        elif flag == "-r":
            o.remote = val
        elif flag == "-t":
            o.certfile = val
        elif flag == "-T":
            o.implicit_tls = True
    if args:
        raise getopt.GetoptError("extra arguments")
    o.servername, o.site = default_names(servername, site)
    o.user = config.current().login_name
    o.max_literal = config.current().upas_imap_maxliteral
    return o


def main(argv: list[str]) -> int:
    lock.for_sessions()
    conn = Connection()
    try:
        opts = parse_args(argv)
    except getopt.GetoptError:
        print(USAGE, file=sys.stderr)
        conn.send(b"* BYE usage\r\n")
        conn.flush()
        return 1
    if opts.p9cr and opts.plaintext:
        print("imap4d: -c and -p are mutually exclusive", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        conn.send(b"* BYE usage\r\n")
        conn.flush()
        return 1
    opts.peer = opts.remote or socket_peer(0)
    if opts.verbose:
        print(f"{opts.user}: imap4d debugging enabled", file=sys.stderr, flush=True)
    s = Session(opts, conn.send, conn.recv, make_namespace, flush=conn.flush)
    s.on_command = conn.activity
    try:
        if opts.certfile:
            from upas.imap4d import tls
            tls.install(s, tls.server_context(opts.certfile), conn.recv, conn.send)
            if opts.implicit_tls:
                s.starttls()
        s.run()
    except EOFError:
        return 0
    try:
        conn.flush()
    except EOFError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
