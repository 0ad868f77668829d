"""Real clients (imaplib, imapclient) against imap4d with the real auth
stack and upasfs: login by each mechanism, SELECT, FETCH of structure and
data, partial fetches, SEARCH, STORE, COPY, UID commands, EXPUNGE, CLOSE,
LOGOUT.  Python's clients accept only upper-case untagged types: they work
because imap4d sends `* N EXPUNGE` and `* BYE` in upper case
(docs/decisions.md)."""
import imaplib

import pytest
from imapclient import IMAPClient

from tests.fixtures.imap import without_capability_code as nocap

SECRET = "glenda-apop"


@pytest.fixture
def srv(imap_factory):
    return imap_factory(flags=("-p",), posted_upasfs=False)


def test_imaplib_cram_md5_session(srv):
    m = srv.imaplib()
    typ, data = m.login_cram_md5("glenda", SECRET)
    assert (typ, [nocap(d + b" ") for d in data]) == ("OK", [b"AUTHENTICATE "])
    typ, data = m.select("INBOX")
    assert (typ, data) == ("OK", [b"8"])
    assert m.untagged_responses.get("UIDVALIDITY")
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: first message: plain text\r\n\r\n"
    typ, data = m.fetch("2", "(BODY.PEEK[1]<0.20>)")
    assert data[0][0].endswith(b"BODY[1]<0> {20}") and data[0][1] == b"Here is the report y"
    typ, data = m.search(None, "FROM", "ken", "SUBJECT", "multipart")
    assert data == [b"2"]
    typ, data = m.uid("SEARCH", "OR", "FROM", "rob", "LARGER", "2000")
    assert data == [b"1 8"]
    typ, data = m.store("1:2", "+FLAGS", r"(\Flagged)")
    assert typ == "OK" and data == [b"1 (FLAGS (\\Flagged \\Recent))", b"2 (FLAGS (\\Flagged \\Recent))"]
    typ, data = m.copy("1:2", "lists/mbox")
    assert typ == "OK" and data[0].startswith(b"[COPYUID ")
    typ, data = m.uid("FETCH", "2", "(UID FLAGS)")
    assert data == [b"2 (UID 2 FLAGS (\\Flagged \\Recent))"]
    m.store("2", "+FLAGS", r"\Deleted")
    assert m.expunge() == ("OK", [b"2"])
    assert m.select("INBOX") == ("OK", [b"7"])
    m.store("7", "+FLAGS", r"\Deleted")
    assert m.close() == ("OK", [b"CLOSE mailbox closed, now in authenticated state"])
    typ, data = m.select("lists/mbox", readonly=True)
    assert typ == "OK" and int(data[0]) >= 2
    assert m.logout() == ("BYE", [b"logging out"])
    srv.wait_idle()
    assert b"multipart with attachments" not in srv.box().read_bytes()
    assert b"multipart with attachments" in srv.box(name="lists/mbox").read_bytes()


def test_imaplib_login_needs_p(imap_factory):
    m = imap_factory().imaplib()
    with pytest.raises(imaplib.IMAP4.error, match="plaintext passwords disallowed"):
        m.login("glenda", SECRET)
    assert b"LOGINDISABLED" in m.capabilities.__repr__().encode() or "LOGINDISABLED" in m.capabilities


def test_imapclient_login_structure_and_flags(srv):
    c = IMAPClient(*srv.addr, ssl=False, timeout=20)
    assert nocap(c.login("glenda", SECRET)) == b"LOGIN succeeded"
    info = c.select_folder("INBOX")
    assert info[b"EXISTS"] == 8 and info[b"UIDNEXT"] == 9
    assert info[b"PERMANENTFLAGS"] == (b"\\Seen", b"\\Answered", b"\\Flagged", b"\\Draft", b"\\Deleted", b"\\*")
    env = c.fetch([1], ["ENVELOPE"])[1][b"ENVELOPE"]
    assert env.subject == b"first message: plain text"
    assert env.date.year == 2026 and env.date.month == 11 and env.date.day == 23
    assert [(a.name, a.mailbox, a.host) for a in env.from_] == [(b"Rob Pike", b"rob", b"plan9.bell-labs.com")]
    assert [(a.mailbox, a.host) for a in env.to] == [(b"glenda", b"example.org"),
                                                      (b"ken", b"plan9.bell-labs.com")]
    assert env.in_reply_to == b"<orig.123@example.org>"
    bs = c.fetch([4], ["BODYSTRUCTURE"])[4][b"BODYSTRUCTURE"]
    assert bs.is_multipart and bs[1] == b"mixed"
    alt, fwd = bs[0]
    assert alt[1] == b"alternative" and alt[0][0][:2] == (b"text", b"plain") and alt[0][0][6] == 56
    assert fwd[:2] == (b"message", b"rfc822") and fwd[7][1] == b"the original message"
    assert fwd[9] == 6                   # the line break before the boundary is not its
    res = c.fetch([4], ["BODY.PEEK[2.TEXT]", "RFC822.SIZE"])[4]
    assert res[b"BODY[2.TEXT]"] == b"This is the forwarded original body."
    assert c.add_flags([3], [b"$Junk", b"\\Seen"]) == {3: (b"\\Seen", b"\\Recent", b"$Junk")}
    assert c.search(["KEYWORD", "$Junk"]) == [3]
    assert c.search(["UNSEEN", "SINCE", "26-Nov-2026"]) == [4, 5, 8]
    assert c.get_flags([3]) == {3: (b"\\Seen", b"\\Recent", b"$Junk")}
    c.remove_flags([3], [b"$Junk"])
    assert c.search(["KEYWORD", "$Junk"]) == []
    before = srv.box(name="lists/mbox").read_bytes()
    c.copy([5], "lists/mbox")
    added = srv.box(name="lists/mbox").read_bytes()[len(before):]
    assert added.startswith(b"From daemon ") and b"escaped From" in added
    c.delete_messages([5])
    assert c.expunge() == (b"EXPUNGE messages erased", [(5, b"EXPUNGE"), (7, b"EXISTS"), (7, b"RECENT")])
    assert c.select_folder("INBOX")[b"EXISTS"] == 7
    c.close_folder()
    assert c.logout() == b"logging out"          # the `* BYE` text; no abort


def test_imapclient_plain_login(srv):
    c = IMAPClient(*srv.addr, ssl=False, timeout=20)
    assert nocap(c.plain_login("bob", "bob-apop") + b" ") == b"AUTHENTICATE "
    assert c.select_folder("INBOX", readonly=True)[b"EXISTS"] == 3
    assert c.search(["ALL"]) == [1, 2, 3]
    c.shutdown()
