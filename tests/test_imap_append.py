"""APPEND over a real socket (docs/spec/servers.md §3.10, facts 53-54,
docs/decisions.md): the stored bytes, the .imp entry, APPENDUID, flags and
date-time, LITERAL+, the literal limit and bad or cut-short literals."""
from __future__ import annotations

import re
import time

import pytest

MSG = b"Subject: hello\r\nFrom: a@b\r\n\r\nFrom the start\r\nline two\r\n"


@pytest.fixture
def srv(imap_preauth):
    return imap_preauth


@pytest.fixture
def c(imap_client):
    return imap_client


def uidvalidity(srv, name="mbox") -> int:
    return int(srv.box(name=name + ".imp").read_bytes().split(b"\n")[1].split()[0])


def test_append_servers_fact53_continuation_and_appenduid(c, srv):
    c.cmd(b"a CREATE foo")
    c.send(b"b APPEND foo {5}")
    assert c.line() == b"+ Ready for literal data\r\n"
    c.send(b"hello\r\n")
    lines = c.until(b"b")
    v = uidvalidity(srv, "foo")
    assert lines == [b"b OK [APPENDUID %d 1] APPEND completed\r\n" % v]
    # docs/decisions.md: INBOX works (Bell answered TRYCREATE)
    c.send(b"c APPEND INBOX {5}")
    assert c.line() == b"+ Ready for literal data\r\n"
    c.send(b"hello\r\n")
    assert c.until(b"c") == [b"c OK [APPENDUID %d 9] APPEND completed\r\n" % uidvalidity(srv)]


def test_append_missing_box_never_asks_for_literal(c):
    assert c.cmd(b"a APPEND nosuch {5}") == [b"a NO [TRYCREATE] APPEND mailbox does not exist\r\n"]
    assert c.cmd(b"b APPEND ../bob/mbox {5}") == [b"b NO APPEND bad mailbox\r\n"]
    assert c.cmd(b"c APPEND lists {5}") == [b"c NO [TRYCREATE] APPEND mailbox does not exist\r\n"]
    assert c.cmd(b"d NOOP") == [b"d OK NOOP completed\r\n"]   # the session goes on


def test_append_servers_fact54_stored_bytes_and_imp(c, srv):
    c.cmd(b"a CREATE foo")
    lines = c.cmd(b'b APPEND foo (\\Seen \\Flagged) "02-Jan-2006 15:04:05 -0500" {%d}\r\n' % len(MSG)
                  + MSG + b"\r\n")
    assert lines[-1].startswith(b"b OK [APPENDUID ")
    data = srv.box(name="foo").read_bytes()
    entry = (b"From glenda Mon Jan 02 15:04:05 -0500 2006\n"
             b"Subject: hello\nFrom: a@b\n\n From the start\nline two\n")
    assert data == entry + b"\n"
    imp = srv.box(name="foo.imp").read_bytes().split(b"\n")
    assert imp[0] == b"imap internal mailbox description"
    assert re.fullmatch(rb"\d{10} 0000000002", imp[1])
    import hashlib
    assert imp[2] == hashlib.sha1(entry).hexdigest().encode() + b" 0000000001 s-f--r--"
    c.cmd(b"c SELECT foo")
    assert c.cmd(b"d FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)")[0] == (
        b'* 1 FETCH (UID 1 FLAGS (\\Seen \\Flagged \\Recent) '
        b'INTERNALDATE "02-Jan-2006 15:04:05 -0500" RFC822.SIZE %d)\r\n' % (len(MSG) + 1))


def test_append_space_padded_date_and_keyword(c, srv):
    """docs/decisions.md: RFC 3501's space-padded day parses; keywords are kept."""
    c.cmd(b"a CREATE foo")
    lines = c.cmd(b'b APPEND foo ($Junk) " 2-Jan-2006 15:04:05 +0130" {5}\r\nhello\r\n')
    assert lines[-1].startswith(b"b OK [APPENDUID ")
    assert srv.box(name="foo").read_bytes().startswith(b"From glenda Mon Jan 02 15:04:05 +0130 2006\n")
    c.cmd(b"c SELECT foo")
    assert c.cmd(b"d FETCH 1 (FLAGS INTERNALDATE)")[0] == (
        b'* 1 FETCH (FLAGS (\\Recent $Junk) INTERNALDATE "02-Jan-2006 15:04:05 +0130")\r\n')
    assert c.cmd(b'e APPEND foo "32-Jan-2006 15:04:05 +0000" {1}') == \
        [b"e BAD APPEND illegal date format\r\n"]


def test_append_future_date_is_now(c, srv):
    c.cmd(b"a CREATE foo")
    c.cmd(b'b APPEND foo "01-Jan-2999 00:00:00 +0000" {1}\r\nx\r\n')
    line = srv.box(name="foo").read_bytes().split(b"\n")[0]
    assert line.endswith(b" +0000 %d" % time.gmtime().tm_year)


def test_append_literal_plus(c, srv):
    c.cmd(b"a CREATE foo")
    c.send(b"b APPEND foo {5+}\r\nhello\r\n")
    assert c.until(b"b")[-1].startswith(b"b OK [APPENDUID ")      # no continuation
    assert srv.box(name="foo").read_bytes().endswith(b"\nhello\n\n")


def test_append_to_selected_box_reports_exists(c, srv):
    c.cmd(b"a SELECT INBOX")
    lines = c.cmd(b"b APPEND INBOX {5+}\r\nhello\r\n")
    assert b"* 9 EXISTS\r\n" in lines and lines[-1].startswith(b"b OK [APPENDUID ")
    assert c.cmd(b"c UID FETCH 9 FLAGS")[0] == b"* 9 FETCH (UID 9 FLAGS (\\Recent))\r\n"


def test_literal_limit_gives_clear_no(imap_factory):
    srv = imap_factory(flags=("-a",), auth=False, env={"UPAS_IMAP_MAXLITERAL": "1000"})
    c = srv.connect()
    c.cmd(b"a CREATE foo")
    assert c.cmd(b"b APPEND foo {1001}") == [b"b NO [TOOBIG] APPEND literal too large\r\n"]
    assert c.cmd(b"c APPEND foo {1000}\r\n" + b"x" * 1000 + b"\r\n", b"c")[-1].startswith(b"c OK ")
    assert c.cmd(b"d NOOP") == [b"d OK NOOP completed\r\n"]
    c.close()


def test_broken_literals(c, srv):
    c.cmd(b"a CREATE foo")
    assert c.cmd(b"b APPEND foo {abc}") == [b"b BAD APPEND bad syntax\r\n"]
    assert c.cmd(b"c APPEND foo {99999999999}")[0] == b"c BAD APPEND number out of range\r\n"
    # Plan 9 sent an empty line here (docs/spec/servers.md fact 63); no response may be empty
    assert c.cmd(b"d NOOP") == [b"d OK NOOP completed\r\n"]
    assert c.cmd(b"d APPEND foo (\\Bogus) {1}") == [b"d BAD APPEND flag not supported\r\n"]
    assert c.cmd(b"e APPEND foo") == [b"e BAD APPEND bad syntax\r\n"]
    assert srv.box(name="foo").read_bytes() == b""


def test_disconnect_mid_append_leaves_box_as_it_was(srv):
    c = srv.connect()
    c.cmd(b"a SELECT INBOX")
    c.cmd(b"b UNSELECT")
    before = srv.box().read_bytes(), srv.box(name="mbox.imp").read_bytes()
    c.send(b"c APPEND INBOX {1000}")
    assert c.line() == b"+ Ready for literal data\r\n"
    c.sock.sendall(b"Subject: cut short\r\n\r\nhalf a message")
    c.close()
    srv.wait_idle()
    assert (srv.box().read_bytes(), srv.box(name="mbox.imp").read_bytes()) == before


def _append(c, tag: bytes, box: bytes) -> bytes:
    lines = c.cmd(tag + b" APPEND " + box + b" {%d}\r\n" % len(MSG) + MSG + b"\r\n")
    assert lines[-1].startswith(tag + b" OK [APPENDUID "), lines
    return lines[-1]


def test_appends_in_a_row_see_other_sessions_between(c, srv):
    """A run of APPENDs reuses its view of the target only while nothing
    changed: another session's SELECT (which takes \\Recent) and its
    DELETE + CREATE (a new UIDVALIDITY) are seen by the next APPEND."""
    c.cmd(b"a CREATE foo")
    _append(c, b"b", b"foo")
    _append(c, b"c", b"foo")
    other = srv.connect()
    try:
        assert b"* 2 RECENT\r\n" in other.cmd(b"d SELECT foo")
        other.cmd(b"e UNSELECT")
        _append(c, b"f", b"foo")
        lines = other.cmd(b"g SELECT foo")
        assert b"* 3 EXISTS\r\n" in lines and b"* 1 RECENT\r\n" in lines
        other.cmd(b"h UNSELECT")
        v = uidvalidity(srv, "foo")
        other.cmd(b"i DELETE foo")
        other.cmd(b"j CREATE foo")
        reply = _append(c, b"k", b"foo")
        v2 = uidvalidity(srv, "foo")
        assert v2 != v and reply == b"k OK [APPENDUID %d 1] APPEND completed\r\n" % v2
        lines = other.cmd(b"l SELECT foo")
        assert b"* 1 EXISTS\r\n" in lines and b"* 1 RECENT\r\n" in lines
    finally:
        other.close()
