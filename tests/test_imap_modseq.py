"""modseq.py's record: how the .imp's changes become MODSEQs, and what
a torn or foreign file does (docs/decisions.md, issue 18)."""
from upas.imap4d import modseq as ms

SEEN, FLAGGED = ms.state({"\\Seen"}, []), ms.state({"\\Flagged"}, [])
NONE = ms.state(set(), [])


def test_a_new_record_numbers_every_message_once():
    rec, changed = ms.reconcile(None, 7, [(1, NONE), (2, SEEN)])
    assert changed and rec.highest == 1 and rec.msgs == {1: (1, NONE), 2: (1, SEEN)}


def test_changes_take_the_next_modseq_and_expunges_are_kept():
    rec, _ = ms.reconcile(None, 7, [(1, NONE), (2, SEEN), (3, NONE)])
    rec, changed = ms.reconcile(rec, 7, [(1, NONE), (2, FLAGGED)])
    assert changed and rec.highest == 2
    assert rec.msgs == {1: (1, NONE), 2: (2, FLAGGED)} and rec.expunged == [(2, [(3, 3)])]
    same, changed = ms.reconcile(rec, 7, [(1, NONE), (2, FLAGGED)])
    assert not changed and same.highest == 2
    assert rec.msgs[1][0] == 1                     # untouched messages keep theirs
    assert ms.parse(ms.format_record(rec)) == rec


def test_recent_is_not_a_change():
    assert ms.state({"\\Seen", "\\Recent"}, []) == SEEN
    assert ms.state(set(), ["$Junk"]) != NONE and ms.state(set(), ["$junk"]) == \
        ms.state(set(), ["$Junk"])


def test_a_new_uidvalidity_starts_afresh_above_the_old():
    rec, _ = ms.reconcile(None, 7, [(1, NONE)])
    rec, _ = ms.reconcile(rec, 7, [(1, SEEN)])
    new, changed = ms.reconcile(rec, 8, [(1, SEEN)])
    assert changed and new.uidvalidity == 8 and new.highest == 3 and new.expunged == []


def test_vanished_since_and_past_what_is_remembered(monkeypatch):
    rec, _ = ms.reconcile(None, 7, [(u, NONE) for u in range(1, 11)])
    rec, _ = ms.reconcile(rec, 7, [(u, NONE) for u in range(1, 11) if u not in (3, 4)])
    rec, _ = ms.reconcile(rec, 7, [(u, NONE) for u in range(1, 11) if u not in (3, 4, 8)])
    box = ms.Modseqs("/x")
    box.rec = rec
    assert box.vanished(1, [(1, 10)], 11) == [(3, 4), (8, 8)]
    assert box.vanished(2, [(1, 10)], 11) == [(8, 8)]
    assert box.vanished(1, [(4, 9)], 11) == [(4, 4), (8, 8)]
    monkeypatch.setattr(ms, "KEEP_EXPUNGED", 1)
    rec, _ = ms.reconcile(rec, 7, [(u, NONE) for u in (1, 2, 5, 6, 7)])   # 9, 10 go
    box.rec = rec
    assert rec.forgotten == 3 and [m for m, _ in rec.expunged] == [4]
    # asked from before what is remembered: every UID without a message
    assert box.vanished(1, [(1, 12)], 11) == [(3, 4), (8, 10)]


def test_a_torn_line_is_numbered_anew():
    rec, _ = ms.reconcile(None, 7, [(1, NONE), (2, SEEN)])
    data = ms.format_record(rec)
    torn = ms.parse(data[:-5])                   # the last line cut short
    assert 2 not in torn.msgs
    again, changed = ms.reconcile(torn, 7, [(1, NONE), (2, SEEN)])
    assert changed and again.msgs[2][0] == 2 and again.msgs[1][0] == 1
    assert ms.parse(b"not ours") is None


def test_a_record_is_read_from_its_lines():
    # the format of the module's docstring, written out by hand
    data = (b"imap modseq\n0000000007 9\nh " + b"a" * 40 + b" -\n"
            b"0000000001 3 0000000a\n0000000002 9 fffffffe\n0000000005 4 00000000\n"
            b"x 8 3:4\nf 2\n")
    rec = ms.parse(data)
    assert (rec.uidvalidity, rec.highest, rec.files) == (7, 9, "a" * 40 + " -")
    assert rec.msgs == {1: (3, 10), 2: (9, 0xfffffffe), 5: (4, 0)}
    assert rec.expunged == [(8, [(3, 4)])] and rec.forgotten == 2
    # a damaged message line among whole ones: only it is lost
    bad = data.replace(b"0000000002 9 fffffffe", b"0000000002 9 ffff")
    assert ms.parse(bad).msgs == {1: (3, 10), 5: (4, 0)}
    bad = data.replace(b"0000000002 9 fffffffe", b"0000000002 9 fffffffg")
    assert ms.parse(bad).msgs == {1: (3, 10), 5: (4, 0)}
