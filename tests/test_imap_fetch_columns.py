"""A FETCH of flags, UIDs and MODSEQs only on a lazy view (SELECT made
from the .imp's lines, imap4d/msgview.py) is answered from the view's
columns with no message made (msgview.Picked, flagreport.mask_formats;
docs/performance.md, round 4's ninth part).  Its lines must be the bytes
the list of every message gives (RFC 3501 7.4.2: `* n FETCH (...)`, n the
message's place from 1), a message made before (and flagged since by
another session, with a keyword) told with its own flags.  Real upasfs,
real Mailbox views, the session's own resolve_present."""
import pytest

from upas.imap4d import flagreport, imp
from upas.imap4d import parser as p
from upas.imap4d.msgview import Lazy, Picked
from upas.imap4d.request import State
from upas.imap4d.session import Options, Session
from tests.test_imap_msgview import COUNT, _flag, _lazy, fs  # noqa: F401 (fixture)
from tests.test_imap_selectmark import _view

U, F, M = flagreport.UID, flagreport.FLAGS, flagreport.MODSEQ
SETS = [  # (uid?, the set's ranges)
    (True, [(1, p.STAR)]), (False, [(1, p.STAR)]), (False, [(5, 10), (8, 20), (60, 55)]),
    (True, [(3, 3), (40, 12), (p.STAR, 90)]), (False, [(COUNT, p.STAR)]),
    (True, [(10 ** 6, p.STAR)]),            # `*` alone when past the last uid
]


def _session(box) -> Session:
    s = Session(Options(), lambda user: None, lambda ev: None)
    s.box = box
    return s


def _replies(s: Session, uid: bool, ranges, items, columns: bool):
    msgs, ok = s.resolve_present(ranges, uid, columns)
    return type(msgs), ok, flagreport.lines(s, s.box, msgs, items)


@pytest.mark.parametrize("uid,ranges", SETS)
def test_a_flags_fetch_from_the_columns_is_the_lists(fs, monkeypatch, uid, ranges):
    first = _view(fs, monkeypatch)
    _flag(first, first.msgs[:30], "\\Seen")
    _flag(first, first.msgs[7:9], "\\Flagged", ["$Work"])
    view = _view(fs, monkeypatch)
    assert _lazy(view)
    lazy: Lazy = view._view()
    early = view.with_uids({first.msgs[50].uid})[0]    # made (QRESYNC's changed)
    # what a change lands on (a STORE or another session's, told through
    # the message; both walk the list today, so set here as they would)
    early.flags, early.keywords = imp.flagset({"\\Answered"}), ["$Late"]
    assert _lazy(view) and lazy.masks[50] != imp.MASK_BIT["\\Answered"]
    s = _session(view)
    s.report(expunges=True, uid=True)
    made = dict(lazy.made)          # (those with keywords, made at the open)
    assert 50 in made and len(made) < 8
    got = {items: _replies(s, uid, ranges, items, True)
           for items in [(U, F), (F,), (U, M, F), (M,)]}
    assert _lazy(view) and lazy.full is None and lazy.made == made     # none made
    assert all(kind is Picked for kind, _, _ in got.values())
    view.msgs                                   # made whole: the list's path
    for items, (_, ok, lines) in got.items():
        kind, ok_list, want = _replies(s, uid, ranges, items, True)
        assert kind is list and (ok, lines) == (ok_list, want)


def test_the_lines_of_the_columns_say_what_the_rfc_says(fs, monkeypatch):
    """Checked against lines written here: the place from 1, the UID,
    the flags in Plan 9's order then keywords (a made message's own)."""
    first = _view(fs, monkeypatch)
    _flag(first, first.msgs[:2], "\\Seen")
    view = _view(fs, monkeypatch)
    early = view.with_uids({first.msgs[1].uid})[0]
    early.keywords = ["$k"]
    s = _session(view)
    lines = _replies(s, False, [(1, 3)], (U, F), True)[2]
    uids = [m.uid for m in first.msgs[:3]]
    assert lines == (b"* 1 FETCH (UID %d FLAGS (\\Seen))\r\n"
                     b"* 2 FETCH (UID %d FLAGS (\\Seen $k))\r\n"
                     b"* 3 FETCH (UID %d FLAGS ())\r\n") % tuple(uids)


COMMANDS = [
    b"SORT (DATE) UTF-8 ALL", b"UID SORT (REVERSE ARRIVAL SUBJECT) UTF-8 ALL",
    b"THREAD REFERENCES UTF-8 ALL", b"UID THREAD ORDEREDSUBJECT UTF-8 ALL",
    b"SEARCH ALL", b"UID SEARCH ALL", b"UID FETCH 1:* (UID FLAGS)", b"FETCH 2:5,90:* (FLAGS)",
]


def _selected(box) -> tuple[Session, list]:
    out: list = []
    s = Session(Options(), lambda user: None, lambda ev: out.append(ev))
    s.state, s.user, s.ns, s.box = State.SELECTED, "glenda", box.ns, box
    return s, out


def _run(box, command: bytes) -> bytes:
    s, out = _selected(box)
    s.feed(b"t1 " + command + b"\r\n")
    return b"".join(ev for ev in out if isinstance(ev, bytes))


def test_commands_from_the_columns_answer_as_the_list(fs, monkeypatch):
    """SORT, THREAD, SEARCH ALL and the flags FETCH on a lazy view (the
    sort index warm) answer byte for byte as on the view made whole, and
    make no message."""
    first = _view(fs, monkeypatch)
    _flag(first, first.msgs[3:9], "\\Seen", ["$Work"])
    for c in COMMANDS:                          # warms the sort index
        assert b"t1 OK" in _run(first, c)
    for c in COMMANDS:
        lazy_view = _view(fs, monkeypatch)
        made = dict(lazy_view._view().made)
        got = _run(lazy_view, c)
        assert _lazy(lazy_view) and lazy_view._view().made == made, c
        whole = _view(fs, monkeypatch)
        whole.msgs
        assert got == _run(whole, c) and b"t1 OK" in got, c
