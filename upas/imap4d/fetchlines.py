"""FETCH replies that need no file of a message (UID and FLAGS: what a
client's resync asks of every message, `UID FETCH 1:* (UID FLAGS)`),
made for many messages at once.

A mailbox has few distinct flag sets, and its messages share them (one
frozenset each: imp.flagset) and the one empty keyword list; so a
message's FLAGS item is formatted once per (flags, keywords) pair, not
once per message, and the lines are joined into one write.  The text of
each item is rev2.flag_text's and fetch.item's, as for one message.
"""
from __future__ import annotations

from typing import Sequence

from upas.imap4d import rev2
from upas.imap4d.message import Message

NAMES = ("FLAGS", "UID")        # the items these lines can hold
BATCH = 4096                    # lines per write (a 100,000-message box)


def fetch_lines(s, msgs: Sequence[Message], seqs: Sequence[int], names: list[str]) -> None:
    """Send `* n FETCH (...)` for each message (n from seqs), with the
    items `names` (each in NAMES) in that order."""
    fmt = b"* %d FETCH (" + b" ".join(b"FLAGS (%s)" if a == "FLAGS" else b"UID %d"
                                      for a in names) + b")\r\n"
    flags_at = [i for i, a in enumerate(names) if a == "FLAGS"]
    texts: dict[tuple[int, int], bytes] = {}    # ids of objects msgs hold meanwhile

    def flags(m: Message) -> bytes:
        key = (id(m.flags), id(m.keywords))
        got = texts.get(key)
        if got is None:
            got = texts[key] = rev2.flag_text(s, m).encode()
        return got

    if names == ["UID", "FLAGS"]:           # the resync's own: one % a line
        lines = [fmt % (n, m.uid, flags(m)) for m, n in zip(msgs, seqs)]
    else:
        lines = [fmt % (n, *(flags(m) if i in flags_at else m.uid for i in range(len(names))))
                 for m, n in zip(msgs, seqs)]
    for at in range(0, len(lines), BATCH):
        s.send(b"".join(lines[at:at + BATCH]))
