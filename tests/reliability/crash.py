"""Crash safety: SIGKILL a server in the middle of a mailbox change.

Each iteration picks an operation (POP3 DELE+QUIT, IMAP EXPUNGE, APPEND,
COPY, MOVE, STORE, an upasfs ctl delete = an mbox rewrite, upasfs writing
its index, a SELECT writing its record of upasfs's listing), starts it while `upas.mbappend` deliveries arrive, and SIGKILLs
the session process or the posted upasfs at a random moment.  Then: no
L.mbox lock blocks, a fresh imap4d session selects both mailboxes, and the
files agree with the ledger (tests/reliability/ledger.py): nothing lost,
duplicated or torn; what was acknowledged as deleted stays deleted; the
.imp lists the messages in order with the flags of every acknowledged
STORE; upasfs (restarted from its index after a kill) serves the messages
the file holds.
"""
from __future__ import annotations

import os
import random
import sys
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from upas import ninep
from tests.reliability.ledger import Ledger, lock_is_free
from tests.reliability.rig import Imap, Rig, SessionError

OPS = ("pop_dele", "imap_expunge", "imap_append", "imap_copy", "imap_move",
       "imap_store", "fs_rewrite", "fs_index", "imap_select")
INBOX, SAVED = "mbox", "saved"
DELAYS = (0.0, 0.005, 0.02, 0.06, 0.15)   # kills land up to this far into the op


@dataclass
class Stats:
    iterations: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)
    deliveries: int = 0
    acknowledged: int = 0      # ops whose reply arrived before the kill
    identical: int = 0         # checks that found byte-identical messages in a mailbox
    soft: list[str] = field(default_factory=list)   # undone deletes (strict mode fails)
    index_cut: int = 0         # kills that left an index write half done
    mark_cut: int = 0          # kills that left SELECT's record half written

    def count(self, op: str, victim: str) -> None:
        self.ops[op] = self.ops.get(op, 0) + 1
        self.kills[victim] = self.kills.get(victim, 0) + 1


def _reply_ready(sess, tag: bytes | None = None) -> bool:
    """Did the reply to the interrupted command arrive before the kill?
    (Reads what is buffered; the peer is dead, so this cannot block.)"""
    try:
        while True:
            line = sess.line()
            if tag is None and line.startswith((b"+OK", b"-ERR")):
                return line.startswith(b"+OK")
            if tag is not None and line.startswith(tag + b" "):
                return line.startswith(tag + b" OK")
    except (SessionError, OSError, ValueError):
        return False


class CrashRun:
    def __init__(self, rig: Rig, seed: int):
        self.rig, self.rng = rig, random.Random(seed)
        self.ledger = Ledger()
        self.uids: dict[str, dict[int, dict[int, str]]] = {INBOX: {}, SAVED: {}}
        self.stats = Stats()
        self.moving: dict[str, int] = {}   # tokens an interrupted MOVE left in flight:
                                           # the fewest copies there may be (_floor)
        self.appended: list[tuple[str, bytes, bytes]] = []   # (token, message, date)
        self.history: list[str] = []
        self.last_imp = b""
        self.ledger.strict = bool(os.environ.get("RELIABILITY_STRICT"))
        self.stats.soft = self.ledger.soft

    # -- set-up
    def fill(self, n: int) -> None:
        for _ in range(n):
            token, msg = self.ledger.new_message()
            assert self.rig.deliver(msg).wait() == 0
            self.ledger.present(INBOX, token)
            self.stats.deliveries += 1

    def start(self) -> None:
        self.fill(8)
        self.rig.start_fs()
        with_session = self.rig.imap()
        with_session.cmd(b"CREATE saved")
        with_session.cmd(b"LOGOUT")
        with_session.close()

    # -- one iteration
    def iteration(self) -> None:
        rig, rng = self.rig, self.rng
        if not rig.fs_alive():
            rig.start_fs()
        if len(self.ledger.tokens(INBOX)) < 6:
            self.fill(4)
        arriving = []
        for _ in range(rng.randint(0, 2)):
            token, msg = self.ledger.new_message()
            # twice at once, now and then: byte-identical if within one second
            for _ in range(1 + (rng.random() < 0.3)):
                self.ledger.adding(INBOX, token)
                arriving.append((token, rig.deliver(msg)))
        # every operation in turn; every third round kills upasfs instead
        op = OPS[self.stats.iterations % len(OPS)]
        on_fs = (self.stats.iterations // len(OPS)) % 3 == 1 or op.startswith("fs_")
        victim = "upasfs" if on_fs else ("pop3" if op == "pop_dele" else "imap4d")
        self.stats.count(op, victim)
        self.ledger.now = f"#{self.stats.iterations} {op}"
        delay = rng.uniform(0, rng.choice(DELAYS))
        acked = self.stats.acknowledged
        getattr(self, op)(victim, delay)
        self.history.append(f"{op} kill {victim} at {delay:.3f}s"
                            f"{' after the reply' if self.stats.acknowledged > acked else ''}")
        for token, p in arriving:
            assert p.wait(30) == 0, "mbappend failed"
            self.ledger.added(INBOX, token)
            self.stats.deliveries += 1
        try:
            self.verify()
        except AssertionError as e:
            if os.environ.get("RELIABILITY_DEBUG"):
                print("previous .imp:\n" + self.last_imp.decode(), file=sys.stderr)
                print("now:\n" + Path(self.rig.path(INBOX) + ".imp").read_text(), file=sys.stderr)
            raise AssertionError(f"{e}\n(iteration {self.stats.iterations}; last ops: "
                                 + "; ".join(self.history[-4:]) + ")") from None
        self.stats.iterations += 1
        if os.environ.get("RELIABILITY_DEBUG"):
            self.last_imp = Path(self.rig.path(INBOX) + ".imp").read_bytes()


    def _kill(self, victim: str, sess, delay: float) -> None:
        time.sleep(delay)
        if victim == "upasfs":
            self.rig.kill_fs()
        elif sess is not None:
            sess.proc.kill()

    def _selected(self) -> tuple[Imap, dict]:
        s = self.rig.imap()
        s.cmd(b"SELECT INBOX")
        return s, s.fetch_tokens()

    def _pick(self, view: dict, most: int = 3) -> list[int]:
        seqs = sorted(view)
        return sorted(self.rng.sample(seqs, min(len(seqs), self.rng.randint(1, most))))

    @staticmethod
    def _seqset(seqs: list[int]) -> bytes:
        return b",".join(b"%d" % n for n in seqs)

    def _finish(self, sess) -> None:
        sess.kill()

    # -- the operations
    def pop_dele(self, victim: str, delay: float) -> None:
        p = self.rig.pop()
        view = p.tokens()
        nums = self._pick(view)
        for n in nums:
            p.cmd(b"DELE %d" % n)
            self.ledger.removing(INBOX, view[n])
        p.send(b"QUIT\r\n")
        self._kill(victim, p, delay)
        if _reply_ready(p):
            self.stats.acknowledged += 1
            for n in nums:
                self.ledger.removed(INBOX, view[n])
        self._finish(p)

    def imap_expunge(self, victim: str, delay: float) -> None:
        s, view = self._selected()
        seqs = self._pick(view)
        s.cmd(b"STORE " + self._seqset(seqs) + b" +FLAGS.SILENT (\\Deleted)")
        # an earlier EXPUNGE cut short leaves \Deleted messages: this one removes them
        seqs = sorted(set(seqs) | {n for n, v in view.items() if "\\Deleted" in v[2]})
        for n in seqs:
            self.ledger.removing(INBOX, view[n][0], view[n][1])
        tag = s.start(b"EXPUNGE")
        self._kill(victim, s, delay)
        if _reply_ready(s, tag):
            self.stats.acknowledged += 1
            for n in seqs:
                self.ledger.removed(INBOX, view[n][0], view[n][1])
        self._finish(s)

    def imap_append(self, victim: str, delay: float) -> None:
        """APPEND a new message, or every other time the bytes and date of
        an earlier APPEND again: a byte-identical copy (issue 13)."""
        s = self.rig.imap()
        if self.appended and self.rng.random() < 0.5:
            token, msg, date = self.rng.choice(self.appended)
        else:
            token, msg = self.ledger.new_message()
            date = b'"%02d-Mar-2026 10:00:00 +0000"' % self.rng.randint(1, 28)
            self.appended.append((token, msg, date))
        self.ledger.adding(INBOX, token)
        tag = s.start(b"APPEND INBOX (\\Seen) " + date, msg.replace(b"\n", b"\r\n"))
        self._kill(victim, s, delay)
        if _reply_ready(s, tag):
            self.stats.acknowledged += 1
            self.ledger.added(INBOX, token)
        self._finish(s)

    def _transfer(self, victim: str, delay: float, verb: bytes) -> None:
        """COPY (to saved, or now and then to INBOX itself) or MOVE to saved;
        a message copied again is a byte-identical copy (issue 13)."""
        s, view = self._selected()
        seqs = self._pick(view, 2)
        moving = verb == b"MOVE"
        target = SAVED if moving or self.rng.random() < 0.7 else INBOX
        floors = {view[n][0]: self._floor(view[n][0]) for n in seqs}
        for n in seqs:
            token = view[n][0]
            if moving:
                self.moving[token] = floors[token]
                self.ledger.removing(INBOX, token, view[n][1])
            self.ledger.adding(target, token)
        tag = s.start(verb + b" " + self._seqset(seqs) + b" " + (b"saved" if target == SAVED
                                                                 else b"INBOX"))
        self._kill(victim, s, delay)
        done = _reply_ready(s, tag)
        self.stats.acknowledged += done
        for n in seqs:
            token = view[n][0]
            if done:
                self.ledger.added(target, token)
                if moving:
                    self.ledger.removed(INBOX, token, view[n][1])
                    self.moving.pop(token, None)
        self._finish(s)

    def _floor(self, token: str) -> int:
        """The fewest copies of token the two mailboxes may hold together
        after a MOVE of one of them is cut short (a MOVE copies, then
        expunges: the message is in one mailbox or both, never neither)."""
        counts = [self.ledger.count(b, token) for b in (INBOX, SAVED)]
        return sum(c.seen - c.pending for c in counts if c is not None)

    def imap_copy(self, victim: str, delay: float) -> None:
        self._transfer(victim, delay, b"COPY")

    def imap_move(self, victim: str, delay: float) -> None:
        self._transfer(victim, delay, b"MOVE")

    def imap_store(self, victim: str, delay: float) -> None:
        s, view = self._selected()
        seqs = self._pick(view)
        flags = self.rng.choice([["\\Flagged"], ["\\Seen"], ["\\Answered", "\\Flagged"]])
        tag = s.start(b"STORE " + self._seqset(seqs) + b" +FLAGS (" +
                      " ".join(flags).encode() + b")")
        self._kill(victim, s, delay)
        if _reply_ready(s, tag):
            self.stats.acknowledged += 1
            for n in seqs:
                self.ledger.flags.setdefault(view[n][:2], set()).update(flags)
        self._finish(s)

    def fs_rewrite(self, victim: str, delay: float) -> None:
        """`delete mbox N...` on /mail/fs/ctl: upasfs rewrites the file."""
        c = ninep.Client.dial(self.rig.env["upasfs"], uname="glenda")
        try:
            c.write("ctl", b"open /mail/box/glenda/mbox mbox")
            names = sorted(int(d.name) for d in c.readdir("mbox") if d.name.isdigit())
            tokens = {}
            for n in names:
                raw = c.read(f"mbox/{n}/rawheader")
                m = re.search(rb"<([0-9a-z-]+)@ledger>", raw)
                tokens[n] = m.group(1).decode() if m else None
            victims = self.rng.sample(names, min(len(names), self.rng.randint(1, 3)))
            for n in victims:
                self.ledger.removing(INBOX, tokens[n])
            results: list = []
            t = threading.Thread(target=self._ctl_delete, args=(c, victims, results))
            t.start()
            self._kill(victim, None, delay)
            t.join(30)
            if results == ["ok"]:
                self.stats.acknowledged += 1
                for n in victims:
                    self.ledger.removed(INBOX, tokens[n])
        finally:
            c.close()

    def fs_index(self, victim: str, delay: float) -> None:
        """upasfs writes its index: every message parsed (its tree kept in
        the index), then mail delivered and the mailbox stat'd (the sync
        that reads it writes the index at once: UPASFS_INDEX_DELAY=0).
        The kill comes as the index's temporary file appears, or after
        `delay`, and a new upasfs starts from what is left."""
        c = ninep.Client.dial(self.rig.env["upasfs"], uname="glenda")
        try:
            c.write("ctl", b"open /mail/box/glenda/mbox mbox")
            for d in c.readdir("mbox"):
                if d.name.isdigit():
                    c.read(f"mbox/{d.name}/info")
            token, msg = self.ledger.new_message()
            assert self.rig.deliver(msg).wait(30) == 0, "mbappend failed"
            self.ledger.present(INBOX, token)
            self.stats.deliveries += 1
            t = threading.Thread(target=self._stat, args=(c, "mbox"))
            t.start()
            tmp = self.rig.path(INBOX) + ".upasfs.imp.tmp"
            deadline = time.monotonic() + delay
            while not os.path.exists(tmp) and time.monotonic() < deadline:
                pass
            time.sleep(self.rng.uniform(0, 0.001))
            self.rig.kill_fs()
            self.stats.index_cut += os.path.exists(tmp)
            t.join(30)
        finally:
            c.close()

    def imap_select(self, victim: str, delay: float) -> None:
        """New mail, then a SELECT: the session reads upasfs's summary and
        writes its record of the listing (<mailbox>.mark.imp,
        upas/imap4d/selectmark.py), which later SELECTs (the check's
        among them) take while upasfs's mark stays the same.  The kill
        comes as the record's temporary file appears, or `delay` + 0.5 s
        after the SELECT was sent."""
        token, msg = self.ledger.new_message()
        assert self.rig.deliver(msg).wait(30) == 0, "mbappend failed"
        self.ledger.present(INBOX, token)
        self.stats.deliveries += 1
        s = self.rig.imap()
        tmp = self.rig.path(INBOX) + ".mark.imp.tmp"
        s.start(b"SELECT INBOX")
        deadline = time.monotonic() + delay + 0.5      # the new mail makes it write one
        while not os.path.exists(tmp) and time.monotonic() < deadline:
            pass
        self._kill(victim, s, self.rng.uniform(0, 0.001))
        self.stats.mark_cut += os.path.exists(tmp)
        self._finish(s)

    @staticmethod
    def _stat(c, path: str) -> None:
        try:
            c.stat(path)
        except (ninep.Error, OSError):
            pass

    @staticmethod
    def _ctl_delete(c, names, results) -> None:
        try:
            c.write("ctl", b"delete mbox " + b" ".join(b"%d" % n for n in names))
            results.append("ok")
        except (ninep.Error, OSError) as e:
            results.append(e)

    # -- after the kill
    def verify(self) -> None:
        rig = self.rig
        assert lock_is_free(rig.path("")), "an L.mbox lock outlived the killed process"
        if not rig.fs_alive():
            rig.start_fs()
        s = rig.imap()      # a fresh session must work at once, and brings .imp up to date
        s.cmd(b"SELECT saved")
        s.cmd(b"SELECT INBOX")
        s.cmd(b"LOGOUT")
        s.close()
        inbox = self.ledger.check(INBOX, rig.path(INBOX))
        saved = self.ledger.check(SAVED, rig.path(SAVED))
        self.stats.identical += any(len({m.digest for m in box}) < len(box) for box in (inbox, saved))
        for token, floor in list(self.moving.items()):
            here = sum(c.seen for c in (self.ledger.count(b, token) for b in (INBOX, SAVED))
                       if c is not None)
            assert here >= floor, f"{token} lost by an interrupted MOVE ({here} copies, " \
                f"at least {floor} expected)"
            del self.moving[token]
        self.ledger.check_imp(rig.path(INBOX), inbox, self.uids[INBOX])
        self.ledger.check_imp(rig.path(SAVED), saved, self.uids[SAVED], flags=False)
        self.check_fs(inbox)

    def check_fs(self, inbox) -> None:
        """upasfs serves the messages the file holds, in order (a stale
        index would show others)."""
        c = ninep.Client.dial(self.rig.env["upasfs"], uname="glenda")
        try:
            rows = c.read("mbox/summary").splitlines()[1:]
        finally:
            c.close()
        served = [r.split(b" ")[1].decode() for r in rows]
        assert served == [m.digest for m in inbox], "upasfs serves other messages than the file's"


def run(base: Path, iterations: int, seed: int) -> Stats:
    with Rig(base) as rig:
        r = CrashRun(rig, seed)
        r.start()
        for _ in range(iterations):
            r.iteration()
        return r.stats
