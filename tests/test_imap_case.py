"""Decision (docs/decisions.md, "IMAP atoms in upper case"): imap4d sends
every protocol atom in upper case -- `* PREAUTH`, `* BYE`, `* N EXPUNGE`,
`FETCH (UID n FLAGS ...)`, NAMESPACE's `NIL`, `* BAD` -- where Plan 9 had
lower case (docs/spec/servers.md §3.4), because imaplib, imapclient and mbsync
reject the lower-case forms.  The human-readable text after the
atom stays Plan 9's, word for word."""
from __future__ import annotations

from tests.fixtures.imap import without_capability_code as nocap

import imaplib

import pytest

GREETING = b"* PREAUTH imap.test IMAP4rev1 server ready user glenda authenticated\r\n"


@pytest.fixture
def c(imap_client):
    return imap_client


def test_preauth_greeting(c):
    assert nocap(c.greeting) == GREETING


def test_logout_bye(c):
    assert c.cmd(b"a logout") == [b"* BYE logging out\r\n", b"a OK logout completed\r\n"]
    assert c.closed()


def test_end_of_input_bad_then_bye(c):
    c.sock.shutdown(1)
    assert c.line() == b"* BAD empty command line: bad syntax\r\n"
    assert c.line() == b"* BYE end of input\r\n"
    assert c.closed()


def test_empty_line_bad(c):
    c.send(b"\r\n")
    assert c.line() == b"* BAD empty command line: bad syntax\r\n"


def test_bad_flag_bye_usage(imap_factory):
    assert imap_factory(flags=("-z",), auth=False).connect().greeting == b"* BYE usage\r\n"


def test_expunge_and_uid_flag_updates(imap_preauth, c):
    other = imap_preauth.connect()
    assert other.cmd(b"a SELECT INBOX")[-1] == b"a OK [READ-WRITE] SELECT INBOX completed\r\n"
    c.cmd(b"a SELECT INBOX")
    c.cmd(b"b STORE 3 +FLAGS.SILENT (\\Flagged)")
    # the tagged text keeps Plan 9's `uid ` prefix and the command as typed
    assert c.cmd(b"d uid store 2 +FLAGS (\\Deleted)") == [
        b"* 2 FETCH (UID 2 FLAGS (\\Deleted))\r\n", b"d OK uid store completed\r\n"]
    assert c.cmd(b"e expunge") == [b"* 2 EXPUNGE\r\n", b"* 7 EXISTS\r\n", b"* 0 RECENT\r\n",
                                   b"e OK expunge messages erased\r\n"]
    # the other session learns both during a UID command (RFC 3501 7.4.1
    # allows EXPUNGE there): the EXPUNGE, then the flag change with its UID,
    # before the reply, so that the reply's numbers are the new ones (5.2)
    assert other.cmd(b"f uid fetch 1 UID") == [
        b"* 2 EXPUNGE\r\n", b"* 7 EXISTS\r\n", b"* 7 RECENT\r\n",
        b"* 2 FETCH (UID 3 FLAGS (\\Flagged \\Recent))\r\n",
        b"* 1 FETCH (UID 1)\r\n", b"f OK uid fetch completed\r\n"]
    other.close()


def test_namespace_nil(c):
    assert c.cmd(b"g namespace") == [b'* NAMESPACE (("" "/")) NIL NIL\r\n',
                                     b"g OK namespace completed\r\n"]


def test_list_lsub_type_upper_case_whatever_the_client_typed(c):
    assert c.cmd(b'h list "" "lists*"') == [
        b'* LIST (\\Noselect \\HasChildren) "/" "lists"\r\n',
        b'* LIST (\\Noinferiors \\Marked) "/" "lists/mbox"\r\n', b"h OK list completed\r\n"]
    assert c.cmd(b'i lsub "" "*"') == [b'* LSUB (\\Noinferiors \\Marked) "/" "INBOX"\r\n',
                                       b"i OK lsub completed\r\n"]


# every untagged line must match one of imaplib's two patterns, whose
# response type is [A-Z-]+ (Lib/imaplib.py: Untagged_response, Untagged_status)
IMAPLIB_UNTAGGED = (imaplib.Untagged_response, imaplib.Untagged_status)


def test_every_untagged_line_is_one_imaplib_accepts(imap_preauth, c):
    """A session of commands typed in lower case, with another session's
    flag change and an expunge: no lower-case atom leaks out."""
    lines = [nocap(c.greeting)]
    for cmd in (b"a capability", b"b namespace", b'c list "" "*"', b'd lsub "" "*"',
                b"e status INBOX (messages uidnext unseen)", b"f select INBOX",
                b"g fetch 1:2 (uid flags internaldate rfc822.size envelope bodystructure)"):
        lines += c.cmd(cmd)
    other = imap_preauth.connect()
    other.cmd(b"a SELECT INBOX")
    other.cmd(b"b STORE 5 +FLAGS.SILENT (\\Seen)")
    other.close()
    for cmd in (b"h uid store 1:3 +flags (\\Deleted)", b"i search deleted", b"j expunge",
                b"k id nil"):
        lines += c.cmd(cmd)
    c.send(b"\r\n")
    lines.append(c.line())
    lines += c.cmd(b"m x-exit")
    untagged = [ln for ln in lines if ln.startswith(b"* ")]
    assert len(untagged) > 20
    for want in (GREETING, b"* BAD empty command line: bad syntax\r\n", b"* 1 EXPUNGE\r\n",
                 b"* BYE logging out\r\n", b"* 5 FETCH (UID 5 FLAGS (\\Seen \\Recent))\r\n"):
        assert want in untagged
    for ln in untagged:
        assert any(rx.match(ln.rstrip(b"\r\n")) for rx in IMAPLIB_UNTAGGED), ln
