"""STORE's FETCH lines, sent while its files are written and synced
(store.py's _Reply; docs/decisions.md, "STORE's reply while its files
are synced"): the client reads what it read before, in RFC 3501's order
(new keywords announced before a FETCH shows them, 7.2.6; every line
before the tagged OK, 6.4.6), and the OK comes only once the change is
in the files another session reads.  A client gone meanwhile leaves the
change done and the mailbox unlocked."""
import time

from tests.fixtures.imap import put_box, select
from tests.mboxgen import message
from upas.imap4d import imp, store

N = store.REPLY_AHEAD + 52         # a reply sent while the files are written


def test_the_lines_come_whole_and_in_order_before_the_ok(imap_preauth):
    put_box(imap_preauth, "many", [message(i) for i in range(N)])
    c = imap_preauth.connect()
    select(c, "many")
    r = c.cmd(b"a STORE 1:* +FLAGS (\\Seen $Done)")
    assert r[0].startswith(b"* FLAGS (") and b"$Done" in r[0]          # announced first
    assert r[1].startswith(b"* OK [PERMANENTFLAGS (") and b"$Done" in r[1]
    assert r[2:-1] == [b"* %d FETCH (FLAGS (\\Seen \\Recent $Done))\r\n" % k
                       for k in range(1, N + 1)]
    assert r[-1] == b"a OK STORE completed\r\n"
    # at the OK the change is in the files: a line a message, each `s`
    data = imap_preauth.box(name="many").with_name("many.imp").read_bytes()
    entries = imp.parse_imp(data).entries
    assert len(entries) == N and all("\\Seen" in e.flags for e in entries)
    kw = imp.parse_keywords(imap_preauth.box(name="many").with_name("many.kw.imp").read_bytes())
    assert len(kw) == N and all(words == ["$Done"] for _, words in kw.values())
    # UID STORE: the UID in each line (RFC 3501 6.4.8), the same order
    r = c.cmd(b"b UID STORE 1:* -FLAGS (\\Seen)")
    assert r[:-1] == [b"* %d FETCH (UID %d FLAGS (\\Recent $Done))\r\n" % (k, k)
                      for k in range(1, N + 1)]
    assert r[-1] == b"b OK uid STORE completed\r\n"
    other = imap_preauth.connect()
    select(other, "many")
    assert other.cmd(b"c FETCH 1,%d FLAGS" % N)[:2] == [
        b"* 1 FETCH (FLAGS ($Done))\r\n", b"* %d FETCH (FLAGS ($Done))\r\n" % N]


def test_a_client_gone_midway_leaves_the_store_done(imap_preauth):
    """The client hangs up right after its STORE: the session's lines find
    nobody (or a closed socket), the change is written all the same, and
    the mailbox is not left locked: another session stores at once."""
    put_box(imap_preauth, "many", [message(i) for i in range(N)])
    c = imap_preauth.connect()
    select(c, "many")
    c.send(b"a STORE 1:* +FLAGS (\\Flagged)")
    c.close()
    path = imap_preauth.box(name="many").with_name("many.imp")
    end = time.monotonic() + 20
    while time.monotonic() < end:       # (the gone session's write: no reply tells of it)
        entries = imp.parse_imp(path.read_bytes()).entries
        if all("\\Flagged" in e.flags for e in entries):
            break
        time.sleep(0.05)
    assert len(entries) == N and all("\\Flagged" in e.flags for e in entries)
    other = imap_preauth.connect()
    select(other, "many")
    r = other.cmd(b"b STORE 1 +FLAGS (\\Seen)")
    assert r == [b"* 1 FETCH (FLAGS (\\Seen \\Flagged))\r\n", b"b OK STORE completed\r\n"]
