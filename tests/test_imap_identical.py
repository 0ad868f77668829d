"""Byte-identical messages in one mailbox (issue 13, data loss).

COPY of one message twice, or APPEND of the same bytes twice, puts two
messages with one upasfs digest in a mailbox.  RFC 3501 2.3.1.1 and
2.3.2: a UID and the flags belong to one message.  So STORE and EXPUNGE
of one copy leave the other alone, in this session, in another one, in
a session started after upasfs itself restarted, and in the .imp (one
line per message, as Plan 9's format allows) and .kw.imp.  POP3 (RFC
1939 7): the copies have distinct UIDLs and DELE removes exactly one.
"""
from __future__ import annotations

import os
import re
import sys

import pytest

from tests.fixtures.acceptor import Acceptor
from upas.imap4d import imp

SAME = b"Subject: same\r\nMessage-ID: <same@upas.test>\r\n\r\nthe same body\r\n"
DATE = b'"01-Jan-2024 10:00:00 +0000"'


def ok(c, cmd: bytes) -> list[bytes]:
    out = c.cmd(cmd)
    assert out[-1].startswith(cmd.split(b" ", 1)[0] + b" OK"), out
    return out


def append_same(c, tag: bytes, box: bytes = b"work", flags: bytes = b"") -> None:
    flags = b"(" + flags + b") " if flags else b""
    ok(c, b"%s APPEND %s %s%s {%d+}\r\n%s\r\n" % (tag, box, flags, DATE, len(SAME), SAME))


def uid_flags(c, tag: bytes) -> list[tuple[int, int, set[str]]]:
    """(seq, uid, flags) of every message, from UID FETCH 1:* FLAGS."""
    got = b"".join(ok(c, tag + b" UID FETCH 1:* (FLAGS)"))
    return [(int(s), int(u), set(f.decode().split()) - {"\\Recent"})
            for s, u, f in re.findall(rb"\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", got)]


def message_lines(lines: list[bytes]) -> list[bytes]:
    """The untagged lines that name a message (EXPUNGE, FETCH)."""
    return [x for x in lines if re.match(rb"\* \d+ (EXPUNGE|FETCH)", x)]


def make_work(c, between: bool) -> None:
    """work: three other messages, then two copies of INBOX message 1
    (with INBOX message 5 between them if `between`)."""
    ok(c, b"a CREATE work")
    ok(c, b"b SELECT INBOX")
    ok(c, b"c COPY 2:4 work")
    ok(c, b"d COPY 1 work")
    if between:
        ok(c, b"e COPY 5 work")
    ok(c, b"f COPY 1 work")


@pytest.mark.parametrize("between", [False, True], ids=["adjacent", "apart"])
def test_expunge_of_one_copy_leaves_the_other(imap_preauth, between):
    """The issue's transcript: STORE 4 +FLAGS (\\Deleted), EXPUNGE.  The
    reply may name message 4 only (RFC 3501 6.4.3: \\Deleted messages are
    removed), and the other copy keeps its UID and no \\Deleted."""
    c = imap_preauth.connect()
    make_work(c, between)
    ok(c, b"g SELECT work")
    before = uid_flags(c, b"h")
    twin = before[-1][1]
    assert len(before) == (6 if between else 5)
    assert message_lines(ok(c, b"i STORE 4 +FLAGS (\\Deleted)")) == \
        [b"* 4 FETCH (FLAGS (\\Deleted \\Recent))\r\n"]
    assert message_lines(ok(c, b"j EXPUNGE")) == [b"* 4 EXPUNGE\r\n"]
    after = uid_flags(c, b"k")
    assert [u for _, u, _ in after] == [u for _, u, _ in before if u != before[3][1]]
    assert after[-1][1:] == (twin, set())
    assert message_lines(ok(c, b"l EXPUNGE")) == []
    assert len(uid_flags(c, b"m")) == len(after)
    c.close()


def test_appended_copies_are_two_messages(imap_preauth):
    """APPEND of the same bytes (same date) twice, the APPEND run at the
    tail included: two UIDs, and each keeps the flags it was given."""
    c = imap_preauth.connect()
    ok(c, b"a CREATE work")
    append_same(c, b"b1", flags=b"\\Seen")
    append_same(c, b"b2")
    append_same(c, b"b3", flags=b"\\Flagged")
    path = str(imap_preauth.box(name="work"))
    entries = imp.parse_imp(open(path + ".imp", "rb").read()).entries
    assert len({e.digest for e in entries}) == 1 and len(entries) == 3
    ok(c, b"c SELECT work")
    assert [(u, f) for _, u, f in uid_flags(c, b"d")] == \
        [(e.uid, f) for e, f in zip(entries, [{"\\Seen"}, set(), {"\\Flagged"}])]
    ok(c, b"e STORE 2 +FLAGS (\\Deleted)")
    assert message_lines(ok(c, b"f EXPUNGE")) == [b"* 2 EXPUNGE\r\n"]
    assert [f for _, _, f in uid_flags(c, b"g")] == [{"\\Seen"}, {"\\Flagged"}]
    c.close()


def test_each_copy_keeps_its_flags_and_keywords_in_every_session(imap_preauth):
    """Two sessions at once: one sets \\Flagged on copy 4 and a keyword
    on copy 5; the other is told of each for the right message only, and
    the .imp and .kw.imp hold one line per message."""
    c = imap_preauth.connect()
    make_work(c, between=False)
    ok(c, b"g SELECT work")
    other = imap_preauth.connect()
    ok(other, b"a SELECT work")
    uids = [u for _, u, _ in uid_flags(other, b"b")]
    ok(c, b"h STORE 4 +FLAGS (\\Flagged)")
    ok(c, b"i STORE 5 +FLAGS ($Work)")
    told = message_lines(ok(other, b"c NOOP"))
    assert sorted(told) == [b"* 4 FETCH (FLAGS (\\Flagged))\r\n",
                            b"* 5 FETCH (FLAGS ($Work))\r\n"]
    assert [(u, f) for _, u, f in uid_flags(other, b"d")][3:] == \
        [(uids[3], {"\\Flagged"}), (uids[4], {"$Work"})]
    path = str(imap_preauth.box(name="work"))
    entries = imp.parse_imp(open(path + ".imp", "rb").read()).entries
    assert [(e.uid, set(e.flags) - {"\\Recent"}) for e in entries][3:] == \
        [(uids[3], {"\\Flagged"}), (uids[4], set())]
    assert entries[3].digest == entries[4].digest
    assert imp.parse_keywords(open(path + ".kw.imp", "rb").read()) == \
        {uids[4]: (entries[4].digest, ["$Work"])}
    ok(other, b"e STORE 5 +FLAGS (\\Deleted)")
    assert message_lines(ok(other, b"f EXPUNGE")) == [b"* 5 EXPUNGE\r\n"]
    assert message_lines(ok(c, b"j NOOP")) == [b"* 5 EXPUNGE\r\n"]
    assert [(u, f) for _, u, f in uid_flags(c, b"k")][3:] == [(uids[3], {"\\Flagged"})]
    c.close()
    other.close()


def test_copies_keep_uid_and_flags_after_upasfs_restarts(imap_factory):
    """Each session here runs its own upasfs (numbering the messages
    afresh), so every SELECT is one after a restart of upasfs."""
    srv = imap_factory(flags=("-a",), auth=False, posted_upasfs=False)
    c = srv.connect()
    make_work(c, between=False)
    ok(c, b"g SELECT work")
    ok(c, b"h STORE 5 +FLAGS (\\Answered)")
    ok(c, b"i STORE 4 +FLAGS (\\Deleted)")
    want = uid_flags(c, b"j")
    c.close()
    for tag in (b"k", b"l"):
        later = srv.connect()
        ok(later, tag + b" SELECT work")
        assert uid_flags(later, tag) == want
        later.close()
    later = srv.connect()
    ok(later, b"m SELECT work")
    assert message_lines(ok(later, b"n EXPUNGE")) == [b"* 4 EXPUNGE\r\n"]
    later.close()
    fresh = srv.connect()
    ok(fresh, b"o SELECT work")
    assert uid_flags(fresh, b"p") == [(s, u, f) for s, u, f in want[:3]] + \
        [(4, want[4][1], {"\\Answered"})]
    fresh.close()


# ---------------------------------------------------------------- POP3

def pop3_beside(imap_server, tmp_path) -> Acceptor:
    """`pop3 -a` on the IMAP server's mail and posted upasfs."""
    env = dict(imap_server.env, POP3_DELAY_SCALE="0",
               upasfs="unix!" + os.path.join(imap_server.env["NAMESPACE"], "upasfs"))
    return Acceptor([sys.executable, "-m", "upas.pop3", "-a", "/mail/box/glenda/mbox"],
                    env, str(tmp_path / "pop3.log"))


@pytest.fixture
def twins(imap_factory, tmp_path):
    """INBOX with two more copies of message 1 (now 1, 9 and 11, with 10
    between), an imap4d -a and a pop3 -a on it."""
    srv = imap_factory(flags=("-a",), auth=True)
    c = srv.connect()
    ok(c, b"a SELECT INBOX")
    ok(c, b"b COPY 1 INBOX")
    ok(c, b"c COPY 2 INBOX")
    ok(c, b"d COPY 1 INBOX")
    c.close()
    pop = pop3_beside(srv, tmp_path)
    yield srv, pop
    pop.stop()


def test_pop3_uidls_of_identical_messages_are_unique(twins):
    """RFC 1939 7: a unique-id is unique within the maildrop.  The first
    copy keeps the plain digest (what Plan 9 gives, so fetchmail's record
    of it stays valid); UIDL n and UIDL agree; they last across sessions."""
    import poplib
    srv, pop = twins
    p = poplib.POP3(*pop.addr, timeout=20)
    rows = [x.split() for x in p.uidl()[1]]
    ids = [u.decode() for _, u in rows]
    assert len(ids) == 11 and len(set(ids)) == 11
    assert ids[8].startswith(ids[0]) and ids[10].startswith(ids[0])
    assert re.fullmatch(r"[0-9a-f]{40}", ids[0])
    assert all(0 < len(u) <= 70 and all(0x21 <= ord(ch) <= 0x7e for ch in u) for u in ids)
    assert [p.uidl(n).split()[2].decode() for n in (1, 9, 11)] == [ids[0], ids[8], ids[10]]
    p.quit()
    again = poplib.POP3(*pop.addr, timeout=20)
    assert [u.decode() for _, u in (x.split() for x in again.uidl()[1])] == ids
    again.quit()


def mbox_order(path) -> list[bytes]:
    """Each stored message's Subject, in file order."""
    return re.findall(rb"(?m)^Subject: (.*)$", open(path, "rb").read())


def test_pop3_dele_of_one_copy_deletes_that_one(twins):
    """DELE 9 (the copy between two others) removes that copy: message
    10 now comes right after the copies' first and before the last; an
    IMAP session selected meanwhile is told of that copy's EXPUNGE and
    keeps each other copy's UID and flags."""
    import poplib
    srv, pop = twins
    c = srv.connect()
    ok(c, b"a SELECT INBOX")
    ok(c, b"b STORE 11 +FLAGS (\\Flagged)")
    before = uid_flags(c, b"c")
    subjects = mbox_order(srv.box())
    p = poplib.POP3(*pop.addr, timeout=20)
    ids = [x.split()[1] for x in p.uidl()[1]]
    p.dele(9)
    p.quit()
    assert mbox_order(srv.box()) == subjects[:8] + subjects[9:]
    assert message_lines(ok(c, b"d NOOP")) == [b"* 9 EXPUNGE\r\n"]
    assert uid_flags(c, b"e") == [(s, u, f) for s, u, f in before[:8]] + \
        [(9, before[9][1], before[9][2]), (10, before[10][1], {"\\Flagged"})]
    c.close()
    p = poplib.POP3(*pop.addr, timeout=20)
    now = [x.split()[1] for x in p.uidl()[1]]
    assert now[:9] == ids[:8] + [ids[9]] and len(set(now)) == 10
    p.quit()
    fresh = srv.connect()
    ok(fresh, b"f SELECT INBOX")
    assert [(u, f) for _, u, f in uid_flags(fresh, b"g")] == \
        [(u, f) for _, u, f in before[:8] + before[9:10]] + [(before[10][1], {"\\Flagged"})]
    fresh.close()
