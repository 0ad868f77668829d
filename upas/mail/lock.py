"""The mail lock: `L.mbox` in a mailbox's directory (docs/design.md).

Plan 9 makes L.mbox an exclusive-use file; on Unix we hold an fcntl lock on
it.  Acquisition retries for up to 5 minutes, as upas does; every 0.5 s as
upas does once it has waited a while, but first after 5 ms, then twice as
long each time (with some randomness): a session's hold is a few ms, and
with 50 sessions selecting at once the fixed 0.5 s made each wait 0.25 s
per busy try on average (docs/performance.md, round 4).  Everybody who
writes a mailbox file takes it.

L.mbox is 0666, as on Plan 9: anyone who can reach the mailbox directory
can hold the lock (docs/running.md).  So the servers that answer clients
(upasfs, imap4d, pop3) call `for_sessions()`: they wait at most
UPAS_SESSION_LOCK_TIMEOUT seconds (default 30) and then fail the command
with LockError ("can't lock mailbox"), changing nothing; deliveries keep
upas's 5 minutes.
"""
from __future__ import annotations

import errno
import fcntl
import os
import random
import threading
import time
from typing import Any, Callable, Hashable

from upas import config

RETRY = 0.5                 # the longest wait between two tries
FIRST_RETRY = 0.005         # the first; doubled at each try up to RETRY
_sessions = False


def for_sessions() -> None:
    """This process answers clients: its lock waits are
    $UPAS_SESSION_LOCK_TIMEOUT at most (a client is not kept waiting
    minutes on someone else's lock)."""
    global _sessions
    _sessions = True


def default_timeout() -> float:
    """How long this process waits for a lock ($UPAS_LOCK_TIMEOUT, or less
    after for_sessions)."""
    cfg = config.current()
    if _sessions:
        return min(cfg.upas_lock_timeout, cfg.upas_session_lock_timeout)
    return cfg.upas_lock_timeout


LOCKFILE = "L.mbox"


# fcntl locks belong to the process, and closing any descriptor of the file
# drops them; an exclusive-use file is open once a process: so one record
# per lock is shared by the whole process (a mutex for its threads, what
# holds the lock, a nesting depth).
class _Held:
    def __init__(self) -> None:
        self.mutex = threading.RLock()
        self.handle: Any = None
        self.depth = 0


_held: dict[Hashable, _Held] = {}
_held_lock = threading.Lock()


class LockError(Exception):
    TEXT = "can't lock mailbox"     # also what upasfs answers (an Rerror)

    def __init__(self, text: str = TEXT):
        super().__init__(text)


def _record(key: Hashable) -> _Held:
    with _held_lock:
        return _held.setdefault(key, _Held())


class Lock:
    """The wait of every mail lock: re-entrant in a thread, shared by a
    process's threads, retried every RETRY seconds until `timeout`.
    Subclasses say how to take it once (`attempt`: a handle, or None when
    someone else holds it) and how to let it go (`drop`)."""

    def __init__(self, key: Hashable, timeout: float | None = None):
        self.key = key
        self.timeout = default_timeout() if timeout is None else timeout

    def attempt(self) -> Any:
        raise NotImplementedError

    def drop(self, handle: Any) -> None:
        raise NotImplementedError

    def acquire(self) -> None:
        h = _record(self.key)
        if not h.mutex.acquire(timeout=self.timeout):
            raise LockError()
        if h.depth == 0:
            try:
                h.handle = self._wait()
            except BaseException:
                h.mutex.release()
                raise
        h.depth += 1

    def _wait(self) -> Any:
        deadline = time.monotonic() + self.timeout
        wait = FIRST_RETRY
        while True:
            handle = self.attempt()
            if handle is not None:
                return handle
            if time.monotonic() >= deadline:
                raise LockError()
            time.sleep(wait * random.uniform(0.5, 1.0))    # tries apart, not in step
            wait = min(wait * 2, RETRY)

    def release(self) -> None:
        h = _record(self.key)
        h.depth -= 1
        if h.depth == 0 and h.handle is not None:
            handle, h.handle = h.handle, None
            self.drop(handle)
        h.mutex.release()

    def __enter__(self) -> "Lock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# A kernel mount of a Plan 9 file server (9pfuse of the store's boxfs)
# refuses a second open of the exclusive-use L.mbox: Plan 9's "exclusive
# use file already open", which 9pfuse's errstr table does not know and
# turns into ERANGE (its default); EBUSY where a mount maps "in use".
_OPEN_BUSY = (errno.ERANGE, errno.EBUSY)


class MailLock(Lock):
    """`<dirpath>/L.mbox` on this host, held with fcntl."""

    def __init__(self, dirpath: str, timeout: float | None = None):
        self.path = os.path.join(dirpath, LOCKFILE)
        super().__init__(self.path, timeout)

    def attempt(self) -> int | None:
        old = os.umask(0)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            if e.errno in _OPEN_BUSY:
                return None
            raise
        finally:
            os.umask(old)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            return None

    def drop(self, fd: int) -> None:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        os.close(fd)


class OpenLock(Lock):
    """A lock held by keeping a file open: Plan 9's exclusive-use L.mbox
    on a file server (upas/boxfs.py).  `opener` opens it, or returns None
    while another holds it open; closing the file lets it go, and so does
    a hang-up of the connection it was opened on."""

    def __init__(self, key: Hashable, opener: Callable[[], Any], timeout: float | None = None):
        super().__init__(key, timeout)
        self.opener = opener

    def attempt(self) -> Any:
        return self.opener()

    def drop(self, f: Any) -> None:
        try:
            f.close()
        except Exception:   # noqa: BLE001 -- hung up: the lock went with it
            pass
