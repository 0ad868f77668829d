"""One upasfs per user, kept alive across sessions, behind one posted name.

    python -m upas.fsbroker [-s service]      (default service: upasfs)

The launcher's -u.  Starting upas/fs for every POP3 or IMAP session costs a
process start and a mailbox scan; a upasfs that stays up answers the next
session at once.  But a upasfs serves only its owner, so this broker posts
`upasfs` in $NAMESPACE and, for each connection, reads the client's
Tversion and Tattach, starts (or restarts, if it died) the attaching user's
own upasfs, posted as `upasfs.USER`, replays the two messages to it and
then splices the bytes: the session talks to its user's upasfs directly.
Only users with a mail directory ($MAILROOT/box/USER) get one.  With -s
tcp!*!PORT a mail store serves every user's mail to frontends on other
hosts (9P on TCP has no authentication: private networks only).

A broker that was killed leaves its users' upasfs running, posted and
holding their mailboxes.  The next broker adopts them (the process on the
far end of a posted `upasfs.USER` socket that answers, found by the
socket's peer credentials) rather than start a second upasfs that could
not post: so a restart leaves exactly one upasfs per user, and a broker
stops every upasfs it started or adopted.
"""
from __future__ import annotations

import array
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from lib import cmdline
from upas import config
from upas.ninep import codec
from upas.ninep.dial import dial, namespace_dir, post, service_path
from upas.ninep.server import HANDOVER_ANAME, PIPELINE_ANAME, nodelay

MSIZE = 65536 + codec.IOHDRSZ       # offered to clients; upasfs accepts more
USERNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
PREFIX = "upasfs."                  # a user's upasfs is posted as upasfs.USER
HANDOVER_FID = 0                    # the afid of the hand-over probe (no fid is made)


class BrokerError(Exception):
    pass


class Broker:
    def __init__(self, mailroot: str, name: str = "upasfs", log=None):
        self.mailroot = mailroot
        self.name = name                # where the broker is posted (or announced)
        self.log = log or (lambda s: print(f"fsbroker: {s}", file=sys.stderr, flush=True))
        self.lock = threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.listener: socket.socket | None = None

    # -- the per-user servers ------------------------------------------------
    @staticmethod
    def _service(user: str) -> str:
        return f"upasfs.{user}"

    def ensure(self, user: str) -> str:
        """The dial string of user's upasfs, started if not running."""
        if not USERNAME.fullmatch(user) or not os.path.isdir(
                os.path.join(self.mailroot, "box", user)):
            raise BrokerError("permission denied")
        with self.lock:
            p = self.procs.get(user)
            if p is None or p.poll() is not None:
                if p is not None:
                    self.log(f"upasfs for {user} exited with status {p.returncode}; restarting")
                p = self._start(user)
                self.procs[user] = p
        addr = "unix!" + service_path(self._service(user))
        self._wait(addr, p)
        return addr

    def _start(self, user: str) -> subprocess.Popen:
        # -n: no mailbox at start (the servers `open` theirs); -p: no plumber
        env = dict(os.environ, user=user, USER=user, LOGNAME=user, MAILROOT=self.mailroot)
        return subprocess.Popen([sys.executable, "-m", "upas.fs9p", "-n", "-p",
                                 "-m", self._service(user)], env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def _wait(self, addr: str, p: subprocess.Popen) -> None:
        end = time.monotonic() + config.current().fsbroker_startup_secs
        while True:
            try:
                dial(addr).close()
                return
            except OSError:
                pass
            if p.poll() is not None or time.monotonic() > end:
                raise BrokerError("can't initialize upas/fs")
            time.sleep(0.02)

    def adopt(self) -> None:
        """Take over the users' upasfs a killed broker left running."""
        for user, proc in running(namespace_dir()).items():
            with self.lock:
                if user not in self.procs:
                    self.procs[user] = proc
                    self.log(f"adopted upasfs for {user} (pid {proc.pid})")

    def pids(self) -> dict[str, int]:
        with self.lock:
            return {u: p.pid for u, p in self.procs.items() if p.poll() is None}

    # -- serving -------------------------------------------------------------
    def start(self) -> str:
        """Post the broker and serve in a thread; returns its dial string."""
        self.listener = post(self.name)
        self.adopt()
        threading.Thread(target=self._accept, daemon=True, name="fsbroker").start()
        if "!" in self.name:
            return self.name
        return "unix!" + service_path(self.name)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            nodelay(conn)
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        backend = None
        try:
            backend = self._handshake(conn)
            if backend is not None:
                splice(conn, backend)
        except (OSError, codec.ProtocolError):
            pass
        finally:
            for s in (conn, backend):
                if s is not None:
                    s.close()

    def _handshake(self, conn: socket.socket) -> socket.socket | None:
        """Answer Tversion (and Tauth) ourselves; at Tattach connect the
        user's upasfs, replay version and attach, and hand over; the
        connection to upasfs if the bytes are to be spliced (None: the
        client hung up, was refused, or is upasfs's own now)."""
        msize = MSIZE
        while True:
            m = codec.read_msg(conn, msize)
            if m is None:
                return None
            if isinstance(m, codec.Tversion):
                msize = min(m.msize, MSIZE)
                conn.sendall(codec.pack(codec.Rversion(m.tag, msize, codec.VERSION)))
            elif isinstance(m, codec.Tattach):
                return self._attach(conn, m, msize)
            else:
                conn.sendall(codec.pack(codec.Rerror(m.tag, _refusal(m))))

    def _attach(self, conn: socket.socket, m: codec.Tattach, msize: int) -> socket.socket | None:
        try:
            addr = self.ensure(m.uname)
            backend = dial(addr)
        except (BrokerError, OSError) as e:
            conn.sendall(codec.pack(codec.Rerror(m.tag, str(e) if isinstance(e, BrokerError)
                                                 else "can't initialize upas/fs")))
            return None
        # with the version, ask whether it takes the client's connection
        # itself (HANDOVER_ANAME): the answer costs no round trip of its own
        backend.sendall(codec.pack(codec.Tversion(codec.NOTAG, msize, codec.VERSION)) +
                        codec.pack(codec.Tauth(0, HANDOVER_FID, "", HANDOVER_ANAME)))
        r = codec.read_msg(backend, msize)
        probe = codec.read_msg(backend, msize) if isinstance(r, codec.Rversion) else None
        if not isinstance(r, codec.Rversion) or r.msize != msize or probe is None:
            backend.close()
            conn.sendall(codec.pack(codec.Rerror(m.tag, "can't initialize upas/fs")))
            return None
        if isinstance(probe, codec.Rerror) and probe.ename == HANDOVER_ANAME:
            # the Tattach goes with the client's connection itself: upasfs
            # answers it there and serves the client directly from then on
            # (the broker's copies close when _session ends)
            fds = array.array("i", [conn.fileno()])
            backend.sendmsg([codec.pack(m)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            backend.close()
            return None
        backend.sendall(codec.pack(m))
        return backend

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            if "!" not in self.name:
                try:
                    os.unlink(service_path(self.name))
                except OSError:
                    pass
        with self.lock:
            procs = list(self.procs.values())
            self.procs.clear()
        stop_all(procs)


class Adopted:
    """A upasfs another broker started: not our child, so watched and
    stopped by its pid (the Popen calls the broker makes)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not _alive(self.pid):
            self.returncode = -1            # its status went to its parent
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode


def _alive(pid: int) -> bool:
    """Running, not a zombie nobody has reaped yet (a container's init may
    never reap an orphan)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:         # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def running(nsdir: str) -> dict[str, Adopted]:
    """The users' upasfs posted in name space directory `nsdir` that
    answer: the pid at the far end of each socket (SO_PEERCRED), if that
    process is our upasfs."""
    found = {}
    try:
        names = os.listdir(nsdir)
    except OSError:
        return found
    for name in names:
        user = name[len(PREFIX):]
        if not name.startswith(PREFIX) or not USERNAME.fullmatch(user):
            continue
        pid = _server_pid(os.path.join(nsdir, name))
        if pid is not None and _is_upasfs(pid):
            found[user] = Adopted(pid)
    return found


def _server_pid(path: str) -> int | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return None
    pid = struct.unpack("3i", cred)[0]
    return pid or None


def _is_upasfs(pid: int) -> bool:
    """Not some other process that took a reused pid or the socket name."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"upas.fs9p" in f.read().split(b"\0")
    except OSError:
        return False


def stop_all(procs) -> None:
    """SIGTERM the upasfs (Popen or Adopted), then SIGKILL any that lingers."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _refusal(m: codec.Msg) -> str:
    """The Rerror for a request before Tattach: a Tauth is answered as
    upasfs answers it (the sessions end up talking to a upasfs of ours,
    so walks may be pipelined: see PIPELINE_ANAME)."""
    if not isinstance(m, codec.Tauth):
        return "not attached"
    if m.aname == PIPELINE_ANAME:
        return PIPELINE_ANAME
    return "upas/fs: authentication not required"


def splice(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side hangs up."""
    def copy(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    t = threading.Thread(target=copy, args=(b, a), daemon=True)
    t.start()
    copy(a, b)
    t.join()


def main(argv: list[str] | None = None) -> int:
    import signal
    opts = cmdline.flags(sys.argv[1:] if argv is None else argv, "s:",
                         "usage: fsbroker [-s service]")
    if opts is None:
        return 1
    broker = Broker(config.current().mailroot, dict(opts).get("-s", "upasfs"))
    try:
        broker.start()
    except OSError as e:
        print(f"fsbroker: post {broker.name}: {e}", file=sys.stderr)
        return 1
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
