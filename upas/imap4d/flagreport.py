"""FETCH responses of flags for many messages at once: STORE's (RFC 3501
6.4.6; RFC 7162 3.1.3 with MODSEQ), a FETCH of flags, UIDs and MODSEQs
only, and the unasked ones that tell a session of other sessions'
changes (RFC 3501 7.4.2; UID and MODSEQ once CONDSTORE is enabled, RFC
7162 3.1).  A STORE 1:* on 10,000 messages, or another session's, is
10,000 lines: each distinct set of flags and keywords is made into its
line's whole format once (`* %d FETCH (UID %d FLAGS (\\Seen))\\r\\n`),
the format of many lines is a join of those, and only the numbers
(sequence numbers, UIDs, MODSEQs) are formatted, taken as columns."""
from __future__ import annotations

import bisect
import operator
from typing import Iterator, Sequence

from upas.imap4d import imp, rev2
from upas.imap4d.message import Message
from upas.imap4d.msgview import Picked

UID, MODSEQ, FLAGS = "UID", "MODSEQ", "FLAGS"
_ITEMS = {UID: b"UID %d", MODSEQ: b"MODSEQ (%d)", FLAGS: b"FLAGS (%s)"}
_UID, _FLAGS, _KEYWORDS = (operator.attrgetter(a) for a in ("uid", "flags", "keywords"))
# lines a part: its buffers (~80 KB) are freed by the time the next
# one is made, which reuses them; 10,000 lines at once took 260-550
# fresh pages of the session, a page fault each (~0.4 ms of ~3)
CHUNK = 2048
# lines of the first part: a long reply's parts grow from this to CHUNK,
# each sent as soon as it is made (s.flush), so that the client starts
# reading ~0.35 ms sooner (a part of CHUNK takes that to make) and,
# reading slower than they are made (the bench's client 2,200 lines a
# ms, made 5,000 a ms), does not wait for the next
FIRST = 256


def send(s, box, msgs: list[Message], items: Sequence[str]) -> None:
    """s.send() the lines() a part at a time, each part written before
    the next is made; each sent at once (s.flush) but the last, which
    goes with the tagged reply."""
    n = len(msgs)
    for end, part in parts(s, box, msgs, items, FIRST):
        s.send(part)
        if end < n:
            s.flush()


def lines(s, box, msgs: list[Message], items: Sequence[str]) -> bytes:
    """`* n FETCH (<items>)\\r\\n` for each of msgs (of box, mailbox order
    or not), the items (UID, MODSEQ, FLAGS, any of them more than once)
    in the order given."""
    return b"".join(part for _, part in parts(s, box, msgs, items))


def parts(s, box, msgs: list[Message], items: Sequence[str],
          first: int | None = None) -> Iterator[tuple[int, bytes]]:
    """lines(), a part at a time, each part's columns made for it: (the
    end of the part in msgs, its bytes).  The first part is `first`
    lines (else CHUNK), each next one twice the last, up to CHUNK."""
    if not msgs:
        return
    if isinstance(msgs, Picked) and msgs.lazy.full is not None:
        msgs = msgs.as_list()           # walked since: the list is the truth
    # the format of a line has its flags text in it (%-escaped), so it
    # has a field for each number only
    pattern = b"* %d FETCH (" + b" ".join(_ITEMS[i] for i in items) + b")\r\n"
    numbers = [i for i in items if i != FLAGS]
    made: dict = {}                 # the formats made, for all the parts

    def made_of(text: bytes) -> bytes:
        return pattern.replace(b"%s", text.replace(b"%", b"%%"))
    if isinstance(msgs, Picked):        # a lazy view's columns, none made
        all_seqs, all_uids, masks = msgs.seqs(), msgs.column(msgs.lazy.uids), None
        if FLAGS in items:
            masks, made_at = msgs.column(msgs.lazy.masks), msgs.made()
    else:
        all_seqs, all_uids, masks = seqs(box, msgs), None, None
    k = 1 + len(numbers)
    for at, end in _spans(len(msgs), first or CHUNK):
        cols: list[Sequence[int]] = [all_seqs[at:end]]
        uids: list[int] | None = None
        for item in numbers:
            uids = uids or (all_uids[at:end] if all_uids is not None
                            else list(map(_UID, msgs[at:end])))
            cols.append(uids if item == UID else box.modseqs.of_many(uids))
        if FLAGS not in items:
            fmt = pattern * (end - at)
        elif masks is None:
            fmt = b"".join(formats(s, msgs[at:end], made_of, made))
        else:
            fmt = b"".join(mask_formats(s, masks[at:end], made_at, at, made_of, made))
        args: list = [None] * (k * (end - at))   # the columns interleaved, in C
        for c, col in enumerate(cols):
            args[c::k] = col
        yield end, fmt % tuple(args)


def _spans(n: int, first: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each part of n lines: `first`, then each twice
    the last, up to CHUNK."""
    at, size = 0, min(first, CHUNK)
    while at < n:
        yield at, min(at + size, n)
        at, size = at + size, min(2 * size, CHUNK)


def seqs(box, msgs: list[Message]) -> Sequence[int]:
    """box.seqs(msgs); at once when they are a run of the mailbox's
    messages (1:*); each found by its uid when they are a few (QRESYNC's
    changed messages, others' changes: box.seqs walks the mailbox up to
    the last of them, 0.28 ms for 20 of 10,000)."""
    first = box.seq(msgs[0])
    if box.run(first - 1, first - 1 + len(msgs)) == msgs:      # (by identity)
        return range(first, first + len(msgs))
    if len(msgs) * 16 < box.count() and (at := found(box, msgs)) is not None:
        return [k + 1 for k in at]
    return box.seqs(msgs)


def found(box, msgs: list[Message]) -> list[int] | None:
    """The index of each of msgs in box.msgs, found by its uid (they
    ascend in mailbox order) and checked by identity; None when one is
    not found so (not in the mailbox, or a message not numbered yet in
    the way): the caller looks at every message then.  A lazy view's
    are found in its columns, none made (msgview.Lazy.place)."""
    lazy = box.lazy()
    if lazy is not None:
        at = list(map(lazy.place, msgs))
        return None if None in at else at
    all_ = box.msgs
    out = []
    for m in msgs:
        k = bisect.bisect_left(all_, m.uid, key=_UID)
        if k == len(all_) or all_[k] is not m:
            return None
        out.append(k)
    return out


def formats(s, msgs: list[Message], made_of, made: dict) -> list[bytes]:
    """made_of(text) of each message, text being what FETCH FLAGS shows
    of it (rev2.flag_text), each distinct one made once and kept in
    `made`: by the flags object when no message has a keyword (messages
    share few frozensets: imp.flagset), else by flags and keywords."""
    flags = list(map(_FLAGS, msgs))
    if not any(map(_KEYWORDS, msgs)):
        try:
            distinct = set(flags)
        except TypeError:                           # a set, not a frozenset
            distinct = None
        if distinct is not None:                    # each told by a message with it
            for f in distinct.difference(made):
                made[f] = made_of(_text(s, msgs[flags.index(f)]))
            return list(map(made.__getitem__, flags))
    out = []
    for m in msgs:
        key = (frozenset(m.flags), *m.keywords)
        one = made.get(key)
        if one is None:
            one = made[key] = made_of(_text(s, m))
        out.append(one)
    return out


def mask_formats(s, masks: bytes, made_at: dict[int, Message], at: int,
                 made_of, made: dict) -> list[bytes]:
    """formats() of the messages of a lazy view whose mask bytes
    (imp.line_columns) are `masks`, at `at` on in the pick: a message not
    made has its mask's flags and no keyword (msgview.Lazy.at makes it
    so), and its format is kept under those flags, as formats() keeps a
    message's; made_at: the messages made (pick index -> message), whose
    own flags and keywords are told."""
    by_mask: dict[int, bytes] = {}
    for b in set(masks):
        f = imp.flags_of_mask(b)
        one = made.get(f)
        if one is None:
            one = made[f] = made_of(_text(s, Message(0, "", 0, f)))
        by_mask[b] = one
    out = list(map(by_mask.__getitem__, masks))
    for i, m in made_at.items():
        if at <= i < at + len(out):
            out[i - at] = formats(s, [m], made_of, made)[0]
    return out


def _text(s, m: Message) -> bytes:
    return rev2.flag_text(s, m).encode("utf-8", "surrogateescape")
