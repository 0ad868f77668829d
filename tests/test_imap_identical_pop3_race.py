"""Identical messages, a pop3 DELE of one copy, and sessions that learn
of it in different orders (the session rig's uid_not_ascending finding,
seed 602293609; issue 13).  RFC 3501 2.3.1.1: UIDs ascend with sequence
numbers and a UID names one message for good; RFC 4315: the UID
APPENDUID gave is the message's.  Driven a step at a time: no timing."""
from __future__ import annotations

import poplib
import re

import pytest

from tests.test_imap_identical import DATE, SAME, ok, pop3_beside

OTHER = b"Subject: other\r\nMessage-ID: <other@upas.test>\r\n\r\nanother body\r\n"


def append(c, tag: bytes, body: bytes) -> int:
    """APPEND to INBOX; the uid APPENDUID gives."""
    out = ok(c, b"%s APPEND INBOX %s {%d+}\r\n%s\r\n" % (tag, DATE, len(body), body))
    return int(re.search(rb"APPENDUID \d+ (\d+)", out[-1]).group(1))


def uids(c, tag: bytes) -> list[int]:
    got = b"".join(ok(c, tag + b" FETCH 1:* (UID)"))
    return [int(u) for u in re.findall(rb"\* \d+ FETCH \(UID (\d+)\)", got)]


@pytest.mark.parametrize("after", [True, False], ids=["before_another", "at_the_end"])
def test_a_deleted_copys_uid_is_not_given_to_its_twin(imap_factory, tmp_path, after):
    """Two adjacent copies P, M (and a message Z after them); a session (h)
    knows P only when pop3 deletes P.  A session opened then (f) must
    not give M the uid of P, which h has seen go; and h, told of P's
    EXPUNGE and of M and Z, sees them with the uids APPEND gave, in
    ascending order."""
    srv = imap_factory(flags=("-a",), auth=True)
    pop = pop3_beside(srv, tmp_path)
    try:
        h, x = srv.connect(), srv.connect()
        ok(h, b"a SELECT INBOX")
        before = uids(h, b"b")
        p = append(x, b"c", SAME)
        ok(h, b"d NOOP")
        assert uids(h, b"e") == before + [p]
        m = append(x, b"f", SAME)
        z = [append(x, b"g", OTHER)] if after else []
        assert p < m and all(m < u for u in z)
        pp = poplib.POP3(*pop.addr, timeout=20)
        assert len(pp.list()[1]) == len(before) + 2 + len(z)
        pp.dele(len(before) + 1)            # P
        pp.quit()
        f = srv.connect()
        ok(f, b"h SELECT INBOX")
        assert uids(f, b"i") == before + [m, *z]
        got = ok(h, b"j NOOP")
        assert b"* %d EXPUNGE\r\n" % (len(before) + 1) in got
        assert uids(h, b"k") == before + [m, *z]
        for c in (h, x, f):
            c.close()
    finally:
        pop.stop()
