"""Mailbox names holding blanks or quotes ("Sent Items", Outlook's and
Thunderbird's default): imap4d writes `open PATH NAME` to upasfs's ctl
rc-quoted (lib/rcquote.py), since upasfs tokenizes ctl lines as rc does.
Unquoted, the blank split the path and SELECT/STATUS/APPEND failed."""
from __future__ import annotations

import pytest

MSG = b"Subject: hi\r\nFrom: glenda@upas.local\r\n\r\nbody\r\n"


@pytest.fixture
def c(imap_client):
    return imap_client


def append(c, tag: bytes, box: bytes, msg: bytes = MSG) -> list[bytes]:
    return c.cmd(b"%s APPEND %s (\\Seen) {%d+}\r\n%s\r\n" % (tag, box, len(msg), msg))


def test_sent_items_create_append_select_fetch_status(imap_preauth, c):
    assert c.cmd(b'a CREATE "Sent Items"') == [b"a OK Sent Items CREATE completed\r\n"]
    r = append(c, b"b", b'"Sent Items"')
    assert len(r) == 1 and r[0].startswith(b"b OK [APPENDUID ") and r[0].endswith(b" 1] APPEND completed\r\n")
    sel = c.cmd(b'c SELECT "Sent Items"')
    assert sel[1:3] == [b"* 1 EXISTS\r\n", b"* 1 RECENT\r\n"]
    assert sel[-1] == b"c OK [READ-WRITE] SELECT Sent Items completed\r\n"
    assert c.cmd(b"d FETCH 1 (FLAGS BODY[])") == [
        b"* 1 FETCH (FLAGS (\\Seen \\Recent) BODY[] {%d}\r\n%s)\r\n" % (len(MSG), MSG),
        b"d OK FETCH completed\r\n"]
    assert c.cmd(b'e STATUS "Sent Items" (MESSAGES UIDNEXT)') == [
        b'* STATUS "Sent Items" (MESSAGES 1 UIDNEXT 2)\r\n', b"e OK STATUS completed\r\n"]
    assert c.cmd(b"f CLOSE")[-1].startswith(b"f OK ")
    assert c.cmd(b'g STATUS "Sent Items" (MESSAGES UNSEEN)') == [
        b'* STATUS "Sent Items" (MESSAGES 1 UNSEEN 0)\r\n', b"g OK STATUS completed\r\n"]
    stored = imap_preauth.box(name="Sent Items").read_bytes()
    assert stored.startswith(b"From ") and stored.endswith(b"\nbody\n\n")


def test_quote_in_a_name(imap_preauth, c):
    assert c.cmd(b"a CREATE \"it's mine\"") == [b"a OK it's mine CREATE completed\r\n"]
    assert append(c, b"b", b"\"it's mine\"")[0].startswith(b"b OK [APPENDUID ")
    assert c.cmd(b"c STATUS \"it's mine\" (MESSAGES)") == [
        b"* STATUS \"it's mine\" (MESSAGES 1)\r\n", b"c OK STATUS completed\r\n"]
    assert c.cmd(b"d EXAMINE \"it's mine\"")[-1] == b"d OK [READ-ONLY] EXAMINE it's mine completed\r\n"
    assert b"Subject: hi" in imap_preauth.box(name="it's mine").read_bytes()
