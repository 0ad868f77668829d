"""FETCH lines for a few messages of a large mailbox (QRESYNC's changed
messages at SELECT, other sessions' changes told at a command's end):
each message's sequence number is found by its UID (flagreport.found),
and when that cannot be trusted -- a message not numbered yet among
them, a message no longer in the view -- by a walk over the mailbox.
A sequence number is the message's position in the mailbox, from 1
(RFC 3501 2.3.1.2)."""
from __future__ import annotations

from upas.imap4d import flagreport, imp, session
from upas.imap4d.mailbox import Mailbox
from upas.imap4d.message import Message
from upas.imap4d.session import Options, Session

SEEN = imp.flagset({"\\Seen"})


def make_box(n: int = 300) -> Mailbox:
    box = Mailbox(None, "/mail/box/glenda/mbox")
    # ascending UIDs with gaps, as after expunges
    box.msgs = [Message(i + 1, "%040x" % i, uid=3 * i + 7, flags=SEEN if i % 2 else frozenset())
                for i in range(n)]
    return box


def positions(box: Mailbox, msgs: list[Message]) -> list[int]:
    return [next(i for i, x in enumerate(box.msgs) if x is m) + 1 for m in msgs]


def lines_of(box: Mailbox, msgs: list[Message]) -> bytes:
    s = Session(Options(), lambda user: None, lambda ev: None)
    return flagreport.lines(s, box, msgs, [flagreport.UID, flagreport.FLAGS])


def want_lines(box: Mailbox, msgs: list[Message]) -> bytes:
    return b"".join(b"* %d FETCH (UID %d FLAGS (%s))\r\n"
                    % (seq, m.uid, b"\\Seen" if "\\Seen" in m.flags else b"")
                    for seq, m in zip(positions(box, msgs), msgs))


def test_a_few_messages_numbered_by_their_uids():
    box = make_box()
    few = [box.msgs[k] for k in (4, 150, 299)]
    assert flagreport.found(box, few) == [4, 150, 299]
    assert list(flagreport.seqs(box, few)) == [5, 151, 300]
    assert lines_of(box, few) == want_lines(box, few)
    # out of mailbox order (others' changes come in the order noticed)
    few.reverse()
    assert list(flagreport.seqs(box, few)) == [300, 151, 5]
    assert lines_of(box, few) == want_lines(box, few)


def test_a_message_not_numbered_yet_makes_it_walk():
    box = make_box()
    box.msgs[100].uid = 0           # came, not numbered yet: no order there
    few = [box.msgs[k] for k in (40, 101, 250)]
    assert list(flagreport.seqs(box, few)) == positions(box, few) == [41, 102, 251]
    assert lines_of(box, few) == want_lines(box, few)
    assert session._in_view(box, few) == few


def test_only_messages_of_the_view_are_told():
    box = make_box()
    gone = box.msgs.pop(60)        # taken out of the view (reported expunged)
    few = [box.msgs[10], gone, box.msgs[200]]
    assert flagreport.found(box, few) is None
    assert session._in_view(box, few) == [box.msgs[10], box.msgs[200]]
    kept = [box.msgs[10], box.msgs[200]]
    assert session._in_view(box, kept) == kept
    # one that has the UID of a message still there is not that message
    twin = Message(999, "f" * 40, uid=box.msgs[10].uid)
    assert session._in_view(box, [twin, box.msgs[200]]) == [box.msgs[200]]


def test_many_messages_are_looked_up_by_identity():
    box = make_box(40)
    many = box.msgs[::3]
    other = Message(999, "e" * 40, uid=5)
    assert session._in_view(box, many + [other]) == many
    assert list(flagreport.seqs(box, many)) == positions(box, many)
