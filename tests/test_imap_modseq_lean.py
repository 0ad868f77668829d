"""SELECT's questions to the MODSEQ record answered without parsing it
(modseq.head_highest, modseq.lean; issue 16, seventh part): every answer
is the one the parsed record gives, on records our writers make, with a
log, a torn log, a damaged byte anywhere, and for a session whose record
was not reconciled with the `.imp` (it then parses it)."""
from hypothesis import given, settings, strategies as st

from upas.imap4d import modseq as ms

from tests.test_imap_modseq import FLAGSETS, _box, _imp


def _full(data: bytes) -> ms.Modseqs:
    box = ms.Modseqs("/nowhere")
    box.rec = ms.parse(data) or ms.Record()
    return box


def _fast(data: bytes) -> ms.Modseqs:
    """A session's Modseqs as sync leaves it for a reconciled record: its
    bytes held, not parsed."""
    box = ms.Modseqs("/nowhere")
    box._rec, box._mine = None, data
    return box


def _answers(box: ms.Modseqs, asked: list[int], known: list[tuple[int, int]],
             uidnext: int, uids: list[int]) -> tuple:
    return (box.highest, [box.changed_since(m) for m in asked],
            [box.vanished(m, known, uidnext) for m in asked], box.of_many(uids))


@st.composite
def records(draw) -> bytes:
    """A record as format_record writes it (messages, expunges, maybe a
    forgotten MODSEQ), then log entries as the STOREs append them (their
    ranges naming uids that are and are not messages)."""
    uids = sorted(draw(st.sets(st.integers(1, 10**6), max_size=12)))
    top = draw(st.integers(1, 10**4))
    rec = ms.Record(draw(st.integers(1, 2**32 - 1)), top,
                    {u: (draw(st.integers(1, top)), draw(st.integers(0, 2**32 - 1)))
                     for u in uids},
                    [(draw(st.integers(1, top)), ms.ranges(draw(st.sets(
                        st.integers(1, 10**6), min_size=1, max_size=4))))
                     for _ in range(draw(st.integers(0, 3)))],
                    draw(st.sampled_from([0, 0, top // 2 + 1])), "a" * 40 + " -")
    data = ms.format_record(rec)
    highest = top
    for _ in range(draw(st.integers(0, 3))):
        pool = uids + [draw(st.integers(1, 10**6))]
        groups = [(draw(st.integers(0, 2**32 - 1)), ms.ranges(draw(st.sets(
            st.sampled_from(pool), min_size=1, max_size=4))))
                  for _ in range(draw(st.integers(0, 2)))]
        highest += draw(st.integers(0, 2))
        data += ms.format_entry(ms.LogEntry(highest, "b" * 40 + " -", groups))
    return data


DAMAGE = b"0123456789afgx+ \nh-"


@settings(max_examples=300, deadline=None)
@given(records(), st.data())
def test_the_fast_path_answers_as_the_parsed_record(data, draw):
    uids = ms.parse(data).msgs
    asked = [0, 1] + draw.draw(st.lists(st.integers(0, 10**4 + 10), max_size=4))
    known = draw.draw(st.sampled_from([[(1, 10**6)], [(1, 5), (9, 400)], [(3, 3)]]))
    some = sorted(uids)[:3] + [draw.draw(st.integers(1, 10**6))]
    uidnext = max(uids, default=0) + 1
    variants = [data]
    cut = draw.draw(st.integers(1, max(1, len(data) - 1)))
    variants.append(data[:cut])                              # torn anywhere (log or base)
    at = draw.draw(st.integers(0, len(data) - 1))
    byte = draw.draw(st.sampled_from(DAMAGE))
    variants.append(data[:at] + bytes([byte]) + data[at + 1:])  # a damaged byte
    variants.append(data[:at] + bytes([byte]) + data[at:])      # one too many
    for v in variants:
        want = _answers(_full(v), asked, known, uidnext, some)
        assert _answers(_fast(v), asked, known, uidnext, some) == want
        assert ms.head_highest(v) == want[0]


def test_a_reconciled_record_is_answered_without_a_record(tmp_path):
    """A session whose sync found the record reconciled with the `.imp`
    answers SELECT's QRESYNC questions from the record's columns: no
    Record is made, and the answers are the parsed record's; once its
    `.imp` is not the one the record names, the sync parses it."""
    ns, box = _box(tmp_path)
    uids = list(range(1, 31))
    (tmp_path / "mbox.imp").write_bytes(_imp(uids, [FLAGSETS[0]] * 30))
    writer = ms.Modseqs(box)
    writer.sync(ns)
    (tmp_path / "mbox.imp").write_bytes(_imp(uids, [FLAGSETS[1]] * 3 + [FLAGSETS[0]] * 27))
    writer.sync(ns)                                  # appended to the log
    data = (tmp_path / "mbox.modseq.imp").read_bytes()
    assert b"\n+ " in data
    reader = ms.Modseqs(box)
    reader.sync(ns)
    got = _answers(reader, [1], [(1, 40)], 31, [2, 5, 99])
    assert reader._rec is None                       # nothing parsed
    assert got == (2, [{1, 2, 3}], [[]], [2, 1, 0])
    assert got == _answers(_full(data), [1], [(1, 40)], 31, [2, 5, 99])
    # the record changed after that first look (this session past its
    # SELECT): parsed, then kept up to date by sync
    (tmp_path / "mbox.imp").write_bytes(_imp(uids, [FLAGSETS[1]] * 5 + [FLAGSETS[0]] * 25))
    writer.sync(ns)
    reader.sync(ns)
    assert reader.of_many([4, 5, 6]) == [3, 3, 1] and reader._rec is not None
    assert reader.changed_since(2) == {4, 5} and reader.highest == 3
    # an .imp changed behind the record's back (Plan 9's imap4d, a crash
    # between the two files): the sync reconciles, and numbers it anew
    (tmp_path / "mbox.imp").write_bytes(_imp(uids[:-1], [FLAGSETS[1]] * 29))
    stale = ms.Modseqs(box)
    stale.sync(ns)
    assert stale._rec is not None and stale.highest == 4
    assert stale.vanished(3, [(1, 40)], 31) == [(30, 30)]
    assert stale.changed_since(3) == set(range(6, 30))
