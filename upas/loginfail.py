"""Failed logins per peer address, shared by the sessions of a host (issue 17).

Plan 9 slows a password guesser per connection (pop3's doubling sleeps)
and per user (keyfs's purgatory).  The first is evaded by opening more
connections; the second let anyone lock a user out from one address.  So
pop3 and imap4d also count login attempts per peer address, across all
their sessions, and

- an address with FREE or more attempts in the last
  $UPAS_LOGINFAIL_WINDOW seconds waits
  BASE * 2^(n - FREE) seconds (at most MAXWAIT) before its attempt is
  even checked -- right or wrong, so that no guess is answered sooner;
- an address with LIMIT attempts in that window is refused at once, its
  attempt never reaching factotum; LIMIT is below keyfs's MAXBAD, so one
  address alone cannot put a user in purgatory (auth/keydb.py).

Every attempt counts until it succeeds (so parallel attempts count each
other, and a session killed mid-attempt counts as a failure); a success
takes back its own attempt only.

The counts live in a directory of small files, one per address, each
updated under flock: $UPAS_LOGINFAIL_DIR, else `loginfail` in the name
space directory (0700, the servers' own).  UPAS_LOGINFAIL_DIR=off, or no
peer address, leaves only Plan 9's per-connection delays.
UPAS_LOGIN_DELAY_SCALE multiplies the waits (tests use small ones).
"""
from __future__ import annotations

import fcntl
import os
import random
import re
import time

from upas import config

FREE = 3            # attempts before the waits start (typos happen)
BASE = 2.0          # seconds: 2, 4, 8, ...
MAXWAIT = 30.0
LIMIT = 9           # attempts per window; keyfs's MAXBAD is 10
REFUSED = "too many failed logins from your address; try again later"
# Plan 9 pop3's per-connection schedule (docs/spec/servers.md §2), imap4d's too:
# the wait doubles before each failure's reply, 10, 20, 40 ... seconds,
# and the 21st failure ends the session
FIRST_DELAY = 5
MAX_DELAY = 30 * 60
MAX_FAILURES = 20
SWEEP = 0.01        # the chance that an attempt also sweeps stale files
_SAFE = re.compile(r"[^0-9A-Za-z.:_-]")


def store_dir() -> str | None:
    """Where the counts live, created 0700; None: not shared."""
    d = config.current().upas_loginfail_dir
    if d == "off":
        return None
    if not d:
        from upas.ninep.dial import namespace_dir
        from upas.ninep import Error
        try:
            d = os.path.join(namespace_dir(), "loginfail")
        except (Error, OSError):
            return None
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return d


def wait_for(n: int) -> float:
    """Seconds an address with n attempts in the window waits."""
    if n < FREE:
        return 0.0
    return min(BASE * 2 ** (n - FREE), MAXWAIT) * config.current().upas_login_delay_scale


class Guard:
    """One session's view of its peer's attempts: begin() before asking
    factotum, then succeeded() or nothing (the attempt stays a failure)."""

    def __init__(self, peer: str | None, directory: str | None = None):
        ip = (peer or "").split("!", 1)[0]
        self.path = None
        if ip:
            directory = directory if directory is not None else store_dir()
            if directory is not None:
                self.path = os.path.join(directory, _SAFE.sub("_", ip)[:64] or "_")
        self.token: str | None = None

    def begin(self) -> float | None:
        """Count this attempt: seconds to wait before checking it, or None
        to refuse it unchecked."""
        if self.path is None:
            return 0.0
        now = time.time()
        token = f"{now:.6f} {os.getpid()}"
        if random.random() < SWEEP:
            _sweep(os.path.dirname(self.path), now)
        with self._locked() as stamps:
            live = _recent(stamps, now)
            stamps[:] = live
            if len(live) >= LIMIT:
                return None
            stamps.append(token)
        self.token = token
        return wait_for(len(live))

    def succeeded(self) -> None:
        """Take back this session's attempt: it was no guess."""
        if self.path is None or self.token is None:
            return
        token, self.token = self.token, None
        with self._locked() as stamps:
            if token in stamps:
                stamps.remove(token)

    def _locked(self):
        return _Record(self.path)


def _when(line: str) -> float:
    try:
        return float(line.split()[0])
    except (ValueError, IndexError):
        return 0.0                  # garbage: forgotten


def _recent(stamps: list[str], now: float) -> list[str]:
    """The attempts that still count ($UPAS_LOGINFAIL_WINDOW)."""
    window = config.current().upas_loginfail_window
    return [s for s in stamps if now - _when(s) < window]


def _sweep(directory: str, now: float) -> None:
    """Forget the addresses not seen for a window (their files)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        try:
            if now - os.stat(path).st_mtime > config.current().upas_loginfail_window:
                with _Record(path) as stamps:
                    stamps[:] = _recent(stamps, now)
        except OSError:
            pass


class _Record:
    """The lines of an address's file, read and rewritten under flock."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> list[str]:
        while True:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:                    # still the file at path, not one unlinked meanwhile?
                if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(self.fd)
        data = b""
        while chunk := os.read(self.fd, 65536):
            data += chunk
        self.lines = [x for x in data.decode("ascii", "replace").splitlines() if x.strip()]
        self.before = list(self.lines)
        return self.lines

    def __exit__(self, *exc) -> None:
        try:
            if not self.lines:
                os.unlink(self.path)        # nothing to remember: no file
            elif self.lines != self.before:
                data = "".join(x + "\n" for x in self.lines).encode()
                os.lseek(self.fd, 0, os.SEEK_SET)
                os.ftruncate(self.fd, 0)
                os.write(self.fd, data)
        finally:
            os.close(self.fd)               # releases the flock
