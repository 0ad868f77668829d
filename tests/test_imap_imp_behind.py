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

from upas import mbappend
from upas import ns as nsmod
from upas.imap4d import imp
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
    ahead.modify([late], lambda m: m.flags.add("\\Deleted") or True)

    # the session behind rewrites the file from its older listing
    with behind.ns.lock(behind.dir):
        behind._merge_imp()
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
    behind.uidnext = 1
    behind._under_lock()
    assert gone.expunged
    with open(upasfs.mbox + ".imp", "rb") as f:
        entries = imp.parse_imp(f.read()).entries
    uids = [e.uid for e in entries]
    assert uids == sorted(uids) and gone.digest not in {e.digest for e in entries}
