"""keyfs's user database: the semantics of /mnt/keys/USER/* (docs/spec/fs-auth.md §3.8).

Sans-I/O with respect to 9P: auth/keyfs.py maps files onto these methods.
Every change is saved to the keys file before it takes effect, so a failed
save leaves the database as it was. The bad-attempt count and purgatory live
in memory only, as in keyfs.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from auth import keyfile
from auth.keyfile import KeyRecord, STATUS_DISABLED, STATUS_OK
from auth.records import ANAMELEN, DESKEYLEN, SECRETLEN

FILES = ("key", "secret", "log", "status", "expire", "warnings")
MAXBAD = 10                     # MAXBAD bad attempts within BADWINDOW: purgatory
BADWINDOW = 3600.0              # seconds (issue 17: see _w_log)
STATUS_NAMES = {STATUS_OK: "ok", STATUS_DISABLED: "disabled"}


class KeyfsError(Exception):
    """Carries keyfs's error text (becomes the Rerror ename)."""


@dataclass(eq=False)
class User:
    rec: KeyRecord
    id: int
    bad: int = 0
    purgatory: float = 0.0
    removed: bool = False
    recent: list[float] = field(default_factory=list)   # when the last bad ones came

    @property
    def name(self) -> str:
        return self.rec.name


@dataclass
class KeyDB:
    path: str
    authkey: bytes = field(repr=False)
    purgatory_scale: float = 1.0
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.users: dict[str, User] = {}
        recs, self.skipped = keyfile.load_scan(self.path, self.authkey)
        for rec in recs:
            self.users.setdefault(rec.name, User(rec, next(self._ids)))

    # -- persistence -----------------------------------------------------
    def _save(self, records: list[KeyRecord]) -> None:
        try:
            keyfile.save(self.path, records, self.authkey)
        except OSError:
            raise KeyfsError("keyfs: database write failed") from None

    def _commit(self, user: User, rec: KeyRecord) -> None:
        self._save([rec if u is user else u.rec for u in self.users.values()])
        user.rec = rec

    def save_all(self) -> None:
        with self._lock:
            self._save([u.rec for u in self.users.values()])

    # -- users -----------------------------------------------------------
    def all_users(self) -> list[User]:
        with self._lock:
            return list(self.users.values())

    def lookup(self, name: str) -> User:
        with self._lock:
            u = self.users.get(name)
        if u is None:
            raise KeyfsError("file does not exist")
        return u

    @staticmethod
    def check_name(name: str) -> None:
        raw = name.encode("utf-8")
        if not raw:
            raise KeyfsError("empty file name")
        if len(raw) >= ANAMELEN:
            raise KeyfsError("file name too long")
        if not keyfile.valid_name(raw + b"\0"):
            raise KeyfsError("bad user name")

    def create(self, name: str) -> User:
        self.check_name(name)
        with self._lock:
            if name in self.users:
                raise KeyfsError("user already exists")
            u = User(KeyRecord(name), next(self._ids))
            self._save([x.rec for x in self.users.values()] + [u.rec])
            self.users[name] = u
            return u

    def remove(self, user: User) -> None:
        with self._lock:
            self._alive(user)
            self._save([u.rec for u in self.users.values() if u is not user])
            del self.users[user.name]
            user.removed = True

    def rename(self, user: User, new: str) -> None:
        with self._lock:
            if user.removed:
                raise KeyfsError("user previously removed")
            if new == user.name:
                return
            self.check_name(new)
            if new in self.users:
                raise KeyfsError("user already exists")
            old = user.name
            self._commit(user, replace(user.rec, name=new))
            self.users = {(new if k == old else k): v for k, v in self.users.items()}

    @staticmethod
    def _alive(user: User) -> None:
        if user.removed:
            raise KeyfsError("user removed")

    # -- state -----------------------------------------------------------
    def _expired(self, user: User) -> bool:
        return user.rec.expire != 0 and user.rec.expire < self.clock()

    def _check_usable(self, user: User) -> None:
        if user.rec.status != STATUS_OK:
            raise KeyfsError("user disabled")
        if user.purgatory > self.clock():
            raise KeyfsError("user in purgatory")
        if self._expired(user):
            raise KeyfsError("user expired")

    # -- file contents ---------------------------------------------------
    def read(self, user: User, file: str) -> bytes:
        with self._lock:
            self._alive(user)
            r = user.rec
            if file in ("key", "secret"):
                self._check_usable(user)
                return bytes(r.key) if file == "key" else bytes(r.secret)
            if file == "log":
                return b"%d\n" % user.bad
            if file == "status":
                if r.status == STATUS_OK and self._expired(user):
                    return b"expired\n"
                return STATUS_NAMES.get(r.status, "disabled").encode() + b"\n"
            if file == "expire":
                return b"never\n" if r.expire == 0 else b"%d\n" % r.expire
            if file == "warnings":
                return b"%d\n" % r.warnings
        raise KeyfsError("file does not exist")

    def write(self, user: User, file: str, data: bytes) -> int:
        with self._lock:
            self._alive(user)
            handler = getattr(self, "_w_" + file, None)
            if handler is None:
                raise KeyfsError("permission denied")
            handler(user, bytes(data))
            return len(data)

    def _w_key(self, user: User, data: bytes) -> None:
        if len(data) != DESKEYLEN:
            raise KeyfsError("garbled write data")
        self._commit(user, replace(user.rec, key=data))

    def _w_secret(self, user: User, data: bytes) -> None:
        if len(data) >= SECRETLEN:
            raise KeyfsError("garbled write data")
        self._commit(user, replace(user.rec, secret=data.split(b"\0", 1)[0]))

    def _w_log(self, user: User, data: bytes) -> None:
        """Plan 9 puts a user in purgatory (for `bad` seconds) at every
        MAXBAD-th bad attempt, however far apart.  Ours (docs/decisions.md,
        "Login throttling"): only when the last MAXBAD came within
        BADWINDOW -- the servers let one address make fewer than MAXBAD
        attempts in that time (upas/loginfail.py), so one address alone
        cannot lock a user out -- and a bad attempt during purgatory is not
        counted (a refused key is no guess, and the user's own retries
        would prolong it)."""
        now = self.clock()
        if data == b"good":
            user.bad = 0
            user.recent.clear()
            return
        if user.purgatory > now:
            return
        user.bad += 1
        user.recent = (user.recent + [now])[-MAXBAD:]
        if len(user.recent) == MAXBAD and now - user.recent[0] < BADWINDOW:
            user.purgatory = now + user.bad * self.purgatory_scale
            user.recent.clear()

    def _w_status(self, user: User, data: bytes) -> None:
        word = data.split(b"\n", 1)[0].decode("ascii", "replace")
        codes = {v: k for k, v in STATUS_NAMES.items()}
        if word not in codes:
            raise KeyfsError("unknown status")
        self._commit(user, replace(user.rec, status=codes[word]))
        user.bad, user.purgatory = 0, 0.0
        user.recent.clear()

    def _w_expire(self, user: User, data: bytes) -> None:
        word = data.split(b"\n", 1)[0]
        if word == b"never":
            when = 0
        elif word.isdigit() and int(word) <= 0xFFFFFFFF:
            when = int(word)
        else:
            raise KeyfsError("bad expiration date")
        self._commit(user, replace(user.rec, expire=when, warnings=0))

    def _w_warnings(self, user: User, data: bytes) -> None:
        # As strtoul into a byte: leading digits, then truncated to 8 bits.
        text = data.decode("ascii", "replace").strip()
        digits = "".join(itertools.takewhile(str.isdigit, text))
        self._commit(user, replace(user.rec, warnings=int(digits or "0") & 0xFF))
