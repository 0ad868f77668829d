"""Two sessions on one mailbox, and mail delivered meanwhile: the untagged
updates of docs/spec/servers.md §3.9 at the points RFC 3501 allows."""
import re
import subprocess
import sys

N = 8


def test_flag_changes_are_reported_to_the_other_session(imap_preauth):
    a, b = imap_preauth.connect(), imap_preauth.connect()
    a.cmd(b"a SELECT INBOX")
    b.cmd(b"a SELECT INBOX")
    assert a.cmd(b"b STORE 2 +FLAGS (\\Flagged)")[0] == b"* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\n"
    assert b.cmd(b"b NOOP") == [b"* 2 FETCH (FLAGS (\\Flagged))\r\n", b"b OK NOOP completed\r\n"]
    assert b.cmd(b"c NOOP") == [b"c OK NOOP completed\r\n"]
    # during a UID command the update carries the UID (upper case: docs/decisions.md);
    # it comes before the reply, which reflects it
    a.cmd(b"c STORE 3 +FLAGS.SILENT (\\Seen)")
    assert b.cmd(b"d UID SEARCH SEEN") == [b"* 3 FETCH (UID 3 FLAGS (\\Seen))\r\n", b"* SEARCH 3\r\n",
                                           b"d OK uid SEARCH completed\r\n"]


def test_many_flag_changes_are_reported_each_once(imap_preauth):
    """Another session's STORE on many messages: one unasked FETCH each, in
    sequence order, with its flags as they are now (RFC 3501 7.4.2), UID
    and MODSEQ once CONDSTORE is enabled (RFC 7162 3.1; the MODSEQ the
    other session's STORE reported).  (Issue 16: made as columns; they
    were a membership test each in the list of messages.)"""
    a, b = imap_preauth.connect(), imap_preauth.connect()
    a.cmd(b"a SELECT INBOX")
    b.cmd(b"a SELECT INBOX")
    a.cmd(b"b STORE 2 +FLAGS.SILENT ($Later)")
    b.cmd(b"b NOOP")
    a.cmd(b"c STORE 1:3,6 +FLAGS.SILENT (\\Seen)")
    assert b.cmd(b"c NOOP") == [
        b"* 1 FETCH (FLAGS (\\Seen))\r\n", b"* 2 FETCH (FLAGS (\\Seen $Later))\r\n",
        b"* 3 FETCH (FLAGS (\\Seen))\r\n", b"* 6 FETCH (FLAGS (\\Seen))\r\n",
        b"c OK NOOP completed\r\n"]
    b.cmd(b"d FETCH 1 (MODSEQ)")         # CONDSTORE-enabling (RFC 7162 3.1)
    a.cmd(b"d FETCH 1 (MODSEQ)")
    r = a.cmd(b"e STORE 4:5 +FLAGS (\\Draft)")
    now = [int(re.search(rb"MODSEQ \((\d+)\)", ln).group(1)) for ln in r[:2]]
    assert b.cmd(b"f NOOP") == [
        b"* 4 FETCH (UID 4 FLAGS (\\Draft) MODSEQ (%d))\r\n" % now[0],
        b"* 5 FETCH (UID 5 FLAGS (\\Draft) MODSEQ (%d))\r\n" % now[1], b"f OK NOOP completed\r\n"]


def test_both_sessions_keep_each_others_flags(imap_preauth):
    a, b = imap_preauth.connect(), imap_preauth.connect()
    a.cmd(b"a SELECT INBOX")
    b.cmd(b"a SELECT INBOX")
    a.cmd(b"b STORE 1 +FLAGS.SILENT (\\Answered)")
    b.cmd(b"b STORE 2 +FLAGS.SILENT (\\Draft)")     # must not undo a's change
    c = imap_preauth.connect()
    c.cmd(b"a EXAMINE INBOX")
    assert c.cmd(b"b FETCH 1:2 FLAGS")[:2] == [b"* 1 FETCH (FLAGS (\\Answered))\r\n",
                                               b"* 2 FETCH (FLAGS (\\Draft))\r\n"]


def test_expunge_reported_only_where_allowed(imap_preauth):
    a, b = imap_preauth.connect(), imap_preauth.connect()
    a.cmd(b"a SELECT INBOX")
    b.cmd(b"a SELECT INBOX")
    a.cmd(b"b STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert a.cmd(b"c EXPUNGE")[0] == b"* 2 EXPUNGE\r\n"
    # FETCH, STORE and SEARCH never send an expunge (RFC 3501 7.4.1)
    r = b.cmd(b"b FETCH 1:* UID")
    assert not any(b"EXPUNGE" in line for line in r)
    assert r[-1] == b"b NO FETCH failed\r\n"         # message 2 is gone
    r = b.cmd(b"c SEARCH ALL")
    # the pending expunge is not reported, and a vanished message is skipped
    assert r == [b"* SEARCH 1 3 4 5 6 7 8\r\n", b"c OK SEARCH completed\r\n"]
    assert b.cmd(b"d NOOP") == [b"* 2 EXPUNGE\r\n", b"* 7 EXISTS\r\n", b"* 0 RECENT\r\n",
                                b"d OK NOOP completed\r\n"]
    assert b.cmd(b"e FETCH 2 UID") == [b"* 2 FETCH (UID 3)\r\n", b"e OK FETCH completed\r\n"]


def test_new_mail_is_announced(imap_preauth):
    a = imap_preauth.connect()
    a.cmd(b"a SELECT INBOX")
    box = imap_preauth.box()
    with open(box, "ab") as f:       # as a delivery agent would, under the lock
        f.write(b"From someone Fri Nov 27 10:00:00 GMT 2026\nSubject: new one\n\nhi\n\n")
    r = a.cmd(b"b NOOP")
    # RECENT counts all recent messages: 8 from the SELECT and the new one
    assert r == [b"* 9 EXISTS\r\n", b"* 9 RECENT\r\n", b"b OK NOOP completed\r\n"]
    assert a.cmd(b"c FETCH 9 (UID FLAGS)")[0] == b"* 9 FETCH (UID 9 FLAGS (\\Recent))\r\n"
    b = imap_preauth.connect()
    r = b.cmd(b"a SELECT INBOX")
    assert b"* 0 RECENT\r\n" in r and b"* OK [UIDNEXT 10] Predicted next UID\r\n" in r
