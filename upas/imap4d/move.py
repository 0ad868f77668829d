"""MOVE and UID MOVE (RFC 6851): copy, then expunge just the moved messages.

The copies are stored by append.deliver (so their uids are the ones the
target will keep); then `* OK [COPYUID ...]` is sent, the sources are
deleted through upasfs, and their `* n EXPUNGE` lines follow, before the
tagged OK, as RFC 6851 3.3 asks.  A read-only (EXAMINEd) box refuses.
"""
from __future__ import annotations

from upas import ns as nsmod
from upas.mail.lock import LockError

from .append import Item, deliver
from .copy import stored_entries, target_path
from .mailbox import MailboxError


def cmd_move(s, req) -> None:
    ranges, target = req.args
    box = s.box
    path = target_path(s, req, target)
    if path is None:
        return None
    if box.readonly:
        return s.no(req, "mailbox is read-only")
    s.report(expunges=req.uid, uid=req.uid)   # what changed first (RFC 3501 5.2, 7.4.1)
    msgs, ok = s.resolve(ranges, req.uid)
    if not ok or any(m.expunged for m in msgs):
        return s.no(req)
    try:
        items = [Item(e, set(m.flags) - {"\\Recent"}, list(m.keywords))
                 for e, m in zip(stored_entries(box, msgs), msgs)]
        validity, uids = deliver(s, path, items) if items else (0, [])
    except (MailboxError, nsmod.Error, OSError, LockError) as e:
        s.log(f"move: {e}")
        return s.no(req)
    if msgs and all(uids):
        src = ",".join(str(m.uid) for m in msgs)
        s.untagged(f"OK [COPYUID {validity} {src} {','.join(map(str, uids))}] moved")
    moved = {id(m) for m in msgs}
    try:
        box.expunge(lambda m: id(m) in moved)
    except nsmod.Error as e:   # the copies exist; nothing is lost
        s.log(f"move: expunge: {e}")
        s.report(expunges=True, uid=req.uid)
        return s.tagged(req, f"NO {req.echo} copied but not expunged")
    s.report(expunges=True, uid=req.uid)
    s.ok(req)
