"""The state behind ratfs: trusted ranges and the classification tables.

No 9P here: tree.py presents these tables as files.  Files are re-read when
their mtime changed (checked at each attach, as ratfs does); temporary
trusted entries expire TIMEOUT seconds after creation, swept at attach.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

from . import rules
from .account import first_match

TIMEOUT = 2 * 60 * 60          # a temporary trusted entry lives two hours
MAX_TEMPORARY = 10000          # bound on entries any user may create
OWNER = "upas"                 # owner of everything but temporary entries


class TableError(Exception):
    """Carries the Plan 9 error text for the 9P layer."""


@dataclass
class Trusted:
    name: str
    net: rules.Network
    uid: str
    ctime: float
    permanent: bool
    qid: int

    @property
    def mode(self) -> int:
        return 0o111 if self.permanent else 0o444


class Tables:
    def __init__(self, ctlfile: str, conffile: str,
                 clock: Callable[[], float] = time.time,
                 log: Callable[[str], None] | None = None):
        self.ctlfile = ctlfile
        self.conffile = conffile
        self.clock = clock
        self.log = log or (lambda s: None)
        self.lock = threading.RLock()
        self.trusted: list[Trusted] = []
        self.classes = rules.Classification()
        self.loaded_at = clock()          # mtime of the pseudo-files
        self._stamps: dict[str, tuple[int, int] | None] = {}
        self._qids = itertools.count(1)
        self.reload()

    # --- loading -----------------------------------------------------------
    def _stamp(self, path: str) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _read(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None

    def load_conf(self) -> None:
        """Replace the permanent trusted entries by the conf's ournets."""
        self.log(f"loading {self.conffile}")
        self._stamps[self.conffile] = self._stamp(self.conffile)
        text = self._read(self.conffile)
        if text is None:
            return
        now = self.clock()
        perm = [Trusted(e.name, e.net, OWNER, now, True, next(self._qids))
                for e in rules.parse_ournets(text)]
        with self.lock:
            self.trusted = perm + [t for t in self.trusted if not t.permanent]

    def load_ctl(self) -> None:
        self.log(f"loading {self.ctlfile}")
        self._stamps[self.ctlfile] = self._stamp(self.ctlfile)
        text = self._read(self.ctlfile)
        if text is None:
            return
        classes = rules.parse_ctl(text)
        with self.lock:
            self.classes = classes
            self.loaded_at = self.clock()

    def reload(self) -> None:
        """The ctl `reload` command: read both files now."""
        self.load_conf()
        self.load_ctl()

    def refresh(self) -> None:
        """At attach: re-read changed files and sweep expired entries."""
        if self._stamp(self.conffile) != self._stamps.get(self.conffile):
            self.load_conf()
        if self._stamp(self.ctlfile) != self._stamps.get(self.ctlfile):
            self.load_ctl()
        self.sweep()

    def sweep(self) -> None:
        limit = self.clock() - TIMEOUT
        with self.lock:
            gone = [t for t in self.trusted if not t.permanent and t.ctime <= limit]
            for t in gone:
                self.log(f"Deleting {t.name}")
            self.trusted = [t for t in self.trusted if t not in gone]

    # --- trusted -----------------------------------------------------------
    def lookup_trusted(self, name: str) -> Trusted | None:
        addr = rules.parse_addr(name)
        with self.lock:
            return rules.longest_match(self.trusted, addr)

    def add_trusted(self, name: str, uid: str) -> Trusted:
        """Create trusted/NAME for uid; a same-named entry of uid is renewed."""
        try:
            net = rules.parse_trusted_name(name)
        except rules.CidrError:
            raise TableError("bad cidr in filename") from None
        with self.lock:
            for t in self.trusted:
                if t.name == name and t.uid == uid and not t.permanent:
                    t.ctime = self.clock()
                    return t
            if sum(not t.permanent for t in self.trusted) >= MAX_TEMPORARY:
                raise TableError("too many trusted entries")
            t = Trusted(name, net, uid, self.clock(), False, next(self._qids))
            self.trusted.append(t)
            return t

    def remove_trusted(self, entry: Trusted, uid: str) -> None:
        if entry.permanent:
            raise TableError("can't be removed")
        if entry.uid != uid:
            raise TableError("permission denied")
        with self.lock:
            self.trusted = [t for t in self.trusted if t is not entry]

    def trusted_entries(self) -> list[Trusted]:
        with self.lock:
            return list(self.trusted)

    # --- classification ----------------------------------------------------
    def lookup_ip(self, action: str, name: str) -> str | None:
        addr = rules.parse_addr(name)
        with self.lock:
            hit = rules.longest_match(self.classes.ip[action], addr)
        return hit.name if hit else None

    def lookup_account(self, action: str, path: str) -> str | None:
        with self.lock:
            patterns = list(self.classes.account[action])
        return first_match(patterns, path.lower())

    def names(self, action: str, kind: str) -> list[str]:
        with self.lock:
            if kind == "ip":
                return [e.name for e in self.classes.ip[action]]
            return list(self.classes.account[action])
