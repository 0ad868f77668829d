"""The ledger: what a mailbox must hold, checked against the file itself.

Every test message carries `Message-ID: <TOKEN@ledger>` and a body whose
SHA-256 the ledger records.  Byte-identical copies share a token, so the
ledger keeps, per mailbox and token, how many copies there may be (Count:
an operation cut short by a kill leaves a range).  `check()` parses the
mbox with the Bell rule (upas.mail.mbox.scan) and reports every lost,
duplicated, torn or unknown message.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field

from upas.mail import mbox as mboxmod
from upas.imap4d import imp as impmod

_MSGID = re.compile(rb"(?im)^message-id:\s*<([0-9a-z-]+)@ledger>")


def body_digest(body: bytes) -> str:
    """Digest of a body as any server may store it (CRLF or LF, the
    blank-line padding of the mbox format and `From ` escapes ignored)."""
    body = body.replace(b"\r\n", b"\n").rstrip(b"\n")
    body = re.sub(rb"(?m)^ From ", b"From ", body)
    return hashlib.sha256(body).hexdigest()


def make_message(token: str, lines: int = 8) -> bytes:
    """A test message (LF line ends) that no server needs to escape."""
    body = b"".join(b"line %d %s\n" % (i, secrets.token_hex(24).encode())
                    for i in range(lines))
    return (b"From: ledger@example.com\nTo: glenda@upas.local\n"
            b"Subject: ledger " + token.encode() + b"\n"
            b"Message-ID: <" + token.encode() + b"@ledger>\n\n" + body)


def split_message(raw: bytes) -> tuple[str | None, bytes]:
    """(token, body) of a stored or fetched message."""
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    m = _MSGID.search(head)
    return (m.group(1).decode() if m else None), body


@dataclass
class StoredMessage:
    token: str | None
    digest: str          # the upas digest (SHA-1 of the stored bytes)
    body_ok: bool


def read_mbox(path: str, ledger: "Ledger") -> list[StoredMessage]:
    """Parse the mbox file; each message checked against the ledger."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        return []
    if buf and not buf.startswith(b"From "):
        raise AssertionError(f"{path}: does not begin with a From line: {buf[:60]!r}")
    out = []
    for s, e in mboxmod.scan(buf, 0, len(buf)):
        raw = buf[s:e]
        token, body = split_message(raw.split(b"\n", 1)[1] if b"\n" in raw else b"")
        want = ledger.digests.get(token)
        out.append(StoredMessage(token, mboxmod.digest_of(buf, s, e).decode(),
                                 want is not None and body_digest(body) == want))
    return out


@dataclass
class Count:
    """How many copies of one message a mailbox may hold: between lo and
    hi.  Byte-identical copies (COPY twice, the same APPEND twice, a
    delivery repeated) share a token, so a mailbox holds a number of
    each.  An operation under way widens the range (adding: hi + 1,
    removing: lo - 1) and its acknowledgement narrows it again, in any
    order; a check settles it to what the file holds."""
    lo: int = 0
    hi: int = 0
    pending: int = 0      # deletes asked for and not acknowledged: may land later
    undone: int = 0       # deletes acknowledged since the last check
    seen: int = 0         # copies the last check found
    most: int = 0         # the most copies there may have been
    going_uids: set = field(default_factory=set)  # UIDs of copies deletes were asked for
    gone_uids: set = field(default_factory=set)   # UIDs of copies deleted, acknowledged
    vague: bool = False   # a copy of several deleted by number (pop3, ctl): which one
                          # is not known, so two deletes of one copy cannot be told
                          # from an undone delete


@dataclass
class Ledger:
    """Expected contents of the mailboxes of one test, by token."""
    digests: dict[str, str] = field(default_factory=dict)      # token -> body digest
    boxes: dict[str, dict[str, Count]] = field(default_factory=dict)  # box -> token -> count
    # acknowledged STORE flags of one copy: (token, uid) -> flags
    flags: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    deleted: int = 0
    strict: bool = False       # acknowledged deletes and flags must also be durable
    soft: list[str] = field(default_factory=list)   # what strict mode would fail on
    events: dict[str, list[str]] = field(default_factory=dict)   # token -> what happened
    now: str = ""                                                # the operation under way

    def new_message(self) -> tuple[str, bytes]:
        token = secrets.token_hex(8)
        msg = make_message(token)
        self.digests[token] = body_digest(msg.partition(b"\n\n")[2])
        return token, msg

    def _count(self, box: str, token: str) -> Count:
        return self.boxes.setdefault(box, {}).setdefault(token, Count())

    def _log(self, box: str, token: str, what: str, note: str = "") -> None:
        self.events.setdefault(token, []).append(f"{note or self.now}: {box} {what}")

    # -- what the harness does
    def adding(self, box: str, token: str, note: str = "") -> None:
        """An operation that may store one copy (delivery, APPEND, COPY) started."""
        c = self._count(box, token)
        c.hi += 1
        c.most = max(c.most, c.hi)
        self._log(box, token, "adding", note)

    def added(self, box: str, token: str, note: str = "") -> None:
        """... and was acknowledged: the copy is there."""
        self._count(box, token).lo += 1
        self._log(box, token, "added", note)

    def present(self, box: str, token: str) -> None:
        self.adding(box, token)
        self.added(box, token)

    def removing(self, box: str, token: str, uid: int | None = None, note: str = "") -> None:
        """An operation that may delete one copy started (its UID if known:
        a delete by message number drops the flags of every copy).  A
        delete cut short may still land later (upasfs purges at its next
        sync), so until acknowledged the copy may vanish at any check."""
        c = self._count(box, token)
        c.pending += 1
        if uid is None or uid not in c.going_uids:    # a second delete of one copy
            c.lo -= 1                                 # takes no other
            c.going_uids.add(uid)
        for key in [k for k in self.flags if k[0] == token and uid in (None, k[1])]:
            del self.flags[key]
        self._log(box, token, f"removing uid {uid}", note)

    def removed(self, box: str, token: str, uid: int | None = None, note: str = "") -> None:
        """... and was acknowledged: the copy is gone.  Two sessions may
        delete one copy: a copy's UID counts once, and a token that never
        had two copies cannot go below none."""
        c = self._count(box, token)
        c.pending -= 1
        if uid is not None and uid in c.gone_uids:
            return
        c.gone_uids.add(uid)
        c.vague |= uid is None and c.most > 1
        c.hi = max(c.hi - 1, 0) if c.most <= 1 else c.hi - 1
        c.undone += 1
        self.deleted += 1
        self._log(box, token, "removed", note)

    def count(self, box: str, token: str) -> Count | None:
        return self.boxes.get(box, {}).get(token)

    def tokens(self, box: str) -> list[str]:
        """Tokens of which the mailbox may hold a copy."""
        return [t for t, c in self.boxes.get(box, {}).items() if c.hi > 0]

    def check(self, box: str, path: str) -> list[StoredMessage]:
        """Assert the mbox at path holds what the ledger says; settle the
        ranges to what was found.  Returns the stored messages."""
        stored = read_mbox(path, self)
        found: dict[str, int] = {}
        for m in stored:
            if m.token is None or m.token not in self.digests:
                raise AssertionError(f"{path}: a message that was never delivered (torn?)")
            if not m.body_ok:
                raise AssertionError(f"{path}: message {m.token} is torn or altered")
            found[m.token] = found.get(m.token, 0) + 1
        counts = self.boxes.setdefault(box, {})
        errors = [f"{t} appeared in {box} unasked" for t in found if t not in counts]
        for token, c in counts.items():
            n = found.get(token, 0)
            if n < c.lo:
                errors.append(f"{token}: {n} of at least {c.lo} copies left, some lost "
                              f"(history: {self.events.get(token)})")
            elif n > c.hi and n - c.hi > c.undone and not c.vague:
                errors.append(f"{token} stored {n} times, at most {c.hi} expected "
                              f"(history: {self.events.get(token)})")
        if errors:
            raise AssertionError(f"{path}: " + "; ".join(errors))
        for token, c in list(counts.items()):
            n = found.get(token, 0)
            if n > c.hi and not c.vague:
                self.soft.append(f"{token} came back after an acknowledged delete")
            c.hi, c.lo, c.undone, c.seen, c.vague = n, max(0, n - c.pending), 0, n, False
            c.most = n
            if n == 0 and c.pending == 0:
                del counts[token]
        self._settle()
        return stored

    def _settle(self) -> None:
        if self.strict and self.soft:
            raise AssertionError("; ".join(self.soft))

    def check_imp(self, path: str, stored: list[StoredMessage],
                  uids: dict[int, dict[int, str]], flags: bool = True) -> None:
        """The .imp of a mailbox that a fresh session has just selected:
        one entry per message in order, increasing UIDs below uidnext, no
        UID given to two messages within one UIDVALIDITY, and the flags of
        the last acknowledged STORE kept, each on its own copy (the copy
        keeps its UID)."""
        with open(path + ".imp", "rb") as f:
            imp = impmod.parse_imp(f.read())
        assert imp is not None, f"{path}.imp does not parse"
        assert [e.digest for e in imp.entries] == [m.digest for m in stored], \
            f"{path}.imp does not list the mailbox's messages in order"
        seen = uids.setdefault(imp.uidvalidity, {})
        last = 0
        for e, m in zip(imp.entries, stored):
            assert last < e.uid < imp.uidnext, f"{path}.imp: UID {e.uid} out of order"
            last = e.uid
            assert seen.setdefault(e.uid, m.token) == m.token, \
                f"UID {e.uid} reused within UIDVALIDITY {imp.uidvalidity}"
        if not flags:
            return
        have = {(m.token, e.uid): e for e, m in zip(imp.entries, stored)}
        for (token, uid), want in self.flags.items():
            e = have.get((token, uid))
            if e is None and any(t == token for t, _ in have):
                raise AssertionError(f"{token}: the copy with UID {uid} and flags {want} "
                                     f"is not in {path}.imp, others are "
                                     f"(UIDs {[u for t, u in have if t == token]})")
            if e is not None and not want <= e.flags:   # hard since imap4d be3e8e1
                raise AssertionError(f"{token}: flags {want} lost, .imp has {e.flags} "
                                     f"(uid {uid}, uidvalidity {imp.uidvalidity}, "
                                     f"uidvalidities seen {sorted(uids)}, digest {e.digest})")


def lock_is_free(dirpath: str) -> bool:
    """L.mbox can be taken within a few seconds (a delivery may hold it
    briefly; a lock left by a killed process would hold it for ever)."""
    from upas.mail.lock import LockError, MailLock
    try:
        with MailLock(dirpath, timeout=10):
            return True
    except LockError:
        return False


def box_path(mailroot: str, user: str, box: str) -> str:
    return os.path.join(mailroot, "box", user, box)
