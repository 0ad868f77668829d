"""A STORE's `.imp` made as one byte a line (imp.with_flags: each line's
flags as a mask, each column of the fields that mask's letter or `-`),
and what with_flags hands on: the lines whose fields changed
(flags_span), both files' masks (span_masks, which the MODSEQ log's
entry is made from: modseq.flag_changes) and that the uids still ascend
(imp.ordered).  Docs: docs/performance.md, "Round 4, eighth part".

Each is checked against the same answer worked out from the files alone,
with nothing remembered (the code before this change: flags_span's
compare of the files, the masks read from their columns, _ascending).
"""
import hashlib

from hypothesis import given, settings, strategies as st

from upas.imap4d import imp
from upas.imap4d import modseq as ms

FLAGS = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent"]


def _file(uids: list[int], flags: list[set[str]], recent: bool) -> bytes:
    rows = [(hashlib.sha1(b"%d" % u).hexdigest(), u, frozenset(f)) for u, f in zip(uids, flags)]
    return imp.format_rows(7, max(uids, default=0) + 1, rows, recent)


def _forget() -> None:
    """Nothing remembered of earlier calls (the answer from the files alone)."""
    imp._SPAN[:] = [None, None, None]
    imp._LINES[:] = [None, None, False]


def _alone(old: bytes, new: bytes, kwdata: bytes | None):
    """flags_span, the masks read and flag_changes of the files alone."""
    _forget()
    span = imp.flags_span(old, new)
    masks = None
    if span:
        a, b = imp.BODY_AT + span[0] * imp.LINE_LEN + imp.FLAGS_AT, imp.BODY_AT + span[1] * imp.LINE_LEN
        masks = tuple(imp._flag_masks([f[a + j:b:imp.LINE_LEN] for j in range(8)]) for f in (old, new))
    _forget()
    changes = ms.flag_changes(old, new, kwdata, False)
    _forget()
    return span, masks, changes


flagsets = st.sets(st.sampled_from(FLAGS))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_what_with_flags_hands_on_is_what_the_files_say(data):
    n = data.draw(st.integers(0, 40))
    uids = sorted(data.draw(st.sets(st.integers(1, 200), min_size=n, max_size=n)))
    if data.draw(st.booleans()) and n > 1:         # out of order: no ranges then
        k = data.draw(st.integers(0, n - 2))
        uids[k], uids[k + 1] = uids[k + 1], uids[k]
    old = _file(uids, [data.draw(flagsets) for _ in uids], recent=data.draw(st.booleans()))
    if n and data.draw(st.booleans()):             # a field Plan 9 would not write
        k = data.draw(st.integers(0, n - 1))
        at = imp.BODY_AT + k * imp.LINE_LEN + imp.FLAGS_AT + data.draw(st.integers(0, 7))
        old = old[:at] + data.draw(st.sampled_from([b"x", b"S", b"r", b"-"])) + old[at + 1:]
    flags = [frozenset(data.draw(flagsets)) for _ in uids]
    kw = imp.format_keywords([(hashlib.sha1(b"%d" % uids[0]).hexdigest(), uids[0], ["work"])]) \
        if uids and data.draw(st.booleans()) else None
    want_new = _file(uids, [f - {"\\Recent"} for f in flags], recent=False)
    span, masks, changes = _alone(old, want_new, kw)
    if data.draw(st.booleans()):
        imp.found_ordered(old)                      # as lines_of finds it
        if uids != sorted(set(uids)):
            _forget()                               # (lines_of would not have)
    new = imp.with_flags(old, flags)
    assert new == want_new
    assert imp.flags_span(old, new) == span
    if span:
        assert imp.span_masks(old, new, *span) == masks
    assert ms.flag_changes(old, new, kw, False) == changes
    # the same files as other objects: the same answers
    old2, new2 = bytes(bytearray(old)), bytes(bytearray(new))
    assert imp.flags_span(old2, new2) == span
    assert ms.flag_changes(old2, new2, kw, False) == changes


def test_span_masks_of_a_store_on_every_line():
    uids = list(range(1, 10001, 3))
    old = _file(uids, [set()] * len(uids), recent=False)
    seen = frozenset({"\\Seen"})
    new = imp.with_flags(old, [seen] * len(uids))
    assert imp.flags_span(old, new) == (0, len(uids))
    assert imp.span_masks(old, new, 0, len(uids)) == (bytes(len(uids)), b"\x01" * len(uids))
    assert ms.flag_changes(old, new, None, False) == [(ms.state(seen, []), [(1, uids[-1])])]
    again = imp.with_flags(new, [seen] * len(uids))
    assert again == new and imp.flags_span(new, again) == ()


def test_the_uids_ascend_only_as_found():
    """ordered() is true only for the file lines_of (or flag_changes'
    check) found in order, and one with_flags made from it."""
    _forget()
    uids = [3, 1, 2]
    old = _file(uids, [set()] * 3, recent=False)
    new = imp.with_flags(old, [frozenset({"\\Seen"})] * 3)
    assert not imp.ordered(old) and not imp.ordered(new)
    assert ms.flag_changes(old, new, None, False) is None       # a range would be wrong
    up = _file([1, 2, 3], [{"\\Flagged"}, {"\\Recent"}, set()], recent=True)
    digests = [hashlib.sha1(b"%d" % u).hexdigest() for u in (1, 2, 3)]
    assert imp.lines_of(up, digests) is not None and imp.ordered(up)
    flags = [frozenset({"\\Seen"}), frozenset(), frozenset()]
    made = imp.with_flags(up, flags)          # (from the masks lines_of read)
    assert imp.ordered(made) and not imp.ordered(old)
    assert made == _file([1, 2, 3], flags, recent=False)
    span, masks, changes = (imp.flags_span(up, made), imp.span_masks(up, made, 0, 2),
                            ms.flag_changes(up, made, None, False))
    assert (span, masks, changes) == _alone(up, made, None)
    assert span == (0, 2) and masks == (b"\x04\x20", b"\x01\x00")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sets(st.sampled_from(FLAGS)), max_size=8), st.booleans(),
       st.binary(max_size=12), st.integers(min_value=0, max_value=2000))
def test_holds_recent_is_the_search(flags, recent, noise, at):
    """imp.holds_recent answers `b"r--\\n" in data` (what _take_lines
    asked before) for files with and without \\Recent lines, kept by
    Plan 9's writer or not, and for any bytes put anywhere in them."""
    data = _file(list(range(1, len(flags) + 1)), flags, recent)
    for d in (data, data[:at] + noise + data[at:], noise, b"r--\n" + data[imp.BODY_AT:]):
        assert imp.holds_recent(d) == (b"r--\n" in d)


def _uid_lines(uids: list[int]) -> bytes:
    rows = [(hashlib.sha1(b"%d" % k).hexdigest(), u, frozenset()) for k, u in enumerate(uids)]
    return imp.format_rows(7, 1, rows, False)


def _digests(data: bytes) -> list[str]:
    return [line[:40].decode() for line in data[imp.BODY_AT:].split(b"\n")[:-1]]


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=9_999_999_999), st.integers(min_value=0, max_value=1200),
       st.lists(st.tuples(st.integers(min_value=0, max_value=1199), st.integers(min_value=0, max_value=9),
                          st.integers(min_value=-9, max_value=9)), max_size=2))
def test_line_columns_uids_are_the_lines(first, n, changes):
    """line_columns' uids (consecutive ones made as a range, others
    summed as columns) are the lines' uids read one by one, and it
    refuses what match() must pair (uid 0, uids not ascending): runs
    across every power of ten, with a few lines' uids changed in one
    digit place each."""
    uids = [u for u in range(first, first + n) if u <= 9_999_999_999]
    for k, place, d in changes:
        if k < len(uids):
            uids[k] = min(max(uids[k] + d * 10 ** place, 0), 9_999_999_999)
    data = _uid_lines(uids)
    got = imp.line_columns(data, _digests(data))
    ascending = all(a < b for a, b in zip(uids, uids[1:])) and (not uids or uids[0] >= 1)
    assert (got is not None) == ascending
    if got is not None:
        assert got[0] == uids
