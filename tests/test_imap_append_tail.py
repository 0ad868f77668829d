"""A run of APPENDs to a mailbox that is not selected (issue 8).

After one APPEND through a view of the target, the next ones skip the
view while the mailbox file and its .imp are as the session left them
(checked under the lock): the message and its .imp line are appended at
once, the .imp updated in place.  What must hold: the APPENDUIDs are the
UIDs every later session sees, in mailbox order, flags kept, the .imp
byte-for-byte Plan 9's; a write by anybody else in between sends the
APPEND the long way; a torn tail of the .imp is ignored.
"""
from __future__ import annotations

import hashlib
import os
import re
import time

from upas import mbappend
from upas import ns as nsmod
from upas.imap4d import imp

OTHER = (b"From bob Fri Nov 27 01:00:00 2026\nFrom: bob@example.org\n"
         b"Subject: between\n\ndelivered by someone else\n")


def msg(i: int) -> bytes:
    return b"Subject: m%d\r\nFrom: glenda@upas.local\r\n\r\nbody %d\r\n" % (i, i)


def append(c, tag: bytes, i: int, flags: bytes = b"") -> int:
    m = msg(i)
    r = c.cmd(b"%s APPEND work (%s) {%d+}\r\n%s\r\n" % (tag, flags, len(m), m))
    got = re.match(rb"%s OK \[APPENDUID (\d+) (\d+)\] APPEND completed\r\n" % tag, r[-1])
    assert got, r
    return int(got.group(2))


def uids_and_flags(c, tag: bytes) -> list[tuple[int, bytes]]:
    c.cmd(tag + b"s SELECT work")
    lines = c.cmd(tag + b"f UID FETCH 1:* (UID FLAGS)")
    return [(int(u), f) for u, f in re.findall(rb"\(UID (\d+) FLAGS \(([^)]*)\)\)", b"".join(lines))]


def test_a_run_of_appends_numbers_as_a_later_session_does(imap_preauth):
    c = imap_preauth.connect()
    assert c.cmd(b"a CREATE work")[-1].startswith(b"a OK")
    imppath = str(imap_preauth.box(name="work")) + ".imp"
    uids = [append(c, b"b1", 1, b"\\Seen")]
    inode = os.stat(imppath).st_ino
    uids += [append(c, b"b%d" % i, i, b"\\Seen" if i % 2 else b"") for i in range(2, 7)]
    assert uids == list(range(uids[0], uids[0] + 6))
    assert os.stat(imppath).st_ino == inode, "the run updated the .imp in place"

    data = open(imppath, "rb").read()
    parsed = imp.parse_imp(data)
    assert imp.format_imp(parsed, recent=True) == data        # Plan 9's bytes
    assert parsed.uidnext == uids[-1] + 1
    stored = imap_preauth.box(name="work").read_bytes()
    # each entry ends in LF, then a blank separator line
    entries = [b"From " + e + b"\n" for e in stored[len(b"From "):-2].split(b"\n\nFrom ")]
    assert [e.digest for e in parsed.entries] == [hashlib.sha1(e).hexdigest() for e in entries]

    later = imap_preauth.connect()
    seen = uids_and_flags(later, b"c")
    assert [u for u, _ in seen] == uids
    assert [b"\\Seen" in f for _, f in seen] == [True, False, True, False, True, False]
    assert b"m4" in b"".join(later.cmd(b"d UID FETCH %d BODY.PEEK[HEADER.FIELDS (SUBJECT)]" % uids[3]))
    c.close()
    later.close()


def test_a_delivery_in_between_takes_the_long_way(imap_preauth):
    c = imap_preauth.connect()
    c.cmd(b"a CREATE work")
    first = [append(c, b"b1", 1), append(c, b"b2", 2)]
    mbappend.append_mbox(str(imap_preauth.box(name="work")), mbappend.format_message(OTHER, "bob"))
    last = append(c, b"b3", 3)
    later = imap_preauth.connect()
    seen = [u for u, _ in uids_and_flags(later, b"c")]
    assert len(seen) == 4 and seen == sorted(seen)
    assert seen[:2] == first and seen[3] == last and first[1] < seen[2] < last
    assert append(c, b"b4", 4) == last + 1
    c.close()
    later.close()


def test_flags_set_elsewhere_in_between_are_kept(imap_preauth):
    c = imap_preauth.connect()
    c.cmd(b"a CREATE work")
    u1, u2 = append(c, b"b1", 1), append(c, b"b2", 2)
    other = imap_preauth.connect()
    other.cmd(b"c SELECT work")
    assert other.cmd(b"d UID STORE %d +FLAGS.SILENT (\\Flagged)" % u1)[-1].startswith(b"d OK")
    other.cmd(b"e LOGOUT")
    u3, u4 = append(c, b"b3", 3), append(c, b"b4", 4)
    assert [u1, u2, u3, u4] == list(range(u1, u1 + 4))
    later = imap_preauth.connect()
    seen = uids_and_flags(later, b"f")
    assert [u for u, _ in seen] == [u1, u2, u3, u4]
    assert b"\\Flagged" in seen[0][1] and not any(b"\\Flagged" in f for _, f in seen[1:])
    c.close()
    later.close()


def test_a_torn_tail_of_the_imp_is_ignored(tmp_path):
    d1, d2 = "1" * 40, "2" * 40
    old = imp.format_imp(imp.ImpFile(7, 2, [imp.Entry(d1, 1, {"\\Seen"})]), True)
    path = tmp_path / "mbox.imp"
    path.write_bytes(old)
    line = imp.format_entry(imp.Entry(d2, 2, {"\\Recent"}), True)
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box/glenda", str(tmp_path))
    new = imp.append_in_place(ns, "/mail/box/glenda/mbox.imp", old, 3, line)
    whole = imp.format_imp(imp.ImpFile(7, 3, [imp.Entry(d1, 1, {"\\Seen"}),
                                              imp.Entry(d2, 2, {"\\Recent"})]), True)
    assert new == whole == path.read_bytes()
    for cut in range(2, len(line)):     # a crash mid-line (all but its LF: whole)
        torn = imp.parse_imp(whole[:-cut])
        assert [e.digest for e in torn.entries] == [d1]
        found, uidnext, _ = imp.match(torn, [(d1, 0), (d2, 0)])
        assert found[0].uid == 1 and found[1] is None and uidnext == 3


def test_a_mailbox_deleted_between_gets_trycreate(imap_preauth):
    """The tail path stands for the check that the mailbox exists; when
    another session has deleted it, the APPEND is still refused with
    TRYCREATE (RFC 3501 6.3.11: "the server MUST return an error, and
    MUST NOT automatically create the mailbox") and nothing is created."""
    c = imap_preauth.connect()
    other = imap_preauth.connect()
    try:
        assert c.cmd(b"a CREATE work")[-1].startswith(b"a OK")
        append(c, b"b1", 1)
        append(c, b"b2", 2)
        m = msg(3)
        # deleted after the continuation (the mailbox was checked then)
        c.send(b"b3 APPEND work {%d}" % len(m))
        assert c.line().startswith(b"+ ")
        assert other.cmd(b"d DELETE work")[-1].startswith(b"d OK")
        c.send(m + b"\r\n")
        r = c.until(b"b3")
        assert r[-1].startswith(b"b3 NO [TRYCREATE] "), r
        assert not imap_preauth.box(name="work").exists()
        # and made again, the run starts afresh
        assert other.cmd(b"e CREATE work")[-1].startswith(b"e OK")
        assert append(c, b"b4", 4) == 1
        # deleted before the command: refused before the literal is asked
        # for, or after it (a session whose last APPEND went there checks
        # under the lock, once the literal is in)
        assert other.cmd(b"f DELETE work")[-1].startswith(b"f OK")
        c.send(b"b5 APPEND work {%d}" % len(m))
        first = c.line()
        if first.startswith(b"+ "):
            c.send(m + b"\r\n")
            first = c.until(b"b5")[-1]
        assert first.startswith(b"b5 NO [TRYCREATE] "), first
        assert not imap_preauth.box(name="work").exists()
    finally:
        c.close()
        other.close()


def test_a_run_of_appends_has_its_save_dates(imap_preauth):
    """At the tail the OK goes out before the save-date line is written
    (under the lock; docs/decisions.md): the session's next command and
    another session see every APPEND's save date, today, not the date
    the client gave."""
    c = imap_preauth.connect()
    assert c.cmd(b"a CREATE work")[-1].startswith(b"a OK")
    for i in range(1, 5):
        m = msg(i)
        r = c.cmd(b'b%d APPEND work "07-Feb-1994 21:52:25 -0800" {%d+}\r\n%s\r\n' % (i, len(m), m))
        assert r[-1].startswith(b"b%d OK [APPENDUID " % i), r
    assert c.cmd(b"n NOOP")[-1].startswith(b"n OK")
    saves = imap_preauth.box(name="work.save.imp").read_bytes().split(b"\n")
    assert saves[0] == b"imap save dates" and len(saves) == 6 and saves[5] == b""
    other = imap_preauth.connect()
    other.cmd(b"s SELECT work")
    lines = b"".join(other.cmd(b"f FETCH 1:* (INTERNALDATE SAVEDATE)"))
    dates = re.findall(rb'INTERNALDATE "([^"]+)" SAVEDATE "([^"]+)"', lines)
    today = time.strftime("%d-%b-%Y").encode()
    assert len(dates) == 4
    assert all(i == b"07-Feb-1994 21:52:25 -0800" and s.startswith(today) for i, s in dates), dates
    other.close()
    c.close()
