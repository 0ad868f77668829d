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


# fcntl locks belong to the process, and closing any descriptor of the file
# drops them: so one record per lock file is shared by the whole process (a
# mutex for its threads, the descriptor, a nesting depth).
class _Held:
    def __init__(self) -> None:
        self.mutex = threading.RLock()
        self.fd: int | None = None
        self.depth = 0


_held: dict[str, _Held] = {}
_held_lock = threading.Lock()


class LockError(Exception):
    TEXT = "can't lock mailbox"     # also what upasfs answers (an Rerror)

    def __init__(self, text: str = TEXT):
        super().__init__(text)


def _record(path: str) -> _Held:
    with _held_lock:
        return _held.setdefault(path, _Held())


class MailLock:
    """Context manager holding `<dirpath>/L.mbox` (re-entrant in a thread)."""

    def __init__(self, dirpath: str, timeout: float | None = None):
        self.path = os.path.join(dirpath, "L.mbox")
        self.timeout = default_timeout() if timeout is None else timeout

    def acquire(self) -> None:
        h = _record(self.path)
        if not h.mutex.acquire(timeout=self.timeout):
            raise LockError()
        if h.depth == 0:
            try:
                h.fd = self._lock_file()
            except BaseException:
                h.mutex.release()
                raise
        h.depth += 1

    def _lock_file(self) -> int:
        old = os.umask(0)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        finally:
            os.umask(old)
        deadline = time.monotonic() + self.timeout
        wait = FIRST_RETRY
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockError()
            time.sleep(wait * random.uniform(0.5, 1.0))    # tries apart, not in step
            wait = min(wait * 2, RETRY)

    def release(self) -> None:
        h = _record(self.path)
        h.depth -= 1
        if h.depth == 0 and h.fd is not None:
            fcntl.lockf(h.fd, fcntl.LOCK_UN)
            os.close(h.fd)
            h.fd = None
        h.mutex.release()

    def __enter__(self) -> "MailLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
