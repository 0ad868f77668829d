"""FETCH responses of flags for many messages at once: STORE's (RFC 3501
6.4.6; RFC 7162 3.1.3 with MODSEQ), a FETCH of flags, UIDs and MODSEQs
only, and the unasked ones that tell a session of other sessions'
changes (RFC 3501 7.4.2; UID and MODSEQ once CONDSTORE is enabled, RFC
7162 3.1).  A STORE 1:* on 10,000 messages, or another session's, is
10,000 lines: they are made by one format of all of them.  Each
distinct set of flags and keywords is made into its line's whole format
once (`* %d FETCH (UID %d FLAGS (\\Seen))\\r\\n`), so the format is a
join of those, and only the numbers (sequence numbers, UIDs, MODSEQs)
are formatted, taken as columns."""
from __future__ import annotations

import operator
from typing import Sequence

from upas.imap4d import rev2
from upas.imap4d.message import Message

UID, MODSEQ, FLAGS = "UID", "MODSEQ", "FLAGS"
_ITEMS = {UID: b"UID %d", MODSEQ: b"MODSEQ (%d)", FLAGS: b"FLAGS (%s)"}
_UID, _FLAGS, _KEYWORDS = (operator.attrgetter(a) for a in ("uid", "flags", "keywords"))


def lines(s, box, msgs: list[Message], items: Sequence[str]) -> bytes:
    """`* n FETCH (<items>)\\r\\n` for each of msgs (of box, mailbox order
    or not), the items (UID, MODSEQ, FLAGS, any of them more than once)
    in the order given."""
    if not msgs:
        return b""
    n = len(msgs)
    cols: list = [seqs(box, msgs)]
    uids: list[int] | None = None
    for item in items:
        if item == UID:
            cols.append(uids or map(_UID, msgs))
        elif item == MODSEQ:
            uids = uids or list(map(_UID, msgs))
            cols.append(box.modseqs.of_many(uids))
    # the formats a message's flags give: the flags texts are in them
    # (a %-escaped text), so the format has a field a number only
    pattern = b"* %d FETCH (" + b" ".join(_ITEMS[i] for i in items) + b")\r\n"
    if FLAGS in items:
        fmts = formats(s, msgs, lambda text: pattern.replace(b"%s", text.replace(b"%", b"%%")))
        fmt = b"".join(fmts)
    else:
        fmt = pattern * n
    k = len(cols)
    if k == 1:
        return fmt % tuple(cols[0])
    args: list = [None] * (k * n)           # the columns interleaved, in C
    for j, col in enumerate(cols):
        args[j::k] = col
    return fmt % tuple(args)


def seqs(box, msgs: list[Message]) -> Sequence[int]:
    """box.seqs(msgs); at once when they are a run of the mailbox's
    messages (1:*), each found by its uid when they are not in order."""
    first = box.seq(msgs[0])
    if box.msgs[first - 1:first - 1 + len(msgs)] == msgs:      # (by identity)
        return range(first, first + len(msgs))
    return box.seqs(msgs)


def formats(s, msgs: list[Message], made_of) -> list[bytes]:
    """made_of(text) of each message, text being what FETCH FLAGS shows
    of it (rev2.flag_text), made once for each distinct text: by the
    flags object when no message has a keyword (messages share few
    frozensets: imp.flagset)."""
    flags = list(map(_FLAGS, msgs))
    if not any(map(_KEYWORDS, msgs)):
        try:
            distinct = set(flags)
        except TypeError:                           # a set, not a frozenset
            distinct = None
        if distinct is not None:                    # each told by a message with it
            shown = {f: made_of(_text(s, msgs[flags.index(f)])) for f in distinct}
            return list(map(shown.__getitem__, flags))
    made: dict[tuple, bytes] = {}
    out = []
    for m in msgs:
        key = (frozenset(m.flags), *m.keywords)
        one = made.get(key)
        if one is None:
            one = made[key] = made_of(_text(s, m))
        out.append(one)
    return out


def _text(s, m: Message) -> bytes:
    return rev2.flag_text(s, m).encode("utf-8", "surrogateescape")
