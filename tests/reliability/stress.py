"""Concurrency: many pop3 and imap4d sessions and mbappend deliveries on
one mailbox at once, for a while, with the ledger (ledger.py) kept.

A hostile client (hostile.py) attacks the servers and the mailbox all the
while; none of the others may fail for it.

Checks while it runs: every IMAP session's view is consistent (RFC 3501
2.3.1.1: UIDs ascend with sequence numbers, a UID names one message for
ever within its UIDVALIDITY -- across all sessions too -- and UIDVALIDITY
does not change within a session).  At the end: no message lost,
duplicated or torn, acknowledged deletes done.
"""
from __future__ import annotations

import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.hostile import Hostile
from tests.reliability.ledger import Ledger, lock_is_free
from tests.reliability.rig import Rig, SessionError

INBOX = "mbox"


@dataclass
class Stats:
    clients: int = 0
    imap_sessions: int = 0
    pop_sessions: int = 0
    deliveries: int = 0
    appends: int = 0
    deletes: int = 0
    fetch_views: int = 0
    hostile_attacks: int = 0
    errors: list[str] = field(default_factory=list)


class Stress:
    def __init__(self, rig: Rig, seed: int, seconds: float):
        self.rig, self.seed = rig, seed
        self.deadline = time.monotonic() + seconds
        self.ledger = Ledger()
        # no kills here: every acknowledged delete and the final view must
        # hold exactly (RELIABILITY_STRICT=0 reports them instead)
        self.ledger.strict = os.environ.get("RELIABILITY_STRICT", "1") != "0"
        self.lock = threading.Lock()            # guards ledger, stats, uid map
        self.uids: dict[tuple[int, int], str] = {}   # (uidvalidity, uid) -> token
        self.stats = Stats()

    def running(self) -> bool:
        return time.monotonic() < self.deadline and not self.stats.errors

    def _new(self) -> tuple[str, bytes]:
        with self.lock:
            token, msg = self.ledger.new_message()
            self.ledger.expect(INBOX, token, "maybe")
            return token, msg

    def _settle(self, box: str, token: str, state: str, counter: str) -> None:
        with self.lock:
            # a session may see, delete and settle a message before its
            # deliverer has settled it present: the delete stands
            if not (state == "present" and self.ledger.state(box, token) == "gone"):
                self.ledger.expect(box, token, state)
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)

    # -- clients
    def deliverer(self, rng: random.Random) -> None:
        while self.running():
            token, msg = self._new()
            if self.rig.deliver(msg).wait(60) != 0:
                raise AssertionError("mbappend failed")
            self._settle(INBOX, token, "present", "deliveries")
            time.sleep(rng.uniform(0, 0.3))

    def imap_client(self, rng: random.Random) -> None:
        while self.running():
            s = self.rig.imap()
            with self.lock:
                self.stats.imap_sessions += 1
            try:
                sel = b"".join(s.cmd(b"SELECT INBOX"))
                validity = int(re.search(rb"UIDVALIDITY (\d+)", sel).group(1))
                seen: dict[int, str] = {}
                for _ in range(rng.randint(2, 6)):
                    self._check_view(self._fetch(s), validity, seen)
                    self._imap_change(s, rng)
                s.cmd(b"LOGOUT")
            finally:
                s.close()

    @staticmethod
    def _fetch(s) -> dict:
        """FETCH 1:*; a NO for messages another session expunged is allowed
        (RFC 2180 4.1.2): NOOP takes the expunges, then try again."""
        for _ in range(5):
            try:
                return s.fetch_tokens()
            except SessionError as e:
                if b" NO " not in e.args[0]:
                    raise
                s.cmd(b"NOOP")
        raise AssertionError("FETCH kept failing")

    def _check_view(self, view: dict, validity: int, seen: dict[int, str]) -> None:
        last = 0
        for seq in sorted(view):
            token, uid, _ = view[seq]
            if uid <= last:
                raise AssertionError(f"UID {uid} at seq {seq} does not ascend")
            last = uid
            if seen.setdefault(uid, token) != token:
                raise AssertionError(f"UID {uid} changed message within a session")
            with self.lock:
                if self.uids.setdefault((validity, uid), token) != token:
                    raise AssertionError(f"UID {uid} reused within UIDVALIDITY {validity}")
                self.stats.fetch_views += 1

    def _imap_change(self, s, rng: random.Random) -> None:
        what = rng.random()
        if what < 0.3:
            token, msg = self._new()
            s.cmd(b"APPEND INBOX", msg.replace(b"\n", b"\r\n"))
            self._settle(INBOX, token, "present", "appends")
        elif what < 0.5:
            view = self._fetch(s)
            if len(view) > 8:
                seq = rng.choice(sorted(view))
                token = view[seq][0]
                with self.lock:
                    self.ledger.expect(INBOX, token, "maybe")
                s.cmd(b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % view[seq][1])
                s.cmd(b"EXPUNGE")
                self._settle(INBOX, token, "gone", "deletes")
        else:
            s.cmd(b"NOOP")

    def pop_client(self, rng: random.Random) -> None:
        while self.running():
            p = self.rig.pop()
            with self.lock:
                self.stats.pop_sessions += 1
            try:
                view = p.tokens()
                doomed = None
                if len(view) > 8 and rng.random() < 0.5:
                    n = rng.choice(sorted(view))
                    doomed = view[n]
                    with self.lock:
                        self.ledger.expect(INBOX, doomed, "maybe")
                    p.cmd(b"DELE %d" % n)
                p.cmd(b"QUIT")
                if doomed:
                    self._settle(INBOX, doomed, "gone", "deletes")
            finally:
                p.close()
            time.sleep(rng.uniform(0, 0.2))

    def _guard(self, fn, rng) -> None:
        try:
            fn(rng)
        except (AssertionError, SessionError, OSError) as e:
            with self.lock:
                self.stats.errors.append(f"{getattr(fn, '__qualname__', fn)}: {e!r}")


def run(base: Path, clients: int, seconds: float, seed: int) -> Stats:
    """clients: total of concurrent clients (2/5 imap4d, 1/5 pop3, 2/5
    deliverers), and one hostile client besides; raises AssertionError on
    the first inconsistency."""
    with Rig(base) as rig:
        st = Stress(rig, seed, seconds)
        for _ in range(10):
            token, msg = st._new()
            assert rig.deliver(msg).wait() == 0
            st.ledger.expect(INBOX, token)
        rig.start_fs()
        kinds = ([st.imap_client] * (2 * clients // 5) + [st.pop_client] * (clients // 5))
        kinds += [st.deliverer] * (clients - len(kinds))
        st.stats.clients = len(kinds)
        hostile = Hostile(st)
        kinds.append(hostile.run)
        threads = [threading.Thread(target=st._guard, args=(fn, random.Random(seed + i)))
                   for i, fn in enumerate(kinds)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 120)
        st.stats.hostile_attacks = hostile.attacks
        assert not st.stats.errors, st.stats.errors
        assert lock_is_free(rig.path(""))
        s = rig.imap()
        s.cmd(b"SELECT INBOX")
        final = s.fetch_tokens()
        s.cmd(b"LOGOUT")
        s.close()
        stored = st.ledger.check(INBOX, rig.path(INBOX))
        if len(final) != len(stored):   # upasfs purges deletions lazily
            st.ledger.soft.append(f"IMAP shows {len(final)} messages, upasfs lists "
                                  f"{_fs_count(rig)}, the file holds {len(stored)}")
            st.ledger._settle()
        else:
            st.ledger.check_imp(rig.path(INBOX), stored, {})
        st.stats.errors = st.ledger.soft   # soft findings, reported
        return st.stats


def _fs_count(rig: Rig) -> int:
    """Messages upasfs lists for the inbox view imap4d uses (`mbox`)."""
    from upas import ninep
    c = ninep.Client.dial(rig.env["upasfs"], uname="glenda")
    try:
        return sum(d.name.isdigit() for d in c.readdir("mbox"))
    finally:
        c.close()
