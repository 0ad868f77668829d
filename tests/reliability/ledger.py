"""The ledger: what a mailbox must hold, checked against the file itself.

Every test message carries `Message-ID: <TOKEN@ledger>` and a body whose
SHA-256 the ledger records.  A message is `present` (must be there exactly
once), `maybe` (an operation on it was cut short by a kill: it may be there,
at most once) or `gone` (deleted on purpose, acknowledged: must not be there).  `check()` parses the mbox with the Bell
rule (upas.mail.mbox.scan) and reports every lost, duplicated, torn or
unknown message.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field

from upas.mail import mbox as mboxmod
from upas.imap4d import imp as impmod

DELETERS = ("pop_dele", "imap_expunge", "imap_move", "fs_rewrite")
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
class Ledger:
    """Expected contents of the mailboxes of one test, by token."""
    digests: dict[str, str] = field(default_factory=dict)      # token -> body digest
    boxes: dict[str, dict[str, str]] = field(default_factory=dict)  # box -> token -> state
    flags: dict[str, set[str]] = field(default_factory=dict)   # acknowledged STORE flags
    deleted: int = 0
    doomed: set[tuple[str, str]] = field(default_factory=set)
    stored_digest: dict[tuple[str, str], str] = field(default_factory=dict)
    strict: bool = False       # acknowledged deletes and flags must also be durable
    soft: list[str] = field(default_factory=list)   # what strict mode would fail on
    events: dict[str, list[str]] = field(default_factory=dict)   # token -> what happened
    now: str = ""                                                # the operation under way

    def new_message(self) -> tuple[str, bytes]:
        token = secrets.token_hex(8)
        msg = make_message(token)
        self.digests[token] = body_digest(msg.partition(b"\n\n")[2])
        return token, msg

    def expect(self, box: str, token: str, state: str = "present") -> None:
        """Record a message's state.  A delete that was cut short may still
        land later (upasfs purges at its next sync), so once a delete has
        been asked for, the message may vanish at any later check."""
        if state == "present" and (box, token) in self.doomed:
            state = "maybe"
        elif state in ("maybe", "gone") and box == "mbox" and self.now.split(" ")[-1] in DELETERS:
            self.doomed.add((box, token))
        self.boxes.setdefault(box, {})[token] = state
        self.events.setdefault(token, []).append(f"{self.now}: {box} {state}")

    def state(self, box: str, token: str) -> str | None:
        return self.boxes.get(box, {}).get(token)

    def forget(self, box: str, token: str) -> None:
        """Deleted on purpose (and acknowledged)."""
        if self.boxes.get(box, {}).pop(token, None) is not None:
            self.deleted += 1
        self.flags.pop(token, None)

    def tokens(self, box: str, state: str | None = None) -> list[str]:
        return [t for t, s in self.boxes.get(box, {}).items() if state in (None, s)]

    def check(self, box: str, path: str) -> list[StoredMessage]:
        """Assert the mbox at path holds what the ledger says; settle the
        `maybe` entries to what was found.  Returns the stored messages."""
        stored = read_mbox(path, self)
        found: dict[str, int] = {}
        for m in stored:
            if m.token is None or m.token not in self.digests:
                raise AssertionError(f"{path}: a message that was never delivered (torn?)")
            if not m.body_ok:
                raise AssertionError(f"{path}: message {m.token} is torn or altered")
            found[m.token] = found.get(m.token, 0) + 1
            first = self.stored_digest.setdefault((box, m.token), m.digest)
            if first != m.digest:
                self.soft.append(f"{m.token}: stored bytes changed (upas digest {first} -> {m.digest})")
                self.stored_digest[(box, m.token)] = m.digest
        errors = []
        for token, state in list(self.boxes.get(box, {}).items()):
            n = found.pop(token, 0)
            if n > 1:
                errors.append(f"{token} stored {n} times")
            elif n == 0 and state == "present":
                errors.append(f"{token} lost (history: {self.events.get(token)})")
            elif n == 0:
                self.forget(box, token)
            elif state == "gone":
                self.soft.append(f"{token} came back after an acknowledged delete")
                self.boxes[box][token] = "maybe"
            else:
                self.expect(box, token)
        errors += [f"{t} appeared in {box} unasked" for t in found]
        if errors:
            raise AssertionError(f"{path}: " + "; ".join(errors))
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
        the last acknowledged STORE kept."""
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
            want = self.flags.get(m.token, set()) if flags else set()
            if not want <= e.flags:     # a hard failure since imap4d be3e8e1
                raise AssertionError(f"{m.token}: flags {want} lost, .imp has {e.flags} "
                                     f"(uid {e.uid}, uidvalidity {imp.uidvalidity}, "
                                     f"uidvalidities seen {sorted(uids)}, earlier UIDs "
                                     f"{[u for u, t in seen.items() if t == m.token]}, "
                                     f"digest {m.digest})")


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
