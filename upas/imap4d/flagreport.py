"""FETCH responses of flags for many messages at once: STORE's (RFC 3501
6.4.6; RFC 7162 3.1.3 with MODSEQ) and the unasked ones that tell a
session of other sessions' changes (RFC 3501 7.4.2; UID and MODSEQ once
CONDSTORE is enabled, RFC 7162 3.1).  A STORE 1:* on 10,000 messages, or
another session's, is 10,000 lines: they are made as columns (sequence
numbers, UIDs, MODSEQs, flags texts, each distinct set of flags and
keywords formatted once) put through one format a line, not a message at
a time."""
from __future__ import annotations

import itertools
import operator
from typing import Sequence

from upas.imap4d import rev2
from upas.imap4d.message import Message

UID, MODSEQ, FLAGS = "UID", "MODSEQ", "FLAGS"
_ITEMS = {UID: b"UID %d", MODSEQ: b"MODSEQ (%d)", FLAGS: b"FLAGS (%s)"}
_UID, _FLAGS, _KEYWORDS = (operator.attrgetter(a) for a in ("uid", "flags", "keywords"))


def lines(s, box, msgs: list[Message], items: Sequence[str]) -> bytes:
    """`* n FETCH (<items>)\\r\\n` for each of msgs (of box, mailbox order
    or not), the items in the order given."""
    if not msgs:
        return b""
    cols: list[Sequence] = [seqs(box, msgs)]
    uids: list[int] | None = None
    for item in items:
        if item == FLAGS:
            cols.append(texts(s, msgs))
            continue
        uids = uids or list(map(_UID, msgs))
        cols.append(uids if item == UID else box.modseqs.of_many(uids))
    fmt = b"* %d FETCH (" + b" ".join(_ITEMS[i] for i in items) + b")\r\n"
    # one format of all the lines: a %-call a line was 40% of them
    return (fmt * len(msgs)) % tuple(itertools.chain.from_iterable(zip(*cols)))


def seqs(box, msgs: list[Message]) -> Sequence[int]:
    """box.seqs(msgs); at once when they are a run of the mailbox's
    messages (1:*), each found by its uid when they are not in order."""
    first = box.seq(msgs[0])
    if box.msgs[first - 1:first - 1 + len(msgs)] == msgs:      # (by identity)
        return range(first, first + len(msgs))
    return box.seqs(msgs)


def texts(s, msgs: list[Message]) -> list[bytes]:
    """What FETCH FLAGS shows of each message (rev2.flag_text), each
    distinct one made once: by the flags object when no message has a
    keyword (they share few frozensets: imp.flagset)."""
    flags = list(map(_FLAGS, msgs))
    if not any(map(_KEYWORDS, msgs)):
        try:
            distinct = set(flags)
        except TypeError:                           # a set, not a frozenset
            distinct = None
        if distinct is not None:                    # each told by a message with it
            shown = {f: _text(s, msgs[flags.index(f)]) for f in distinct}
            return list(map(shown.__getitem__, flags))
    made: dict[tuple, bytes] = {}
    out = []
    for m in msgs:
        key = (frozenset(m.flags), *m.keywords)
        text = made.get(key)
        if text is None:
            text = made[key] = _text(s, m)
        out.append(text)
    return out


def _text(s, m: Message) -> bytes:
    return rev2.flag_text(s, m).encode("utf-8", "surrogateescape")
