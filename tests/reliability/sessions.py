"""Every IMAP session's view stays consistent while others change the
mailbox (issue 13; RFC 3501 2.3.1, 5.2, 7.4.1).

Ten clients (imap4d -a sessions) do at once what mail clients do on one
mailbox: SELECT, FETCH (flags, UIDs, headers), STORE with system flags
and keywords, COPY (into the mailbox itself too: byte-identical copies),
APPEND (now and then the same message and date again: identical bytes),
EXPUNGE, SEARCH, LOGOUT and log in again; meanwhile upas.mbappend
delivers (sometimes one message twice at once) and pop3 sessions delete.
Each session keeps the picture a client keeps (model.Model), updated only
from what the server said, and every reply that contradicts it is
counted.  A NO to FETCH, STORE, SEARCH or COPY is followed by a NOOP;
the reply or the NOOP must report an EXPUNGE: the NO was for a message
really gone.  An EXPUNGE while a FETCH, STORE or SEARCH (not UID) is
answered is counted too (RFC 3501 7.4.1).
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.ledger import make_message
from tests.reliability.model import Model
from tests.reliability.rig import Imap, Rig, SessionError

INBOX = "mbox"
KEYWORDS = ("$Work", "$Later", "$Junk", "project", "todo", "$Label1")
SYSTEM = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft")


@dataclass
class Report:
    clients: int = 0
    sessions: int = 0
    commands: Counter = field(default_factory=Counter)
    deliveries: int = 0
    pop_deletes: int = 0
    findings: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.clients} clients, {self.sessions} sessions, "
                f"{sum(self.commands.values())} commands {dict(self.commands)}, "
                f"{self.deliveries} deliveries, {self.pop_deletes} pop3 deletes; "
                f"findings {dict(self.findings) or 'none'}"
                + (f"; errors {self.errors}" if self.errors else ""))


class Client:
    """One IMAP session and its model."""

    def __init__(self, run: "SessionsRun", rng: random.Random):
        self.run, self.rng = run, rng
        self.s: Imap = run.rig.imap()
        self.model = Model()
        self.tagged = b""             # the last tagged reply (what a NO said)

    def cmd(self, command: bytes, literal: bytes | None = None) -> tuple[bytes, list[bytes]]:
        """Send a command; every reply line goes through the model.
        (status, lines) -- status OK, NO or BAD."""
        verb = command.split(b" ")[0 if not command.startswith(b"UID ") else 1]
        self.run.count(verb.decode())
        tag = self.s.start(command, literal)
        lines = []
        while True:
            line = self.s.line()
            while line.endswith(b"}\r\n") and b"{" in line:
                n = int(line[line.rindex(b"{") + 1:-3])
                line += self.s.file.read(n) + self.s.line()
            if line.startswith(tag + b" "):
                self.tagged = line
                status = line[len(tag) + 1:].split(b" ", 1)[0].upper()
                if status == b"BAD":
                    self.model.fail("bad_reply", line, f"to {command!r}")
                return status, lines
            if verb in (b"FETCH", b"STORE", b"SEARCH") and not command.startswith(b"UID ") \
                    and b" EXPUNGE" in line:
                self.model.fail("expunge_during_" + verb.decode().lower(), line,
                                "RFC 3501 7.4.1: not while responding to FETCH, STORE, SEARCH")
            if line.startswith(b"*"):
                self.model.feed(line)
            lines.append(line)

    def checked(self, command: bytes) -> None:
        """A command that may fail only for messages another session
        expunged: after a NO, a NOOP must report an EXPUNGE."""
        status, lines = self.cmd(command)
        if status == b"NO":
            no = self.tagged
            lines += self.cmd(b"NOOP")[1]     # (COPY may report them itself)
            if not any(b" EXPUNGE" in x for x in lines):
                self.model.fail("no_for_held_message", no, f"{command!r} answered NO, "
                                "and the NOOP after it reports no EXPUNGE")

    # -- what a mail client does
    def select(self) -> None:
        self.model.selected()
        status, _ = self.cmd(b"SELECT INBOX")
        if status != b"OK":
            raise SessionError(b"SELECT failed")

    def some(self) -> bytes:
        """A sequence set of messages the session knows of."""
        n = len(self.model.uids)
        if n == 0:
            return b"1:*"
        a = self.rng.randint(1, n)
        b = min(n, a + self.rng.randint(0, 10))
        return b"%d:%d" % (a, b) if self.rng.random() < 0.8 else b"%d" % a

    def uid_set(self) -> bytes | None:
        known = self.model.known()
        if not known:
            return None
        return b"%d" % self.rng.choice(known)[1]

    def fetch(self) -> None:
        atts = self.rng.choice([b"(UID FLAGS)", b"(FLAGS)", b"(UID FLAGS RFC822.SIZE)",
                                b"(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"])
        if self.rng.random() < 0.3 and (uids := self.uid_set()):
            self.checked(b"UID FETCH " + uids + b":* " + atts)
        else:
            self.checked(b"FETCH " + (b"1:*" if self.rng.random() < 0.3 else self.some()) + b" " + atts)

    def store(self) -> None:
        flags = self.rng.sample(KEYWORDS + SYSTEM, self.rng.randint(1, 2))
        op = self.rng.choice([b"+FLAGS", b"-FLAGS", b"+FLAGS.SILENT"])
        what = op + b" (" + " ".join(flags).encode() + b")"
        if self.rng.random() < 0.3 and (uids := self.uid_set()):
            self.checked(b"UID STORE " + uids + b" " + what)
        elif self.model.uids:
            self.checked(b"STORE " + self.some() + b" " + what)

    def search(self) -> None:
        key = self.rng.choice([b"ALL", b"KEYWORD " + self.rng.choice(KEYWORDS).encode(),
                               b"UNSEEN", b"FLAGGED"])
        status, lines = self.cmd(b"SEARCH " + key)
        for line in lines:
            if line.startswith(b"* SEARCH"):
                over = [int(x) for x in line.split()[2:] if int(x) > len(self.model.uids)]
                if over:
                    self.model.fail("search_beyond_exists", line,
                                    f"{over} of {len(self.model.uids)}")
        if status == b"NO":
            self.checked(b"NOOP")

    def copy(self) -> None:
        if self.model.uids:
            self.checked(b"COPY " + self.some() + b" " + self.rng.choice([b"INBOX", b"saved"]))

    def append(self) -> None:
        msg, date = self.run.message(self.rng)
        status, _ = self.cmd(b"APPEND INBOX " + date, msg.replace(b"\n", b"\r\n"))
        if status != b"OK":
            self.model.fail("append_failed", b"", "APPEND answered " + status.decode())

    def expunge(self) -> None:
        if self.model.uids and self.rng.random() < 0.7:
            seq = self.rng.randint(1, len(self.model.uids))
            self.checked(b"STORE %d +FLAGS.SILENT (\\Deleted)" % seq)
        self.cmd(b"EXPUNGE")

    def noop(self) -> None:
        self.cmd(b"NOOP")

    ACTIONS = (("fetch", 30), ("store", 20), ("search", 8), ("copy", 6), ("append", 10),
               ("expunge", 8), ("noop", 10))

    def session(self, steps: int) -> None:
        self.select()
        names = [a for a, _ in self.ACTIONS]
        weights = [w for _, w in self.ACTIONS]
        for _ in range(steps):
            if not self.run.running():
                break
            getattr(self, self.rng.choices(names, weights)[0])()
        self.cmd(b"LOGOUT")

    def close(self) -> None:
        self.s.close()


class SessionsRun:
    def __init__(self, rig: Rig, seed: int, seconds: float):
        self.rig, self.seed = rig, seed
        self.deadline = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.report = Report()
        self.appended: list[tuple[bytes, bytes]] = []     # (message, date) APPENDed

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def count(self, verb: str) -> None:
        with self.lock:
            self.report.commands[verb.upper()] += 1

    def message(self, rng: random.Random) -> tuple[bytes, bytes]:
        """A new message and date for APPEND, or half the time an earlier
        one again (the same bytes stored: issue 13)."""
        with self.lock:
            if self.appended and rng.random() < 0.5:
                return rng.choice(self.appended)
            got = (make_message(f"{rng.getrandbits(48):012x}"),
                   b'"%02d-Mar-2026 10:00:00 +0000"' % rng.randint(1, 28))
            self.appended.append(got)
            return got

    def merge(self, model: Model) -> None:
        with self.lock:
            self.report.findings.update(model.findings)
            for k, v in model.examples.items():
                self.report.examples.setdefault(k, v)

    # -- the threads
    def imap_client(self, rng: random.Random) -> None:
        while self.running():
            c = Client(self, rng)
            with self.lock:
                self.report.sessions += 1
            try:
                c.session(rng.randint(5, 40))
            finally:
                self.merge(c.model)
                c.close()

    def deliverer(self, rng: random.Random) -> None:
        while self.running():
            msg = make_message(f"{rng.getrandbits(48):012x}")
            procs = [self.rig.deliver(msg) for _ in range(1 + (rng.random() < 0.2))]
            for p in procs:
                if p.wait(60) != 0:
                    raise AssertionError("mbappend failed")
            with self.lock:
                self.report.deliveries += len(procs)
            time.sleep(rng.uniform(0.05, 0.4))

    def pop_client(self, rng: random.Random) -> None:
        while self.running():
            p = self.rig.pop()
            try:
                n = len(p.multi(b"LIST"))
                if n > 10:
                    for k in rng.sample(range(1, n + 1), rng.randint(1, 2)):
                        p.cmd(b"DELE %d" % k)
                        with self.lock:
                            self.report.pop_deletes += 1
                p.cmd(b"QUIT")
            finally:
                p.close()
            time.sleep(rng.uniform(0.2, 1.0))

    def guard(self, fn, rng) -> None:
        try:
            fn(rng)
        except Exception as e:          # a rig bug counts as much as a server's
            with self.lock:
                self.report.errors.append(f"{fn.__name__}: {e!r}")


def run(base: Path, clients: int, seconds: float, seed: int) -> Report:
    """`clients` IMAP clients, one deliverer and one pop3 client for
    `seconds`; the findings of every session, added up."""
    with Rig(base) as rig:
        r = SessionsRun(rig, seed, seconds)
        for i in range(12):
            assert rig.deliver(make_message(f"seed{i:08x}")).wait() == 0
        rig.start_fs()
        s = rig.imap()
        s.cmd(b"CREATE saved")
        s.cmd(b"LOGOUT")
        s.close()
        kinds = [r.imap_client] * clients + [r.deliverer, r.pop_client]
        threads = [threading.Thread(target=r.guard, args=(fn, random.Random(seed + i)))
                   for i, fn in enumerate(kinds)]
        r.report.clients = clients
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 180)
        return r.report
