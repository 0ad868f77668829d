"""What an IMAP client knows of its selected mailbox, kept from the
server's replies alone, and every reply that contradicts it.

A client keeps, for the mailbox it has selected, the number of messages
(EXISTS, less one per EXPUNGE), the UID and flags of each sequence number
it has been told of, and the flags the mailbox has (FLAGS, PERMANENTFLAGS).
RFC 3501 promises that this stays true:

- 7.3.1, 7.4.1: the number of messages changes only by EXISTS (which
  never shrinks it: messages leave by EXPUNGE only) and EXPUNGE (of a
  message the client knows);
- 2.3.1.2, 5.2, 7.4.2: a reply names only messages the client has been
  told exist; a sequence number keeps its UID until an EXPUNGE moves it;
- 2.3.1.1: UIDs ascend with sequence numbers, and within one UIDVALIDITY
  a UID names one message;
- 7.2.6, 7.1 (PERMANENTFLAGS): a FETCH shows only flags the mailbox has
  announced in its last FLAGS reply;
- 7.4.1, 5.5: the server does not expunge while a FETCH, STORE or SEARCH
  is in progress, so such a command fails (NO) only for messages that
  really are gone: a NOOP right after the NO must report an EXPUNGE
  (RFC 2180 4.1.2 allows that NO).

`Model.feed(line)` takes one reply line (literals inline, as Imap.until
joins them) and counts what breaks these rules in `findings`, with an
example of each in `examples`.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

SYSTEM = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent"}
_NUMBERED = re.compile(rb"\* (\d+) (EXISTS|RECENT|EXPUNGE|FETCH)\b ?(.*)", re.S | re.I)
_CODE = re.compile(rb"\* OK \[(UIDVALIDITY|PERMANENTFLAGS|UIDNEXT) ?(.*?)\]", re.I)


class Unparsable(Exception):
    pass


def parse_list(data: bytes, i: int = 0) -> tuple[list, int]:
    """A parenthesised list at data[i] (which is "("): its items (bytes,
    or lists) and the index after ")".  Atoms keep a bracketed section
    (BODY[HEADER.FIELDS (X)]) whole; quoted strings and literals become
    their contents."""
    if data[i:i + 1] != b"(":
        raise Unparsable(data[i:i + 40])
    i += 1
    out: list = []
    while True:
        while data[i:i + 1] == b" ":
            i += 1
        c = data[i:i + 1]
        if c == b")":
            return out, i + 1
        if c == b"(":
            item, i = parse_list(data, i)
        elif c == b'"':
            j, buf = i + 1, bytearray()
            while data[j:j + 1] != b'"':
                if data[j:j + 1] == b"\\":
                    j += 1
                if j >= len(data):
                    raise Unparsable(data[i:i + 40])
                buf += data[j:j + 1]
                j += 1
            item, i = bytes(buf), j + 1
        elif c == b"{":
            m = re.match(rb"\{(\d+)\+?\}\r\n", data[i:])
            if not m:
                raise Unparsable(data[i:i + 40])
            start = i + m.end()
            item, i = data[start:start + int(m.group(1))], start + int(m.group(1))
        elif c == b"":
            raise Unparsable(data[-40:])
        else:
            j, depth = i, 0
            while j < len(data):
                ch = data[j:j + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth == 0 and ch in (b" ", b")"):
                    break
                j += 1
            item, i = data[i:j], j
        out.append(item)


def fetch_items(data: bytes) -> dict[str, object]:
    """The msg-att pairs of a FETCH reply's "(...)": name -> value."""
    items, _ = parse_list(data.rstrip(b"\r\n"))
    return {items[k].decode("latin-1").upper(): items[k + 1] for k in range(0, len(items) - 1, 2)}


@dataclass
class Model:
    """One session's picture of its selected mailbox."""
    uids: list[int | None] = field(default_factory=list)     # by sequence number - 1
    flags: list[set[str] | None] = field(default_factory=list)
    announced: set[str] = field(default_factory=set)          # keywords in the last FLAGS
    permanent: set[str] = field(default_factory=set)
    uidvalidity: int = 0
    names: dict[int, str] = field(default_factory=dict)       # uid -> Message-ID token seen
    findings: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    recent_log: list[bytes] = field(default_factory=list)     # the last lines, for examples

    def fail(self, kind: str, line: bytes, why: str = "") -> None:
        self.findings[kind] += 1
        if kind not in self.examples:
            context = b"".join(self.recent_log[-7:-1]).decode("latin-1")
            self.examples[kind] = f"{why}\n{context}{line.decode('latin-1')}"

    def selected(self) -> None:
        """A new SELECT: the picture starts afresh (the replies follow)."""
        self.uids, self.flags, self.names = [], [], {}
        self.announced, self.permanent, self.uidvalidity = set(), set(), 0

    def feed(self, line: bytes) -> None:
        self.recent_log = (self.recent_log + [line[:300]])[-8:]
        m = _NUMBERED.match(line)
        if m:
            n, what, rest = int(m.group(1)), m.group(2).decode().lower(), m.group(3)
            getattr(self, "_" + what)(n, rest, line)
            return
        if line[:9].upper() == b"* FLAGS (":
            items, _ = parse_list(line[8:].rstrip(b"\r\n"))
            self.announced = {x.decode("latin-1") for x in items} - SYSTEM
            return
        m = _CODE.match(line)
        if m:
            code, arg = m.group(1).upper(), m.group(2)
            if code == b"UIDVALIDITY":
                v = int(arg)
                if self.uidvalidity and v != self.uidvalidity:
                    self.fail("uidvalidity_changed", line)
                self.uidvalidity = v
            elif code == b"PERMANENTFLAGS":
                items, _ = parse_list(arg)
                self.permanent = {x.decode("latin-1") for x in items}

    # -- numbered replies
    def _exists(self, n: int, rest: bytes, line: bytes) -> None:
        if n < len(self.uids):
            self.fail("exists_shrank", line, f"EXISTS {n} after {len(self.uids)} known")
            del self.uids[n:], self.flags[n:]
        grow = n - len(self.uids)
        self.uids += [None] * grow
        self.flags += [None] * grow

    def _recent(self, n: int, rest: bytes, line: bytes) -> None:
        if n > len(self.uids):
            self.fail("recent_beyond_exists", line, f"RECENT {n} of {len(self.uids)}")

    def _expunge(self, n: int, rest: bytes, line: bytes) -> None:
        if not 1 <= n <= len(self.uids):
            self.fail("expunge_beyond_exists", line, f"EXPUNGE {n} of {len(self.uids)}")
            return
        del self.uids[n - 1], self.flags[n - 1]

    def _fetch(self, n: int, rest: bytes, line: bytes) -> None:
        if not 1 <= n <= len(self.uids):
            self.fail("fetch_beyond_exists", line, f"FETCH {n} of {len(self.uids)}")
            return
        try:
            items = fetch_items(rest)
        except (Unparsable, IndexError, ValueError):
            self.fail("unparsable_fetch", line)
            return
        uid = items.get("UID")
        if uid is not None:
            self._uid(n, int(uid), items, line)
        fl = items.get("FLAGS")
        if fl is not None:
            got = {x.decode("latin-1") for x in fl}
            unknown = {f for f in got - SYSTEM if f not in self.announced}
            if unknown:
                self.fail("keyword_not_announced", line, f"{sorted(unknown)} not in FLAGS "
                          f"{sorted(self.announced)}")
            self.flags[n - 1] = got

    def _uid(self, n: int, uid: int, items: dict, line: bytes) -> None:
        had = self.uids[n - 1]
        if had is not None and had != uid:
            self.fail("uid_changed", line, f"seq {n} was UID {had}")
        lower = next((u for u in reversed(self.uids[:n - 1]) if u is not None), 0)
        higher = next((u for u in self.uids[n:] if u is not None), None)
        if uid <= lower or (higher is not None and uid >= higher):
            self.fail("uid_not_ascending", line, f"UID {uid} at seq {n} between {lower} "
                      f"and {higher}")
        self.uids[n - 1] = uid
        token = _token(items)
        if token is not None and self.names.setdefault(uid, token) != token:
            self.fail("uid_names_two_messages", line, f"UID {uid} was {self.names[uid]}")

    # -- what the session asks for
    def known(self) -> list[tuple[int, int]]:
        """(seq, uid) of the messages whose UID the session knows."""
        return [(i + 1, u) for i, u in enumerate(self.uids) if u is not None]


def _token(items: dict) -> str | None:
    for k, v in items.items():
        if k.startswith("BODY[") and isinstance(v, bytes):
            m = re.search(rb"<([0-9a-z-]+)@ledger>", v)
            return m.group(1).decode() if m else None
    return None
