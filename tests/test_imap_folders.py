"""imap4d over a real socket: names, LIST/LSUB, CREATE, DELETE,
RENAME, SUBSCRIBE, NAMESPACE, STATUS (docs/spec/servers.md §3.6, §3.10, §4)."""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest


def tree_state(root: Path) -> dict[str, str]:
    """Every file under root with a hash of its bytes (directories too)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = "dir"
        for f in files:
            p = os.path.join(dirpath, f)
            if f == "L.mbox":
                continue
            out[os.path.relpath(p, root)] = hashlib.sha1(Path(p).read_bytes()).hexdigest()
    return out


@pytest.fixture
def c(imap_client):
    return imap_client


def test_capability_lists_what_part2_implements(c):
    caps = c.cmd(b"a CAPABILITY")[0].split()
    for cap in (b"IDLE", b"NAMESPACE", b"CHILDREN", b"LIST-EXTENDED", b"SPECIAL-USE", b"LIST-STATUS",
                b"UNSELECT", b"ID", b"ENABLE", b"MOVE", b"UIDPLUS", b"LITERAL+"):
        assert cap in caps
    assert b"STARTTLS" not in caps      # no -t certfile: not offered


def test_namespace_servers_fact36(c):
    assert c.cmd(b"a NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL NIL\r\n',
                                      b"a OK NAMESPACE completed\r\n"]


def test_list_empty_pattern_servers_fact37(c):
    assert c.cmd(b'a LIST "" ""') == [b'* LIST (\\Noselect) "/" ""\r\n', b"a OK LIST\r\n"]
    assert c.cmd(b'b list "foo/bar" ""') == [b'* LIST (\\Noselect) "/" "foo/"\r\n', b"b OK list\r\n"]


def test_list_star_servers_fact38_and_children(c, imap_preauth):
    # no .imp yet: INBOX is \Marked (Plan 9: .imp missing or older)
    assert c.cmd(b'a LIST "" *') == [
        b'* LIST (\\Noinferiors \\Marked) "/" "INBOX"\r\n',
        b'* LIST (\\Noselect \\HasChildren) "/" "lists"\r\n',
        b'* LIST (\\Noinferiors \\Marked) "/" "lists/mbox"\r\n',
        b"a OK LIST completed\r\n"]
    c.cmd(b"b SELECT INBOX")
    c.cmd(b"c CLOSE")
    os.utime(imap_preauth.box(name="mbox.imp"), (2e9, 2e9))   # the .imp is newer now
    assert c.cmd(b'd LIST "" %') == [
        b'* LIST (\\Noinferiors) "/" "INBOX"\r\n',
        b'* LIST (\\Noselect \\HasChildren) "/" "lists"\r\n',
        b"d OK LIST completed\r\n"]
    assert c.cmd(b'e LIST "" inbox') == [b'* LIST (\\Noinferiors) "/" "INBOX"\r\n',
                                         b"e OK LIST completed\r\n"]
    assert c.cmd(b'f LIST "lists/" %') == [
        b'* LIST (\\Noinferiors \\Marked) "/" "lists/mbox"\r\n', b"f OK LIST completed\r\n"]
    assert c.cmd(b'g LIST "" ../%') == [b"g NO illegal mailbox pattern\r\n"]
    assert c.cmd(b'h LIST "" /%') == [b"h NO illegal mailbox pattern\r\n"]


def test_special_use_and_list_extended(c):
    for n in (b"Sent", b"Trash", b"Junk", b"Drafts", b"Archive"):
        assert c.cmd(b"a CREATE " + n)[-1] == b"a OK " + n + b" CREATE completed\r\n"
    c.cmd(b"b SUBSCRIBE Sent")
    assert c.cmd(b'c LIST (SPECIAL-USE) "" *') == [
        b'* LIST (\\Noinferiors \\Marked \\Drafts) "/" "Drafts"\r\n',
        b'* LIST (\\Noinferiors \\Marked \\Junk) "/" "Junk"\r\n',
        b'* LIST (\\Noinferiors \\Marked \\Sent) "/" "Sent"\r\n',
        b'* LIST (\\Noinferiors \\Marked \\Trash) "/" "Trash"\r\n',
        b"c OK LIST completed\r\n"]
    assert c.cmd(b'd LIST (SUBSCRIBED) "" * RETURN (CHILDREN)') == [
        b'* LIST (\\Noinferiors \\Marked \\Subscribed) "/" "INBOX"\r\n',
        b'* LIST (\\Noinferiors \\Marked \\Sent \\Subscribed) "/" "Sent"\r\n',
        b"d OK LIST completed\r\n"]
    lines = c.cmd(b'e LIST "" (INBOX Archive) RETURN (SUBSCRIBED)')
    assert lines == [b'* LIST (\\Noinferiors \\Marked \\Subscribed) "/" "INBOX"\r\n',
                     b'* LIST (\\Noinferiors \\Marked) "/" "Archive"\r\n',
                     b"e OK LIST completed\r\n"]
    assert c.cmd(b'f LIST (BOGUS) "" *') == [b"f BAD LIST bad syntax\r\n"]
    # RFC 5258 RECURSIVEMATCH: a parent of a subscribed box gets CHILDINFO
    c.cmd(b"g CREATE Archive2/2026")
    c.cmd(b"h SUBSCRIBE Archive2/2026")
    assert c.cmd(b'i LIST (SUBSCRIBED RECURSIVEMATCH) "" %') == [
        b'* LIST (\\Noinferiors \\Marked \\Subscribed) "/" "INBOX"\r\n',
        b'* LIST (\\Noselect \\HasChildren) "/" "Archive2" ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        b'* LIST (\\Noinferiors \\Marked \\Sent \\Subscribed) "/" "Sent"\r\n',
        b"i OK LIST completed\r\n"]
    assert c.cmd(b'j LIST (RECURSIVEMATCH) "" %') == [b"j BAD LIST bad syntax\r\n"]
    # RFC 5819 LIST-STATUS: each selectable box's STATUS follows its LIST line
    assert c.cmd(b'k LIST "" % RETURN (STATUS (UIDNEXT MESSAGES))') == [
        b'* LIST (\\Noinferiors \\Marked) "/" "INBOX"\r\n',
        b'* STATUS "INBOX" (MESSAGES 8 UIDNEXT 9)\r\n',
        b'* LIST (\\Noinferiors \\Marked) "/" "Archive"\r\n',
        b'* STATUS "Archive" (MESSAGES 0 UIDNEXT 1)\r\n',
        b'* LIST (\\Noselect \\HasChildren) "/" "Archive2"\r\n',
        b'* LIST (\\Noinferiors \\Marked \\Drafts) "/" "Drafts"\r\n',
        b'* STATUS "Drafts" (MESSAGES 0 UIDNEXT 1)\r\n',
        b'* LIST (\\Noinferiors \\Marked \\Junk) "/" "Junk"\r\n',
        b'* STATUS "Junk" (MESSAGES 0 UIDNEXT 1)\r\n',
        b'* LIST (\\Noinferiors \\Marked \\Sent) "/" "Sent"\r\n',
        b'* STATUS "Sent" (MESSAGES 0 UIDNEXT 1)\r\n',
        b'* LIST (\\Noinferiors \\Marked \\Trash) "/" "Trash"\r\n',
        b'* STATUS "Trash" (MESSAGES 0 UIDNEXT 1)\r\n',
        b'* LIST (\\Noselect \\HasChildren) "/" "lists"\r\n',
        b"k OK LIST completed\r\n"]
    assert c.cmd(b'l LIST "" % RETURN (STATUS (BOGUS))') == [b"l BAD LIST illegal status item\r\n"]


def test_lsub_creates_subscribed_file_servers_fact39(c, imap_preauth):
    f = imap_preauth.box(name="imap.subscribed")
    assert not f.exists()
    assert c.cmd(b'a LSUB "" *') == [b'* LSUB (\\Noinferiors \\Marked) "/" "INBOX"\r\n',
                                     b"a OK LSUB completed\r\n"]
    assert f.read_bytes() == b"#imap4 subscription list\nINBOX\n"
    assert c.cmd(b"b SUBSCRIBE lists/mbox") == [b"b OK SUBSCRIBE completed\r\n"]
    assert c.cmd(b"c SUBSCRIBE lists/mbox") == [b"c OK SUBSCRIBE completed\r\n"]
    assert c.cmd(b"d SUBSCRIBE nosuch") == [b"d NO SUBSCRIBE bad mailbox\r\n"]
    assert f.read_bytes() == b"#imap4 subscription list\nINBOX\nlists/mbox\n"
    assert c.cmd(b"e UNSUBSCRIBE INBOX") == [b"e OK UNSUBSCRIBE completed\r\n"]
    assert c.cmd(b"f UNSUBSCRIBE never") == [b"f OK UNSUBSCRIBE completed\r\n"]
    assert f.read_bytes() == b"#imap4 subscription list\nlists/mbox\n"
    # Plan 9 lists subscribed names that no longer exist, as \Noselect
    f.write_bytes(b"#imap4 subscription list\nlists/mbox\ngone\n")
    assert c.cmd(b'g LSUB "" *') == [
        b'* LSUB (\\Noselect) "/" "gone"\r\n',
        b'* LSUB (\\Noinferiors \\Marked) "/" "lists/mbox"\r\n',
        b"g OK LSUB completed\r\n"]
    # RFC 3501 6.3.9: `%` stops above lists/mbox, so `lists` is \Noselect
    assert c.cmd(b'h LSUB "" %') == [
        b'* LSUB (\\Noselect) "/" "gone"\r\n',
        b'* LSUB (\\Noselect) "/" "lists"\r\n',
        b"h OK LSUB completed\r\n"]


def test_status_servers_fact50_51_no_expunge(c, imap_preauth):
    c.cmd(b"s SELECT INBOX")
    c.cmd(b"t STORE 1 +FLAGS (\\Deleted \\Seen)")
    c.cmd(b"u UNSELECT")
    before = imap_preauth.box().read_bytes()
    assert c.cmd(b"a STATUS INBOX (UIDNEXT MESSAGES)") == [
        b"* STATUS INBOX (MESSAGES 8 UIDNEXT 9)\r\n", b"a OK STATUS completed\r\n"]
    lines = c.cmd(b"b status inbox (UNSEEN UIDVALIDITY RECENT MESSAGES UIDNEXT)")
    v = int(imap_preauth.box(name="mbox.imp").read_bytes().split(b"\n")[1].split()[0])
    assert lines == [b"* STATUS inbox (MESSAGES 8 RECENT 0 UIDNEXT 9 UIDVALIDITY %d UNSEEN 7)\r\n" % v,
                     b"b OK status completed\r\n"]
    assert imap_preauth.box().read_bytes() == before          # docs/decisions.md: no expunge
    lines = c.cmd(b"c STATUS nosuch (MESSAGES)")
    assert lines[0].startswith(b"c NO [TRYCREATE] STATUS can't open mailbox nosuch: ")
    assert c.cmd(b"d STATUS INBOX (FOO)") == [b"d BAD STATUS illegal status item\r\n"]
    assert c.cmd(b"e STATUS ../bob/mbox (MESSAGES)") == [b"e NO STATUS bad mailbox\r\n"]


def test_status_keeps_recent_servers_fact35(imap_preauth):
    """A STATUS-only session leaves `r` in the .imp: still recent after."""
    c1 = imap_preauth.connect()
    assert c1.cmd(b"a STATUS INBOX (RECENT)")[0] == b"* STATUS INBOX (RECENT 8)\r\n"
    c1.close()
    c2 = imap_preauth.connect()
    assert c2.cmd(b"a STATUS INBOX (RECENT)")[0] == b"* STATUS INBOX (RECENT 8)\r\n"
    assert b"* 8 RECENT\r\n" in c2.cmd(b"b SELECT INBOX")
    c2.close()


def test_create_servers_fact52(c, imap_preauth):
    assert c.cmd(b"a CREATE foo") == [b"a OK foo CREATE completed\r\n"]
    assert imap_preauth.box(name="foo").read_bytes() == b""
    assert c.cmd(b"b CREATE foo") == [b"b NO CREATE mailbox already exists\r\n"]
    assert c.cmd(b"c CREATE INBOX") == [b"c NO CREATE cannot remotely create INBOX\r\n"]
    assert c.cmd(b"d create inbox") == [b"d NO create cannot remotely create INBOX\r\n"]
    assert c.cmd(b"e CREATE dir/") == [b"e OK dir/ CREATE completed\r\n"]
    assert imap_preauth.box(name="dir").is_dir()
    assert c.cmd(b"f CREATE a/b/c") == [b"f OK a/b/c CREATE completed\r\n"]
    assert imap_preauth.box(name="a/b").is_dir() and imap_preauth.box(name="a/b/c").is_file()
    assert c.cmd(b"g CREATE foo/x") == [b"g NO CREATE cannot create mailbox foo/x\r\n"]
    assert c.cmd(b"h CREATE mbox") == [b"h NO CREATE bad mailbox\r\n"]


def test_concurrent_create_one_wins(imap_preauth):
    clients = [imap_preauth.connect() for _ in range(4)]
    results = [None] * 4
    barrier = threading.Barrier(4)

    def go(i):
        barrier.wait()
        results[i] = clients[i].cmd(b"t%d CREATE same" % i)[-1]
    threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    oks = [r for r in results if b" OK " in r]
    assert len(oks) == 1
    for i, r in enumerate(results):
        assert r in (b"t%d OK same CREATE completed\r\n" % i,
                     b"t%d NO CREATE mailbox already exists\r\n" % i)
    assert imap_preauth.box(name="same").read_bytes() == b""
    for cl in clients:
        cl.close()


def test_delete(c, imap_preauth):
    c.cmd(b"a CREATE foo")
    c.cmd(b"b SELECT foo")
    c.cmd(b"b2 APPEND foo {12}\r\nSubject: x\r\n\r\n")
    assert imap_preauth.box(name="foo.imp").exists() and imap_preauth.box(name="foo.save.imp").exists()
    assert c.cmd(b"c DELETE foo") == [b"c NO DELETE cannot delete the selected mailbox foo\r\n"]
    assert imap_preauth.box(name="foo").exists()
    c.cmd(b"d UNSELECT")
    assert c.cmd(b"e DELETE foo") == [b"e OK foo DELETE completed\r\n"]
    assert not imap_preauth.box(name="foo").exists() and not imap_preauth.box(name="foo.imp").exists()
    assert not imap_preauth.box(name="foo.save.imp").exists()
    # docs/decisions.md: NO when nothing was deleted (9front always said OK)
    assert c.cmd(b"f DELETE foo") == [b"f NO DELETE cannot delete mailbox foo\r\n"]
    assert c.cmd(b"g DELETE INBOX") == [b"g NO DELETE cannot delete mailbox INBOX\r\n"]
    assert c.cmd(b"h DELETE lists") == [b"h NO DELETE cannot delete mailbox lists\r\n"]
    assert imap_preauth.box(name="lists/mbox").exists()
    c.cmd(b"i CREATE empty/")
    assert c.cmd(b"j DELETE empty") == [b"j OK empty DELETE completed\r\n"]
    assert not imap_preauth.box(name="empty").exists()


def test_rename(c, imap_preauth):
    c.cmd(b"a CREATE foo")
    c.cmd(b"b APPEND foo ($Junk) {12}\r\nSubject: x\r\n\r\n")
    imp = imap_preauth.box(name="foo.imp").read_bytes()
    kw = imap_preauth.box(name="foo.kw.imp").read_bytes()
    assert b" $Junk" in kw
    save = imap_preauth.box(name="foo.save.imp").read_bytes()      # SAVEDATE's (savedate.py)
    c.cmd(b"c SUBSCRIBE foo")
    assert c.cmd(b"d RENAME foo lists/mbox") == [b"d NO RENAME mailbox already exists\r\n"]
    assert c.cmd(b"e RENAME foo INBOX") == [b"e NO RENAME bad mailbox destination name\r\n"]
    assert c.cmd(b"f RENAME ../x bar") == [b"f NO RENAME bad mailbox destination name\r\n"]
    assert c.cmd(b"g RENAME nosuch bar") == [b"g NO RENAME failed\r\n"]
    assert c.cmd(b"h RENAME foo new/sub/bar") == [b"h OK RENAME completed\r\n"]
    assert not imap_preauth.box(name="foo").exists()
    assert imap_preauth.box(name="new/sub/bar").read_bytes().endswith(b"Subject: x\n\n")
    assert imap_preauth.box(name="new/sub/bar.imp").read_bytes() == imp
    assert imap_preauth.box(name="new/sub/bar.kw.imp").read_bytes() == kw
    assert imap_preauth.box(name="new/sub/bar.save.imp").read_bytes() == save
    assert not imap_preauth.box(name="foo.imp").exists() and not imap_preauth.box(name="foo.kw.imp").exists()
    assert not imap_preauth.box(name="foo.save.imp").exists()
    assert b"new/sub/bar\n" in imap_preauth.box(name="imap.subscribed").read_bytes()
    assert c.cmd(b"i RENAME new other") == [b"i OK RENAME completed\r\n"]
    assert imap_preauth.box(name="other/sub/bar").exists()
    assert c.cmd(b"j DELETE other/sub/bar") == [b"j OK other/sub/bar DELETE completed\r\n"]
    assert sorted(p.name for p in imap_preauth.box(name="other/sub").iterdir()) == []


def test_rename_inbox_moves_mail_keeps_inbox(c, imap_preauth):
    c.cmd(b"a SELECT INBOX")
    c.cmd(b"b UNSELECT")
    mail = imap_preauth.box().read_bytes()
    imp = imap_preauth.box(name="mbox.imp").read_bytes()
    assert c.cmd(b"c RENAME inbox old") == [b"c OK RENAME completed\r\n"]
    assert imap_preauth.box(name="old").read_bytes() == mail
    assert imap_preauth.box(name="old.imp").read_bytes() == imp
    assert imap_preauth.box().read_bytes() == b""
    assert c.cmd(b"d STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 0)\r\n"
    assert c.cmd(b"e STATUS old (MESSAGES UIDNEXT)")[0] == b"* STATUS old (MESSAGES 8 UIDNEXT 9)\r\n"


TRAVERSALS = [b"../bob/mbox", b"/etc/passwd", b"foo/../../x", b"lists/../../bob/mbox",
              b"L.mbox", b"mbox.imp", b"imap.subscribed", b"..", b"\"../bob\""]


def test_traversal_gets_no_and_touches_nothing(c, imap_preauth):
    c.cmd(b"z0 LSUB \"\" *")          # make imap.subscribed first
    root = Path(imap_preauth.mailroot)
    before = tree_state(root)
    cmds = [b"CREATE %s", b"DELETE %s", b"SELECT %s", b"EXAMINE %s", b"STATUS %s (MESSAGES)",
            b"SUBSCRIBE %s", b"RENAME %s x", b"RENAME lists/mbox %s", b"APPEND %s {3}"]
    for name in TRAVERSALS:
        for i, fmt in enumerate(cmds):
            tag = b"t%d" % i
            lines = c.cmd(tag + b" " + fmt % name)
            assert lines[-1].startswith(tag + b" NO "), (name, lines)
            assert not any(ln.startswith(b"+") for ln in lines)
        assert c.cmd(b"u UNSUBSCRIBE " + name)[-1].startswith(b"u ")
    assert tree_state(root) == before


def test_non_ascii_name_round_trip(c, imap_preauth):
    wire = b"Entw&APw-rfe"                       # Entwürfe
    assert c.cmd(b"a CREATE " + wire + b"/Gr&APw-n") == \
        [b"a OK Entw&APw-rfe/Gr&APw-n CREATE completed\r\n"]
    assert imap_preauth.box(name="Entwürfe/Grün").is_file()
    assert c.cmd(b'b LIST "" Entw&APw-rfe/*') == [
        b'* LIST (\\Noinferiors \\Marked) "/" "Entw&APw-rfe/Gr&APw-n"\r\n',
        b"b OK LIST completed\r\n"]
    lines = c.cmd(b"c SELECT Entw&APw-rfe/Gr&APw-n")
    assert lines[-1] == b"c OK [READ-WRITE] SELECT Entw&APw-rfe/Gr&APw-n completed\r\n"
    c.cmd(b"d UNSELECT")
    assert c.cmd(b"e RENAME Entw&APw-rfe/Gr&APw-n &ZeVnLIqe-") == [b"e OK RENAME completed\r\n"]
    assert imap_preauth.box(name="日本語").is_file() and imap_preauth.box(name="日本語.imp").is_file()
    assert c.cmd(b'f LIST "" %') == [
        b'* LIST (\\Noinferiors \\Marked) "/" "INBOX"\r\n',
        b'* LIST (\\Noselect \\HasNoChildren) "/" "Entw&APw-rfe"\r\n',
        b'* LIST (\\Noselect \\HasChildren) "/" "lists"\r\n',
        b'* LIST (\\Noinferiors) "/" "&ZeVnLIqe-"\r\n',
        b"f OK LIST completed\r\n"]
    assert c.cmd(b"g DELETE &ZeVnLIqe-") == [b"g OK &ZeVnLIqe- DELETE completed\r\n"]
    assert not imap_preauth.box(name="日本語").exists()
    assert c.cmd(b"h CREATE Entw&APw-rfe&-Co") == [b"h OK Entw&APw-rfe&-Co CREATE completed\r\n"]
    assert imap_preauth.box(name="Entwürfe&Co").is_file()
    assert c.cmd(b"i CREATE &Jjo") == [b"i NO CREATE bad mailbox\r\n"]
    # a pattern is any list-char (RFC 3501 9): `&` not starting valid
    # modified UTF-7 matches nothing rather than being BAD (docs/decisions.md)
    assert c.cmd(b'j LIST "" &Jjo') == [b"j OK LIST completed\r\n"]


def test_names_needing_quotes(c, imap_preauth):
    assert c.cmd(b'a CREATE "say \\"hi\\" \\\\o/"') == [b'a OK say "hi" \\o/ CREATE completed\r\n']
    assert imap_preauth.box(name='say "hi" \\o').is_dir()
    assert c.cmd(b'b CREATE "with space"') == [b"b OK with space CREATE completed\r\n"]
    assert c.cmd(b'c LIST "" "say*"') == [
        b'* LIST (\\Noselect \\HasNoChildren) "/" "say \\"hi\\" \\\\o"\r\n', b"c OK LIST completed\r\n"]
    assert c.cmd(b'd CREATE "q\\"x"') == [b'd OK q"x CREATE completed\r\n']
    assert c.cmd(b'd STATUS "q\\"x" (MESSAGES)') == [
        b'* STATUS "q\\"x" (MESSAGES 0)\r\n', b"d OK STATUS completed\r\n"]
    assert c.cmd(b"e CREATE {4}\r\nlit1") == [b"+ Ready for literal data\r\n",
                                              b"e OK lit1 CREATE completed\r\n"]


def test_status_of_the_selected_mailbox(c):
    """docs/decisions.md: STATUS works on the selected mailbox (its own view)."""
    c.cmd(b"a SELECT INBOX")
    c.cmd(b"b STORE 1:3 +FLAGS.SILENT (\\Seen)")
    assert c.cmd(b"c STATUS INBOX (MESSAGES RECENT UNSEEN)") == [
        b"* STATUS INBOX (MESSAGES 8 RECENT 8 UNSEEN 5)\r\n", b"c OK STATUS completed\r\n"]
    assert c.cmd(b"d FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n"
