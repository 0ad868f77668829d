"""A SELECT made from the .imp's lines keeps its messages as columns and
makes a Message only when asked (imap4d/msgview.py; docs/performance.md,
round 4's eighth part).  What such a view answers must be what the list
of every message answers, and a message made early must be the one the
later list holds, with what other sessions did to it since.  Real upasfs,
real Mailbox views on it (the mark path needs a second SELECT)."""
import pytest

from upas import mbappend
from upas.imap4d import imp, selectmark
from upas.imap4d.mailbox import Mailbox
from upas.imap4d.message import NO_KEYWORDS, Message
from upas.imap4d.msgview import Lazy
from tests.test_imap_selectmark import _view

COUNT = 100


def _mbox(n: int) -> bytes:
    return b"".join(mbappend.format_message(
        b"From: bob@example.org\nSubject: m%d\nMessage-ID: <m%d@example.org>\n\nbody %d\n"
        % (k, k, k), "bob") for k in range(n))


@pytest.fixture
def fs(upasfs_factory):
    return upasfs_factory(mbox=_mbox(COUNT), ignore=False)


def _flag(box: Mailbox, msgs, flag: str, words=None) -> None:
    def change(x) -> bool:
        x.flags = imp.flagset(set(x.flags) | {flag})
        if words:
            x.keywords = list(words)
        return True
    box.modify(msgs, change)


def _lazy(box: Mailbox) -> bool:
    return isinstance(box._view(), Lazy)


def _answers(box: Mailbox, uids: set[int]) -> tuple:
    picked = box.with_uids(uids)
    return (box.count(), box.recent(), box.first_unseen(),
            [(m.uid, sorted(m.flags), m.keywords) for m in picked],
            [box.seq(m) for m in picked], box.seqs(picked), box.run(3, 6))


def test_a_lazy_view_answers_as_the_list_of_its_messages(fs, monkeypatch):
    first = _view(fs, monkeypatch)
    assert not _lazy(first)                     # no mark yet: the listing
    _flag(first, first.msgs[:5], "\\Seen")
    _flag(first, first.msgs[7:9], "\\Flagged", ["$Work"])
    view = _view(fs, monkeypatch)
    assert _lazy(view)
    uids = {first.msgs[1].uid, first.msgs[8].uid, first.msgs[-1].uid, first.uidnext + 5}
    lazy = _answers(view, uids)
    assert _lazy(view) and len(view._view().made) < COUNT // 4   # a few made, not all
    assert "$Work" in view.keywords
    whole = view.msgs                           # every message made now
    assert not _lazy(view)
    assert lazy == _answers(view, uids)
    assert lazy[:3] == (COUNT, 0, 6)
    assert [(m.uid, sorted(m.flags), m.keywords) for m in whole] == \
        [(m.uid, sorted(m.flags - {"\\Recent"}), m.keywords) for m in first.msgs]
    assert view.run(3, 6) == whole[3:6]         # the same objects


def test_a_message_made_before_another_sessions_store_is_the_one_changed(fs, monkeypatch):
    """A message made from the columns (QRESYNC's changed ones) and then
    flagged by another session: the next look changes that object, reports
    it, and the whole list made after holds it."""
    one = _view(fs, monkeypatch)
    two = _view(fs, monkeypatch)
    assert _lazy(two)
    early = two.with_uids({one.msgs[10].uid})[0]
    assert "\\Deleted" not in early.flags
    _flag(one, [one.msgs[10], one.msgs[20]], "\\Deleted")
    two.check()
    assert "\\Deleted" in early.flags
    assert early in two.flag_changes and len(two.flag_changes) == 2
    assert two.msgs[10] is early
    assert "\\Deleted" in two.msgs[20].flags
    assert [(m.uid, sorted(m.flags)) for m in two.msgs] == \
        [(m.uid, sorted(m.flags - {"\\Recent"})) for m in one.msgs]


def test_the_list_taken_from_a_lazy_view_is_its_own(fs, monkeypatch):
    """New mail appended to the list a view made of its columns leaves the
    messages the .imp was written for as they were (the state holds the
    columns as those): the next look merges the new one by its line."""
    view = _view(fs, monkeypatch)
    again = _view(fs, monkeypatch)
    assert _lazy(again)
    mbappend.append_mbox(fs.mbox, mbappend.format_message(
        b"From: carol@example.org\nSubject: new\n\nnew\n", "carol"))
    view.check()                                # numbers it, writes the .imp

    def refuse(*_):
        raise AssertionError("parsed")
    with monkeypatch.context() as mp:           # by its line: the file not parsed
        mp.setattr(imp, "parse_imp", refuse)
        again.check()
    assert not _lazy(again)
    assert again.count() == COUNT + 1 == len(again.msgs)
    assert [m.uid for m in again.msgs] == [m.uid for m in view.msgs]


def test_lazy_places_slices_and_comparison():
    nums, uids = [1, 2, 4, 7], [3, 5, 9, 11]
    digests = ["%040x" % n for n in nums]
    seen = imp.MASK_BIT["\\Seen"]
    lazy = Lazy(nums, digests, uids, bytes([0, seen, 0, seen]))
    last = lazy[-1]
    assert (last.fsnum, last.uid, last.digest) == (7, 11, digests[3]) and lazy.at(3) is last
    assert lazy.find(9) == 2 and lazy.find(10) is None
    last.keywords = ["$x"]
    last.flags = imp.flagset(set())
    assert lazy.count_with("\\Seen") == 1 and lazy.first_without("\\Seen") == 0
    lazy.at(0).flags = imp.flagset({"\\Seen", "\\Recent"})
    assert (lazy.count_with("\\Seen"), lazy.first_without("\\Seen"), lazy.count_with("\\Recent")) == (2, 2, 1)
    assert lazy.at(1).flags == {"\\Seen"}
    assert lazy.keywords() == [NO_KEYWORDS] * 3 + [["$x"]]
    with pytest.raises(IndexError):
        lazy.at(4)
    assert lazy == lazy and lazy.full is None
    whole = lazy.all()
    assert whole[3] is last and [m.uid for m in whole] == uids
    assert lazy[1:3] == whole[1:3] and lazy == list(whole) and lazy != whole[:2]
    assert all(isinstance(m, Message) for m in lazy)


def test_the_records_digests_are_read_where_they_lie():
    """selectmark.parse keeps the digest lines in the record's bytes: one
    decoded when asked for, all at a walk, equal to the list; a record
    with a byte that is not ASCII is refused as the decode refused it."""
    digests = ["%040x" % (n * 7919) for n in range(1, 6)]
    data = selectmark.render(selectmark.Listing("upasfs 1 2 5", "9 8 7", [1, 2, 3, 5, 8], digests))
    got = selectmark.parse(data)
    assert got.digests[3] == digests[3] and got.digests[-1] == digests[-1]
    assert got.digests == digests and list(got.digests) == digests and got.digests[1:3] == digests[1:3]
    assert len(got.digests) == 5 and got == selectmark.parse(data)
    with pytest.raises(IndexError):
        got.digests[5]
    bad = bytearray(data)
    bad[-5] = 0xE9
    assert selectmark.parse(bytes(bad)) is None
