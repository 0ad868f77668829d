"""IDLE (RFC 2177, docs/decisions.md): changes made by other sessions are
reported well within a second; DONE ends it, anything else is BAD."""
from __future__ import annotations

import time

import pytest

PROMPT = float("1.0")      # docs/decisions.md: "at once", not Plan 9's 15 s


@pytest.fixture
def srv(imap_preauth):
    return imap_preauth


def idle(c, tag=b"i"):
    c.send(tag + b" IDLE")
    assert c.line() == b"+ idling, waiting for done\r\n"


def within(c, expected: list[bytes], limit: float = PROMPT) -> float:
    """Read lines until `expected` arrived in order; the time it took."""
    t0 = time.monotonic()
    got = [c.line() for _ in expected]
    took = time.monotonic() - t0
    assert got == expected
    assert took < limit, f"took {took:.2f}s"
    return took


def test_idle_reports_other_sessions(srv):
    first = srv.connect()
    first.cmd(b"a SELECT INBOX")          # takes \Recent for itself
    first.close()
    watcher, other = srv.connect(), srv.connect()
    watcher.cmd(b"a SELECT INBOX")
    other.cmd(b"a SELECT INBOX")
    idle(watcher)
    other.cmd(b"b STORE 2 +FLAGS.SILENT (\\Flagged)")
    within(watcher, [b"* 2 FETCH (FLAGS (\\Flagged))\r\n"])
    other.cmd(b"c APPEND INBOX {5+}\r\nhello\r\n")
    t0 = time.monotonic()
    assert watcher.line() == b"* 9 EXISTS\r\n"
    # recent for whichever session saw it first (RFC 3501 2.3.2)
    assert watcher.line() in (b"* 0 RECENT\r\n", b"* 1 RECENT\r\n")
    assert time.monotonic() - t0 < PROMPT
    other.cmd(b"d STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.cmd(b"e EXPUNGE")
    t0 = time.monotonic()
    line = watcher.line()
    if line.startswith(b"* 1 FETCH"):     # the flag change may be seen first
        line = watcher.line()
    assert line == b"* 1 EXPUNGE\r\n"
    assert watcher.line() == b"* 8 EXISTS\r\n"
    assert watcher.line().endswith(b" RECENT\r\n")
    assert time.monotonic() - t0 < PROMPT
    watcher.send(b"DONE")
    rest = watcher.until(b"i")
    assert rest[-1] == b"i OK IDLE terminated\r\n"
    watcher.close()
    other.close()


def test_idle_anything_but_done_is_bad(srv):
    c = srv.connect()
    c.cmd(b"a SELECT INBOX")
    idle(c)
    c.send(b"b NOOP")
    assert c.until(b"i") == [b"i BAD IDLE expected DONE\r\n"]
    assert c.cmd(b"c NOOP") == [b"c OK NOOP completed\r\n"]
    idle(c, b"j")
    c.send(b"done")
    assert c.until(b"j") == [b"j OK IDLE terminated\r\n"]
    c.close()


def test_idle_in_authenticated_state(srv):
    c = srv.connect()
    idle(c)
    c.send(b"DONE")
    assert c.until(b"i") == [b"i OK IDLE terminated\r\n"]
    c.close()


def test_disconnect_during_idle_ends_session(srv):
    c = srv.connect()
    c.cmd(b"a SELECT INBOX")
    idle(c)
    c.close()
    srv.wait_idle(5)
    assert all(p.poll() is not None for p in srv.procs)
