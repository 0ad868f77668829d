"""STORE's reply thread (store._Reply) and its fallback: when no thread
can be had (RuntimeError from _thread.start_new_thread, as under a
process's thread limit) the FETCH lines go out after the files are
written, when the block ends.  Either way the client gets the same
lines, `* n FETCH (UID u FLAGS (...))` a message (RFC 3501 6.4.6, 7.4.2),
all before what the command sends next (tests/test_imap_store_reply.py:
the thread's path over a socket)."""
from __future__ import annotations

import _thread

import pytest

from upas.imap4d import imp, store
from upas.imap4d.mailbox import Mailbox
from upas.imap4d.message import Message
from upas.imap4d.session import Options, Session

SEEN = imp.flagset({"\\Seen"})


def selected(events: list) -> tuple[Session, Mailbox]:
    s = Session(Options(), lambda user: None, events.append)
    box = Mailbox(None, "/mail/box/glenda/mbox")
    box.msgs = [Message(i + 1, "%040x" % i, uid=2 * i + 5, flags=SEEN) for i in range(40)]
    box.announced = set()
    s.box = box
    return s, box


def want(box: Mailbox) -> bytes:
    return b"".join(b"* %d FETCH (UID %d FLAGS (\\Seen))\r\n" % (k + 1, m.uid)
                    for k, m in enumerate(box.msgs))


@pytest.mark.parametrize("threads", [True, False], ids=["thread", "no_thread"])
def test_the_lines_come_whole_and_before_what_follows(monkeypatch, threads):
    events: list = []
    s, box = selected(events)
    if not threads:
        def refuse(*a):
            raise RuntimeError("can't start new thread")
        monkeypatch.setattr(_thread, "start_new_thread", refuse)
    reply = store._Reply(s, box, box.msgs, True, [])
    with reply:
        reply.start()                   # (box.modify's `changed`, under the lock)
        assert reply.late is not threads
        if not threads:
            s.flush()
            assert b"".join(e for e in events if isinstance(e, bytes)) == b""
    s.untagged("after")                 # what the command sends next (its tagged line)
    s.flush()
    sent = b"".join(e for e in events if isinstance(e, bytes))
    assert sent == want(box) + b"* after\r\n"
