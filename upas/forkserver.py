"""A fork server: a process that has imported a server once and forks a
fresh copy of it for each connection.

    python -m upas.forkserver FD MODULE      (started by upas.listen)

Every session of ours is `python -m upas.pop3` or `python -m upas.imap4d`
run on the connection, as listen(8) runs Plan 9's; starting the
interpreter and importing the server cost ~0.1-0.2 s of each.  The
launcher (upas/listen.py) is threaded, so it must not fork itself: it
starts this small single-threaded process per server module, which runs
the module's import statements and nothing else (no 9P connection, no
thread, no secret), then forks a child ahead of each request (a spare,
see serve) and hands it the request's connection.  The child becomes exactly what exec
would have made: its own process and session, the connection as fd 0
and 1, stderr the launcher's, `sys.argv` the server's, the module run as
`__main__`, the interpreter's normal exit.  Python's `random` reseeds
itself in a forked child (os.register_at_fork); our servers draw every
secret from os.urandom.

The launcher's side is ForkServer.spawn.  Over the control socket (FD,
SOCK_SEQPACKET) each request is the server's arguments, NUL-separated,
carrying two descriptors by SCM_RIGHTS: the connection and a reply
socket, on which the fork server answers `pid N` and, when the child
has been reaped, `exit STATUS` (Popen's returncode: -N for signal N).
If the fork server dies, the reply socket ends without `exit`; the
launcher then watches the child through a pidfd, and starts a new fork
server for the next connection.
"""
from __future__ import annotations

import gc
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable

from upas import config

MAXREQ = 65536
# The next spare is forked SPARE_QUIET after a hand-out: not at once,
# for the spare just handed its connection is woken on this process's
# core and waits for the fork (~1 ms of it: that connection reached its
# spare 2.0-2.2 ms after the launcher accepted it, against 0.8 at 2-4
# ms), and the session's greeting is out ~1 ms after that.  The spare
# then prepares at once (PREPARE_AFTER; the server's spare.STEPS, ~4 ms
# of CPU, then _touch_heap's ~1.3 ms), so that it is ready for a client
# that connects again as soon as its last session is in (bench idle-10:
# one every ~17-20 ms).  Waiting 10 ms first (round 4's tenth part: to
# keep the steps off the login of the session just started), it finished
# them before 13-16 of 80 such connections, and a session whose spare had
# not cost ~2.5 ms more CPU after its connection, its greeting waiting
# for the step under way; at once, before 79 of 80 (docs/performance.md,
# round 4's twelfth part).
SPARE_QUIET = 0.003     # seconds after a connection before the next spare is forked
FORK_RETRY = 0.05       # seconds before a spare whose fork failed is forked again
PREPARE_AFTER = 0.0     # seconds a spare waits for its connection before it prepares
HEAP_AHEAD = 4 << 20     # bytes of heap malloc keeps for a session (_malloc_keeps)
# Of which a spare touches TOUCH_AHEAD (_touch_heap): a SELECT of 10,000
# messages took as few page faults after 2 MB as after 4 (~450; ~600
# after 1 MB), and the other 2 MB cost the spare ~500 faults (~1.3 ms)
# and its idle session their memory.
TOUCH_AHEAD = 2 << 20
M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3      # glibc's mallopt parameters


# -- the launcher's side --------------------------------------------------

class ForkServerError(OSError):
    pass


class ForkedChild:
    """A session forked by a fork server; what the launcher needs of a
    subprocess.Popen: pid, send_signal, wait."""

    def __init__(self, pid: int, reply: socket.socket, pidfd: int | None):
        """pidfd: opened by the fork server before it could reap the child,
        so it names this process even if the pid is soon reused (None: no
        pidfds on this system)."""
        self.pid, self.reply, self.pidfd = pid, reply, pidfd
        self.returncode: int | None = None
        self.lock = threading.Lock()          # the pidfd: signalled while wait ends

    def send_signal(self, sig: int) -> None:
        with self.lock:
            if self.returncode is not None:
                return
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, sig)
            else:
                os.kill(self.pid, sig)

    def wait(self) -> int | None:
        """The exit status; None if the fork server died before telling it
        (then we wait until the process is gone, status unknown)."""
        try:
            msg = self.reply.recv(64)
        except OSError:
            msg = b""
        if not msg.startswith(b"exit "):
            self._wait_gone()
        with self.lock:
            if msg.startswith(b"exit "):
                self.returncode = int(msg[5:])
            self.reply.close()
            if self.pidfd is not None:
                os.close(self.pidfd)
                self.pidfd = None
        return self.returncode

    def _wait_gone(self) -> None:
        if self.pidfd is not None:
            sel = selectors.DefaultSelector()
            sel.register(self.pidfd, selectors.EVENT_READ)
            sel.select()
            sel.close()
            return
        while True:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


class ForkServer:
    """One fork server for `module`: started by start() (or the first
    spawn), restarted by a spawn that finds it dead."""

    def __init__(self, module: str, log=None):
        self.module = module
        self.log = log or (lambda s: None)
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.ctl: socket.socket | None = None

    def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "upas.forkserver", str(theirs.fileno()), self.module],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.ctl = ours

    def spawn(self, args: list[str], conn: socket.socket,
              sent: socket.socket | None = None) -> ForkedChild:
        """Fork a session running the module with `args` on conn; a fork
        server found dead is restarted once.  `sent`: the reply socket of
        the request already sent by send()."""
        for _ in range(2):
            if sent is None:
                with self.lock:
                    if self.proc is None or self.proc.poll() is not None:
                        if self.proc is not None:
                            self.log(f"fork server {self.module} pid {self.proc.pid} "
                                     f"exit {self.proc.returncode}; restarting")
                            self.ctl.close()
                        self.start()
                    sent = self._send(args, conn)
            child = self._answer(sent) if sent is not None else None
            if child is not None:
                return child
            sent = None
            self._reap_dead()
        raise ForkServerError(f"fork server {self.module} failed")

    def send(self, args: list[str], conn: socket.socket) -> socket.socket | None:
        """The first half of spawn, for the launcher's accepting thread: the
        request sent at once to a fork server that is running (its reply
        socket, for spawn), so that a session's start does not wait for
        the thread that will watch it; None: spawn does it all."""
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                return None
            return self._send(args, conn)

    def _send(self, args: list[str], conn: socket.socket) -> socket.socket | None:
        """(Lock held.)  The request on the control socket: its reply
        socket, or None if it could not be sent."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            payload = "\0".join(args).encode()
            socket.send_fds(self.ctl, [payload], [conn.fileno(), theirs.fileno()])
        except OSError:
            ours.close()
            return None
        finally:
            theirs.close()
        return ours

    def _answer(self, ours: socket.socket) -> ForkedChild | None:
        """The forked child, from the fork server's `pid N` (None: no answer)."""
        msg, fds = b"", []
        ours.settimeout(config.current().forkserver_startup_secs)     # a fork server still importing answers late
        try:
            msg, fds, _, _ = socket.recv_fds(ours, 64, 1)
        except OSError:
            pass
        ours.settimeout(None)
        if msg.startswith(b"pid "):
            return ForkedChild(int(msg[4:]), ours, fds[0] if fds else None)
        for fd in fds:
            os.close(fd)
        ours.close()
        return None

    def _reap_dead(self) -> None:
        """The fork server did not answer: make sure it is gone, so the
        next spawn starts a new one."""
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        """Hang up; the fork server exits (its sessions carry on)."""
        with self.lock:
            if self.ctl is not None:
                self.ctl.close()
            if self.proc is not None:
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()


# -- the fork server ------------------------------------------------------

def _preload(module: str) -> None:
    """Import the server's modules without running it: for a package, its
    modules but __main__ and private ones; then every import statement in
    them and in what `python -m module` runs, those in functions too (a server
    imports some things only when a session needs them: pop3 and imap4d
    the factotum client and DES at login), each alone.  Nothing else of
    the module run as __main__ is run (it may act on import).  A failure
    is left for the child to meet, as exec would."""
    import importlib
    import importlib.util
    import pkgutil
    try:
        spec = importlib.util.find_spec(module)
        if spec is None:
            return
        specs = [spec]
        if spec.submodule_search_locations is not None:
            names = [f"{module}.{m.name}" for m in
                     pkgutil.iter_modules(spec.submodule_search_locations)
                     if not m.name.startswith("_")]
            for name in names:
                _try(importlib.import_module, name)
            specs = [importlib.util.find_spec(n) for n in [*names, module + ".__main__"]]
    except Exception:
        return
    for s in specs:
        if s is not None:
            _try(_run_imports, s)


def _run_imports(spec) -> None:
    import ast
    tree = ast.parse(spec.loader.get_source(spec.name), spec.origin)
    scope = {"__name__": "__forkserver_preload__", "__package__": spec.parent}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) or (
                isinstance(node, ast.ImportFrom) and node.module != "__future__"):
            _try(exec, compile(ast.Module(body=[node], type_ignores=[]), spec.origin, "exec"),
                 scope)


def _warm() -> None:
    """Load here, once, what each session's first name lookup and first
    TLS context would load for itself (~5 ms of a session): the
    resolver's NSS modules and the idna codec (imap4d's default server
    name is socket.getfqdn()), and OpenSSL's configuration (an empty
    server context).  Nothing found is kept and no secret is read: each
    session still looks its names up and reads its certificate."""
    import socket
    _try(socket.getfqdn)
    try:
        import ssl
    except ImportError:
        return
    _try(ssl.SSLContext, ssl.PROTOCOL_TLS_SERVER)


def _try(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:
        pass


def serve(ctl: socket.socket, steps: tuple[Callable[[], None], ...] = ()) -> list[str] | None:
    """Hand each request's connection to a child until the launcher hangs
    up (None).  In a child, returns its server arguments with fds 0/1 the
    connection.

    The child is forked ahead (Dovecot's process_min_avail, one spare):
    a spare, forked SPARE_QUIET after the last was handed out, waits for
    the next connection on a socket of its own, so the fork and the
    child's first steps are not on a client's path, even when a client
    connects again at once; a request that finds no spare is forked for,
    as before.  Until its connection comes a spare holds nothing but what
    the fork server holds (no connection, no user, no secret); it exits
    when the fork server goes.  A spare found dead is replaced by a fork
    on the request.  `steps`, if any, are what a spare does when no
    connection has come for PREPARE_AFTER (the server's spare.STEPS,
    see _spare_hook): work of no user's, done before the connection
    rather than after it, beside the session just started (on another
    core, while that one waits for its client, factotum or upasfs)."""
    return _Forker(ctl, steps).run()


class _Forker:
    def __init__(self, ctl: socket.socket, steps: tuple[Callable[[], None], ...] = ()):
        self.ctl, self.steps = ctl, steps
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel = selectors.DefaultSelector()
        self.sel.register(ctl, selectors.EVENT_READ)
        self.sel.register(self.wake_r, selectors.EVENT_READ)
        self.children: dict[int, socket.socket] = {}
        self.spare: tuple[int, socket.socket] | None = None    # pid, its socket
        self.fork_at = 0.0                  # when the next spare may be forked

    def run(self) -> list[str] | None:
        args = self._fork_spare()
        while args is None:
            ready = self.sel.select(self._until_spare())
            if not ready and self.spare is None:
                args = self._fork_spare()
            for key, _ in ready:
                if key.fileobj is self.wake_r:
                    _drain(self.wake_r)
                    _reap(self.children)
                    continue
                args = self._request()
                if args is not None:
                    break
                if self.ctl.fileno() < 0:
                    return None                 # the launcher is gone
        return args

    def _until_spare(self) -> float | None:
        """Seconds until the next spare is forked (None: there is one)."""
        if self.spare is not None:
            return None
        return max(0.0, self.fork_at - time.monotonic())

    def _request(self) -> list[str] | None:
        """Serve one request; in a child, its arguments."""
        msg, fds, _, _ = socket.recv_fds(self.ctl, MAXREQ, 2)
        if not msg and not fds:
            self.ctl.close()
            return None
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return None
        conn, reply = fds[0], socket.socket(fileno=fds[1])
        pid = self._hand_to_spare(msg, conn)
        if pid is None:
            pid = os.fork()
            if pid == 0:
                self._leave(reply)
                return _take(conn, msg)
        os.close(conn)
        self.children[pid] = reply
        _send_pid(reply, pid)
        self.fork_at = time.monotonic() + SPARE_QUIET
        return None

    def _hand_to_spare(self, msg: bytes, conn: int) -> int | None:
        """The spare's pid once it has the connection; None if there is
        none or it died (a dead one's socket refuses the send)."""
        if self.spare is None:
            return None
        pid, sock = self.spare
        self.spare = None
        try:
            socket.send_fds(sock, [msg], [conn])
        except OSError:
            return None
        finally:
            sock.close()
        return pid

    def _fork_spare(self) -> list[str] | None:
        """Fork the next spare.  In it, when its connection has come, the
        server arguments; it exits if the fork server goes first."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:                     # no spare: the next request forks
            ours.close()
            theirs.close()
            self.fork_at = time.monotonic() + FORK_RETRY
            return None
        if pid:
            theirs.close()
            self.spare = (pid, ours)
            return None
        self._leave(ours)
        msg, fds = _spare_wait(theirs, self.steps)
        if not fds:
            os._exit(0)
        theirs.close()
        return _take(fds[0], msg)

    def _leave(self, *more: socket.socket) -> None:
        """In a new child: its own session, the fork server's signals
        undone, none of its descriptors kept (`more` closed too)."""
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.sel.close()
        spare = [self.spare[1]] if self.spare is not None else []
        for s in [self.ctl, self.wake_r, self.wake_w, *more, *spare, *self.children.values()]:
            s.close()
        self.children.clear()
        self.spare = None


def _spare_wait(sock: socket.socket, steps: tuple[Callable[[], None], ...]) -> tuple[bytes, list[int]]:
    """In a spare: its request (the arguments, the connection), or no
    descriptor if the fork server went first.  If none has come after
    PREPARE_AFTER, the steps are run, then the heap touched
    (_touch_heap), each only while the connection has not come: one
    that comes meanwhile waits for the step under way, not for the rest
    (all are work done later, or never needed, if left out)."""
    if steps:
        try:
            if PREPARE_AFTER > 0:        # (a timeout of 0 would not wait at all)
                return _recv_request(sock, PREPARE_AFTER)
        except TimeoutError:
            pass
        except OSError:
            return b"", []
        for step in (*steps, lambda: _touch_heap(TOUCH_AHEAD)):
            if select.select([sock], [], [], 0)[0]:
                break
            _try(step)
    try:
        return _recv_request(sock, None)
    except OSError:
        return b"", []


def _recv_request(sock: socket.socket, timeout: float | None) -> tuple[bytes, list[int]]:
    sock.settimeout(timeout)
    msg, fds, _, _ = socket.recv_fds(sock, MAXREQ, 1)
    return msg, fds


def _malloc_keeps(nbytes: int) -> None:
    """glibc's malloc told to serve blocks under 2 * `nbytes` from its heap
    (not each from an mmap of its own, unmapped at its free: the spare's
    block of `nbytes` too) and to keep `nbytes` free at the heap's top
    when it shrinks: memory a session frees is used again without new
    page faults (each ~2.6 us here), and what a spare touched ahead
    (_touch_heap) stays for its session.  An idle session holds at most
    that much more (bench idle-10: 10.2 -> 11.2 MB PSS a session).  Set
    in the fork server, so every child has it.  Not glibc: nothing."""
    import ctypes
    if nbytes <= 0:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, 2 * nbytes)
    mallopt(M_TOP_PAD, nbytes)


def _touch_heap(nbytes: int) -> None:
    """In a spare: `nbytes` of the heap's top written now (a block
    allocated, zeroed, freed: kept by _malloc_keeps), so that its
    session's first big allocations (a SELECT's files and columns) take
    no page fault: the faults are the spare's, before its connection."""
    import ctypes
    if nbytes <= 0:
        return
    try:
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return
    p = libc.malloc(nbytes)
    if p:
        ctypes.memset(p, 0, nbytes)
        libc.free(p)


def _take(conn: int, msg: bytes) -> list[str]:
    """In a child: the connection as fds 0 and 1; its server arguments."""
    os.dup2(conn, 0)
    os.dup2(conn, 1)
    if conn > 2:
        os.close(conn)
    return msg.decode().split("\0") if msg else []


def _drain(s: socket.socket) -> None:
    try:
        while s.recv(4096):
            pass
    except BlockingIOError:
        pass


def _reap(children: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        reply = children.pop(pid, None)
        if reply is not None:
            _send(reply, b"exit %d" % os.waitstatus_to_exitcode(status))
            reply.close()


def _send_pid(reply: socket.socket, pid: int) -> None:
    """`pid N`, with a pidfd of the child: opened here, where the child
    cannot have been reaped yet, it cannot name another process."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):         # no pidfds here: the pid alone
        _send(reply, b"pid %d" % pid)
        return
    try:
        socket.send_fds(reply, [b"pid %d" % pid], [pidfd])
    except OSError:                           # the launcher's session thread is gone
        pass
    finally:
        os.close(pidfd)


def _send(s: socket.socket, data: bytes) -> None:
    try:
        s.send(data)
    except OSError:           # the launcher's session thread is gone
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: forkserver fd module", file=sys.stderr)
        return 1
    fd, module = int(argv[0]), argv[1]
    ctl = socket.socket(fileno=fd)
    _preload(module)
    _warm()
    main_code = _main_code(module)
    steps = _spare_hook(module)
    _try(_malloc_keeps, HEAP_AHEAD)
    gc.collect()
    gc.freeze()           # the children share these pages; no GC copies them
    args = serve(ctl, steps)
    if args is None:
        return 0
    import runpy
    sys.argv = [module, *args]
    try:
        if main_code is not None:
            _run_main(*main_code)
        else:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code
    _exit(code)
    return 0


def _main_code(module: str):
    """(spec, code) of what `python -m module` runs, found and compiled
    here once: runpy's search and unmarshalling in each child cost ~3 ms
    of its connect-to-greeting.  None if it cannot be had: the child's
    runpy then meets the failure, as exec would."""
    import importlib.util
    try:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(module + ".__main__")
        if spec is None or spec.loader is None:
            return None
        code = spec.loader.get_code(spec.name)
    except Exception:
        return None
    return (spec, code) if code is not None else None


def _spare_hook(module: str) -> tuple[Callable[[], None], ...]:
    """`STEPS` of the server's module `spare` (upas/imap4d/spare.py,
    upas/pop3/spare.py), if it has one: what its spares do, in turn,
    before their connection comes.  Only a package's: a plain module is
    not imported here (it is what `python -m` runs, and may act on
    import)."""
    import importlib
    import importlib.util
    try:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.submodule_search_locations is None:
            return ()
        return tuple(importlib.import_module(module + ".spare").STEPS)
    except Exception:
        return ()


def _run_main(spec, code) -> None:
    """Run `code` as runpy.run_module(..., run_name="__main__",
    alter_sys=True) would: a fresh __main__ module with the spec's
    names, sys.argv[0] the file."""
    import builtins
    import types
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=spec.origin, __cached__=spec.cached, __loader__=spec.loader,
                         __package__=spec.parent, __spec__=spec, __builtins__=builtins)
    sys.modules["__main__"] = main
    sys.argv[0] = spec.origin
    exec(code, main.__dict__)


def _exit(code) -> None:
    """End the session as the interpreter's exit would (atexit handlers,
    stdio flushed, the status of sys.exit), without its teardown: freeing
    every object the fork server made writes to each page the child still
    shares with it (a copy of each), several ms of a short session."""
    import atexit
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    os._exit(status & 0xFF if status >= 0 else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
