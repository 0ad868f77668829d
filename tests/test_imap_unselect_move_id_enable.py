"""UNSELECT (RFC 3691), MOVE (RFC 6851), ID (RFC 2971), ENABLE (RFC 5161):
exact replies over a real socket."""
from __future__ import annotations

import pytest


@pytest.fixture
def c(imap_client):
    return imap_client


def uidvalidity(srv, name) -> int:
    return int(srv.box(name=name + ".imp").read_bytes().split(b"\n")[1].split()[0])


def test_unselect_does_not_expunge(c, imap_preauth):
    c.cmd(b"a SELECT INBOX")
    c.cmd(b"b STORE 1 +FLAGS.SILENT (\\Deleted)")
    before = imap_preauth.box().read_bytes()
    assert c.cmd(b"c UNSELECT") == [b"c OK UNSELECT completed\r\n"]
    assert imap_preauth.box().read_bytes() == before
    assert c.cmd(b"d FETCH 1 FLAGS") == [b"d BAD FETCH illegal command\r\n"]
    assert c.cmd(b"e UNSELECT") == [b"e BAD UNSELECT illegal command\r\n"]


def test_move_with_copyuid_and_expunges(c, imap_preauth):
    srv = imap_preauth
    c.cmd(b"a CREATE Trash")
    c.cmd(b"b SELECT INBOX")
    src = srv.box().read_bytes()
    lines = c.cmd(b"c MOVE 2:3 Trash")
    v = uidvalidity(srv, "Trash")
    assert lines == [b"* OK [COPYUID %d 2,3 1,2] moved\r\n" % v,
                     b"* 2 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n",
                     b"* 6 EXISTS\r\n", b"* 6 RECENT\r\n",
                     b"c OK MOVE completed\r\n"]
    moved = srv.box(name="Trash").read_bytes()
    # the stored messages travel byte for byte, From lines included
    for entry in moved.split(b"\n\nFrom ")[:1]:
        assert entry in src
    assert moved.count(b"\nFrom ") + 1 == 2 and src.count(b"\nFrom ") == 7
    assert srv.box().read_bytes().count(b"\nFrom ") + 1 == 6
    lines = c.cmd(b"d UID MOVE 7 Trash")
    assert lines == [b"* OK [COPYUID %d 7 3] moved\r\n" % v,
                     b"* 5 EXPUNGE\r\n", b"* 5 EXISTS\r\n", b"* 5 RECENT\r\n",
                     b"d OK uid MOVE completed\r\n"]
    assert c.cmd(b"e MOVE 1 nosuch") == [b"e NO [TRYCREATE] MOVE mailbox does not exist\r\n"]
    assert c.cmd(b"f MOVE 99 Trash") == [b"f NO MOVE failed\r\n"]
    assert c.cmd(b"g MOVE 1 ../bob/mbox") == [b"g NO MOVE bad mailbox\r\n"]
    assert c.cmd(b"h EXAMINE INBOX")[-1].startswith(b"h OK [READ-ONLY]")
    assert c.cmd(b"i MOVE 1 Trash") == [b"i NO MOVE mailbox is read-only\r\n"]
    assert c.cmd(b"j SELECT Trash")[-1].startswith(b"j OK [READ-WRITE]")
    assert c.cmd(b"k UID FETCH 1:* FLAGS")[:-1] == [
        b"* 1 FETCH (UID 1 FLAGS (\\Recent))\r\n", b"* 2 FETCH (UID 2 FLAGS (\\Recent))\r\n",
        b"* 3 FETCH (UID 3 FLAGS (\\Recent))\r\n"]


def test_id(c):
    assert c.cmd(b'a ID ("name" "mutt" "version" NIL)') == [
        b'* ID ("name" "upas imap4d" "vendor" "upas-py" "os" "Plan 9 ports")\r\n',
        b"a OK ID completed\r\n"]
    assert c.cmd(b"b ID NIL")[-1] == b"b OK ID completed\r\n"
    assert c.cmd(b"c ID (name)") == [b"c BAD ID bad syntax\r\n"]


def test_enable(c):
    # RFC 5161: ENABLED names what was enabled (CONDSTORE, RFC 7162), not
    # what we do not have; a second ENABLE of it names nothing
    assert c.cmd(b"a ENABLE CONDSTORE UTF8=ACCEPT") == [b"* ENABLED CONDSTORE\r\n",
                                                        b"a OK ENABLE completed\r\n"]
    assert c.cmd(b"a ENABLE condstore") == [b"* ENABLED\r\n", b"a OK ENABLE completed\r\n"]
    assert c.cmd(b"b ENABLE") == [b"b BAD ENABLE bad syntax\r\n"]
    c.cmd(b"c SELECT INBOX")
    assert c.cmd(b"d ENABLE X") == [b"d BAD ENABLE illegal command\r\n"]
