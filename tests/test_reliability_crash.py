"""Crash safety (issue 9): SIGKILL upasfs, pop3 and imap4d in the middle of
DELE+QUIT, EXPUNGE, APPEND, COPY, MOVE, STORE, mbox rewrites, upasfs's
index writes and SELECT's record writes while mbappend deliveries arrive;
after every kill the mailbox must agree with the ledger
(tests/reliability/crash.py).  RELIABILITY_ITERATIONS (default 28: three
rounds of the nine operations and one more)
and RELIABILITY_SEED set the run; `python -m tests.reliability crash
--iterations 500` is the long mode.
"""
import os
import random

import pytest

from tests.reliability import crash

ITERATIONS = int(os.environ.get("RELIABILITY_ITERATIONS", "28"))


@pytest.mark.timeout(60 + 5 * ITERATIONS)
def test_kills_lose_nothing(tmp_path):
    seed = int(os.environ.get("RELIABILITY_SEED", random.randrange(1 << 30)))
    stats = crash.run(tmp_path, ITERATIONS, seed)
    print(f"seed {seed}: {stats}")   # soft findings: see RELIABILITY_STRICT
    assert stats.iterations == ITERATIONS
    assert sum(stats.kills.values()) == ITERATIONS
    # every kind of operation and every victim was hit
    if ITERATIONS >= 2 * len(crash.OPS):
        assert set(stats.ops) == set(crash.OPS)
        assert {"upasfs", "imap4d", "pop3"} <= set(stats.kills)
    assert stats.deliveries > ITERATIONS // 2


def test_ledger_catches_a_lost_and_a_torn_message(tmp_path):
    """The checker itself: a file missing a message or holding a cut one fails."""
    from tests.reliability.ledger import Ledger
    from upas.mbappend import format_message
    ledger = Ledger()
    msgs = []
    for _ in range(3):
        token, msg = ledger.new_message()
        ledger.present("mbox", token)
        msgs.append(format_message(msg, "ledger@example.com"))
    path = tmp_path / "mbox"
    path.write_bytes(b"".join(msgs))
    assert len(ledger.check("mbox", str(path))) == 3
    path.write_bytes(msgs[0] + msgs[2])
    with pytest.raises(AssertionError, match="lost"):
        ledger.check("mbox", str(path))
    path.write_bytes(msgs[0] + msgs[1][:-40] + msgs[2])
    with pytest.raises(AssertionError, match="torn"):
        ledger.check("mbox", str(path))
    path.write_bytes(msgs[0] + msgs[1] + msgs[1] + msgs[2])
    with pytest.raises(AssertionError, match="2 times"):
        ledger.check("mbox", str(path))


def test_ledger_counts_identical_copies(tmp_path):
    """Copies share a token: the ledger counts them.  Two copies stored,
    one delete acknowledged: one must be left, not none and not two (an
    undone acknowledged delete is a soft finding), and a delete cut short
    leaves one or none."""
    from tests.reliability.ledger import Ledger
    from upas.mbappend import format_message
    ledger = Ledger()
    token, msg = ledger.new_message()
    one = format_message(msg, "ledger@example.com")
    path = tmp_path / "mbox"
    ledger.present("mbox", token)
    ledger.present("mbox", token)
    path.write_bytes(one + one)
    assert len(ledger.check("mbox", str(path))) == 2
    ledger.removing("mbox", token, 7)
    ledger.removed("mbox", token, 7)
    ledger.removing("mbox", token, 7)       # a second session deletes the same copy
    ledger.removed("mbox", token, 7)
    path.write_bytes(b"")
    with pytest.raises(AssertionError, match="lost"):
        ledger.check("mbox", str(path))
    path.write_bytes(one + one)
    ledger.check("mbox", str(path))
    assert ledger.soft == [f"{token} came back after an acknowledged delete"]
    path.write_bytes(one + one + one)
    with pytest.raises(AssertionError, match="3 times"):
        ledger.check("mbox", str(path))
    ledger.removing("mbox", token)
    path.write_bytes(one)
    ledger.check("mbox", str(path))
    path.write_bytes(b"")
    ledger.check("mbox", str(path))      # the delete cut short landed late


def test_a_session_whose_upasfs_died_says_bye(tmp_path):
    """Found by the crash harness: with upasfs killed under it, imap4d took
    every message for expunged: EXPUNGE answered OK with an EXPUNGE line
    for each (a syncing client would delete them all), and STORE answered
    OK having stored nothing.  Now the session ends with BYE, reports no
    expunge and acknowledges nothing; a fresh session finds all as it was."""
    from tests.reliability.rig import Rig, SessionError
    with Rig(tmp_path) as rig:
        for i in range(3):
            assert rig.deliver(b"Subject: m%d\n\nbody\n" % i).wait() == 0
        rig.start_fs()
        for command in (b"STORE 1 +FLAGS (\\Seen)", b"EXPUNGE"):
            s = rig.imap()
            s.cmd(b"SELECT INBOX")
            s.cmd(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
            rig.kill_fs()
            tag = s.start(command)
            got = []
            with pytest.raises(SessionError, match="connection closed"):
                while True:
                    got.append(s.line())
            assert got == [b"* BYE upas/fs has gone away\r\n"], (tag, got)
            s.close()
            rig.start_fs()
        fresh = rig.imap()
        fresh.cmd(b"SELECT INBOX")
        flags = b"".join(fresh.cmd(b"FETCH 1:* FLAGS"))
        assert flags.count(b" FETCH (") == 3 and b"\\Seen" not in flags
        fresh.cmd(b"LOGOUT")
        fresh.close()
