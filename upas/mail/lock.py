"""The mail lock: `L.mbox` in a mailbox's directory (docs/design.md).

Plan 9 makes L.mbox an exclusive-use file; on Unix we hold an fcntl lock on
it.  Acquisition retries every 0.5 s for up to 5 minutes, as upas does.
Everybody who writes a mailbox file takes it.
"""
from __future__ import annotations

import errno
import fcntl
import os
import threading
import time

RETRY = 0.5
TIMEOUT = float(os.environ.get("UPAS_LOCK_TIMEOUT", 5 * 60))

# fcntl locks belong to the process: threads of one process must also
# exclude each other, so each lock file has a process-wide mutex.
_mutexes: dict[str, threading.RLock] = {}
_mutexes_lock = threading.Lock()


class LockError(Exception):
    pass


def _mutex(path: str) -> threading.RLock:
    with _mutexes_lock:
        return _mutexes.setdefault(path, threading.RLock())


class MailLock:
    """Context manager holding `<dirpath>/L.mbox`."""

    def __init__(self, dirpath: str, timeout: float | None = None):
        self.path = os.path.join(dirpath, "L.mbox")
        self.timeout = TIMEOUT if timeout is None else timeout
        self.fd: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        mutex = _mutex(self.path)
        if not mutex.acquire(timeout=self.timeout):
            raise LockError("can't lock mailbox")
        if self._depth:
            self._depth += 1
            return
        try:
            self.fd = self._lock_file()
        except BaseException:
            mutex.release()
            raise
        self._depth = 1

    def _lock_file(self) -> int:
        old = os.umask(0)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        finally:
            os.umask(old)
        deadline = time.monotonic() + self.timeout
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
                raise LockError("can't lock mailbox")
            time.sleep(RETRY)

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self.fd is not None:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        _mutex(self.path).release()

    def __enter__(self) -> "MailLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
