"""STORE +FLAGS / -FLAGS of system flags on a lazy view changes its
columns, no Message made (store.py's _on_columns, msgview.Lazy.retag,
impstate's _patched of a Lazy; docs/performance.md, round 4's tenth
part).  What it leaves must be what the list of every message would: the
.imp's flags fields (Plan 9's letters), the messages made before (their
objects the truth, others' changes merged into them first), what another
session reads, the MODSEQs.  Real upasfs, real Mailbox views (the lazy
view needs a second SELECT: tests/test_imap_msgview.py) and real
sessions over sockets."""
from tests.fixtures.imap import put_box, select
from tests.mboxgen import message
from tests.test_imap_msgview import COUNT, _flag, _lazy, fs  # noqa: F401 -- fixture
from tests.test_imap_selectmark import _view
from upas.imap4d import imp, msgview, store


def _store(box, op: str, flags: list[str], spans: list[tuple[int, int]]) -> None:
    """What store.store does with a lazy view's pick (its columns path)."""
    picked = msgview.picked(box._view(), spans)
    change = store.changer(op, flags)
    box.modify(picked, change,
               columns=store._on_columns(box, picked, store.mask_table(op, flags), change))


def _file_flags(box) -> list[set[str]]:
    return [set(e.flags) for e in imp.parse_imp(imp.read_file(box.ns, box.imppath)).entries]


def test_a_store_on_the_columns_writes_what_each_message_would_have(fs, monkeypatch):
    one = _view(fs, monkeypatch)
    _flag(one, one.msgs[7:9], "\\Flagged", ["$Work"])
    _flag(one, [one.msgs[50]], "\\Answered")
    two = _view(fs, monkeypatch)
    assert _lazy(two)
    early = two.with_uids({one.msgs[3].uid})[0]         # made before the STORE
    early.flags = imp.flagset({"\\Deleted"})           # (as a STORE on it alone)
    was = two.modseqs.of_many([m.uid for m in one.msgs])
    _store(two, "+", ["\\Seen", "\\Recent"], [(0, COUNT)])   # (\\Recent is never stored)
    assert _lazy(two) and len(two._view().made) < COUNT // 4     # not made whole
    assert early.flags == {"\\Seen", "\\Deleted"} and two._view().at(3) is early
    want = [{"\\Seen"} for _ in range(COUNT)]
    for k in (7, 8):
        want[k].add("\\Flagged")
    want[3].add("\\Deleted")
    want[50].add("\\Answered")
    assert _file_flags(two) == want
    three = _view(fs, monkeypatch)          # another session reads them, keywords kept
    assert [set(m.flags) for m in three.msgs] == want
    assert [m.keywords for m in three.msgs[7:9]] == [["$Work"], ["$Work"]]
    now = three.modseqs.of_many([m.uid for m in three.msgs])
    assert all(b > a for a, b in zip(was, now))         # each changed: a higher MODSEQ
    assert [set(m.flags) for m in two.msgs] == want     # the list made after
    assert two.msgs[3] is early


def test_others_changes_since_the_select_are_merged_first(fs, monkeypatch):
    """Another session's STOREs after the SELECT: the merge makes the view
    whole (impstate's _changed_lines), and the change is made on the
    list; the outcome is the same."""
    one = _view(fs, monkeypatch)
    two = _view(fs, monkeypatch)
    assert _lazy(two)
    early = two.with_uids({one.msgs[3].uid})[0]
    _flag(one, [one.msgs[3]], "\\Deleted")
    _flag(one, [one.msgs[50]], "\\Answered")
    _store(two, "+", ["\\Seen"], [(0, COUNT)])
    assert early.flags == {"\\Seen", "\\Deleted"} and two.msgs[3] is early
    want = [{"\\Seen"} for _ in range(COUNT)]
    want[3].add("\\Deleted")
    want[50].add("\\Answered")
    assert _file_flags(two) == want
    assert [set(m.flags) for m in _view(fs, monkeypatch).msgs] == want


def test_a_store_removing_a_flag_from_part_of_the_columns(fs, monkeypatch):
    one = _view(fs, monkeypatch)
    _flag(one, one.msgs, "\\Seen")
    _flag(one, one.msgs[:10], "\\Draft")
    two = _view(fs, monkeypatch)
    assert _lazy(two)
    _store(two, "-", ["\\Seen", "\\Draft"], [(5, 20)])
    assert _lazy(two)
    want = [{"\\Seen"} | ({"\\Draft"} if k < 10 else set()) for k in range(COUNT)]
    for k in range(5, 20):
        want[k] = set()
    assert _file_flags(two) == want
    # places that are not one run: the list path, the same outcome
    _store(two, "+", ["\\Answered"], [(0, 2), (90, 95)])
    for k in [0, 1, *range(90, 95)]:
        want[k].add("\\Answered")
    assert _file_flags(two) == want
    assert [set(m.flags) for m in _view(fs, monkeypatch).msgs] == want


def test_mask_table_is_for_system_flags_added_or_removed_only():
    assert store.mask_table("", ["\\Seen"]) is None               # FLAGS replaces keywords too
    assert store.mask_table("+", ["\\Seen", "$Work"]) is None     # a keyword
    assert store.mask_table("+", ["\\Unknown"]) is None
    seen, recent = imp.MASK_BIT["\\Seen"], imp.MASK_BIT["\\Recent"]
    add = store.mask_table("+", ["\\Seen", "\\Recent"])
    assert add[0] == seen and add[recent] == recent | seen
    drop = store.mask_table("-", ["\\Seen", "\\Recent"])
    assert drop[seen | recent] == recent and drop[seen] == 0


N = store.REPLY_AHEAD + 52         # a reply sent while the files are written


def test_a_session_stores_on_its_lazy_view(imap_preauth):
    """The bench's store-seen: a second SELECT (a lazy view), STORE 1:*
    +FLAGS (\\Seen) with its reply's thread; the lines, the .imp at the OK,
    the next session's FETCH."""
    put_box(imap_preauth, "many", [message(i) for i in range(N)])
    first = imap_preauth.connect()
    select(first, "many")
    assert first.cmd(b"f STORE 2 +FLAGS (\\Flagged)")[-1] == b"f OK STORE completed\r\n"
    first.cmd(b"l LOGOUT")
    c = imap_preauth.connect()
    select(c, "many")
    r = c.cmd(b"a UID STORE 1:* +FLAGS (\\Seen)")
    assert r[:-1] == [b"* %d FETCH (UID %d FLAGS (\\Seen%s))\r\n"
                      % (k, k, b" \\Flagged" if k == 2 else b"") for k in range(1, N + 1)]
    assert r[-1] == b"a OK uid STORE completed\r\n"
    data = imap_preauth.box(name="many").with_name("many.imp").read_bytes()
    entries = imp.parse_imp(data).entries
    assert [set(e.flags) for e in entries] == \
        [{"\\Seen", "\\Flagged"} if k == 2 else {"\\Seen"} for k in range(1, N + 1)]
    r = c.cmd(b"b STORE 1:3 -FLAGS.SILENT (\\Seen)")
    assert r == [b"b OK STORE completed\r\n"]
    other = imap_preauth.connect()
    select(other, "many")
    assert other.cmd(b"c FETCH 1:4 FLAGS")[:-1] == [
        b"* 1 FETCH (FLAGS ())\r\n", b"* 2 FETCH (FLAGS (\\Flagged))\r\n",
        b"* 3 FETCH (FLAGS ())\r\n", b"* 4 FETCH (FLAGS (\\Seen))\r\n"]


def test_a_condstore_session_gets_the_new_modseqs(imap_preauth):
    """With CONDSTORE each line has the message's MODSEQ (RFC 7162 3.1.3),
    the STORE's own, above the HIGHESTMODSEQ the SELECT gave; the next
    SELECT's HIGHESTMODSEQ is that one."""
    put_box(imap_preauth, "few", [message(i) for i in range(5)])
    first = imap_preauth.connect()
    select(first, "few")
    first.cmd(b"l LOGOUT")
    c = imap_preauth.connect()
    c.cmd(b"e ENABLE CONDSTORE")
    r = c.cmd(b"s SELECT few")
    high = int(next(line for line in r if b"HIGHESTMODSEQ" in line).split()[3].rstrip(b"]"))
    r = c.cmd(b"a STORE 2:3 +FLAGS (\\Answered)")
    assert r[:-1] == [b"* %d FETCH (MODSEQ (%d) FLAGS (\\Answered))\r\n" % (k, high + 1)
                      for k in (2, 3)]
    assert r[-1] == b"a OK STORE completed\r\n"
    other = imap_preauth.connect()
    r = other.cmd(b"s SELECT few (CONDSTORE)")
    assert any(b"[HIGHESTMODSEQ %d]" % (high + 1) in line for line in r)


def test_the_imps_directory_is_synced_after_the_record_and_under_the_lock(fs, monkeypatch):
    """The rename of the new .imp is made durable (its directory's fsync)
    after the MODSEQ record's sync, so the two wait for one journal commit,
    and still before the lock is let go (safewrite's `later`)."""
    from upas.imap4d import modseq
    from upas.mail import lock, safewrite
    one = _view(fs, monkeypatch)
    two = _view(fs, monkeypatch)
    events: list[str] = []
    dir_sync, record_sync, drop = safewrite.fsync_dir, modseq.Modseqs.sync, lock.MailLock.drop
    monkeypatch.setattr(safewrite, "fsync_dir",
                        lambda p: (events.append("dir " + p.rsplit("/", 1)[-1]), dir_sync(p))[1])
    monkeypatch.setattr(modseq.Modseqs, "sync",
                        lambda self, *a, **k: (events.append("record"), record_sync(self, *a, **k))[1])
    monkeypatch.setattr(lock.MailLock, "drop",
                        lambda self, fd: (events.append("unlock"), drop(self, fd))[1])
    _store(two, "+", ["\\Seen"], [(0, COUNT)])
    imp_tmp = two.imppath.rsplit("/", 1)[-1] + ".tmp"
    assert events[-3:] == ["record", "dir " + imp_tmp, "unlock"]
    assert _file_flags(one) == [{"\\Seen"}] * COUNT
