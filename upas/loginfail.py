"""Failed logins per peer address, shared by the sessions of a host (issue 17).

Plan 9 slows a password guesser per connection (pop3's doubling sleeps)
and per user (keyfs's purgatory).  The first is evaded by opening more
connections; the second let anyone lock a user out from one address.  So
pop3 and imap4d also count failed logins per peer address, across all
their sessions, and

- an address with FREE or more failures in the last
  $UPAS_LOGINFAIL_WINDOW seconds waits
  BASE * 2^(n - FREE) seconds (at most MAXWAIT) before its attempt is
  even checked -- right or wrong, so that no guess is answered sooner;
- an address with LIMIT failures in that window is refused at once, its
  attempt never reaching factotum; LIMIT is below keyfs's MAXBAD, so one
  address alone cannot put a user in purgatory (auth/keydb.py).

Logins in flight are no failures (fifty sessions of an office behind NAT
log in at once), but they are bounded so that parallel guesses cannot
outrun the count: at most LIMIT - failures of an address's attempts are
being checked at once, the others queue for their turn (first come,
first checked), and an address with INFLIGHT attempts queued or checked
is refused the next one (issue 16; docs/decisions.md "Login throttling").
An attempt whose session died before saying how it went, or that was
checked for longer than STALE seconds, counts as a failure.

The counts live in a directory of small files, one per address, each
updated under flock: $UPAS_LOGINFAIL_DIR, else `loginfail` in the name
space directory (0700, the servers' own).  A line is `TIME -` (a
failure) or `TIME PID` (an attempt in flight).  UPAS_LOGINFAIL_DIR=off,
or no peer address, leaves only Plan 9's per-connection delays.
UPAS_LOGIN_DELAY_SCALE multiplies the waits (tests use small ones).
"""
from __future__ import annotations

import fcntl
import os
import random
import re
import time

from upas import config

FREE = 3            # failures before the waits start (typos happen)
BASE = 2.0          # seconds: 2, 4, 8, ...
MAXWAIT = 30.0
LIMIT = 9           # failures per window; keyfs's MAXBAD is 10
INFLIGHT = 128      # an address's attempts queued or being checked at once
STALE = 60.0        # seconds a check may take (after its wait) before it counts as failed
POLL = (0.005, 0.05)    # a queued attempt looks again after 5 ms, doubling up to 50 ms
REFUSED = "too many failed logins from your address; try again later"
BUSY = "too many logins in progress from your address; try again later"
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
    factotum, then succeeded() or failed() (a session that dies first
    failed).  When begin() refuses, .refusal says why."""

    def __init__(self, peer: str | None, directory: str | None = None):
        ip = (peer or "").split("!", 1)[0]
        self.path = None
        if ip:
            directory = directory if directory is not None else store_dir()
            if directory is not None:
                self.path = os.path.join(directory, _SAFE.sub("_", ip)[:64] or "_")
        self.token: str | None = None
        self.refusal = REFUSED

    def begin(self) -> float | None:
        """Count this attempt in flight, waiting for its turn if LIMIT -
        failures are being checked: seconds to wait before checking it, or
        None to refuse it unchecked."""
        if self.path is None:
            return 0.0
        self.failed()                   # an earlier attempt never reported
        if random.random() < SWEEP:
            _sweep(os.path.dirname(self.path), time.time())
        queued, pause = None, POLL[0]
        while True:
            with self._locked() as lines:
                now = time.time()
                t = _Tally(lines, now)
                if t.failures >= LIMIT or (queued is None and t.inflight >= INFLIGHT):
                    if queued in lines:
                        lines.remove(queued)
                    self.refusal = REFUSED if t.failures >= LIMIT else BUSY
                    return None
                ahead = t.queued.index(queued) if queued in t.queued else len(t.queued)
                if t.checking + ahead < LIMIT - t.failures:
                    self.token = f"{now:.6f} {os.getpid()}"
                    if queued in lines:
                        lines[lines.index(queued)] = self.token
                    else:
                        lines.append(self.token)
                    return wait_for(t.failures)
                if queued not in lines:
                    queued = f"{now:.6f} {os.getpid()} wait"
                    lines.append(queued)
            time.sleep(pause)
            pause = min(pause * 2, POLL[1])

    def succeeded(self) -> None:
        """Take back this session's attempt: it was no guess."""
        self._settle(None)

    def failed(self) -> None:
        """This session's attempt was wrong: it counts for the window."""
        self._settle(f"{time.time():.6f} -")

    def _settle(self, line: str | None) -> None:
        if self.path is None or self.token is None:
            return
        token, self.token = self.token, None
        with self._locked() as lines:
            if token in lines:
                i = lines.index(token)
                if line is None:
                    del lines[i]
                else:
                    lines[i] = line

    def _locked(self):
        return _Record(self.path)


class _Tally:
    """An address's lines cut to those that still count ($UPAS_LOGINFAIL_WINDOW;
    an attempt whose session died, or checked longer than STALE plus its
    wait, turned failure; a queued one of a dead session forgotten), and
    counted."""

    def __init__(self, lines: list[str], now: float):
        cfg = config.current()
        stale = STALE + MAXWAIT * cfg.upas_login_delay_scale
        self.failures = self.checking = 0
        self.queued: list[str] = []
        kept = []
        for line in lines:
            when, who, state = (line.split() + ["", "", ""])[:3]
            try:
                when_f, pid = float(when), (0 if who == "-" else int(who))
            except ValueError:
                continue                # garbage: forgotten
            if now - when_f >= cfg.upas_loginfail_window:
                continue
            if pid and state == "wait":
                if _alive(pid):
                    self.queued.append(line)
                    kept.append(line)
                continue
            if pid and (not _alive(pid) or now - when_f > stale):
                line, pid = f"{when_f:.6f} -", 0
            if pid:
                self.checking += 1
            else:
                self.failures += 1
            kept.append(line)
        lines[:] = kept

    @property
    def inflight(self) -> int:
        return self.checking + len(self.queued)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass                            # another user's: alive
    return True


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
                with _Record(path) as lines:
                    _Tally(lines, now)
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
                os.pwrite(self.fd, data, 0)
                os.ftruncate(self.fd, len(data))
        finally:
            os.close(self.fd)               # releases the flock
