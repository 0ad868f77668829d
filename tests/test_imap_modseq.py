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
    bad = data.replace(b"0000000002 9 fffffffe", b"0000000002 9 fffffffg")
    assert ms.parse(bad).msgs == {1: (3, 10), 5: (4, 0)}


# -- the record patched as columns (modseq.patch, issue 16) -----------------

import hashlib  # noqa: E402

from hypothesis import given, settings, strategies as st  # noqa: E402

from upas.imap4d import imp  # noqa: E402

FLAGSETS = [frozenset(), frozenset({"\\Seen"}), frozenset({"\\Seen", "\\Flagged"}),
            frozenset({"\\Deleted"}), frozenset({"\\Recent"}), frozenset({"\\Seen", "\\Recent"})]


def _imp(uids: list[int], flags: list[frozenset], recent: bool = False) -> bytes:
    rows = [(hashlib.sha1(b"%d" % u).hexdigest(), u, f) for u, f in zip(uids, flags)]
    return imp.format_rows(7, max(uids, default=0) + 1, rows, recent)


def _kw(uids: list[int], words: dict[int, list[str]]) -> bytes | None:
    if not words:
        return None
    return imp.format_keywords([(hashlib.sha1(b"%d" % u).hexdigest(), u, words.get(u, []))
                                for u in uids])


def _reconciled(mine: bytes, data: bytes, kwdata: bytes | None) -> ms.Record:
    """What the whole path makes of the files: parse, reconcile, the `h` line."""
    rec, _ = ms.reconcile(ms.parse(mine), *ms._rows(data, kwdata))
    rec.files = imp.files_key(data, kwdata)
    return rec


def test_a_store_patches_the_changed_lines_only():
    uids = [1, 2, 5, 9]
    before = _imp(uids, [FLAGSETS[0]] * 4)
    rec, _ = ms.reconcile(None, 7, ms._rows(before, None)[1])
    rec.files = imp.files_key(before, None)
    mine = ms.format_record(rec)
    after = _imp(uids, [FLAGSETS[0], FLAGSETS[1], FLAGSETS[0], FLAGSETS[4]])   # \Recent: no change
    new, highest, changes = ms.patch(mine, after, None, imp.files_key(after, None))
    assert highest == 2 and list(changes) == [(2, SEEN)]
    assert new == ms.format_record(_reconciled(mine, after, None))
    lines = new.split(b"\n")
    assert lines[3:7] == [b"0000000001 1 %08x" % NONE, b"0000000002 2 %08x" % SEEN,
                          b"0000000005 1 %08x" % NONE, b"0000000009 1 %08x" % NONE]


def test_patch_declines_what_it_cannot_pair():
    uids = [1, 2, 3]
    data = _imp(uids, [FLAGSETS[0]] * 3)
    rec, _ = ms.reconcile(None, 7, ms._rows(data, None)[1])
    mine = ms.format_record(rec)
    key = imp.files_key(data, None)
    assert ms.patch(mine, _imp([1, 2], [FLAGSETS[1]] * 2), None, key) is None     # an expunge
    assert ms.patch(mine, _imp([1, 2, 3, 4], [FLAGSETS[1]] * 4), None, key) is None   # an append
    assert ms.patch(mine, data.replace(b"0000000007", b"0000000008", 1), None, key) is None
    assert ms.patch(mine[:-3], data, None, key) is None                         # a torn record
    assert ms.patch(mine, data[:-3], None, key) is None                         # a torn .imp
    assert ms.patch(b"not a record", data, None, key) is None


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_patch_is_reconcile(data):
    """Whatever the record and the files, patch() gives reconcile()'s
    record byte for byte, or declines."""
    n = data.draw(st.integers(0, 12))
    uids = sorted(data.draw(st.sets(st.integers(1, 60), min_size=n, max_size=n)))
    words = st.dictionaries(st.sampled_from(uids), st.lists(st.sampled_from(
        ["$Junk", "$junk", "work", "Later"]), max_size=2), max_size=3) if uids else st.just({})
    old = [data.draw(st.sampled_from(FLAGSETS)) for _ in uids]
    first = _imp(uids, old)
    firstkw = _kw(uids, data.draw(words))
    rec, _ = ms.reconcile(None, 7, ms._rows(first, firstkw)[1])
    rec.files = imp.files_key(first, firstkw)
    gone = data.draw(st.lists(st.sampled_from(uids), max_size=2)) if uids else []
    if gone:                    # expunges the record remembers (its x and f lines)
        rec, _ = ms.reconcile(rec, 7, [r for r in ms._rows(first, firstkw)[1] if r[0] not in gone])
        rec, _ = ms.reconcile(rec, 7, ms._rows(first, firstkw)[1])
        rec.forgotten = data.draw(st.integers(0, 2))
    mine = ms.format_record(rec)
    new = [data.draw(st.sampled_from(FLAGSETS)) for _ in uids]
    after = _imp(uids, new, recent=data.draw(st.booleans()))
    afterkw = _kw(uids, data.draw(words))
    got = ms.patch(mine, after, afterkw, imp.files_key(after, afterkw))
    assert got is not None
    out, highest, changes = got
    want = _reconciled(mine, after, afterkw)
    assert out == ms.format_record(want) and highest == want.highest
    assert {u: (highest, s) for u, s in changes} == \
        {u: v for u, v in want.msgs.items() if v != rec.msgs.get(u)}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**9), st.integers(1, 10**12),
                          st.integers(0, 2**32 - 1)), max_size=8),
       st.integers(0, 40))
def test_the_columns_parse_as_the_lines_do(rows, cut):
    rec = ms.Record(7, 10**12, {u: (m, s) for u, m, s in rows}, [(3, [(4, 6)])], 2, "a b")
    data = ms.format_record(rec)
    assert ms.parse(data) == ms._parse_lines(data) == rec
    torn = data[:len(data) - cut]                # a crash's tmp taken as the file
    assert ms.parse(torn) == ms._parse_lines(torn)


# -- the record's log (modseq.py's docstring; issue 16, sixth part) ----------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

from upas import ns as nsmod  # noqa: E402

BASE = (b"imap modseq\n0000000007 9\nh " + b"a" * 40 + b" -\n"
        b"0000000001 3 0000000a\n0000000002 9 fffffffe\n0000000005 4 00000000\nx 8 3:4\n")


def _line(body: bytes) -> bytes:
    return body + b" %08x\n" % zlib.crc32(body)


def test_a_log_entry_is_read_from_its_line_and_a_torn_one_is_not():
    # the docstring's format written out by hand: 1:2 (no uid 3 or 4 is a
    # message) took MODSEQ 10 and state 1; the record now names b's files
    entry = _line(b"+ 10 " + b"b" * 40 + b" - 00000001=1:4")
    rec = ms.parse(BASE + entry)
    assert (rec.highest, rec.files) == (10, "b" * 40 + " -")
    assert rec.msgs == {1: (10, 1), 2: (10, 1), 5: (4, 0)} and rec.expunged == [(8, [(3, 4)])]
    assert ms._files_of(BASE + entry) == "b" * 40 + " -"
    assert ms.format_entry(ms.read_log(BASE + entry, len(BASE))[0][0]) == entry
    # a base read line by line (a damaged line: its message lost) takes it too
    damaged = BASE.replace(b"4 00000000", b"4 0000000g")
    assert ms.parse(damaged + entry).msgs == {1: (10, 1), 2: (10, 1)}
    # a crash's cut anywhere in the line: the record as it was before it
    for cut in range(1, len(entry) + 1):
        torn = BASE + entry[:-cut]
        assert ms.parse(torn) == ms.parse(BASE) and ms._files_of(torn) == "a" * 40 + " -"
        assert ms.read_log(torn, len(BASE)) == ([], len(BASE))
    # a changed byte is not taken either, nor anything after it
    bad = entry.replace(b"1:4", b"1:5")
    assert ms.parse(BASE + bad + entry) == ms.parse(BASE)
    # an entry that changed nothing names the files only
    same = _line(b"+ 9 " + b"c" * 40 + b" " + b"d" * 40)
    assert ms.parse(BASE + same).msgs == ms.parse(BASE).msgs
    assert ms.parse(BASE + same).files == "c" * 40 + " " + "d" * 40


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_appended_entries_are_reconcile(data):
    """A change of flags only, appended as flag_changes' entry (twice,
    over a record with expunges remembered), reads as reconcile()'s
    record; and patch() of the record with its log gives it whole."""
    n = data.draw(st.integers(0, 12))
    uids = sorted(data.draw(st.sets(st.integers(1, 60), min_size=n, max_size=n)))
    words = st.dictionaries(st.sampled_from(uids), st.lists(st.sampled_from(
        ["$Junk", "$junk", "work", "Later"]), max_size=2), max_size=3) if uids else st.just({})
    first = _imp(uids, [data.draw(st.sampled_from(FLAGSETS)) for _ in uids])
    kw = _kw(uids, data.draw(words))
    rec, _ = ms.reconcile(None, 7, ms._rows(first, kw)[1])
    if uids and data.draw(st.booleans()):
        rec, _ = ms.reconcile(rec, 7, ms._rows(first, kw)[1][1:])
        rec, _ = ms.reconcile(rec, 7, ms._rows(first, kw)[1])
    rec.files = imp.files_key(first, kw)
    mine = ms.format_record(rec)
    for _ in range(2):
        after = _imp(uids, [data.draw(st.sampled_from(FLAGSETS)) for _ in uids],
                     recent=data.draw(st.booleans()))
        key = imp.files_key(after, kw)
        groups = ms.flag_changes(first, after, kw, data.draw(st.booleans()))
        assert groups is not None
        want = _reconciled(mine, after, kw)
        top = ms.parse(mine).highest
        mine += ms.format_entry(ms.LogEntry(top + 1 if groups else top, key, groups))
        assert ms.parse(mine) == want
        out, highest, _ = ms.patch(mine, after, kw, key)
        assert ms.parse(out) == want and highest == want.highest and b"\n+ " not in out
        first = after


def test_flag_changes_declines_all_but_a_change_of_flags():
    uids = [1, 2, 5]
    data = _imp(uids, [FLAGSETS[0]] * 3)
    seen = _imp(uids, [FLAGSETS[1]] * 3)
    assert ms.flag_changes(data, seen, None, False) == [(SEEN, [(1, 5)])]
    assert ms.flag_changes(data, _imp(uids, [FLAGSETS[4]] * 3), None, False) == []   # \Recent
    assert ms.flag_changes(data, _imp([1, 2], [FLAGSETS[1]] * 2), None, False) is None
    assert ms.flag_changes(data, _imp([1, 2, 5, 6], [FLAGSETS[1]] * 4), None, False) is None
    assert ms.flag_changes(data, _imp([1, 2, 6], [FLAGSETS[1]] * 3), None, False) is None
    assert ms.flag_changes(data, seen.replace(b"0000000007", b"0000000008", 1), None,
                           False) is None
    assert ms.flag_changes(data, seen.replace(b"s-------", b"x-------", 1), None, False) is None
    # uids out of order: a range would name lines outside its run
    down = _imp([5, 2, 1], [FLAGSETS[0]] * 3)
    assert ms.flag_changes(down, _imp([5, 2, 1], [FLAGSETS[1]] * 3), None, False) is None
    # a message with keywords keeps them in its state, a run of its own
    kw = _kw(uids, {2: ["work"]})
    assert ms.flag_changes(data, seen, kw, True) == [
        (SEEN, [(1, 1), (5, 5)]), (ms.state({"\\Seen"}, ["work"]), [(2, 2)])]


def _box(tmp_path: Path) -> tuple[nsmod.Namespace, str]:
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box/glenda", str(tmp_path))
    return ns, "/mail/box/glenda/mbox"


def test_a_store_is_appended_and_others_read_it(tmp_path):
    ns, box = _box(tmp_path)
    uids = list(range(1, 21))
    (tmp_path / "mbox.imp").write_bytes(_imp(uids, [FLAGSETS[0]] * 20))
    mine = ms.Modseqs(box)
    mine.sync(ns)
    whole = (tmp_path / "mbox.modseq.imp").read_bytes()
    assert b"\n+ " not in whole and mine.highest == 1
    (tmp_path / "mbox.imp").write_bytes(_imp(uids, [FLAGSETS[1]] * 10 + [FLAGSETS[0]] * 10))
    mine.sync(ns)
    now = (tmp_path / "mbox.modseq.imp").read_bytes()
    assert now.startswith(whole) and now[len(whole):].count(b"\n") == 1       # one line
    other = ms.Modseqs(box)
    other.sync(ns)
    assert other.highest == mine.highest == 2
    assert other.changed_since(1) == set(range(1, 11)) == mine.changed_since(1)
    assert other.rec == ms.parse(now) == _reconciled(whole, (tmp_path / "mbox.imp").read_bytes(),
                                                     None)
    # past LOG_BOUND the record is written whole again
    for k in range(3):
        (tmp_path / "mbox.imp").write_bytes(_imp(uids, [FLAGSETS[k % 2]] * 20))
        mine.sync(ns)
    assert b"\n+ " in (tmp_path / "mbox.modseq.imp").read_bytes()
    was = ms.LOG_BOUND
    try:
        ms.LOG_BOUND = 0
        (tmp_path / "mbox.imp").write_bytes(_imp(uids, [FLAGSETS[2]] * 20))
        mine.sync(ns)
    finally:
        ms.LOG_BOUND = was
    last = (tmp_path / "mbox.modseq.imp").read_bytes()
    assert b"\n+ " not in last and ms.parse(last).highest == 6 == mine.highest


def test_a_torn_tail_is_never_appended_to(tmp_path):
    """Whoever finds the log's last line cut short (a writer killed in its
    append) writes the record whole: a line after it would never be read."""
    ns, box = _box(tmp_path)
    uids = [1, 2, 3]
    (tmp_path / "mbox.imp").write_bytes(_imp(uids, [FLAGSETS[0]] * 3))
    mine = ms.Modseqs(box)
    mine.sync(ns)
    whole = (tmp_path / "mbox.modseq.imp").read_bytes()
    (tmp_path / "mbox.modseq.imp").write_bytes(whole + b"+ 2 " + b"e" * 30)   # torn
    after = _imp(uids, [FLAGSETS[1]] + [FLAGSETS[0]] * 2)
    (tmp_path / "mbox.imp").write_bytes(after)
    mine.sync(ns)
    now = (tmp_path / "mbox.modseq.imp").read_bytes()
    assert b"e" * 30 not in now and b"\n+ " not in now
    assert ms.parse(now) == _reconciled(whole, after, None) and mine.changed_since(1) == {1}


CUT_APPEND = r"""
import os, sys
from upas import ns as nsmod
from upas.imap4d import modseq
ns = nsmod.Namespace("glenda")
ns.bind_dir("/mail/box/glenda", sys.argv[1])
limit = int(sys.argv[2])
m = modseq.Modseqs("/mail/box/glenda/mbox")
m.sync(ns)                                  # the record as it stands (its files)
os.replace(sys.argv[1] + "/next.imp", sys.argv[1] + "/mbox.imp")
real = os.pwrite
def pwrite(fd, b, offset):
    os.write(2, b"append at %d\n" % offset)
    real(fd, bytes(b[:limit]), offset)
    os._exit(9)
os.pwrite = pwrite
m.sync(ns)
os._exit(0)
"""


def test_a_writer_killed_in_its_append_leaves_the_old_record_or_the_new(tmp_path):
    """A STORE's writer killed after any number of bytes of its log line:
    the record reads as before it (that line is not taken) or as after;
    the next sync numbers the change as reconcile() would, once."""
    uids = list(range(1, 31))
    before = _imp(uids, [FLAGSETS[k % 3] for k in range(30)])
    after = _imp(uids, [FLAGSETS[(k + (k < 12)) % 3] for k in range(30)])
    rec, _ = ms.reconcile(None, 7, ms._rows(before, None)[1])
    rec.files = imp.files_key(before, None)
    old = ms.format_record(rec)
    new = ms.parse(old + ms.format_entry(ms.LogEntry(
        2, imp.files_key(after, None), ms.flag_changes(before, after, None, False))))
    size = len(ms.format_entry(ms.LogEntry(
        2, imp.files_key(after, None), ms.flag_changes(before, after, None, False))))
    repo = Path(__file__).resolve().parent.parent
    for limit in sorted({0, 1, size // 2, size - 2, size - 1, size,
                         *range(3, size, max(1, size // 8))}):
        d = tmp_path / str(limit)
        d.mkdir()
        (d / "mbox.imp").write_bytes(before)
        (d / "mbox.modseq.imp").write_bytes(old)
        (d / "next.imp").write_bytes(after)
        r = subprocess.run([sys.executable, "-c", CUT_APPEND, str(d), str(limit)],
                           env=dict(os.environ, PYTHONPATH=str(repo)), cwd=repo,
                           capture_output=True)
        assert r.returncode == 9 and b"append at %d" % len(old) in r.stderr, r.stderr
        got = ms.parse((d / "mbox.modseq.imp").read_bytes())
        assert got == (new if limit == size else rec), limit
        ns, box = _box(d)
        fresh = ms.Modseqs(box)
        fresh.sync(ns)
        assert fresh.rec.msgs == new.msgs or (
            limit < size and fresh.rec == _reconciled(old, after, None)), limit
        assert fresh.changed_since(1) == set(range(1, 13))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120).map(lambda b: bytes(b"f\n x+0"[c % 6] for c in b)),
       st.sampled_from([ord("f"), ord("x"), ord("+")]), st.integers(min_value=0, max_value=120))
def test_line_find_is_the_search(data, mark, start):
    """modseq's line search (a mark by memchr, the three bytes after many
    marks that begin no line: `f` is a hex digit of message lines'
    states) finds what the search for the three bytes finds."""
    start = min(start, len(data))
    assert ms._line_find(data, mark, start) == data.find(b"\n" + bytes((mark,)) + b" ", start)
