"""What a client is told comes in the order its picture of the mailbox
needs (issue 13; RFC 3501 2.3.1.2, 5.2, 7.2.6, 7.3.1, 7.4.1): a reply
names a message only after EXISTS has announced it, and shows a keyword
only after FLAGS has.  tests/reliability/sessions.py checks this with
ten clients at once; these are the single steps, through a real socket."""
from __future__ import annotations

import re

from upas import mbappend

NEW = (b"From: bob@example.org\nSubject: new\nMessage-ID: <new@example.org>\n\n"
       b"arrived during the session\n")


def numbered(lines: list[bytes], what: bytes) -> list[tuple[int, int]]:
    """(line index, number) of each `* n WHAT` line."""
    return [(i, int(m.group(1))) for i, x in enumerate(lines)
            if (m := re.match(rb"\* (\d+) " + what, x))]


def deliver(server) -> None:
    mbappend.append_mbox(str(server.box()), mbappend.format_message(NEW, "bob"))


def test_new_mail_is_announced_before_a_reply_names_it(imap_preauth):
    c = imap_preauth.connect()
    (n,) = [int(x.split()[1]) for x in c.cmd(b"a SELECT INBOX") if x.endswith(b" EXISTS\r\n")]
    deliver(imap_preauth)
    lines = c.cmd(b"b FETCH 1:* (UID)")
    exists, fetched = numbered(lines, b"EXISTS"), numbered(lines, b"FETCH")
    assert exists and exists[0][1] == n + 1 and fetched[-1][1] == n + 1
    assert exists[0][0] < fetched[-1][0], lines
    c.close()


def test_a_search_names_no_message_before_exists(imap_preauth):
    c = imap_preauth.connect()
    (n,) = [int(x.split()[1]) for x in c.cmd(b"a SELECT INBOX") if x.endswith(b" EXISTS\r\n")]
    deliver(imap_preauth)
    lines = c.cmd(b"b SEARCH ALL")
    hits = [x for x in lines if x.startswith(b"* SEARCH")]
    assert hits and hits[0].split()[-1] == b"%d" % (n + 1)
    assert lines.index(b"* %d EXISTS\r\n" % (n + 1)) < lines.index(hits[0]), lines
    c.close()


def test_a_keyword_another_session_set_is_announced_before_a_fetch_shows_it(imap_preauth):
    a, b = imap_preauth.connect(), imap_preauth.connect()
    a.cmd(b"a SELECT INBOX")
    b.cmd(b"a SELECT INBOX")
    b.cmd(b"b STORE 2 +FLAGS ($Work)")
    lines = a.cmd(b"b NOOP")
    flags = [i for i, x in enumerate(lines) if x.startswith(b"* FLAGS (")]
    perm = [i for i, x in enumerate(lines) if x.startswith(b"* OK [PERMANENTFLAGS (")]
    fetch = [i for i, x in enumerate(lines) if re.match(rb"\* 2 FETCH \(FLAGS \(.*\$Work\)\)", x)]
    assert flags and perm and fetch and max(flags[0], perm[0]) < fetch[0], lines
    assert b" $Work)" in lines[flags[0]] and b" $Work \\*)]" in lines[perm[0]]
    assert a.cmd(b"c NOOP") == [b"c OK NOOP completed\r\n"]      # announced once
    a.close()
    b.close()
