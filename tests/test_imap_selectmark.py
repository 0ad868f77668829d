"""SELECT of a mailbox that did not change reads no file of a message
(issue 16; imap4d/selectmark.py; docs/decisions.md, the performance
section's `<mailbox>.mark.imp`).

A session that read upasfs's listing (the view's `summary`, one read)
records it in `<mailbox>.mark.imp` with upasfs's `mark` and the mailbox
file's stat; a later session that reads the same mark and stats the same
file takes the listing from there.  Whatever else happened (new mail, a
delete, another upasfs, the file touched, the record cut or foreign) it
reads the summary again.  Real upasfs processes, Mailbox views on them;
the name space is traced, not changed.
"""
import os

from tests.fixtures.tracedns import MESSAGE_FILE, Traced
from tests.fixtures.upasfs import restart_from_index
from upas import mbappend
from upas.imap4d import imp, selectmark
from upas.imap4d.mailbox import Mailbox

BOX = "/mail/box/glenda/mbox"
NEW = (b"From bob Fri Nov 27 01:00:00 2026\nFrom: bob@example.org\n"
       b"Subject: new\nMessage-ID: <new@example.org>\n\nnew mail\n")


def _view(fs, monkeypatch) -> Mailbox:
    for name in ("user", "USER", "LOGNAME"):    # 9P attaches as the mail's owner
        monkeypatch.setenv(name, "glenda")
    ns = Traced("glenda")
    ns.bind_dir("/mail/box", os.path.join(fs.mailroot, "box"))
    ns.mount("/mail/fs", fs.addr)
    box = Mailbox(ns, BOX)
    box.open()
    return box


def _state(box: Mailbox) -> list[tuple]:
    return [(m.fsnum, m.digest, m.uid, sorted(m.flags)) for m in box.msgs]


def _message_files(box: Mailbox) -> list[str]:
    return [p for p in box.ns.seen if MESSAGE_FILE.match(p)]


def test_an_unchanged_mailbox_is_selected_from_the_mark(upasfs, monkeypatch):
    first = _view(upasfs, monkeypatch)
    assert "/mail/fs/mbox/summary" in first.ns.seen      # one read, not one a message
    assert _message_files(first) == []
    assert os.stat(upasfs.mbox + ".mark.imp").st_mode & 0o777 == 0o600

    again = _view(upasfs, monkeypatch)
    assert _message_files(again) == []
    assert "/mail/fs/mbox/mark" in again.ns.seen
    assert "/mail/fs/mbox/summary" not in again.ns.seen
    assert "/mail/fs/mbox/" not in again.ns.seen          # no listing either
    # as the first saw them, \\Recent gone (the first session took it)
    assert [s[:3] for s in _state(again)] == [s[:3] for s in _state(first)]
    assert all("\\Recent" not in m.flags for m in again.msgs)


def test_new_mail_changes_the_mark(upasfs, monkeypatch):
    first = _view(upasfs, monkeypatch)
    mbappend.append_mbox(upasfs.mbox, mbappend.format_message(NEW, "bob"))
    after = _view(upasfs, monkeypatch)
    assert "/mail/fs/mbox/summary" in after.ns.seen
    assert len(after.msgs) == len(first.msgs) + 1
    assert [s[:3] for s in _state(after)[:-1]] == [s[:3] for s in _state(first)]
    assert after.msgs[-1].uid == first.uidnext
    # the record now holds the new listing: a third session takes it
    third = _view(upasfs, monkeypatch)
    assert "/mail/fs/mbox/summary" not in third.ns.seen
    assert _state(third)[-1][:3] == _state(after)[-1][:3]


def test_a_delete_changes_the_mark(upasfs, monkeypatch):
    first = _view(upasfs, monkeypatch)
    gone = first.msgs[1]
    first.ns.write("/mail/fs/ctl", f"delete mbox {gone.fsnum}".encode())
    after = _view(upasfs, monkeypatch)
    assert "/mail/fs/mbox/summary" in after.ns.seen
    assert [m.fsnum for m in after.msgs] == [m.fsnum for m in first.msgs if m is not gone]
    assert [m.uid for m in after.msgs] == [m.uid for m in first.msgs if m is not gone]


def test_another_upasfs_is_another_instance(upasfs, monkeypatch):
    """A restarted upasfs numbers from 1 again with the same qids: only its
    new instance in the mark tells it from the old one."""
    first = _view(upasfs, monkeypatch)
    fs2, _ = restart_from_index(upasfs)
    try:
        after = _view(fs2, monkeypatch)
        assert "/mail/fs/mbox/summary" in after.ns.seen
        assert [s[1:3] for s in _state(after)] == [s[1:3] for s in _state(first)]
    finally:
        fs2.stop()


def test_a_mailbox_file_touched_is_not_proved_unchanged(upasfs, monkeypatch):
    first = _view(upasfs, monkeypatch)
    st = os.stat(upasfs.mbox)
    os.utime(upasfs.mbox, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = _view(upasfs, monkeypatch)
    assert "/mail/fs/mbox/summary" in after.ns.seen
    assert [s[:3] for s in _state(after)] == [s[:3] for s in _state(first)]


def test_a_record_cut_short_or_foreign_is_not_used(upasfs, monkeypatch):
    first = _view(upasfs, monkeypatch)
    path = upasfs.mbox + ".mark.imp"
    whole = open(path, "rb").read()
    for bad in (whole[:-20], whole.replace(selectmark.MAGIC, b"imap4d mark 9\n"),
                whole[:-41]):                   # a whole digest line gone
        with open(path, "wb") as f:
            f.write(bad)
        after = _view(upasfs, monkeypatch)
        assert "/mail/fs/mbox/summary" in after.ns.seen
        assert [s[:3] for s in _state(after)] == [s[:3] for s in _state(first)]
        assert open(path, "rb").read() == whole         # written again


def test_the_record_reads_back_as_written():
    got = selectmark.Listing("0123456789abcdef 3 7 6", "12 34 56",
                             [1, 2, 3, 7, 9, 10], ["%040x" % i for i in range(6)])
    data = selectmark.render(got)
    assert b"\n1-3 7 9-10\n" in data
    assert selectmark.parse(data) == got
    empty = selectmark.Listing("0123456789abcdef 3 8 0", "12 34 0", [], [])
    assert selectmark.parse(selectmark.render(empty)) == empty
    for cut in range(1, len(data)):
        assert selectmark.parse(data[:cut]) is None, cut
    assert selectmark.parse(data.replace(b"9-10", b"9-11")) is None
    assert selectmark.parse(data.replace(b"1-3 7", b"3-1 7")) is None


def test_a_crash_while_the_record_was_written_leaves_it_usable(upasfs, monkeypatch):
    """The record is replaced by tmp + fsync + rename: a crash leaves the
    old record and a torn temporary file, which the next write replaces."""
    first = _view(upasfs, monkeypatch)
    path = upasfs.mbox + ".mark.imp"
    old = open(path, "rb").read()
    mbappend.append_mbox(upasfs.mbox, mbappend.format_message(NEW, "bob"))
    with open(path + ".tmp", "wb") as f:
        f.write(old[:50])                       # what a kill in the write leaves
    after = _view(upasfs, monkeypatch)
    assert "/mail/fs/mbox/summary" in after.ns.seen
    assert len(after.msgs) == len(first.msgs) + 1
    assert not os.path.exists(path + ".tmp")
    assert selectmark.parse(open(path, "rb").read()).nums == [m.fsnum for m in after.msgs]


def test_only_our_upasfs_is_asked_for_mark_and_summary(upasfs, tmp_path, monkeypatch):
    """Plan 9's and plan9port's upas/fs have neither file: a server that is
    not ours (here a plain directory; tests/test_interop_replay.py replays
    plan9port's) is not asked, and the Plan 9 listing is read."""
    from upas.mail.fsview import FsView
    for name in ("user", "USER", "LOGNAME"):
        monkeypatch.setenv(name, "glenda")
    ns = Traced("glenda")
    ns.mount("/mail/fs", upasfs.addr)
    assert ns.ours("/mail/fs/mbox")
    (tmp_path / "fs" / "mbox" / "1").mkdir(parents=True)
    other = Traced("glenda")
    other.bind_dir("/mail/fs", str(tmp_path / "fs"))
    view = FsView(other, "mbox")
    assert not other.ours("/mail/fs/mbox")
    assert (view.mark(), view.summary(), other.seen) == (None, None, [])


def _unparsed(monkeypatch):
    """Make parsing the .imp or the MODSEQ record fail the test."""
    from upas.imap4d import imp, modseq

    def refuse(*_):
        raise AssertionError("parsed")
    monkeypatch.setattr(imp, "parse_imp", refuse)
    monkeypatch.setattr(modseq, "parse", refuse)


def _flag(box: Mailbox, m, flag: str = "\\Flagged", words=None) -> None:
    from upas.imap4d import imp

    def change(x) -> bool:
        x.flags = imp.flagset(set(x.flags) | {flag})
        if words:
            x.keywords = list(words)
        return True
    assert box.modify([m], change) == [m]


def test_unchanged_files_are_taken_line_by_line(upasfs, monkeypatch):
    """The .imp's lines are the recorded listing's messages, in order:
    the next SELECT parses neither the .imp nor the MODSEQs (whose record
    names the .imp it was made with), and sees what a merge would."""
    first = _view(upasfs, monkeypatch)
    with monkeypatch.context() as mp:
        _unparsed(mp)
        again = _view(upasfs, monkeypatch)
    assert _state(again) == [s[:3] + ([],) for s in _state(first)]
    assert again.uidnext == first.uidnext and again.uidvalidity == first.uidvalidity
    assert again.modseqs.of(again.msgs[0].uid) == first.modseqs.of(first.msgs[0].uid) > 0


def test_files_changed_since_the_record_are_merged(upasfs, monkeypatch):
    """Another session's STORE (flags, a keyword) changes the .imp and
    .kw.imp: the next SELECT still takes them line by line (MODSEQs
    synced by the storing session), as does the one after."""
    first = _view(upasfs, monkeypatch)
    _flag(first, first.msgs[0])
    _flag(first, first.msgs[1], "\\Seen", ["$Work"])
    with monkeypatch.context() as mp:
        _unparsed(mp)
        after = _view(upasfs, monkeypatch)
    assert "\\Flagged" in after.msgs[0].flags and after.msgs[1].keywords == ["$Work"]
    assert "$Work" in after.keywords
    bumped = after.modseqs.of(after.msgs[1].uid)
    assert bumped > after.modseqs.of(after.msgs[2].uid)
    with monkeypatch.context() as mp:
        _unparsed(mp)
        third = _view(upasfs, monkeypatch)
    assert [(m.uid, sorted(m.flags), m.keywords) for m in third.msgs] == \
        [(m.uid, sorted(m.flags), m.keywords) for m in after.msgs]
    assert "$Work" in third.keywords
    assert third.modseqs.of(third.msgs[1].uid) == bumped


def test_a_modseq_file_changed_alone_is_synced(upasfs, monkeypatch):
    """The .imp as recorded but the MODSEQ file not (cut by a crash, or
    written by a session that recorded nothing): it is reconciled again."""
    first = _view(upasfs, monkeypatch)
    path = upasfs.mbox + ".modseq.imp"
    os.unlink(path)
    again = _view(upasfs, monkeypatch)
    assert os.path.exists(path)
    assert again.modseqs.of(again.msgs[0].uid) > 0
    assert [s[:3] for s in _state(again)] == [s[:3] for s in _state(first)]


def test_another_sessions_store_is_merged_by_its_lines(upasfs, monkeypatch):
    """A STORE in one session changes a few flags fields of the .imp (and
    a .kw.imp line): another session's next look takes those lines alone
    (the file not parsed) and reports just those messages changed."""
    one = _view(upasfs, monkeypatch)
    two = _view(upasfs, monkeypatch)
    _flag(one, one.msgs[1])
    _flag(one, one.msgs[2], "\\Seen", ["$Todo"])
    with monkeypatch.context() as mp:
        _unparsed(mp)
        two.check()
    assert [m.uid for m in two.flag_changes] == [one.msgs[1].uid, one.msgs[2].uid]
    assert [(m.uid, sorted(m.flags), m.keywords) for m in two.msgs] == \
        [(m.uid, sorted(m.flags - {"\\Recent"}), m.keywords) for m in one.msgs]
    assert "$Todo" in two.keywords
    assert two.modseqs.of(two.msgs[2].uid) == one.modseqs.of(one.msgs[2].uid)
    _flag(one, one.msgs[2], "\\Seen", ["$Done"])       # a keyword replaced
    two.flag_changes.clear()
    two.check()
    assert two.msgs[2].keywords == ["$Done"] and two.flag_changes == [two.msgs[2]]


def test_a_store_between_the_listing_and_the_lock_is_merged(upasfs, monkeypatch):
    """The messages made from the .imp's lines before the lock are made
    new again when the file under the lock is not the one they came from
    (another session stored meanwhile): the merge sees its change."""
    _view(upasfs, monkeypatch)
    other = _view(upasfs, monkeypatch)
    from_mark = Mailbox._from_mark
    raced = []

    def racing(self, *args):
        got = from_mark(self, *args)
        if not raced:
            assert self.taken                   # made from the lines
            raced.append(_flag(other, other.msgs[0]))
        return got
    monkeypatch.setattr(Mailbox, "_from_mark", racing)
    third = _view(upasfs, monkeypatch)
    assert raced
    assert "\\Flagged" in third.msgs[0].flags
    assert [(m.uid, sorted(m.flags)) for m in third.msgs] == \
        [(m.uid, sorted(m.flags - {"\\Recent"})) for m in other.msgs]


def test_another_sessions_expunge_and_new_mail_are_merged_by_lines(upasfs, monkeypatch):
    """One session expunges a message and numbers new mail: the other's
    next look finds its old lines less the expunged one's, and a line for
    the new message at the end with the uid the first gave it; it takes
    them without parsing the file."""
    one = _view(upasfs, monkeypatch)
    two = _view(upasfs, monkeypatch)
    gone = one.msgs[1]
    _flag(one, gone, "\\Deleted")
    one.expunge(lambda m: m is gone)
    with monkeypatch.context() as mp:           # its own expunge: the line dropped
        _unparsed(mp)
        one.check()
    lines = imp.parse_imp(open(upasfs.mbox + ".imp", "rb").read()).entries
    assert gone.uid not in [e.uid for e in lines]
    mbappend.append_mbox(upasfs.mbox, mbappend.format_message(NEW, "bob"))
    with monkeypatch.context() as mp:           # new mail, numbered here
        _unparsed(mp)
        one.check()
    assert one.msgs[-1].uid == one.uidnext - 1 and "\\Recent" in one.msgs[-1].flags
    lines = imp.parse_imp(open(upasfs.mbox + ".imp", "rb").read()).entries
    assert [(e.digest, e.uid) for e in lines] == [(m.digest, m.uid) for m in one.msgs
                                                  if not m.expunged]
    with monkeypatch.context() as mp:
        _unparsed(mp)
        two.check()
    assert two.msgs[1].expunged
    assert [(m.uid, sorted(m.flags - {"\\Recent"})) for m in two.msgs if not m.expunged] == \
        [(m.uid, sorted(m.flags - {"\\Recent"})) for m in one.msgs if not m.expunged]
    assert two.uidnext == one.uidnext
    assert "\\Recent" not in two.msgs[-1].flags         # the first session's
    fresh = _view(upasfs, monkeypatch)
    assert [m.uid for m in fresh.msgs] == [m.uid for m in two.msgs if not m.expunged]
