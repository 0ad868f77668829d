"""Issue 13, RFC 3501 on selecting: EXAMINE is read-only (6.3.2), response
codes carry a text (7.1, resp-text), and a mailbox deleted and created
again gets a new UIDVALIDITY (2.3.1.1).  Real imap4d sessions over a real
socket and a real posted upasfs; the expected values are the RFC's."""
from __future__ import annotations

import os
import re

import pytest

N = 8                       # messages in testdata glenda/mbox


@pytest.fixture
def srv(imap_preauth):
    return imap_preauth


def session(srv):
    return srv.connect()


# ---------------------------------------------------------------- EXAMINE

def test_store_under_examine_is_no_and_changes_nothing(srv):
    """6.3.2: "No changes to the permanent state of the mailbox, including
    per-user state, are permitted"; 6.4.6: STORE's NO is "can't store"."""
    c = session(srv)
    c.cmd(b"a EXAMINE INBOX")
    before = c.cmd(b"b FETCH 1:* FLAGS")
    for cmd in (b"c STORE 1 +FLAGS (\\Seen \\Flagged)", b"d UID STORE 1:* FLAGS ($Junk)",
                b"e STORE 2 -FLAGS.SILENT (\\Recent)"):
        r = c.cmd(cmd)
        assert re.fullmatch(rb"[cde] NO .+\r\n", r[-1]), r
        assert not any(b"FETCH" in line for line in r), r      # nothing was stored
    assert c.cmd(b"f FETCH 1:* FLAGS")[:-1] == before[:-1]
    c.close()
    # nor in the file, nor for the next session (Plan 9 stored them)
    fields = re.findall(rb"(?m)^[0-9a-f]{40} \d{10} (\S{8})$", srv.box(name="mbox.imp").read_bytes())
    assert len(fields) == N and all(f[0:1] == b"-" and f[2:3] == b"-" for f in fields)   # no s, no f
    other = session(srv)
    other.cmd(b"a SELECT INBOX")
    flags = other.cmd(b"b FETCH 1:* FLAGS")[:-1]
    assert all(b"\\Seen" not in f and b"\\Flagged" not in f and b"$Junk" not in f for f in flags)


def test_examine_does_not_clear_recent(srv):
    """6.3.2: "in particular, EXAMINE MUST NOT cause messages to lose the
    \\Recent flag": a later session still sees them as recent."""
    a = session(srv)
    r = a.cmd(b"a EXAMINE INBOX")
    assert b"* %d RECENT\r\n" % N in r
    a.cmd(b"b FETCH 1 BODY[]")           # no \Seen under EXAMINE either
    a.close()
    b = session(srv)
    r = b.cmd(b"a EXAMINE INBOX")
    assert b"* %d RECENT\r\n" % N in r
    # the first SELECT takes \Recent (RFC 3501 2.3.2), the next one sees none
    c = session(srv)
    assert b"* %d RECENT\r\n" % N in c.cmd(b"a SELECT INBOX")
    assert c.cmd(b"b FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Recent))\r\n"
    d = session(srv)
    assert b"* 0 RECENT\r\n" in d.cmd(b"a EXAMINE INBOX")


def test_examine_open_while_select_takes_recent_does_not_give_it_back(srv):
    """An EXAMINE view that rewrites the .imp later (new mail numbered) must
    not write back the \\Recent a SELECT meanwhile took."""
    e = session(srv)
    e.cmd(b"a EXAMINE INBOX")
    s = session(srv)
    s.cmd(b"a SELECT INBOX")                 # takes \Recent of all N
    s.cmd(b"b LOGOUT")
    with open(srv.box(), "ab") as f:        # new mail: the EXAMINE view numbers it
        f.write(b"From glenda Mon Nov 23 09:15:00 2026\nSubject: new\n\nbody\n\n")
    assert b"* %d EXISTS\r\n" % (N + 1) in e.cmd(b"b NOOP")
    t = session(srv)
    r = t.cmd(b"a SELECT INBOX")
    assert b"* 1 RECENT\r\n" in r            # only the new one is still recent
    assert t.cmd(b"b FETCH %d FLAGS" % (N + 1))[0] == b"* %d FETCH (FLAGS (\\Recent))\r\n" % (N + 1)


# ---------------------------------------------------------------- resp-text

def test_every_response_code_has_a_text(srv):
    """7.1: resp-text = ["[" resp-text-code "]" SP] text, text = 1*TEXT-CHAR."""
    c = session(srv)
    lines = c.cmd(b"a SELECT INBOX") + c.cmd(b"b EXAMINE INBOX")
    coded = [l for l in lines if b"[" in l]
    assert len(coded) >= 9
    for line in coded:
        assert re.fullmatch(rb"(\*|[ab]) (OK|NO) \[[^\]]+\] [^\r\n]+\r\n", line), line
    assert b"* OK [UNSEEN 1] Message 1 is first unseen\r\n" in lines
    assert b"* OK [UIDNEXT 9] Predicted next UID\r\n" in lines
    assert any(re.fullmatch(rb"\* OK \[UIDVALIDITY \d+\] UIDs valid\r\n", l) for l in lines)
    assert (b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Draft \\Deleted \\*)] Limited\r\n"
            in lines)


def test_imaplib_reads_the_codes(srv):
    """imaplib keeps each code's data: the text after it does not disturb it."""
    m = srv.imaplib()
    typ, _ = m.select("INBOX")
    assert typ == "OK"
    assert m.response("UNSEEN") == ("UNSEEN", [b"1"])
    assert m.response("UIDNEXT") == ("UIDNEXT", [b"9"])
    m.logout()


# ---------------------------------------------------------------- UIDVALIDITY

def test_recreated_mailbox_gets_a_new_uidvalidity_within_one_second(srv):
    """2.3.1.1: a UID never names another message of a mailbox with the
    same name under the same UIDVALIDITY.  The two files are given one
    mtime, as a DELETE and CREATE within a second leave them (Plan 9's
    UIDVALIDITY is that mtime)."""
    c = session(srv)
    box = srv.box(name="foo")
    msg = b"Subject: one\r\n\r\nfirst\r\n"
    old = []
    for t in (b"1", b"2"):
        assert c.cmd(t + b"a CREATE foo")[-1].startswith(t + b"a OK")
        os.utime(box, (1_800_000_000, 1_800_000_000))
        r = c.cmd(t + b"b SELECT foo")
        v = int(re.search(rb"\[UIDVALIDITY (\d+)\]", b"".join(r)).group(1))
        r = c.cmd(t + b"c APPEND foo {%d}" % len(msg) + b"\r\n" + msg + b"\r\n")
        assert r[-1].startswith(t + b"c OK"), r
        old.append((v, c.cmd(t + b"d UID SEARCH ALL")[0]))
        c.cmd(t + b"e UNSELECT")
        assert c.cmd(t + b"f DELETE foo")[-1].startswith(t + b"f OK")
    (v1, uids1), (v2, uids2) = old
    assert uids1 == uids2 == b"* SEARCH 1\r\n"      # the same UID names another message
    assert v2 != v1                                  # so the UIDVALIDITY differs
    # and the record is not a mailbox
    assert c.cmd(b'z LIST "" *')[-1] == b"z OK LIST completed\r\n"
    assert not any(b"uidvalidity" in l for l in c.cmd(b'y LIST "" *'))


def test_uidvalidity_of_an_existing_plan9_imp_is_kept(srv):
    """Existing .imp files keep their UIDVALIDITY (Plan 9 users' state);
    only a new .imp gets one above the last given."""
    c = session(srv)
    c.cmd(b"a SELECT INBOX")
    c.cmd(b"b LOGOUT")
    imp = srv.box(name="mbox.imp")
    data = imp.read_bytes()
    imp.write_bytes(data[:34] + b"0000004242" + data[44:])
    c = session(srv)
    assert b"* OK [UIDVALIDITY 4242] UIDs valid\r\n" in c.cmd(b"a SELECT INBOX")
