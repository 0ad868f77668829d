"""The .imp written by a session that is a little behind (issue 9).

Sessions list upasfs outside the mail lock and rewrite the .imp under it,
so a session may rewrite the file after another session has numbered a
message the first one has not listed yet.  Found by the stress rig: the
rewrite dropped that entry, the message lost its flags (a \\Deleted set
before EXPUNGE among them, so an acknowledged delete was undone) and the
next session numbered it anew, out of mailbox order.  Here the
interleaving is made exactly, on three Mailbox views of one real upasfs.
"""
import os

import pytest

from upas import mbappend
from upas import ns as nsmod
from upas.imap4d import imp
from upas.mail import fsview
from upas.imap4d.mailbox import Mailbox

BOX = "/mail/box/glenda/mbox"
NEW = (b"From bob Fri Nov 27 01:00:00 2026\nFrom: bob@example.org\n"
       b"Subject: late\nMessage-ID: <late@example.org>\n\nnumbered elsewhere first\n")


def _view(fs) -> Mailbox:
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box", os.path.join(fs.mailroot, "box"))
    ns.mount("/mail/fs", fs.addr)
    box = Mailbox(ns, BOX)
    box.open()
    return box


def test_a_session_behind_keeps_what_others_numbered(upasfs, monkeypatch):
    for name in ("user", "USER", "LOGNAME"):    # 9P attaches as the mail's owner
        monkeypatch.setenv(name, "glenda")
    behind = _view(upasfs)
    known = len(behind.msgs)
    mbappend.append_mbox(upasfs.mbox, mbappend.format_message(NEW, "bob"))

    ahead = _view(upasfs)                  # lists and numbers the new message
    late = ahead.msgs[-1]
    assert len(ahead.msgs) == known + 1
    ahead.modify([late], lambda m: setattr(m, "flags", m.flags | {"\\Deleted"}) or True)

    # the session behind rewrites the file from its older listing
    with behind.ns.lock(behind.dir):
        behind._merge(settle=True, force=True)
        behind._write_imp()
    assert len(behind.msgs) == known

    fresh = _view(upasfs)
    uids = [m.uid for m in fresh.msgs]
    assert uids == sorted(set(uids)), "UIDs must ascend in mailbox order"
    assert fresh.msgs[-1].digest == late.digest
    assert fresh.msgs[-1].uid == late.uid
    assert "\\Deleted" in fresh.msgs[-1].flags
    assert fresh.uidnext == ahead.uidnext


def test_an_entry_of_a_message_deleted_elsewhere_does_not_linger(upasfs, monkeypatch):
    """The other side of the rule above: an entry above all of a session's
    UIDs may also be a message deleted without imap4d (pop3's DELE+QUIT
    writes only upasfs's ctl).  Listed again and still absent, it goes."""
    for name in ("user", "USER", "LOGNAME"):
        monkeypatch.setenv(name, "glenda")
    first = _view(upasfs)
    last = first.msgs[-1]
    first.ns.write("/mail/fs/ctl", f"delete mbox {last.fsnum}".encode())

    fresh = _view(upasfs)
    with open(upasfs.mbox + ".imp", "rb") as f:
        entries = imp.parse_imp(f.read()).entries
    assert [e.digest for e in entries] == [m.digest for m in fresh.msgs]
    assert last.digest not in {m.digest for m in fresh.msgs}


def test_a_listing_older_than_a_recorded_delete_numbers_nothing_anew(upasfs, monkeypatch):
    """The stress rig's second finding: a session listed upasfs, another
    deleted a message and recorded the .imp without it, and only then did
    the first take the lock: it found a message the file did not know,
    older than ones it knew, and numbered it anew -- UIDs out of order,
    and the disorder spread.  Now it lists again first."""
    for name in ("user", "USER", "LOGNAME"):
        monkeypatch.setenv(name, "glenda")
    behind = _view(upasfs)
    gone = behind.msgs[1]
    behind.ns.write("/mail/fs/ctl", f"delete mbox {gone.fsnum}".encode())
    _view(upasfs)                          # records the .imp without it

    # the interleaving: merge (under the lock) from the listing made before
    gone.uid = 0
    behind.state.uidnext = 1
    behind._under_lock()
    assert gone.expunged
    with open(upasfs.mbox + ".imp", "rb") as f:
        entries = imp.parse_imp(f.read()).entries
    uids = [e.uid for e in entries]
    assert uids == sorted(uids) and gone.digest not in {e.digest for e in entries}


# Issue 13: found by the stress rig with byte-identical messages in its
# corpus and by the session-model rig (tests/reliability/sessions.py).

@pytest.fixture(autouse=True)
def _fresh_digests(monkeypatch):
    """Each test has its own upasfs, numbering alike: a digest one test's
    views read for a message number is not another's (fsview._DIGESTS is
    per process, as imap4d has one upasfs)."""
    monkeypatch.setattr(fsview, "_DIGESTS", {})


def _entries(fs) -> list[imp.Entry]:
    with open(fs.mbox + ".imp", "rb") as f:
        return imp.parse_imp(f.read()).entries


def test_a_listing_older_than_an_expunge_drops_no_later_line(upasfs, monkeypatch):
    """A session listed a new message X; another session numbered X,
    expunged it and numbered a later message Y.  The first, merging from
    its old listing, gave X a new uid above Y's and dropped Y's line (it
    was below the new uid), so the next session numbered Y anew.  Now it
    finds X gone in upasfs and leaves Y's line and uid alone."""
    for name in ("user", "USER", "LOGNAME"):
        monkeypatch.setenv(name, "glenda")
    behind = _view(upasfs)
    mbappend.append_mbox(upasfs.mbox, mbappend.format_message(NEW, "bob"))
    behind._relist()                       # lists X, not yet merged
    x = behind.msgs[-1]
    assert x.uid == 0
    other = _view(upasfs)
    other.modify([other.msgs[-1]], lambda m: setattr(m, "flags", m.flags | {"\\Deleted"}) or True)
    other.expunge(lambda m: "\\Deleted" in m.flags)
    other.check()
    mbappend.append_mbox(upasfs.mbox, mbappend.format_message(
        NEW.replace(b"late", b"later"), "bob"))
    other.check()
    y = other.msgs[-1]
    assert y.uid and y.digest != x.digest

    behind._under_lock()                   # from the listing made before
    assert x.expunged and x.uid == 0
    entries = _entries(upasfs)
    assert (y.digest, y.uid) in {(e.digest, e.uid) for e in entries}
    fresh = _view(upasfs)
    assert fresh.msgs[-1].digest == y.digest and fresh.msgs[-1].uid == y.uid
    uids = [e.uid for e in entries]
    assert uids == sorted(set(uids))


def test_a_new_identical_copy_does_not_take_an_expunged_copys_line(upasfs, monkeypatch):
    """A session expunges copy M (\\Deleted, uid u) while an identical
    copy arrives; its next merge lists the copy before the .imp has lost
    M's line.  The copy must not take that line: it would be reported with
    u, the UID just expunged (RFC 3501 2.3.1.1), and carry M's \\Deleted."""
    for name in ("user", "USER", "LOGNAME"):
        monkeypatch.setenv(name, "glenda")
    view = _view(upasfs)
    m = view.msgs[-1]
    view.modify([m], lambda x: setattr(x, "flags", x.flags | {"\\Deleted"}) or True)
    with open(upasfs.mbox, "rb") as f:
        data = f.read()
    entry = data[data.rindex(b"\nFrom ") + 1:]
    view.expunge(lambda x: x is m)
    mbappend.append_mbox(upasfs.mbox, entry)      # the same bytes again
    view.check()
    copy = view.msgs[-1]
    assert m.expunged and copy is not m and copy.digest == m.digest
    assert copy.uid > m.uid and "\\Deleted" not in copy.flags
    assert [(e.uid, "\\Deleted" in e.flags) for e in _entries(upasfs) if e.digest == m.digest] \
        == [(copy.uid, False)]


def test_a_listed_copy_deleted_since_does_not_take_its_twins_line(upasfs, monkeypatch):
    """The stress rig's third finding (20 clients and a hostile one holding
    L.mbox for a moment): a session listed copy X1 of a message, not yet
    its byte-identical twin X2 (delivered after); while it waited for the
    lock another session numbered both, expunged X1 and recorded the .imp
    without X1's line.  Merging from its old listing, the first gave X1
    the line left, X2's; its next listing showed X1 gone (so that UID was
    reported expunged) and X2 new, numbered anew above the messages after
    it: `UID 17 at seq 11 does not ascend`.  A fresh message that takes a
    line someone else wrote since the session listed must still exist."""
    for name in ("user", "USER", "LOGNAME"):
        monkeypatch.setenv(name, "glenda")
    x = mbappend.format_message(NEW, "bob")
    behind = _view(upasfs)
    mbappend.append_mbox(upasfs.mbox, x)
    behind._relist()                       # lists X1, not yet merged
    x1 = behind.msgs[-1]
    assert x1.uid == 0
    mbappend.append_mbox(upasfs.mbox, x)   # X2: the same bytes
    mbappend.append_mbox(upasfs.mbox, mbappend.format_message(
        NEW.replace(b"late", b"later"), "bob"))
    other = _view(upasfs)
    o1, o2, later = other.msgs[-3:]
    assert o1.digest == o2.digest == x1.digest and o1.uid < o2.uid < later.uid
    other.modify([o1], lambda m: setattr(m, "flags", m.flags | {"\\Deleted"}) or True)
    other.expunge(lambda m: m is o1)
    other.check()                          # the .imp without X1's line

    behind._under_lock()                   # from the listing made before
    assert x1.uid != o2.uid
    behind.check()
    live = [m for m in behind.msgs if not m.expunged]
    assert [(m.digest, m.uid) for m in live[-2:]] == [(o2.digest, o2.uid), (later.digest, later.uid)]
    uids = [m.uid for m in behind.msgs if m.uid]
    assert uids == sorted(set(uids)), "UIDs must ascend in mailbox order"
    assert o2.uid not in {m.uid for m in behind.msgs if m.expunged}
