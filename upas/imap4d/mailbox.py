"""The selected mailbox, seen through the namespace as Plan 9 imap4d sees it.

The mailbox file `/mail/box/U/<name>` is opened in upasfs by writing
`open PATH NAME` to `/mail/fs/ctl` (upas/mail/fsview.py names the view);
its messages are then the numbered directories of `/mail/fs/NAME/`.  UIDs
and flags live in the `.imp` shadow file beside the mailbox (imp.py),
which every session re-reads and rewrites under the mail lock, so
sessions see each other's changes; impstate.py merges it with the
listing, prefetch.py reads the messages' files for a command.

Change detection (docs/spec/servers.md §3.9): the fs directory is re-listed when its
qid or mtime changed; vanished directories become *pending expunges*, new
ones new messages; a changed `.imp` yields flag updates.  The session
reports these at the points RFC 3501 allows.
"""
from __future__ import annotations

import bisect
import operator
import os
from typing import AbstractSet, Callable

from upas import ns as nsmod
from upas.mail import safewrite
from upas.mail.fsview import FsView, view_name
from upas.imap4d import imp, modseq, modtail, msgview, selectmark
from upas.imap4d.impstate import ImpState
from upas.imap4d.message import RECENT, Message
from upas.imap4d.msgview import Lazy

__all__ = ["Mailbox", "MailboxError", "MailboxLost", "Message"]

_EXPUNGED, _UID = operator.attrgetter("expunged"), operator.attrgetter("uid")
RELIST_TRIES = 8             # listings before numbering an unknown old message


def _stamp(d: nsmod.Dir) -> tuple:
    """What of the view directory's stat tells that upasfs's listing changed."""
    return (d.qid, d.mtime, d.length)


class MailboxError(Exception):
    """The mailbox cannot be opened; the text goes into the NO reply."""


class MailboxLost(Exception):
    """upasfs died under the session: its message numbers mean nothing any
    more, so the session ends (BYE) rather than report every message
    expunged, which a syncing client would take for deletions."""


class Mailbox:
    """One mailbox opened in upasfs (its FsView), with its .imp state."""

    def __init__(self, ns: nsmod.Namespace, path: str, readonly: bool = False,
                 keep_recent: bool = False):
        self.ns = ns
        self.path = path                     # /mail/box/U/mbox
        self.dir = os.path.dirname(path)
        self.view: FsView | None = None        # once open
        self.imppath = path + ".imp"
        self.kwpath = path + ".kw.imp"
        self.readonly = readonly
        self.state = ImpState(keep_recent or readonly)
        # MODSEQs beside the .imp (modseq.py), synced at every merge; a
        # proof of the record's base lets SELECT read its log alone (modtail.py)
        self.modseqs = modtail.Proved(path)
        self._msgs: list[Message] = []
        # the messages as their columns while no command has walked them
        # (msgview.py: a SELECT made from the .imp's lines); see msgs
        self._lazy: Lazy | None = None
        self.fs_stamp = None                 # (qid, mtime) of the fs dir
        # the command has listed upasfs already (STORE: resolve_present's
        # check): its closing check() looks at the .imp only, once
        self.listed = False
        self.imp_stamp = None
        self.flag_changes: list[Message] = []   # flag updates to report
        self.exists_reported = 0             # the messages the client knows: msgs[:n]
        self.keywords: set[str] = set()      # keywords messages of this view have had
        self.announced: set[str] = set()     # those the client was told of (FLAGS)
        self.recent_reported = 0
        self.gone = False
        # <path>.mark.imp as read at open (selectmark.py), and the listing
        # upasfs's summary gave the open, to be recorded there (only an
        # open's: a session's later listings follow others' changes, which
        # the next SELECT's mark would not match anyway)
        self.marked: bytes | None = None
        self.summary: selectmark.Listing | None = None
        self.taken = False              # msgs made from the .imp's lines (_from_mark)
        self.opening = False

    @property
    def msgs(self) -> list[Message]:
        """The messages, in mailbox order (the expunged ones are those not
        reported yet).  A view opened lazily makes them all here, once:
        the commands walk a list; SELECT's own questions go to _view().
        (A copy of the Lazy's list: the state may hold the Lazy as the
        messages it wrote the .imp for, which this list's changes are not.)"""
        if self._lazy is not None:
            self._msgs, self._lazy = list(self._lazy.all()), None
        return self._msgs

    @msgs.setter
    def msgs(self, msgs: list[Message]) -> None:
        self._msgs, self._lazy = msgs, None

    def _view(self) -> list[Message] | Lazy:
        """The messages as they are held: the Lazy while no message list
        has been asked for, else the list."""
        lazy = self._lazy
        if lazy is not None and lazy.full is not None:    # walked meanwhile (impstate)
            self._msgs, self._lazy = list(lazy.full), None
        return self._lazy if self._lazy is not None else self._msgs

    @property
    def uidvalidity(self) -> int:
        return self.state.uidvalidity

    @property
    def uidnext(self) -> int:
        return self.state.uidnext

    @property
    def imp_known(self) -> tuple[bytes, bytes | None] | None:
        """The .imp and .kw.imp as this view last wrote (or found) them."""
        return self.state.known

    # -- opening -------------------------------------------------------
    def open(self) -> None:
        self.opening = True
        try:
            with msgview.uncollected():
                self._open()
        finally:
            self.opening = False
            self.marked = self.summary = None

    def _open(self) -> None:
        try:
            st = self.ns.stat(self.path)
        except nsmod.Error as e:
            raise MailboxError(str(e)) from None
        if st.isdir:
            raise MailboxError("is a directory")
        try:                            # before listing (see ImpState.listed)
            self.state.listed = self.ns.read(self.imppath)
        except nsmod.Error:
            self.state.listed = None
        self.marked, recorded = selectmark.read(self.ns, self.path)
        lines = None                    # its lines are the recorded listing's messages
        if recorded is not None and self.state.listed is not None:
            lines = imp.line_columns(self.state.listed, recorded.digests,
                                     recorded.column or None, recorded.column_at)
        # upasfs takes the mail lock itself when it reads the mailbox, so
        # the fs is consulted first and the lock held for the .imp only.
        # A view the mark proves (the same upasfs's same mailbox object,
        # opened for this path by the session that recorded it) is there
        # already: the ctl `open`, a no-op then, is not sent (a round trip)
        self.view = FsView(self.ns, view_name(self.ns.user, self.path))
        try:
            marked = self._from_mark(recorded, selectmark.key(st), lines)
        except MailboxLost:             # (the open says so, as it always did)
            marked = False
        if not marked:
            try:
                self.view = FsView.open(self.ns, self.path)
            except nsmod.Error as e:
                raise MailboxError(str(e)) from None
            self._relist(force=True)
            self._take_listed()
        if not self.taken:
            self.state.parse(self.state.listed)     # outside the lock (see parse)
        self._under_lock()
        self.exists_reported = len(self._view())
        self.recent_reported = self.recent()
        self.flag_changes.clear()

    def close(self) -> None:
        """Nothing to do in upasfs: the view is shared by name (fsview) and
        dropping it would pull it from under other sessions."""

    # -- reading the fs ------------------------------------------------
    def _from_mark(self, got: selectmark.Listing | None, boxkey: str,
                   lines: tuple[list[int], bytes] | None) -> bool:
        """The listing recorded in <path>.mark.imp, if upasfs's mark and the
        mailbox file's stat (boxkey) prove it is upasfs's listing now
        (selectmark.py): then no file of a message is read.  `lines`: the
        uids and flag masks of the .imp's lines, when they are these
        messages (imp.line_columns): the view's columns, its messages made
        from them when asked for (msgview.py; _merge makes sure the file is
        still the one they came from)."""
        if got is None or got.boxkey != boxkey:
            return False
        try:                            # the stat first: a change after it is seen later
            d, mark = self.view.stat_and_mark()
        except nsmod.Hungup:
            raise MailboxLost("upas/fs has gone away") from None
        except nsmod.Error:
            return False
        stamp = _stamp(d)
        if mark != got.mark:
            return False
        self.fs_stamp = stamp
        self.view.know(stamp[0].path, got.nums, got.digests)
        if lines is not None and len(lines[0]) == len(got.nums):    # (uids, flag masks)
            self._msgs, self._lazy = [], Lazy(got.nums, got.digests, *lines)
            self.taken = True
        else:
            self.msgs = [Message(n, d, flags=RECENT) for n, d in zip(got.nums, got.digests)]
        self.state.listing()
        return True

    def _take_listed(self) -> None:
        """The messages upasfs listed take the uids and flags of the .imp
        read before the listing, if its lines are these messages in order
        (imp.lines_of; _merge makes sure the file is still that one)."""
        if self.state.listed is None or any(m.uid for m in self.msgs):
            return
        got = imp.lines_of(self.state.listed, [m.digest for m in self.msgs])
        if got is not None:
            for m, uid, flags in zip(self.msgs, *got):
                m.uid, m.flags, m.file_recent = uid, flags, False
            self.taken = True

    def _numbers(self, qpath: int) -> list[int]:
        """The message numbers, from upasfs's summary where it has one (the
        digests then known too: one read instead of one per message)."""
        boxkey = None
        if self.opening:                # first, as for the mark (see _from_mark)
            try:
                boxkey = selectmark.key(self.ns.stat(self.path))
            except nsmod.Error:
                pass
        got = self.view.summary()
        if got is None:
            return self.view.numbers()
        self.view.know(qpath, got.nums, got.digests)
        if boxkey is not None:
            self.summary = selectmark.Listing(got.mark, boxkey, got.nums, got.digests)
        return got.nums

    def _fs_stamp(self):
        return _stamp(self.view.stat())

    def _relist(self, force: bool = False) -> bool:
        """Re-read the fs directory if it changed; True if anything did."""
        try:
            stamp = self._fs_stamp()
        except nsmod.Hungup:
            raise MailboxLost("upas/fs has gone away") from None
        except nsmod.Error:
            return self._vanish()
        if not force and stamp == self.fs_stamp:
            self.state.listing()        # our listing is still upasfs's
            return False
        self.fs_stamp = stamp
        nums = self._numbers(stamp[0].path)
        have = set(nums)
        changed = False
        for m in self.msgs:
            if not m.expunged and m.fsnum not in have:
                m.expunged = True
                changed = True
        known = {m.fsnum for m in self.msgs}
        last = max(known, default=0)
        new = [n for n in nums if n not in known and n > last]
        qpath = stamp[0].path
        for n, digest in zip(new, self.view.digests(new, qpath)):
            if not digest:
                # Unreadable (a busy fs) or vanished meanwhile: stop here and
                # look again next time.  Skipping it would lose it for good,
                # since only numbers above the last known one are taken.
                self.fs_stamp = None
                break
            self.msgs.append(Message(n, digest, flags=RECENT))
            changed = True
        else:
            self.state.listing()        # a whole listing, made after them
        return changed

    def _vanish(self) -> bool:
        """The mailbox is gone: everything becomes pending expunge."""
        self.gone = True
        self.readonly = True
        for m in self.msgs:
            m.expunged = True
        return True

    # -- the .imp --------------------------------------------------------
    def _under_lock(self, apply: Callable[[], None] | None = None, write: bool = True) -> None:
        """Merge the .imp under the lock (impstate.py), apply a change,
        write the file.  Our listing, made before we took the lock (upasfs
        takes it to read the mailbox), may be out of date: when the merge
        says so, we list again and merge again, a few times at most."""
        settle = False
        self.state.doubted = None
        for attempt in range(RELIST_TRIES):
            last = attempt == RELIST_TRIES - 1
            with self.ns.lock(self.dir):
                numbered = self._merge(settle, force=last)
                if numbered:
                    if apply is not None:
                        apply()
                        apply = None
                        self.state.exact = False
                    # the renames' directory fsyncs after the MODSEQ
                    # record's sync: both before the lock is let go and
                    # anyone told, in one journal commit, not two
                    # (docs/decisions.md)
                    later: list[Callable[[], None]] = []
                    try:
                        if write:
                            self._write_imp(later)
                        modseq.sync_box(self)
                    finally:
                        for sync in later:
                            sync()
                    if self.opening:
                        self._record()
                self.state.unlocked()
            if numbered and (not self.state.ahead or last):
                return
            write = True                # what the new listing changed
            relisted = self._relist()
            settle = not numbered and not relisted   # nothing new: number now
            if self.gone:
                return

    def _merge(self, settle: bool, force: bool) -> bool:
        """ImpState.merge of the files as they are now (the lock held);
        False: nothing taken, list again first."""
        data = imp.read_file(self.ns, self.imppath)
        kwdata = imp.read_file(self.ns, self.kwpath)
        if self.taken and data != self.state.listed:
            for m in self.msgs:         # made from lines that changed since
                m.uid, m.flags, m.file_recent = 0, RECENT, True
            self.taken = False
        taken, self.taken = self.taken, False
        got = self.state.merge(data, kwdata, self._view(), taken=taken,
                               settle=settle, force=force,
                               new_validity=lambda: imp.new_uidvalidity(self.ns, self.path),
                               vanished=self._vanished)
        if got is None:
            return False
        self.flag_changes += [m for m in got.changed if m not in self.flag_changes]
        self.keywords |= got.keywords
        self.imp_stamp = self._imp_stamp()
        return True

    def _record(self) -> None:
        """The open's listing from upasfs's summary, into <path>.mark.imp
        for the next SELECT (the lock held)."""
        if self.summary is None:
            return
        mark = selectmark.render(self.summary)
        if mark != self.marked:
            selectmark.write(self.ns, self.path, mark)
        self.marked, self.summary = mark, None

    def _vanished(self, msgs: list[Message]) -> list[Message]:
        """Those of msgs upasfs no longer has.  Our listing was made before
        we took the lock and may predate a delete (whose session has since
        dropped the message's line); a walk to a message directory does not
        make upasfs read the mailbox (a listing would, and it would wait for
        the lock we hold), so this look is current."""
        if not msgs:
            return []
        got = self.view.stat_many([(m.fsnum, "") for m in msgs])
        gone = [m for m, d in zip(msgs, got) if d is None]
        if gone:
            try:
                self.view.alive()
            except nsmod.Hungup:
                raise MailboxLost("upas/fs has gone away") from None
        return gone

    def _imp_stamp(self):
        try:
            d = self.ns.stat(self.imppath)
            k = self.ns.stat(self.kwpath) if self.ns.exists(self.kwpath) else None
            return (d.qid, d.mtime, d.length, k and (k.qid, k.length))
        except nsmod.Error:
            return None

    def _write_imp(self, later: list[Callable[[], None]] | None = None) -> None:
        """Write what the merge (and the change) made of the files, each
        only if it changed (called with the lock held, right after it);
        the renames' directory fsyncs go to `later` if given (safewrite)."""
        old = self.state.read[0]
        data, kw = self.state.render(self._view())
        if data is not None:
            self._replace_imp(old, data, later)
        if kw is not None:
            safewrite.replace(self.ns, self.kwpath, kw, later=later)
        if data is not None or kw is not None or self.imp_stamp is None:
            self.imp_stamp = self._imp_stamp()

    def _replace_imp(self, old: bytes | None, data: bytes,
                     later: list[Callable[[], None]] | None = None) -> None:
        """The .imp becomes `data`: when only one line's flags field
        changed (a STORE on one message), it is written in place (one
        write, fdatasync: imp.flags_edit); else the file is replaced whole."""
        edit = imp.flags_edit(old, data) if old is not None else None
        if edit is not None:
            try:
                self.ns.write_at(self.imppath, [edit], sync=True)
                return
            except nsmod.Error:
                pass                    # the whole file, as always
        safewrite.replace(self.ns, self.imppath, data, later=later)

    # -- change detection ------------------------------------------------
    def check(self) -> None:
        """Notice new mail, vanished messages and others' flag changes."""
        if self.gone:
            return
        relisted = False if self.listed else self._relist()
        self.listed = False
        if self.gone:       # upasfs (or the box) went away: an empty .imp would
            return          # drop every UID and flag (found by the crash harness)
        if relisted or self._imp_stamp() != self.imp_stamp:
            # new uids or vanished messages to record if relisted
            self._under_lock(write=relisted)

    def modify(self, msgs: list[Message], change, looked: bool = False,
               changed: Callable[[], None] | None = None,
               columns: Callable[[], bool] | None = None) -> list[Message]:
        """Apply change(msg) -> bool (True if it changed) to messages, under
        the lock, after catching up with others; the .imp is rewritten.
        `looked`: the command's own check() has just listed upasfs (STORE):
        a second listing would find the same (a 9P stat), and what came
        since is found by the merge under the lock, which lists again.
        `changed()` is called once the messages are changed, before the
        files are written (STORE starts its reply then).  `columns()`, if
        given, makes the change on a lazy view's columns instead, when it
        can (True; nothing touched is returned then)."""
        touched = []
        if not looked:
            self._relist()
        if self.gone:       # upasfs died: nothing can be recorded, say so
            raise MailboxError("mailbox is gone")
        def apply() -> None:
            if columns is None or not columns():
                touched.extend(m for m in msgs if not m.expunged and change(m))
            if changed is not None:
                changed()
        self._under_lock(apply)
        return touched

    # -- queries ---------------------------------------------------------
    def unchanged(self) -> bool:
        """Neither the fs directory nor the .imp changed since this view
        last looked: it holds what opening the mailbox afresh would read."""
        if self.gone or self.fs_stamp is None or self.imp_stamp is None:
            return False
        try:
            stamp = self._fs_stamp()
        except nsmod.Error:
            return False
        return stamp == self.fs_stamp and self._imp_stamp() == self.imp_stamp

    def _columns(self) -> Lazy | None:
        """The Lazy, when no message of it is expunged (its columns then
        answer for every message); else None."""
        lazy = self._view()
        return lazy if isinstance(lazy, Lazy) and not lazy.any_expunged() else None

    def lazy(self) -> Lazy | None:
        """The view as columns (msgview.Lazy) while no command has walked
        it and none of its messages is expunged: what a command reading
        flags, UIDs and MODSEQs only answers from (session.resolve)."""
        return self._columns()

    def count(self) -> int:
        """len(msgs), without making a lazy view's messages."""
        return len(self._view())

    def run(self, lo: int, hi: int) -> list[Message]:
        """msgs[lo:hi], a lazy view's few made alone."""
        return self._view()[lo:hi]

    def recent(self) -> int:
        lazy = self._columns()
        if lazy is not None:
            return lazy.count_with("\\Recent")
        return sum(1 for m in self.msgs if "\\Recent" in m.flags and not m.expunged)

    def first_unseen(self) -> int | None:
        lazy = self._columns()
        if lazy is not None:
            k = lazy.first_without("\\Seen")
            return None if k is None else k + 1
        for i, m in enumerate(self.msgs):
            if "\\Seen" not in m.flags:
                return i + 1
        return None

    def seq(self, m: Message) -> int:
        """The sequence number of m: found by its uid (UIDs ascend in
        mailbox order), else looked for (a message that vanished before it
        was numbered keeps uid 0 until reported)."""
        lazy = self._view()
        if isinstance(lazy, Lazy):
            k = lazy.find(m.uid)
            if k is not None and lazy.at(k) is m:
                return k + 1
        lo, hi = 0, len(self.msgs)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.msgs[mid].uid < m.uid:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(self.msgs) and self.msgs[lo] is m:
            return lo + 1
        return next(i for i, x in enumerate(self.msgs) if x is m) + 1

    def with_uids(self, uids: AbstractSet[int]) -> list[Message]:
        """The messages not expunged whose uid is one of `uids`, in mailbox
        order.  A few are found by their uids (they ascend in mailbox
        order, as seq() uses), not by a pass over every message (QRESYNC's
        SELECT: the 20 changed of 10,000); a uid not found so (gone, or a
        message not numbered yet in the way) and every message is looked at.
        A lazy view's few are made from their places (msgview.py: every
        message has its uid there, so a uid not found has no message)."""
        lazy = self._columns()
        if lazy is not None and len(uids) * 16 < len(lazy):
            places = map(lazy.find, sorted(uids))
            return [lazy.at(k) for k in places if k is not None]
        msgs = self.msgs
        if len(uids) * 16 < len(msgs):
            out = []
            for u in sorted(uids):
                k = bisect.bisect_left(msgs, u, key=_UID)
                if k == len(msgs) or msgs[k].uid != u:
                    break
                out.append(msgs[k])
            else:
                return [m for m in out if not m.expunged]
        return [m for m in msgs if m.uid in uids and not m.expunged]

    def seqs(self, msgs: list[Message]) -> list[int]:
        """seq() of many messages (in mailbox order), in one pass (a few of
        a lazy view by their uids, as seq())."""
        if isinstance(self._view(), Lazy) and len(msgs) * 16 < len(self._view()):
            return [self.seq(m) for m in msgs]
        if len(msgs) == len(self.msgs) and msgs == self.msgs:    # (by identity, in C)
            return list(range(1, len(msgs) + 1))
        out, i, all_ = [], 0, self.msgs
        for m in msgs:
            while i < len(all_) and all_[i] is not m:
                i += 1
            if i == len(all_):            # not in order after all
                return [self.seq(m) for m in msgs]
            out.append(i + 1)
        return out

    # -- removal -----------------------------------------------------------
    def expunge(self, pred) -> None:
        """Delete the messages with pred(msg) true (\\Deleted ones) via the
        fs ctl; they show up as vanished at the next check."""
        self.view.delete([m.fsnum for m in self.msgs if not m.expunged and pred(m)])
        self.fs_stamp = None

    def drop_unannounced(self) -> None:
        """Messages that came and went between two reports to the client
        (after msgs[:exists_reported], the ones it knows) go unreported:
        an EXPUNGE for them would name a number it never had."""
        known = self.exists_reported
        if self._columns() is not None and known == len(self._view()):
            return                      # (nothing expunged, nothing new)
        if any(map(_EXPUNGED, self.msgs[known:])):
            self._forget(m for m in self.msgs[known:] if m.expunged)
            self.msgs[known:] = [m for m in self.msgs[known:] if not m.expunged]

    def take_expunged(self) -> list[int]:
        """Drop pending expunges; their sequence numbers as each is removed
        in turn (already adjusted, as `* n EXPUNGE` needs).  Only messages
        the client knows: drop_unannounced first."""
        self.drop_unannounced()
        if self._columns() is not None:
            return []
        if not any(map(_EXPUNGED, self.msgs)):     # (every command asks: in C)
            return []
        seqs = [i + 1 - k for k, i in enumerate(i for i, m in enumerate(self.msgs) if m.expunged)]
        if seqs:
            self._forget(m for m in self.msgs if m.expunged)
            self.msgs = [m for m in self.msgs if not m.expunged]
            self.exists_reported -= len(seqs)
        return seqs

    def _forget(self, gone) -> None:
        gone = {id(m) for m in gone}
        self.flag_changes = [m for m in self.flag_changes if id(m) not in gone]

