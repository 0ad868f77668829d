"""IMAP4rev2 (RFC 9051) beside IMAP4rev1: listed only when everything it
needs is there (rev2.missing), and once enabled its rules (appendix E),
checked here with the test knob IMAP4D_REV2_ANYWAY: no RECENT or
\\Recent, SELECT's LIST and [CLOSED], SEARCH answered by ESEARCH, STATUS
DELETED.  Expected lines are RFC 9051's examples where it gives them.

RFC 9051 was read in its text as vendored by MailKit
(github.com/jstedfast/MailKit, rfc/rfc9051.txt).  Its examples of what
IMAP4rev2 changes from IMAP4rev1, and their tests:
  6.3.1 t1-t3 (ENABLE of an extension not offered) and a1 (ENABLE
      CONDSTORE): test_enable, with IMAP4rev2 where the RFC has
      X-GOOD-IDEA (which we do not offer), and test_rfc9051_6_4_4_examples.
  6.3.2 A142 SELECT (no RECENT, LIST in the reply): test_select_and_recent.
  6.3.9.7 and appendix B's a002 `select inbox` (OLDNAME when the name
      given is not the name's normal form): test_select_oldname.
  6.3.11 A042 STATUS: Plan 9's STATUS; DELETED: test_status_deleted.
  6.4.4 A282-A286 (RETURN options): RFC 4731's, in test_imap_esearch;
      A283/A284 SEARCH without RETURN answered by ESEARCH, A285 with a
      UTF-8 literal, and A301 (`$` in UID SEARCH) under rev2:
      test_search_is_esearch and test_rfc9051_6_4_4_examples.  The RFC's
      A301 answer `UID ALL 17,900,901` is `17,900:901` here: both are
      the same sequence-set, and we join consecutive numbers as RFC 4731's
      examples do (ALL 2,10:11).  The other 6.4.4 `$` examples are RFC
      5182's (test_imap_esearch).
  The rest of RFC 9051's examples are IMAP4rev1's own (RFC 3501's, played
  in test_imap_rfc_*.py and test_imap_session.py); they were not each
  checked against this text in this pass."""
from __future__ import annotations

import re

import pytest

from upas.imap4d import rev2, table


@pytest.fixture
def srv(imap_factory):
    return imap_factory(flags=("-a",), auth=False, env={"IMAP4D_REV2_ANYWAY": "1"})


def caps(c) -> list[bytes]:
    return c.cmd(b"c0 CAPABILITY")[0].split()


def test_offered_without_the_knob(imap_preauth):
    """Everything IMAP4rev2 folds in (RFC 9051 appendix E: ESEARCH,
    SEARCHRES, SASL-IR, STATUS=SIZE, ...) is offered, so IMAP4rev2 is
    listed without IMAP4D_REV2_ANYWAY, and until a client enables it the
    session keeps IMAP4rev1's rules (RECENT, SEARCH)."""
    assert rev2.missing(n for n, _ in table.CAPABILITIES) == []
    c = imap_preauth.connect()
    assert b"IMAP4rev2" in caps(c)
    lines = c.cmd(b"b SELECT INBOX")
    assert any(re.fullmatch(rb"\* \d+ RECENT\r\n", ln) for ln in lines)
    assert c.cmd(b"c SEARCH UID 1")[0] == b"* SEARCH 1\r\n"
    c.close()
    c = imap_preauth.connect()          # ENABLE before SELECT (RFC 5161 3.1)
    assert c.cmd(b"a ENABLE IMAP4rev2") == [b"* ENABLED IMAP4rev2\r\n",
                                           b"a OK ENABLE completed\r\n"]
    c.cmd(b"b SELECT INBOX")
    assert c.cmd(b"d SEARCH UID 1")[0] == b'* ESEARCH (TAG "d") ALL 1\r\n'
    c.close()


def test_select_oldname(srv):
    """RFC 9051 6.3.2: SELECT's LIST MUST carry OLDNAME when the name the
    client gave differs from its normal form; appendix B's a002 `select
    inbox` answers `* LIST () "/" INBOX ("OLDNAME" ("inbox"))` (ours
    quotes the name, as every LIST of ours does).  The normal name gets no
    OLDNAME; nor does IMAP4rev1, which has no LIST in SELECT."""
    c = srv.connect()
    assert not [ln for ln in c.cmd(b"r EXAMINE inbox") if ln.startswith(b"* LIST")]
    c.close()
    c = srv.connect()           # ENABLE before SELECT (RFC 5161 3.1)
    c.cmd(b"a ENABLE IMAP4rev2")
    lines = c.cmd(b"a002 select inbox")
    assert b'* LIST () "/" "INBOX" ("OLDNAME" ("inbox"))\r\n' in lines
    assert lines[-1].startswith(b"a002 OK [READ-WRITE] ")
    assert b'* LIST () "/" "INBOX"\r\n' in c.cmd(b"b EXAMINE INBOX")
    assert c.cmd(b"c CREATE Sent")[-1].startswith(b"c OK")
    lines = c.cmd(b"d EXAMINE Sent//")      # empty components are dropped
    assert b'* LIST () "/" "Sent" ("OLDNAME" ("Sent//"))\r\n' in lines
    c.close()


def test_enable(srv):
    """RFC 9051 6.3.1 / RFC 5161 4: only what is offered is enabled, and
    ENABLED names what this command turned on."""
    c = srv.connect()
    assert {b"IMAP4REV1", b"IMAP4rev2"} <= set(caps(c))    # both offered (RFC 9051 appendix E)
    assert c.cmd(b"t2 ENABLE X-GOOD-IDEA IMAP4rev2") == [
        b"* ENABLED IMAP4rev2\r\n", b"t2 OK ENABLE completed\r\n"]
    assert c.cmd(b"t3 ENABLE IMAP4rev2") == [b"* ENABLED\r\n", b"t3 OK ENABLE completed\r\n"]
    c.close()


def test_select_and_recent(srv):
    c = srv.connect()
    c.cmd(b"a ENABLE IMAP4rev2")
    n = srv.box().read_bytes().count(b"\nFrom ") + 1
    lines = c.cmd(b"A142 SELECT INBOX")
    # RFC 9051 6.3.2's example: EXISTS, UIDVALIDITY, UIDNEXT, FLAGS,
    # PERMANENTFLAGS and LIST (our order, Plan 9's texts); no RECENT, UNSEEN
    assert b"* %d EXISTS\r\n" % n in lines
    # (the name quoted, as every LIST of ours quotes it; the RFC's is an atom)
    assert b'* LIST () "/" "INBOX"\r\n' in lines
    assert not [ln for ln in lines if b"RECENT" in ln or b"UNSEEN" in ln]
    assert lines[-1].startswith(b"A142 OK [READ-WRITE] ")
    # the messages are new to this session, yet no \Recent anywhere
    assert c.cmd(b"b FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ())\r\n"
    assert c.cmd(b"c STORE 1 +FLAGS (\\Flagged)")[0] == b"* 1 FETCH (FLAGS (\\Flagged))\r\n"
    assert c.cmd(b"d UID FETCH 2 (FLAGS)")[0] == b"* 2 FETCH (UID 2 FLAGS ())\r\n"
    # a new message: EXISTS alone
    other = srv.connect()
    other.cmd(b"a APPEND INBOX {14+}\r\nSubject: x\r\n\r\n\r\n")
    other.close()
    assert c.cmd(b"e NOOP") == [b"* %d EXISTS\r\n" % (n + 1), b"e OK NOOP completed\r\n"]
    # selecting again: the first mailbox is closed first (RFC 9051 7.1)
    lines = c.cmd(b"f EXAMINE INBOX")
    assert lines[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"
    assert lines[-1].startswith(b"f OK [READ-ONLY] ")
    c.close()


def test_qresync_changes_without_recent(srv):
    """RFC 9051 has no \\Recent, and RFC 7162 3.2.5.2's changed messages
    are FETCH (UID, FLAGS, MODSEQ): a reconnect under IMAP4rev2 gets them
    without it, though the new message is \\Recent to its session."""
    c = srv.connect()
    c.cmd(b"a ENABLE IMAP4rev2 QRESYNC")
    r = c.cmd(b"b SELECT INBOX")
    v = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(r)).group(1))
    m = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(r)).group(1))
    n = int(re.search(rb"\* (\d+) EXISTS", b"".join(r)).group(1))
    uid = int(re.search(rb"UIDNEXT (\d+)", b"".join(r)).group(1))
    r = c.cmd(b"c STORE 2,4 +FLAGS.SILENT (\\Answered)")
    stored = int(re.search(rb"MODSEQ \((\d+)\)", r[0]).group(1))
    c.cmd(b"d APPEND INBOX {14+}\r\nSubject: x\r\n\r\n\r\n")    # new: \\Recent in RFC 3501
    c.cmd(b"e LOGOUT")
    c = srv.connect()
    c.cmd(b"a ENABLE IMAP4rev2 QRESYNC")
    r = c.cmd(b"b SELECT INBOX (QRESYNC (%d %d))" % (v, m))
    now = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(r)).group(1))
    assert [ln for ln in r if b"FETCH" in ln] == [
        b"* 2 FETCH (UID 2 FLAGS (\\Answered) MODSEQ (%d))\r\n" % stored,
        b"* 4 FETCH (UID 4 FLAGS (\\Answered) MODSEQ (%d))\r\n" % stored,
        b"* %d FETCH (UID %d FLAGS () MODSEQ (%d))\r\n" % (n + 1, uid, now)]
    c.close()


def test_search_is_esearch(srv):
    """RFC 9051 6.4.4: a SEARCH without RETURN is RETURN (ALL), answered
    by ESEARCH with its tag; UID SEARCH says UID; no match, no ALL."""
    c = srv.connect()
    c.cmd(b"a ENABLE IMAP4rev2")
    c.cmd(b"b SELECT INBOX")
    c.cmd(b"c STORE 2,5:6 +FLAGS.SILENT (\\Flagged)")
    assert c.cmd(b"A283 SEARCH FLAGGED") == [
        b'* ESEARCH (TAG "A283") ALL 2,5:6\r\n', b"A283 OK SEARCH completed\r\n"]
    assert c.cmd(b"A284 UID SEARCH FLAGGED") == [
        b'* ESEARCH (TAG "A284") UID ALL 2,5:6\r\n', b"A284 OK uid SEARCH completed\r\n"]
    assert c.cmd(b"A285 SEARCH SUBJECT nosuchthing") == [
        b'* ESEARCH (TAG "A285")\r\n', b"A285 OK SEARCH completed\r\n"]
    c.close()


def test_rfc9051_6_4_4_examples(srv):
    """RFC 9051 6.4.4's A284 and A285 (message 43 holds the word the
    12-octet literal spells) and A300/A301, in a rev2 session; 6.3.1's a1.
    Our continuation text is Plan 9's "+ Ready for literal data"."""
    from tests.mboxgen import message
    from tests.test_imap_condstore import seed
    word = "\u043e\u0442\u043f\u0443\u0441\u043a"
    utf8 = b"Content-Type: text/plain; charset=utf-8\nSubject:"
    srv.box(name="big").write_bytes(b"".join(
        message(k, f"m {k}", body=f"{word}\n" if k == 43 else "",
                internal=1_100_000_000 if k in (17, 49, 50) else 1_000_000_000).replace(b"Subject:", utf8)
        for k in range(1, 51)))
    seed(srv, "big", [(u, (), (), 1) for u in [*range(1, 17), 17, *range(18, 49), 900, 901]], 1)
    c = srv.connect()
    assert c.cmd(b"a1 ENABLE CONDSTORE") == [b"* ENABLED CONDSTORE\r\n", b"a1 OK ENABLE completed\r\n"]
    c.cmd(b"a ENABLE IMAP4rev2")
    c.cmd(b"b SELECT big")
    assert c.cmd(b'A284 SEARCH TEXT "string not in mailbox"') == [
        b'* ESEARCH (TAG "A284")\r\n', b"A284 OK SEARCH completed\r\n"]
    assert len(word.encode()) == 12
    c.send(b"A285 SEARCH CHARSET UTF-8 TEXT {12}")
    assert c.line() == b"+ Ready for literal data\r\n"
    c.send(word.encode())
    assert c.until(b"A285") == [b'* ESEARCH (TAG "A285") ALL 43\r\n', b"A285 OK SEARCH completed\r\n"]
    assert c.cmd(b'A300 SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM "Smith"') == [
        b"A300 OK SEARCH completed\r\n"]
    assert c.cmd(b"A301 UID SEARCH UID $ SMALLER 4096") == [
        b'* ESEARCH (TAG "A301") UID ALL 17,900:901\r\n', b"A301 OK uid SEARCH completed\r\n"]
    c.close()


def test_status_deleted(srv):
    """STATUS DELETED (RFC 9051 6.3.11): messages with \\Deleted."""
    c = srv.connect()
    c.cmd(b"a SELECT INBOX")
    c.cmd(b"b STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    c.cmd(b"c UNSELECT")
    n = srv.box().read_bytes().count(b"\nFrom ") + 1
    assert c.cmd(b"A042 STATUS INBOX (MESSAGES DELETED)") == [
        b"* STATUS INBOX (MESSAGES %d DELETED 2)\r\n" % n, b"A042 OK STATUS completed\r\n"]
    c.close()


def test_utf8_mailbox_names(srv):
    """RFC 9051 5.1: once IMAP4rev2 is enabled, mailbox names are UTF-8
    both ways; a rev1 session sees the same mailbox in modified UTF-7
    (RFC 3501 5.1.3's `&APw-` for u-umlaut)."""
    c = srv.connect()
    c.cmd(b"a ENABLE IMAP4rev2")
    name = "Entwürfe".encode()
    assert c.cmd(b'b CREATE "' + name + b'"')[-1].startswith(b"b OK ")
    assert srv.box(name="Entwürfe").is_file()
    lines = c.cmd(b'c LIST "" "Entw*"')
    assert lines[0].startswith(b"* LIST (") and lines[0].endswith(b' "/" "' + name + b'"\r\n')
    lines = c.cmd(b'd SELECT "' + name + b'"')
    assert b'* LIST () "/" "' + name + b'"\r\n' in lines
    assert c.cmd(b'e STATUS "' + name + b'" (MESSAGES)')[0] == \
        b'* STATUS "' + name + b'" (MESSAGES 0)\r\n'
    # modified UTF-7 is just text now: no such mailbox
    assert c.cmd(b"f SELECT Entw&APw-rfe")[-1].startswith(b"f NO ")
    c.close()
    c = srv.connect()                   # rev1: modified UTF-7
    assert c.cmd(b'a LIST "" "Entw*"')[0].endswith(b' "/" "Entw&APw-rfe"\r\n')
    assert c.cmd(b'b SELECT "' + name + b'"') == [b"b BAD SELECT bad syntax\r\n"]
    c.close()
