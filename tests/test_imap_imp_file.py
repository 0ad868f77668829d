"""The .imp shadow file (docs/spec/servers.md §3.7): Plan 9's exact format, and the
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


def fresh(*digests):
    """Messages no session has numbered yet."""
    return [(d, 0) for d in digests]


def test_match_in_order_by_digest():
    f = imp.parse_imp(PLAN9)
    found, uidnext, unclaimed = imp.match(f, fresh(D1, D3, D2))
    assert [e and e.uid for e in found] == [7, None, 9]
    assert uidnext == 11 and unclaimed == []


def test_match_refuses_descending_uids_and_uses_uid0_flags():
    f = imp.ImpFile(1, 20, [imp.Entry(D2, 9, {"\\Seen"}), imp.Entry(D1, 5, {"\\Flagged"}),
                            imp.Entry(D3, 0, {"\\Answered"})])
    found, uidnext, _ = imp.match(f, fresh(D2, D1, D3))
    assert found[0].uid == 9
    assert found[1].uid == 0 and found[1].flags == {"\\Flagged"}    # 5 < 9: a new uid
    assert found[2].uid == 0 and found[2].flags == {"\\Answered"}
    assert uidnext == 20


def test_duplicate_digests_take_entries_in_turn():
    f = imp.ImpFile(1, 5, [imp.Entry(D1, 2, set()), imp.Entry(D1, 4, {"\\Seen"})])
    found, _, _ = imp.match(f, fresh(D1, D1, D1))
    assert [e and e.uid for e in found] == [2, 4, None]


# Issue 13: an entry belongs to one message, not to its digest.
def test_a_numbered_message_takes_only_its_own_entry():
    """After copy uid 4 of two identical messages is expunged, the file
    still lists it (\\Deleted) before uid 5: the survivor keeps uid 5
    and its own flags, never the expunged copy's \\Deleted."""
    f = imp.ImpFile(1, 7, [imp.Entry(D2, 3, set()), imp.Entry(D1, 4, {"\\Deleted"}),
                           imp.Entry(D3, 5, set()), imp.Entry(D1, 6, {"\\Seen"})])
    found, _, unclaimed = imp.match(f, [(D2, 3), (D3, 5), (D1, 6)])
    assert [(e.uid, set(e.flags)) for e in found] == [(3, set()), (5, set()), (6, {"\\Seen"})]
    assert [e.uid for e in unclaimed] == [4]


def test_a_new_session_pairs_identical_copies_by_position():
    """Copies 4 and 6 of one message with another between; 4 has gone
    (its line not yet dropped).  Mailbox order says which one is left."""
    f = imp.ImpFile(1, 7, [imp.Entry(D1, 4, {"\\Deleted"}), imp.Entry(D3, 5, set()),
                           imp.Entry(D1, 6, set())])
    found, _, _ = imp.match(f, fresh(D3, D1))
    assert [(e.uid, set(e.flags)) for e in found] == [(5, set()), (6, set())]
    found, _, _ = imp.match(f, fresh(D1, D3))        # 6 went instead
    assert [(e.uid, set(e.flags)) for e in found] == [(4, {"\\Deleted"}), (5, set())]


def test_of_adjacent_identical_copies_the_deleted_one_went():
    """Adjacent copies cannot be told apart by position: the copy that
    an EXPUNGE removed is the one marked \\Deleted."""
    f = imp.ImpFile(1, 6, [imp.Entry(D1, 4, {"\\Deleted"}), imp.Entry(D1, 5, {"\\Flagged"})])
    found, _, unclaimed = imp.match(f, fresh(D1))
    assert [(e.uid, set(e.flags)) for e in found] == [(5, {"\\Flagged"})]
    assert [e.uid for e in unclaimed] == [4]
    found, _, _ = imp.match(f, fresh(D1, D1))       # both still there
    assert [e.uid for e in found] == [4, 5]


def test_a_message_listed_after_its_entry_went_takes_no_later_copys():
    """A listing made before another session's EXPUNGE still shows copy
    15, whose line that session has dropped; a later copy (24) keeps its
    line and the messages between keep theirs."""
    f = imp.ImpFile(1, 25, [imp.Entry(D2, 16, set()), imp.Entry(D3, 17, set()),
                            imp.Entry(D1, 24, {"\\Seen"})])
    found, _, _ = imp.match(f, fresh(D1, D2, D3, D1))
    assert [e and e.uid for e in found] == [None, 16, 17, 24]


def test_a_fresh_copy_does_not_take_a_numbered_ones_entry():
    """A session that numbered copy 4 lists a new identical copy: it gets
    no entry of the file but a line of its own (an entry a later one)."""
    f = imp.ImpFile(1, 5, [imp.Entry(D1, 4, {"\\Seen"})])
    found, uidnext, _ = imp.match(f, [(D1, 4), (D1, 0)])
    assert found[0].uid == 4 and found[1] is None and uidnext == 5
    f = imp.ImpFile(1, 6, [imp.Entry(D1, 4, {"\\Seen"}), imp.Entry(D1, 5, {"\\Answered"})])
    found, _, _ = imp.match(f, [(D1, 4), (D1, 0)])
    assert found[1].uid == 5 and found[1].flags == {"\\Answered"}


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
