"""imap4d [-acpvT] [-d site] [-s servername]: one IMAP session on stdin/stdout.

The connection (stdin/stdout: a socket from the launcher or inetd, or
pipes) is the shared one of upas/transport; this driver feeds the
session (session.py, no I/O of its own) the client's bytes and carries
out what it asks: output, the failed-login sleeps, TLS (`-t certfile`
for STARTTLS; `-T` starts TLS before the greeting: implicit TLS, port
993), COMPRESS=DEFLATE, IDLE's polls, and the idle and login deadlines.  Mail is reached
through the namespace only: /mail/box from $MAILROOT, /mail/fs from
$upasfs, the posted `upasfs`, or an upasfs started for the session on a
socketpair (as Plan 9's `upas/fs -np`).
"""
from __future__ import annotations

import functools
import getopt
import sys
import time

from lib import cmdline
from upas import config
from upas import ns as nsmod
from upas.mail import fsview, lock
from upas.imap4d import auth, spare
from upas.imap4d.session import Options, Session
from upas.transport import stop
from upas.transport.conn import LOGIN, Conn, Deadlines, peer_address
from upas.transport.tls import ServerCert
from upas.transport.events import Event, Hangup, StartDeflate, StartTLS


USAGE = "usage: imap4d [-acpvT] [-d site] [-r remote] [-s servername] [-t certfile]"


class Driver:
    """Runs a session on a connection: bytes in, the session's events out.

    A client that sends no whole command for IMAP4D_IDLE_TIMEOUT seconds
    (default 30 minutes, RFC 3501 5.4), or has not logged in
    IMAP4D_LOGIN_TIMEOUT seconds (default 60) after connecting, is logged
    out; no lock is held while we wait, so a stalled client blocks nobody."""

    def __init__(self, conn: Conn, tls_cert: ServerCert | None):
        self.conn, self.tls_cert = conn, tls_cert
        cfg = config.current()
        self.clock = Deadlines(cfg.imap4d_idle_timeout, cfg.imap4d_login_timeout)
        self.tls_wanted = False
        self.session: Session | None = None

    def emit(self, ev: Event) -> None:
        if isinstance(ev, StartTLS):
            self.tls_wanted = True      # once the session has taken its bytes
        elif isinstance(ev, StartDeflate):
            self.conn.start_deflate()   # at once: the OK before it goes out as it is
        else:
            self.conn.emit(ev)

    def run(self, s: Session) -> None:
        self.session = s
        if s.opts.implicit_tls and not self.start_tls():
            return
        s.start()
        next_poll = None
        replied = functools.partial(auth.after_reply, s)    # run once our output is sent
        while not s.done:
            until, which = self.clock.next(s.logged_in)
            if s.polling:
                next_poll = next_poll or time.monotonic() + config.current().imap_idle_poll
            else:
                next_poll = None
            try:
                data = self.conn.recv(min(until, next_poll or until), meanwhile=replied)
            except TimeoutError:
                if next_poll is not None and time.monotonic() < until:
                    s.poll()
                    next_poll = None
                    continue
                s.timed_out("no login in time" if which == LOGIN else "idle for too long")
                break
            if not data:
                s.end_of_input()
                break
            if s.feed(data):
                self.clock.restart()
            if self.tls_wanted and not self.start_tls():
                return
        self.conn.close()

    def start_tls(self) -> bool:
        s = self.session
        self.tls_wanted = False
        try:
            self.conn.flush()                  # the OK first, as Plan 9's
            self.conn.start_tls(self.tls_cert.context(), self.clock.next(s.logged_in)[0])
        except (OSError, ValueError) as e:   # ssl.SSLError, TimeoutError too
            s.log(f"tls handshake failed: {e}")
            return False
        s.tls_started()
        return True


def make_namespace(user: str) -> nsmod.Namespace:
    """The user's name space (newns): /mail/box/USER, and on /mail/fs the
    user's shared upasfs or, if there is none, one of our own."""
    ns = fsview.newns(user)
    if not fsview.mount_shared(ns):
        fsview.mount_own(ns)
    return ns


def default_names(servername: str | None, site: str | None) -> tuple[str, str]:
    """Plan 9's defaults: the system name; site from $site or the name."""
    name = servername or spare.sysname()
    if site:
        return name, site
    envsite = config.current().site
    if envsite and "." in name:
        return name, f"{envsite}.{name.split('.', 1)[1]}"
    return name, envsite or name


_SWITCHES = {"-a": "preauth", "-c": "p9cr", "-p": "plaintext", "-v": "verbose",
             "-T": "implicit_tls"}
_VALUES = {"-r": "remote", "-t": "certfile"}


def parse_args(argv: list[str]) -> Options:
    opts, args = getopt.getopt(argv, "acpvTd:s:r:t:")
    o = Options()
    servername = site = None
    for flag, val in cmdline.assign(o, opts, _SWITCHES, _VALUES):
        if flag == "-d":
            site = val
        else:                           # -s
            servername = val
    if args:
        raise getopt.GetoptError("extra arguments")
    o.servername, o.site = default_names(servername, site)
    o.user = config.current().login_name
    o.max_literal = config.current().upas_imap_maxliteral
    return o


def main(argv: list[str]) -> int:
    lock.for_sessions()
    conn = Conn()
    try:
        opts = parse_args(argv)
    except getopt.GetoptError:
        print(USAGE, file=sys.stderr)
        return _refuse(conn, "usage")
    if opts.p9cr and opts.plaintext:
        print("imap4d: -c and -p are mutually exclusive", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return _refuse(conn, "usage")
    tls_cert = None
    if opts.certfile:
        try:
            tls_cert = ServerCert(opts.certfile)
        except (OSError, ValueError) as e:     # ssl.SSLError is an OSError
            print(f"imap4d: {opts.certfile}: {e}", file=sys.stderr)
            return _refuse(conn, "cannot read TLS certificate")
    opts.peer = opts.remote or peer_address(0) or ""
    if opts.verbose:
        print(f"{opts.user}: imap4d debugging enabled", file=sys.stderr, flush=True)
    driver = Driver(conn, tls_cert)
    s = Session(opts, make_namespace, driver.emit)
    stop.install()
    try:
        driver.run(s)
    except Hangup:
        pass                    # the client went away: nothing more to say
    except stop.Stopping:       # the launcher is shutting down
        stop.goodbye(conn, b"* BYE server shutting down\r\n")
    finally:
        auth.after_reply(s)
        s.finish()
    return 0


def _refuse(conn: Conn, why: str) -> int:
    conn.write(f"* BYE {why}\r\n".encode())
    conn.close()
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
