"""A message another session is deleting: the NO a session gets for it is
explained by an EXPUNGE (the reliability rig's finding at 2115b88: `COPY 3
INBOX` answered NO, and the NOOP after it told of no EXPUNGE).

upasfs marks the messages of a `delete` gone at once (a walk to one fails)
and then waits for L.mbox to rewrite the file.  RFC 2180 4.1.2 and 4.4 let
a server answer NO for a message another session expunged, and RFC 3501
7.4.1 has the server tell of an expunge at the next NOOP: so the NO must
be followed, at the latest in the NOOP after it, by that message's
EXPUNGE.  The two sessions and the lock are driven step by step: the
mailbox's L.mbox is held (as a delivery would) while a pop3 session's
QUIT deletes message 3, and the IMAP session copies it and sends a NOOP
meanwhile."""
import queue
import threading
import time

import pytest

from tests.reliability.ledger import make_message
from tests.reliability.rig import USER, Rig
from upas import ninep
from upas.mail.lock import MailLock

QUIET = 0.5      # how long a reply that does not wait for the lock takes at most


def _wait_gone(rig: Rig, name: str) -> None:
    """Until upasfs answers a walk to message `name` with an error (the
    delete has marked it), within a few seconds."""
    c = ninep.Client.dial(rig.env["upasfs"], uname=USER)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                c.stat(f"mbox/{name}")
            except ninep.Error:
                return
            time.sleep(0.01)
        raise AssertionError("upasfs did not mark the message deleted")
    finally:
        c.close()


class _Reader:
    """The session's reply lines, read by a thread of their own, so that
    the test can look at what came within a while without blocking."""

    def __init__(self, s):
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, args=(s,), daemon=True).start()

    def _run(self, s) -> None:
        try:
            while True:
                self.lines.put(s.line())
        except Exception:   # noqa: BLE001 -- the session closed: nothing more
            self.lines.put(None)

    def until(self, tag: bytes, seconds: float, out: list[bytes]) -> bool:
        """Add lines to out until `tag`'s tagged line (True) or `seconds`."""
        deadline = time.monotonic() + seconds
        while not (out and out[-1].startswith(tag + b" ")):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            assert line is not None, out
            out.append(line)
        return True


@pytest.mark.timeout(120)
def test_a_no_for_a_message_being_deleted_is_followed_by_its_expunge(tmp_path):
    with Rig(tmp_path) as rig:
        for i in range(5):
            assert rig.deliver(make_message(f"race{i:04d}")).wait() == 0
        rig.start_fs()
        imap = rig.imap()
        pop = rig.pop()
        try:
            assert b"* 5 EXISTS\r\n" in imap.cmd(b"SELECT INBOX")
            assert len(pop.multi(b"LIST")) == 5
            pop.cmd(b"DELE 3")
            held = MailLock(str(tmp_path / "mail" / "box" / USER), timeout=5)
            held.acquire()
            released = False
            try:
                quit_ = threading.Thread(target=pop.cmd, args=(b"QUIT",), daemon=True)
                quit_.start()              # upasfs marks 3 deleted, waits for L.mbox
                _wait_gone(rig, "3")
                reader = _Reader(imap)
                copy = imap.start(b"COPY 3 INBOX")
                noop = imap.start(b"NOOP")
                # what the session says while the delete waits (one that
                # waits for the delete's outcome says it all after)
                lines: list[bytes] = []
                reader.until(noop, QUIET, lines)
                held.release()
                released = True
                assert reader.until(noop, 60, lines), lines
            finally:
                if not released:
                    held.release()
            quit_.join(30)
            tagged = [x for x in lines if x.startswith(copy + b" ")]
            assert tagged, lines
            if tagged[0].startswith(copy + b" NO"):
                assert b"* 3 EXPUNGE\r\n" in lines, lines
            else:   # copied before the delete: then it is told at the NOOP
                assert tagged[0].startswith(copy + b" OK"), lines
                assert b"* 3 EXPUNGE\r\n" in lines[lines.index(tagged[0]):], lines
            bye: list[bytes] = []   # (the reader holds the socket: the server hangs up)
            assert reader.until(imap.start(b"LOGOUT"), 60, bye), bye
        finally:
            imap.close()
            pop.close()
