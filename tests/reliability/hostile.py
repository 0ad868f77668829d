"""The hostile client of the stress run (issue 17): while the others work
on the mailbox, it sends the attacks of tests/test_harden_*.py, one after
another, and checks that each is answered as hardened servers answer it.

- MIME bombs (1000 nested multiparts or message/rfc822, 400 of both, a
  flood of more parts than mime.MAX_PARTS) delivered into the very mailbox
  the others read; they carry ledger tokens, so the ledger counts them and
  the others may fetch and delete them like any message;
- FETCH BODYSTRUCTURE of the whole mailbox, bombs included;
- SEARCH programs nested 1000 deep (BAD, and the session goes on);
- a 64 MiB literal before login (NO [TOOBIG]; as LITERAL+: BAD and BYE,
  unread);
- slowloris sessions (closed at the login deadline);
- bad logins with control characters in the user name, and wrong
  secrets from a (pretended) guessing address;
- holding L.mbox for a moment, as a local user can (the others wait less
  than UPAS_SESSION_LOCK_TIMEOUT and go on).

Any other answer is a failure of the run, as is any failure of the others.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from fuzz.nesting import mime_bomb, mime_flood, search_bomb
from tests.reliability.ledger import body_digest
from tests.reliability.rig import Imap, LineSession, SessionError
from upas.mail.lock import MailLock

LOGIN_TIMEOUT = 1.5


MIN_ATTACKS = 3                 # made however short the run (the suite's check)


class Hostile:
    def __init__(self, stress):
        self.st = stress
        self.rig = stress.rig
        self.env = dict(self.rig.env, POP3_DELAY_SCALE="0.01", IMAP4D_DELAY_SCALE="0.01",
                        UPAS_LOGIN_DELAY_SCALE="0.01",
                        IMAP4D_LOGIN_TIMEOUT=str(LOGIN_TIMEOUT),
                        POP3_LOGIN_TIMEOUT=str(LOGIN_TIMEOUT))
        # a flood of parts costs a BODYSTRUCTURE of the mailbox seconds: in
        # long runs only (make stress), the suite's would barely start
        self.flooded = stress.deadline - time.monotonic() < 60
        self.attacks = 0

    def run(self, rng: random.Random) -> None:
        # the quick ones first: a short run (the suite's) still sees most
        moves = [self.search_nesting, self.big_literal, self.bad_names, self.guesses,
                 self.hold_lock, self.bomb, self.slowloris, self.bodystructure]
        while True:                     # (the deadline is checked before each move)
            for move in moves:          # every attack once a round
                # the first quick ones even past the deadline: on a loaded
                # machine a short run would otherwise end before any
                if not self.st.running() and self.attacks >= MIN_ATTACKS:
                    return
                move(rng)
                self.attacks += 1
                time.sleep(rng.uniform(0, 0.2))
            rng.shuffle(moves)          # the next round in another order

    # -- a hostile message in everyone's mailbox
    def bomb(self, rng: random.Random) -> None:
        token = secrets.token_hex(8)
        hdr = b"Message-ID: <" + token.encode() + b"@ledger>\n"
        if not self.flooded and rng.random() < 0.3:
            self.flooded = True
            msg = mime_flood(12000, b"flood", hdr)
        else:
            depth, kind = rng.choice([(1000, "multipart"), (1000, "rfc822"), (400, "mixed")])
            msg = mime_bomb(depth, kind, subject=b"bomb", headers=hdr)
        st = self.st
        with st.lock:
            st.ledger.digests[token] = body_digest(msg.partition(b"\n\n")[2])
        st._ledger("adding", token, note="bomb")
        if self.rig.deliver(msg).wait(60) != 0:
            raise AssertionError("mbappend of a bomb failed")
        st._ledger("added", token)
        st._count("deliveries")

    def bodystructure(self, rng: random.Random) -> None:
        with self._selected() as s:
            for _ in range(5):          # NO for messages expunged meanwhile: again
                tag = s.start(b"FETCH 1:* (BODYSTRUCTURE)")
                last = _tagged(s, tag)
                if last.startswith(tag + b" OK"):
                    break
                if b" NO " not in last:
                    raise AssertionError(f"BODYSTRUCTURE: {last!r}")
                s.cmd(b"NOOP")

    # -- hostile commands
    def search_nesting(self, rng: random.Random) -> None:
        with self._selected() as s:
            tag = s.start(b"SEARCH " + search_bomb(1000, rng.choice(["(", "NOT", "OR"])))
            last = _tagged(s, tag)
            if last != tag + b" BAD SEARCH search program nested too deeply\r\n":
                raise AssertionError(f"nested SEARCH: {last!r}")
            s.cmd(b"SEARCH ALL")

    def big_literal(self, rng: random.Random) -> None:
        s = self._imap_login_session()
        try:
            plus = rng.random() < 0.5
            s.send(b"a LOGIN {%d%s}\r\n" % (64 << 20, b"+" if plus else b""))
            if not plus:
                want = b"a NO [TOOBIG] LOGIN literal too large before login\r\n"
                if s.line() != want:
                    raise AssertionError("a big synchronising literal was not refused")
                return
            try:
                for _ in range(64):
                    s.send(b"x" * (1 << 20))
            except OSError:
                pass                    # hung up on, unread: as it should
            got = [s.line(), s.line()]
            if got != [b"a BAD [TOOBIG] LOGIN literal too large before login\r\n",
                       b"* BYE literal too large before login\r\n"]:
                raise AssertionError(f"LITERAL+ before login: {got!r}")
        finally:
            s.close()

    def slowloris(self, rng: random.Random) -> None:
        imap = rng.random() < 0.5
        s = self._imap_login_session() if imap else self._pop_login_session()
        t = time.monotonic()
        try:
            while time.monotonic() - t < LOGIN_TIMEOUT + 20:
                s.send(b"x")
                time.sleep(0.3)
                if s.proc.poll() is not None:
                    break
        except OSError:
            pass
        finally:
            s.close()
        if time.monotonic() - t > LOGIN_TIMEOUT + 15:
            raise AssertionError("a slowloris session outlived the login deadline")

    def bad_names(self, rng: random.Random) -> None:
        s = self._imap_login_session()
        try:
            s.send(b"a AUTHENTICATE CRAM-MD5\r\n")
            chal = base64.b64decode(s.line()[2:].strip())
            d = hmac.new(b"glenda-apop", chal, hashlib.md5).hexdigest().encode()
            s.send(base64.b64encode(b"glenda\0bob " + d) + b"\r\n")
            got = s.line()
            # refused as a failed login; on a loaded machine the 1.5 s
            # login deadline (a BYE) may come first: not let in either
            if got != b"a NO AUTHENTICATE failed login failed\r\n" and \
                    not got.startswith(b"* BYE "):
                raise AssertionError(f"a NUL in a CRAM-MD5 user name got through: {got!r}")
        finally:
            s.close()
        p = self._pop_login_session()
        try:
            p.send(b"USER glenda\x01\r\n")
            if p.line() != b"-ERR bad mailbox name\r\n":
                raise AssertionError("a control character in USER got through")
        finally:
            p.close()

    def guesses(self, rng: random.Random) -> None:
        p = self._pop_login_session(peer="10.66.0.%d" % rng.randint(1, 3))
        try:
            chal = p.greeting.rstrip(b"\r\n").rsplit(b" ", 1)[-1]
            d = hashlib.md5(chal + b"guess-%d" % rng.randint(0, 1 << 30)).hexdigest()
            p.send(f"APOP glenda {d}\r\n".encode())
            if not p.line().startswith(b"-ERR"):
                raise AssertionError("a guess was let in")
        finally:
            p.close()

    def hold_lock(self, rng: random.Random) -> None:
        with MailLock(self.rig.path("")):       # as a local user may (L.mbox is 0666)
            time.sleep(rng.uniform(0.5, 2))

    @contextmanager
    def _selected(self) -> Iterator[Imap]:
        """A preauthenticated session with INBOX selected, logged out after."""
        s = self.rig.imap()
        try:
            s.cmd(b"SELECT INBOX")
            yield s
            s.cmd(b"LOGOUT")
        finally:
            s.close()

    # -- sessions that must log in
    def _imap_login_session(self) -> LineSession:
        s = LineSession([sys.executable, "-m", "upas.imap4d", "-p", "-s", "imap.test"], self.env)
        if not s.line().startswith(b"* OK"):
            raise SessionError("imap4d greeting")
        return s

    def _pop_login_session(self, peer: str = "") -> LineSession:
        argv = [sys.executable, "-m", "upas.pop3", "-p"] + (["-r", peer + "!1"] if peer else [])
        s = LineSession(argv, self.env)
        s.greeting = s.line()
        if not s.greeting.startswith(b"+OK"):
            raise SessionError("pop3 greeting")
        return s


def _tagged(s: Imap, tag: bytes) -> bytes:
    """The tagged reply, whatever its status (Imap.until raises on NO/BAD)."""
    while True:
        line = s.line()
        while line.endswith(b"}\r\n") and b"{" in line:
            n = int(line[line.rindex(b"{") + 1:-3])
            line += s.file.read(n) + s.line()
        if line.startswith(tag + b" "):
            return line
