"""listen: accept connections and start one server process per connection.

    python -m upas.listen [-uv] [-c conffile] [-t certfile [-k keyfile]]
        [-m maxconns] [-M maxperpeer] [-l name=addr]... [-F name=flags]...
        [name...]

Like Plan 9's listen(8) with the standard service scripts: each connection
gets its own server with the socket as standard input and output and the
peer address as `-r ip!port`.  The TLS ports (993, 995) are terminated here
and relayed to the server over a socketpair, as tlssrv does on Plan 9.
This module imports none of the servers: it runs them as processes.

The default services (the Plan 9 tcp110, tcp143, tcp993, tcp995 scripts):

    pop3    tcp!*!110   python -m upas.pop3 [-t certfile]     (STLS)
    imap4d  tcp!*!143   python -m upas.imap4d [-t certfile]  (STARTTLS)
    pop3s   tcp!*!995   TLS, python -m upas.pop3 -p
    imaps   tcp!*!993   TLS, python -m upas.imap4d -p

A conffile line `name addr [tls] command args...` defines or replaces a
service (`pop3` and `imap4d` as the command mean our servers; `#` comments).
Naming services on the command line runs only those.

-u keeps one upasfs per user alive across sessions (upas/fsbroker.py):
the servers get $upasfs pointing at a broker posted as `upasfs`, which
hands each session to its user's upasfs, restarting one that died.

A server run as `python -m MODULE` (ours, or a conffile line naming this
interpreter) is forked, one process per connection still, from a fork
server that has imported MODULE once (upas/forkserver.py), instead of
started afresh: the ~0.1-0.2 s of interpreter start and imports is paid
once.  LISTEN_FORKSERVER=0 in the environment execs every server instead.
"""
from __future__ import annotations

import getopt
import os
import select
import selectors
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from lib import cmdline
from upas import config
from upas.forkserver import ForkServer
from upas.ninep.dial import announce
from upas.transport.relay import relay
from upas.transport.tls import TLSStream, server_context

USAGE = ("usage: listen [-uv] [-c conffile] [-t certfile [-k keyfile]] [-m maxconns] "
         "[-M maxperpeer] [-l name=addr]... [-F name=flags]... [name...]")
MAXCONNS = 100          # per service
MAXPERPEER = 10         # per service and peer address
HANDSHAKE_TIMEOUT = 30  # seconds a client on a TLS port has to say hello
SERVERS = {"pop3": "upas.pop3", "imap4d": "upas.imap4d"}
BUSY = {"pop3": b"-ERR too many connections\r\n",
        "imap4d": b"* BYE too many connections\r\n"}


class ConfigError(Exception):
    pass


@dataclass
class Service:
    name: str
    addr: str                   # dial string: tcp!host!port
    argv: list[str]
    tls: bool = False
    busy: bytes = b""           # sent to a connection refused by a limit
    maxconns: int = MAXCONNS
    maxperpeer: int = MAXPERPEER
    # peer ip -> connections the client still has open (maxperpeer); a
    # session's server may run on a little after its client hung up
    active: dict[str, int] = field(default_factory=dict)
    running: int = 0            # server processes not yet exited (maxconns)

    @property
    def module(self) -> str | None:
        """MODULE of a `python -m MODULE ...` server under this interpreter."""
        if len(self.argv) >= 3 and self.argv[0] == sys.executable and self.argv[1] == "-m":
            return self.argv[2]
        return None


def server_argv(command: str, args: list[str]) -> tuple[list[str], bytes]:
    """`pop3`/`imap4d` mean our servers under this interpreter."""
    if command in SERVERS:
        return [sys.executable, "-m", SERVERS[command], *args], BUSY[command]
    return [command, *args], b""


def default_services(certfile: str | None) -> dict[str, Service]:
    def svc(name, port, cmd, args, tls=False):
        argv, busy = server_argv(cmd, args)
        return Service(name, f"tcp!*!{port}", argv, tls, busy)
    stls = ["-t", certfile] if certfile else []
    return {s.name: s for s in (
        svc("pop3", 110, "pop3", stls),
        svc("imap4d", 143, "imap4d", stls),       # STARTTLS (Plan 9 has none)
        svc("pop3s", 995, "pop3", ["-p"], tls=True),
        svc("imaps", 993, "imap4d", ["-p"], tls=True),
    )}


def parse_conf(text: str, services: dict[str, Service]) -> None:
    """Apply conffile lines `name addr [tls] command args...`."""
    for n, line in enumerate(text.splitlines(), 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as e:
            raise ConfigError(f"line {n}: {e}") from None
        if not words:
            continue
        tls = len(words) > 2 and words[2] == "tls"
        rest = words[3:] if tls else words[2:]
        if len(words) < 3 or not rest:
            raise ConfigError(f"line {n}: want: name addr [tls] command args...")
        parse_addr(words[1])
        argv, busy = server_argv(rest[0], rest[1:])
        services[words[0]] = Service(words[0], words[1], argv, tls, busy)


def parse_addr(addr: str) -> tuple[str, int]:
    """tcp!host!port (net! too) -> (host, port); `*` is every address."""
    parts = addr.split("!")
    if len(parts) != 3 or parts[0] not in ("tcp", "net") or not parts[2].isdigit():
        raise ConfigError(f"bad address: {addr}")
    host = "" if parts[1] == "*" else parts[1]
    return host, int(parts[2])


def peer_string(addr: tuple) -> str:
    return f"{addr[0]}!{addr[1]}"


class Launcher:
    def __init__(self, services: list[Service], tls: ssl.SSLContext | None,
                 log=None, forkserver: bool | None = None):
        self.services = services
        self.tls = tls
        self.log = log or self._stderr_log
        self.lock = threading.Lock()
        self.children: set = set()          # subprocess.Popen or ForkedChild
        self.forkservers: dict[str, ForkServer] = {}
        if config.current().listen_forkserver if forkserver is None else forkserver:
            for svc in services:
                if svc.module and svc.module not in self.forkservers:
                    self.forkservers[svc.module] = ForkServer(svc.module, self.log)
        self.threads: set[threading.Thread] = set()
        self.slots: dict[tuple[str, str], set[_Slot]] = {}   # (service, peer ip) -> open
        self.listeners: list[tuple[socket.socket, Service]] = []
        self.stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()

    def _stderr_log(self, line: str) -> None:
        # One write per line, under the lock: sessions end on many threads.
        with self.lock:
            sys.stderr.write(f"listen: {line}\n")
            sys.stderr.flush()

    # -- listening ----------------------------------------------------------
    def announce(self) -> list[tuple[Service, str]]:
        """Bind every service; returns the actual addresses (port 0 resolved)."""
        out = []
        for svc in self.services:
            s = announce(svc.addr)
            self.listeners.append((s, svc))
            bound = s.getsockname()
            out.append((svc, f"tcp!{bound[0]}!{bound[1]}"))
        return out

    def run(self) -> None:
        for fs in self.forkservers.values():
            try:
                fs.start()            # importing while the first client dials
            except OSError as e:      # the first spawn tries again
                self.log(f"fork server {fs.module}: {e}")
        sel = selectors.DefaultSelector()
        for s, svc in self.listeners:
            sel.register(s, selectors.EVENT_READ, svc)
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        while not self.stopping.is_set():
            for key, _ in sel.select():
                if key.data is None:
                    continue
                try:
                    conn, peer = key.fileobj.accept()
                except OSError:
                    continue
                nodelay(conn)
                got = self._admit(key.data, peer[0], conn)
                if isinstance(got, str):
                    self._refuse(conn, peer, key.data, got)
                else:
                    self._start(conn, peer, got)
        sel.close()
        for s, _ in self.listeners:
            s.close()
        self._drain()

    def stop(self) -> None:
        """Stop accepting; run() then waits for the sessions (see _drain)."""
        self.stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # -- one connection -----------------------------------------------------
    def _admit(self, svc: Service, ip: str, conn: socket.socket) -> "_Slot | str":
        """Count the connection in, or say which limit refuses it.  At the
        per-peer limit, the peer's connections are looked at first: one
        its client has just closed (it logged out and dialled again at
        once) no longer counts, even if its session has not yet noticed."""
        with self.lock:
            if svc.running >= svc.maxconns:
                return "too many connections"
            if svc.active.get(ip, 0) >= svc.maxperpeer:
                for slot in list(self.slots.get((svc.name, ip), ())):
                    if slot.fd is not None and hung_up(slot.fd):
                        self._uncount_peer(slot)
            if svc.active.get(ip, 0) >= svc.maxperpeer:
                return "too many connections from peer"
            svc.active[ip] = svc.active.get(ip, 0) + 1
            svc.running += 1
            slot = _Slot(svc, ip, conn.fileno())
            self.slots.setdefault((svc.name, ip), set()).add(slot)
        return slot

    def _uncount_peer(self, slot: "_Slot") -> None:
        """(Lock held.)  The client has closed the connection: it no longer
        counts against its address, whether or not its server has exited."""
        if slot.peer_counted:
            slot.peer_counted = False
            svc, ip = slot.svc, slot.ip
            svc.active[ip] -= 1
            if not svc.active[ip]:
                del svc.active[ip]

    def _release_peer(self, slot: "_Slot") -> None:
        with self.lock:
            self._uncount_peer(slot)

    def _forget_fd(self, slot: "_Slot") -> None:
        """Before the launcher closes its copy of the connection: its fd
        number may name another socket soon."""
        with self.lock:
            slot.fd = None

    def _release(self, slot: "_Slot") -> None:
        with self.lock:
            self._uncount_peer(slot)
            slot.svc.running -= 1
            slot.fd = None
            key = (slot.svc.name, slot.ip)
            self.slots[key].discard(slot)
            if not self.slots[key]:
                del self.slots[key]

    def _start(self, conn: socket.socket, peer: tuple, slot: "_Slot") -> None:
        sent = self._send_early(conn, peer, slot.svc)
        t = threading.Thread(target=self._session, args=(conn, peer, slot, sent),
                             name=f"listen-{slot.svc.name}", daemon=True)
        with self.lock:
            self.threads.add(t)
        t.start()

    def _send_early(self, conn: socket.socket, peer: tuple, svc: Service) -> socket.socket | None:
        """A plain service's request sent to its fork server from here, the
        accepting thread, before the session's thread is started: the
        session does not wait for that thread to run (0.2-0.7 ms of its
        greeting).  None: the thread spawns it (TLS first, no fork server,
        or one not running)."""
        fs = self.forkservers.get(svc.module)
        if svc.tls or fs is None or self.stopping.is_set():
            return None
        return fs.send(_argv(svc, peer_string(peer))[3:], conn)

    def _session(self, conn: socket.socket, peer: tuple, slot: "_Slot",
                 sent: socket.socket | None = None) -> None:
        svc = slot.svc
        remote = peer_string(peer)
        start = time.monotonic()
        status = "error"
        tls = None
        try:
            if svc.tls:
                tls = TLSStream(self.tls, conn.fileno(), conn.fileno())
                tls.handshake(time.monotonic() + HANDSHAKE_TIMEOUT)
            status = self._serve(conn, tls, remote, slot, sent)
        except OSError as e:          # ssl.SSLError, TimeoutError too
            status = f"error: {e.__class__.__name__}: {e}"
        finally:
            self._release(slot)       # (forgets the fd) before it is closed
            if tls is not None:
                tls.close()
            _close(conn)
            self.log(f"{svc.name} {remote} {status} {time.monotonic() - start:.2f}s")
            with self.lock:
                self.threads.discard(threading.current_thread())

    def _refuse(self, conn: socket.socket, peer: tuple, svc: Service, why: str) -> None:
        """Over a limit: say so (plain services only; no thread, no TLS
        handshake, so a flood costs nothing) and hang up."""
        if svc.busy and not svc.tls:
            conn.setblocking(False)
            try:
                conn.send(svc.busy)
            except OSError:
                pass
        conn.close()
        self.log(f"{svc.name} {peer_string(peer)} refused: {why} 0.00s")

    def _serve(self, conn: socket.socket, tls: TLSStream | None, remote: str,
               slot: "_Slot", sent: socket.socket | None = None) -> str:
        svc = slot.svc
        argv = _argv(svc, remote)
        if tls is not None:
            ours, theirs = socket.socketpair()
            child = self._spawn(svc, argv, theirs)
            theirs.close()
            try:
                relay(tls, conn, ours)
            except OSError:           # the client vanished; the server gets EOF
                pass
            finally:
                _close(ours)
            self._release_peer(slot)  # the relay ends with the connection
        else:
            child = self._spawn(svc, argv, conn, sent)
            try:
                if hangup_or_exit(conn, child):
                    self._release_peer(slot)
            finally:
                self._forget_fd(slot)
                conn.close()          # the child holds it now
        rc = child.wait()
        with self.lock:
            self.children.discard(child)
        return f"pid {child.pid} exit {'unknown' if rc is None else rc}"

    def _spawn(self, svc: Service, argv: list[str], sock: socket.socket,
               sent: socket.socket | None = None):
        """The server on sock: forked by its fork server if it has one
        (exec if that fails), else exec'd.  `sent`: the fork server already
        has the request (_send_early), whose answer is awaited even if the
        launcher is stopping meanwhile."""
        fs = self.forkservers.get(svc.module)
        if fs is not None and (sent is not None or not self.stopping.is_set()):
            try:
                child = fs.spawn(argv[3:], sock, sent)
            except OSError as e:          # ForkServerError, or it could not start
                self.log(f"{svc.name}: {e}; exec instead")
            else:
                with self.lock:
                    self.children.add(child)
                return child
        with self.lock:
            child = subprocess.Popen(argv, stdin=sock.fileno(), stdout=sock.fileno(),
                                     close_fds=True, start_new_session=True)
            self.children.add(child)
        return child

    # -- shutdown -----------------------------------------------------------
    def _drain(self) -> None:
        """Let sessions finish for $LISTEN_GRACE seconds, then end the servers.

        SIGTERM a server, not SIGKILL: a POP3 session that has not sent QUIT
        deletes nothing, and a server mid-write finishes its tmp+rename."""
        deadline = time.monotonic() + config.current().listen_grace
        while self._busy() and time.monotonic() < deadline:
            time.sleep(0.05)
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with self.lock:
                children = list(self.children)
            if not children:
                break
            for c in children:
                _signal(c, sig)
            end = time.monotonic() + wait
            while self._busy() and time.monotonic() < end:
                time.sleep(0.05)
        with self.lock:
            threads = list(self.threads)
        for t in threads:
            t.join(timeout=5)
        for fs in self.forkservers.values():
            fs.stop()

    def _busy(self) -> bool:
        with self.lock:
            return bool(self.threads)


@dataclass(eq=False)
class _Slot:
    """One admitted connection: what it holds of its service's limits, and
    the fd of the launcher's copy of it while the launcher has one."""
    svc: Service
    ip: str
    fd: int | None
    peer_counted: bool = True


def _argv(svc: Service, remote: str) -> list[str]:
    """The server's command, with the peer's address as -r (a fork
    server is given what follows `python -m MODULE`)."""
    return [*svc.argv, "-r", remote]


def hung_up(fd: int) -> bool:
    """The client has closed its end of the connection on fd (now)."""
    rdhup = getattr(select, "POLLRDHUP", None)
    if rdhup is None:
        return False
    p = select.poll()
    p.register(fd, rdhup)
    return bool(p.poll(0))


def hangup_or_exit(conn: socket.socket, child) -> bool:
    """Wait until the client has closed its end of conn (True) or the
    server has exited (False), without reading conn: the server reads
    it.  A client that logs out and reconnects at once must not find its
    old connection counted while the server winds down.  Where the
    system cannot tell a hang-up (no POLLRDHUP) or the exit (no pidfd and
    no fork server's exit message), only the exit counts (False at once)."""
    rdhup = getattr(select, "POLLRDHUP", None)
    exit_fd, own = _exit_fd(child)
    if rdhup is None or exit_fd is None:
        return False
    try:
        p = select.poll()
        p.register(conn.fileno(), rdhup)     # POLLHUP and POLLERR come anyway
        p.register(exit_fd, select.POLLIN)
        while True:
            try:
                events = p.poll()
            except InterruptedError:
                continue
            if any(fd == exit_fd for fd, _ in events):
                return False
            return True
    finally:
        if own:
            os.close(exit_fd)


def _exit_fd(child) -> tuple[int | None, bool]:
    """An fd that becomes readable when the child has exited, and whether
    it is ours to close: a fork server's child tells its exit on its reply
    socket (read later by wait); a subprocess gets a pidfd."""
    reply = getattr(child, "reply", None)
    if reply is not None:
        return reply.fileno(), False
    try:
        return os.pidfd_open(child.pid), True
    except (AttributeError, OSError):
        return None, False


def nodelay(conn: socket.socket) -> None:
    """No Nagle on a TCP connection: a server writes each reply whole (a
    command's untagged lines and its tagged one at once, or the big reply
    and then its last line), and a short last write held back until the
    client acknowledges the one before waits out the client's delayed
    acknowledgement (~40 ms on Linux) at the end of every large reply."""
    if conn.family in (socket.AF_INET, socket.AF_INET6):
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def _close(s: socket.socket) -> None:
    try:
        s.close()
    except OSError:
        pass


def _signal(child, sig: int) -> None:
    try:
        child.send_signal(sig)
    except ProcessLookupError:
        pass


@dataclass
class Options:
    verbose: bool = False
    keep_fs: bool = False
    conffile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    maxconns: int = MAXCONNS
    maxperpeer: int = MAXPERPEER
    addrs: dict[str, str] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> Options:
    try:
        opts, args = getopt.getopt(argv, "uvc:t:k:m:M:l:F:")
    except getopt.GetoptError as e:
        raise ConfigError(str(e)) from None
    o = Options(names=args)
    for k, v in cmdline.assign(o, opts, {"-v": "verbose", "-u": "keep_fs"},
                               {"-c": "conffile", "-t": "certfile", "-k": "keyfile"}):
        if k in ("-m", "-M"):
            if not v.isdigit() or int(v) < 1:
                raise ConfigError(f"{k}: want a positive number")
            setattr(o, "maxconns" if k == "-m" else "maxperpeer", int(v))
        elif k in ("-l", "-F"):
            name, eq, val = v.partition("=")
            if not eq:
                raise ConfigError(f"{k}: want name=value")
            if k == "-l":
                parse_addr(val)
                o.addrs[name] = val
            else:
                o.flags[name] = shlex.split(val)
    return o


def configure(o: Options) -> list[Service]:
    """The services to run, from the defaults, conffile and flags."""
    services = default_services(o.certfile)
    if o.conffile:
        with open(o.conffile) as f:
            parse_conf(f.read(), services)
    for name in [*o.addrs, *o.flags, *o.names]:
        if name not in services:
            raise ConfigError(f"unknown service: {name}")
    chosen = [services[n] for n in (o.names or services)]
    for svc in chosen:
        svc.addr = o.addrs.get(svc.name, svc.addr)
        svc.argv = [*svc.argv, *o.flags.get(svc.name, [])]
        svc.maxconns, svc.maxperpeer = o.maxconns, o.maxperpeer
    if any(s.tls for s in chosen) and not o.certfile:
        if o.names:
            raise ConfigError("TLS services need -t certfile")
        print("listen: no -t certfile: TLS services not started", file=sys.stderr)
        chosen = [s for s in chosen if not s.tls]
    return chosen


def _start_broker():
    """-u: post the upasfs broker; the servers inherit $upasfs naming it."""
    from upas.fsbroker import Broker
    broker = Broker(config.current().mailroot)
    os.environ["upasfs"] = broker.start()
    return broker


def main(argv: list[str] | None = None) -> int:
    try:
        o = parse_args(sys.argv[1:] if argv is None else argv)
        services = configure(o)
        tls = server_context(o.certfile, o.keyfile) if o.certfile else None
    except (ConfigError, OSError, ssl.SSLError) as e:
        print(f"listen: {e}\n{USAGE}", file=sys.stderr)
        return 1
    launcher = Launcher(services, tls)
    try:
        bound = launcher.announce()
        broker = _start_broker() if o.keep_fs else None
    except OSError as e:
        print(f"listen: announce: {e}", file=sys.stderr)
        return 1
    for svc, addr in bound:
        # stdout: one line per service, so a parent can learn ephemeral ports
        print(f"announce {svc.name} {addr}{' tls' if svc.tls else ''}", flush=True)
        if o.verbose:
            launcher.log(f"{svc.name} on {addr}: {shlex.join(svc.argv)}")
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: launcher.stop())
    signal.signal(signal.SIGINT, lambda *_: launcher.stop())
    try:
        launcher.run()
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
