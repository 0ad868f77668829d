"""The .imp shadow file (servers.md 3.7): Plan 9's exact format, and the
matching of entries to messages."""
from upas.imap4d import imp
from upas.mail import safewrite

D1, D2, D3 = "3f786850e387550fdab836ed7e6dc881de23001b", "a" * 40, "b" * 40

PLAN9 = (b"imap internal mailbox description\n"
         b"0123456789 0000000011\n"
         b"3f786850e387550fdab836ed7e6dc881de23001b 0000000007 s--D----\n"
         b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0000000009 -af-dr--\n")


def test_parse_plan9_file():
    f = imp.parse_imp(PLAN9)
    assert (f.uidvalidity, f.uidnext) == (123456789, 11)
    assert [(e.digest, e.uid) for e in f.entries] == [(D1, 7), (D2, 9)]
    assert f.entries[0].flags == {"\\Seen", "\\Deleted"}
    assert f.entries[1].flags == {"\\Answered", "\\Flagged", "\\Draft", "\\Recent"}


def test_format_is_byte_identical_and_r_only_for_status_boxes():
    f = imp.parse_imp(PLAN9)
    assert imp.format_imp(f, recent=True) == PLAN9
    lines = imp.format_imp(f, recent=False).split(b"\n")
    assert lines[3] == b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0000000009 -af-d---"
    assert all(len(x) == 60 for x in lines[2:4]) and len(lines[1]) == 21


def test_bad_header_is_not_plan9():
    assert imp.parse_imp(b"imap internal mailbox descr\n") is None
    assert imp.parse_imp(b"imap internal mailbox description\n12 34\n") is None


def test_match_in_order_by_digest():
    f = imp.parse_imp(PLAN9)
    found, uidnext = imp.match(f, [D1, D3, D2])
    assert [e and e.uid for e in found] == [7, None, 9]
    assert uidnext == 11


def test_match_refuses_descending_uids_and_uses_uid0_flags():
    f = imp.ImpFile(1, 20, [imp.Entry(D2, 9, {"\\Seen"}), imp.Entry(D1, 5, {"\\Flagged"}),
                            imp.Entry(D3, 0, {"\\Answered"})])
    found, uidnext = imp.match(f, [D2, D1, D3])
    assert found[0].uid == 9
    assert found[1].uid == 0 and found[1].flags == {"\\Flagged"}    # 5 < 9: a new uid
    assert found[2].uid == 0 and found[2].flags == {"\\Answered"}
    assert uidnext == 20


def test_duplicate_digests_take_entries_in_turn():
    f = imp.ImpFile(1, 5, [imp.Entry(D1, 2, set()), imp.Entry(D1, 4, {"\\Seen"})])
    found, _ = imp.match(f, [D1, D1, D1])
    assert [e and e.uid for e in found] == [2, 4, None]


def test_keywords_file_round_trip():
    data = imp.format_keywords([(D1, 7, ["$Junk", "work"]), (D2, 9, [])])
    assert data == b"imap keywords\n" + D1.encode() + b" 0000000007 $Junk work\n"
    assert imp.parse_keywords(data) == {7: (D1, ["$Junk", "work"])}


def test_crash_safe_write_and_recovery(tmp_path):
    from upas import ns as nsmod
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box/glenda", str(tmp_path))
    safewrite.replace(ns, "/mail/box/glenda/mbox.imp", PLAN9)
    assert (tmp_path / "mbox.imp").read_bytes() == PLAN9
    assert not (tmp_path / "mbox.imp.tmp").exists()
    # a crash between writing the new file and the rename: the .tmp is used
    (tmp_path / "mbox.imp").rename(tmp_path / "mbox.imp.tmp")
    assert imp.read_file(ns, "/mail/box/glenda/mbox.imp") == PLAN9
    assert (tmp_path / "mbox.imp").exists() and not (tmp_path / "mbox.imp.tmp").exists()
    assert imp.read_file(ns, "/mail/box/glenda/none.imp") is None
