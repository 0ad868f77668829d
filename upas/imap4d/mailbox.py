"""The selected mailbox, seen through the namespace as Plan 9 imap4d sees it.

The mailbox file `/mail/box/U/<name>` is opened in upasfs by writing
`open PATH FSNAME` to `/mail/fs/ctl`; its messages are then the numbered
directories of `/mail/fs/FSNAME/`.  UIDs and flags live in the `.imp`
shadow file beside the mailbox (imp.py), which every session re-reads and
rewrites under the mail lock, so sessions see each other's changes.

Change detection (docs/spec/servers.md §3.9): the fs directory is re-listed when its
qid or mtime changed; vanished directories become *pending expunges*, new
ones new messages; a changed `.imp` yields flag updates.  The session
reports these at the points RFC 3501 allows.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Callable

from upas import fsctl
from upas import ns as nsmod
from upas.mail import safewrite
from upas.mail.mime import MAX_DEPTH
from upas.imap4d import imp, modseq, prefetch

DELETE_BATCH = 8192          # bytes per `delete` ctl write, as Bell
RELIST_TRIES = 8             # listings before numbering an unknown old message
DIGEST_READ = 1024           # bytes read of a digest file: all of it
# per-message files kept in memory once read (bodies are not: a big
# mailbox would end up in memory)
CACHED = {"rawheader", "mimeheader", "unixheader", "digest", "type"}


# upasfs dir -> (its qid.path, {message number: digest}).  A number names
# one message for as long as upasfs keeps that mailbox open (the same
# qid.path): numbers are never reused.  So a process reads a digest once,
# though APPEND and STATUS open their mailbox afresh every time.
_DIGESTS: dict[str, tuple[int | None, dict[int, str]]] = {}


class MailboxError(Exception):
    """The mailbox cannot be opened; the text goes into the NO reply."""


class MailboxLost(Exception):
    """upasfs died under the session: its message numbers mean nothing any
    more, so the session ends (BYE) rather than report every message
    expunged, which a syncing client would take for deletions."""


@dataclass(eq=False)
class Message:
    fsnum: int
    digest: str
    uid: int = 0
    flags: set[str] = field(default_factory=set)
    keywords: list[str] = field(default_factory=list)
    expunged: bool = False            # gone from the fs, not yet reported
    # the .imp still holds its \\Recent (or does not know it yet): what a
    # read-only view writes back as `r` (EXAMINE and STATUS keep \\Recent)
    file_recent: bool = True
    cache: dict = field(default_factory=dict)

    def flag_list(self) -> list[str]:
        """Flags in Plan 9's order, then keywords."""
        return [f for _, f in imp.FLAG_CHARS if f in self.flags] + self.keywords


def fs_name(path: str) -> str:
    """The upasfs name this mailbox is opened under: `mbox` for the inbox
    /mail/box/USER/mbox (shared with pop3 and other sessions, as one upasfs
    view), else a name derived from the path (upasfs names may not contain
    `/`)."""
    if re.fullmatch(r"/mail/box/[^/]+/mbox", path):
        return "mbox"
    return "imap-" + hashlib.sha1(path.encode()).hexdigest()[:10]


class Mailbox:
    """One mailbox opened in upasfs, with its .imp state."""

    def __init__(self, ns: nsmod.Namespace, path: str, readonly: bool = False,
                 keep_recent: bool = False):
        self.ns = ns
        self.path = path                     # /mail/box/U/mbox
        self.dir = os.path.dirname(path)
        self.fsname = fs_name(path)
        self.fsdir = f"/mail/fs/{self.fsname}"
        self.imppath = path + ".imp"
        self.kwpath = path + ".kw.imp"
        self.readonly = readonly
        # a read-only view (EXAMINE, STATUS) leaves \\Recent as the file has
        # it (RFC 3501 6.3.2; Plan 9's EXAMINE cleared it: docs/decisions.md)
        self.keep_recent = keep_recent or readonly
        self.msgs: list[Message] = []
        self.uidvalidity = 0
        self.uidnext = 1
        self.fs_stamp = None                 # (qid, mtime) of the fs dir
        self.imp_stamp = None
        self.flag_changes: list[Message] = []   # flag updates to report
        self.exists_reported = 0             # the messages the client knows: msgs[:n]
        self.keywords: set[str] = set()      # keywords messages of this view have had
        self.announced: set[str] = set()     # those the client was told of (FLAGS)
        self.recent_reported = 0
        self.gone = False
        self._ahead: list[tuple[imp.Entry, list[str]]] = []   # see _newer
        self._unlisted: set[tuple[str, int]] = set()   # ahead, before our last listing
        self._imp_read: tuple[bytes | None, bytes | None] = (None, None)
        # the .imp and .kw.imp as this view last wrote them (or found them
        # right), set by a merge and write under one lock; else None
        self.imp_known: tuple[bytes, bytes | None] | None = None
        self._known_live: list[Message] = []      # the messages it was for
        self._imp_exact = False             # the merge took the file as it is
        self._doubted: bytes | None = None  # the .imp as a merge found it doubtful
        # the .imp as it stood when our listing was made: as we left it at
        # our last unlock (or read just before the first listing); a file
        # unchanged since has recorded no delete our listing predates
        self._imp_listed: bytes | None = None
        self._imp_now: bytes | None = None      # the .imp as last read or written
        # FETCH and SEARCH read many messages' files at once (prefetch.py)
        self.held: dict[tuple[int, str], object] = {}   # files read for them
        self.speculative = False
        # MODSEQs beside the .imp (modseq.py), synced at every merge
        self.modseqs = modseq.Modseqs(path)

    # -- opening -------------------------------------------------------
    def open(self) -> None:
        try:
            st = self.ns.stat(self.path)
        except nsmod.Error as e:
            raise MailboxError(str(e)) from None
        if st.isdir:
            raise MailboxError("is a directory")
        try:                            # before listing (see _imp_listed)
            self._imp_listed = self.ns.read(self.imppath)
        except nsmod.Error:
            self._imp_listed = None
        try:
            fsctl.open_mailbox(self.ns, self.path, self.fsname)
        except nsmod.Error as e:
            raise MailboxError(str(e)) from None
        # upasfs takes the mail lock itself when it reads the mailbox, so
        # the fs is consulted first and the lock held for the .imp only
        self._relist(force=True)
        self._under_lock()
        self.exists_reported = len(self.msgs)
        self.recent_reported = self.recent()
        self.flag_changes.clear()

    def close(self) -> None:
        """Nothing to do in upasfs: the view is shared by name (see fs_name)
        and dropping it would pull it from under other sessions."""

    # -- reading the fs ------------------------------------------------
    def _fs_stamp(self):
        d = self.ns.stat(self.fsdir)
        return (d.qid, d.mtime, d.length)

    def _relist(self, force: bool = False) -> bool:
        """Re-read the fs directory if it changed; True if anything did."""
        ahead = {(e.digest, e.uid) for e, _ in self._ahead}
        try:
            stamp = self._fs_stamp()
        except nsmod.Hungup:
            raise MailboxLost("upas/fs has gone away") from None
        except nsmod.Error:
            return self._vanish()
        if not force and stamp == self.fs_stamp:
            self._unlisted = ahead      # our listing is still upasfs's
            return False
        self.fs_stamp = stamp
        nums = sorted(int(n) for n in self.ns.readdir_names(self.fsdir) if n.isdigit())
        have = set(nums)
        changed = False
        for m in self.msgs:
            if not m.expunged and m.fsnum not in have:
                m.expunged = True
                changed = True
        known = {m.fsnum for m in self.msgs}
        last = max(known, default=0)
        new = [n for n in nums if n not in known and n > last]
        for n, digest in zip(new, self._digests(new)):
            if not digest:
                # Unreadable (a busy fs) or vanished meanwhile: stop here and
                # look again next time.  Skipping it would lose it for good,
                # since only numbers above the last known one are taken.
                self.fs_stamp = None
                break
            self.msgs.append(Message(n, digest, flags={"\\Recent"}))
            changed = True
        else:
            self._unlisted = ahead      # a whole listing, made after them
        return changed

    def _digests(self, nums: list[int]) -> list[str]:
        """The digests of many messages, their reads pipelined on the 9P
        connection (a digest is one short read); each read once a process."""
        qpath = self.fs_stamp[0].path if self.fs_stamp else None
        known = _DIGESTS.get(self.fsdir)
        if known is None or known[0] != qpath:
            known = _DIGESTS[self.fsdir] = (qpath, {})
        seen = known[1]
        todo = [n for n in nums if n not in seen]
        got = self.ns.read_many([f"{self.fsdir}/{n}/digest" for n in todo], DIGEST_READ) \
            if todo else []
        for n, d in zip(todo, got):
            if d is not None and d.strip():
                seen[n] = d.decode().strip()
        return [seen.get(n, "") for n in nums]

    def _vanish(self) -> bool:
        """The mailbox is gone: everything becomes pending expunge."""
        self.gone = True
        self.readonly = True
        for m in self.msgs:
            m.expunged = True
        return True

    # -- the .imp --------------------------------------------------------
    def _under_lock(self, apply: Callable[[], None] | None = None, write: bool = True) -> None:
        """Merge the .imp under the lock, apply a change, write the file.

        We list upasfs before taking the lock (upasfs takes it to read the
        mailbox), so our listing may be out of date in two ways, each met
        by listing again and merging again (a few times at most):
        - it may predate a delete another session has recorded: a message
          we list that the file does not know, older than messages it does
          know, is most likely such a one, and numbering it anew would put
          UIDs out of order (the stress rig saw the disorder spread);
          so is a message we have numbered whose entry has gone (writing
          it back would also drop the line of a later identical copy);
          a message still there after a new listing lost its entry and is
          numbered anew (or keeps its uid);
        - the file may number messages we have not listed (kept: _newer);
          those a new listing still lacks were deleted, and go;
        - a new message we list may have been deleted since and its line
          dropped, leaving the line of an identical copy we have not
          listed for it to take: when the file changed since our listing,
          the new messages that take a line are looked up (_unconfirmed)."""
        settle = False
        self._doubted = None
        for attempt in range(RELIST_TRIES):
            last = attempt == RELIST_TRIES - 1
            with self.ns.lock(self.dir):
                numbered = self._merge_imp(settle, force=last)
                if numbered:
                    if apply is not None:
                        apply()
                        apply = None
                        self._imp_exact = False
                    if write:
                        self._write_imp()
                    modseq.sync_box(self)
                self._imp_listed = self._imp_now
            if numbered and (not self._ahead or last):
                return
            write = True                # what the new listing changed
            relisted = self._relist()
            settle = not numbered and not relisted   # nothing new: number now
            if self.gone:
                return

    def _merge_imp(self, settle: bool = True, force: bool = True) -> bool:
        """Read the .imp (and keywords) and reconcile them with the messages;
        called with the lock held.  Messages without a uid get new ones --
        unless the file and our listing disagree as an out-of-date listing
        would (_doubtful): then False, nothing taken (see _under_lock).  The
        disagreement is acted on when `force`d, or when `settle`: our new
        listing showed nothing new and the file is as it was when we
        doubted (a listing made before another session's write, which we
        waited for at the lock, is out of date again)."""
        data = imp.read_file(self.ns, self.imppath)
        kwdata = imp.read_file(self.ns, self.kwpath)
        self._imp_now = data
        if self._as_written(data, kwdata):
            self._imp_read = (data, kwdata)
            self.imp_stamp = self._imp_stamp()
            return True
        parsed = imp.parse_imp(data) if data else None
        if parsed and self.uidvalidity and parsed.uidvalidity != self.uidvalidity:
            parsed = None               # someone else's box now; keep ours
        if not self.uidvalidity:
            self.uidvalidity = (parsed.uidvalidity if parsed
                                else imp.new_uidvalidity(self.ns, self.path))
        live = [m for m in self.msgs if not m.expunged]
        found, uidnext, unclaimed = self._match(parsed, live)
        self._imp_read = (data, kwdata)     # _write_imp skips an unchanged file
        self.imp_known = None
        doubt = self._doubtful(live, found, unclaimed)
        if self._drop_vanished(self._unconfirmed(live, found, doubt, data)):
            live = [m for m in self.msgs if not m.expunged]
            found, uidnext, unclaimed = self._match(parsed, live)
            doubt = self._doubtful(live, found, unclaimed)
        if doubt and not force:
            if not settle or data != self._doubted:
                self._doubted = data
                return False            # nothing taken: list again first
        self._imp_exact = self._takes_all(live, parsed, found, uidnext) and imp.as_parsed(data, parsed)
        kws = imp.parse_keywords(kwdata) if kwdata else {}
        for m, e in zip(live, found):
            self._apply_entry(m, e, kws)
            m.file_recent = e is None or "\\Recent" in e.flags
        self.uidnext = uidnext
        for m in live:
            if not m.uid:
                m.uid = self.uidnext
                self.uidnext += 1
        self._ahead = self._newer(parsed, unclaimed, live, kws)
        self.imp_stamp = self._imp_stamp()
        return True

    def _match(self, parsed: imp.ImpFile | None, live: list[Message]) -> imp.Match:
        """imp.match for our live messages; the entries of the messages we
        have seen expunged are nobody's (a new identical copy must not take
        one: its uid would be the one this session reports expunged)."""
        gone = {(m.digest, m.uid) for m in self.msgs if m.expunged and m.uid} \
            if len(live) < len(self.msgs) else frozenset()
        return imp.match(parsed, [(m.digest, m.uid) for m in live], self.uidnext, gone)

    def _doubtful(self, live: list[Message], found: list[imp.Entry | None],
                  unclaimed: list[imp.Entry]) -> bool:
        """The file and our listing disagree in a way an out-of-date listing
        explains (see _under_lock): a message we numbered whose entry has
        gone; a message the file does not know while it knows one after it
        (numbered by us or another session: a new uid would not ascend);
        or an entry at or below our uids that we would drop without having
        seen its message expunged."""
        if not unclaimed and None not in found:
            return False                # the usual case: each has its entry
        if any(m.uid and e is None for m, e in zip(live, found)):
            return True
        uids = [m.uid or (e.uid if e is not None else 0) for m, e in zip(live, found)]
        new = 0 in uids
        if new and any(uids[uids.index(0):]):
            return True
        last = max(uids, default=0)
        ours = {(m.digest, m.uid) for m in self.msgs if m.expunged}
        for e in unclaimed:
            key = (e.digest, e.uid)
            if key in ours:
                continue
            if e.uid <= last or (new and key not in self._unlisted):
                return True
        return False

    def _unconfirmed(self, live: list[Message], found: list[imp.Entry | None],
                     doubt: bool, data: bytes | None) -> list[Message]:
        """The messages whose pairing with the file holds only if they are
        still in upasfs: when the merge is doubtful, those the file does
        not know; and when the file has changed since our listing (another
        session may have recorded a delete our listing predates), the new
        messages that took a line.  A message deleted since we listed it
        whose line is gone would take the line of an identical copy we
        have not listed yet; when it then vanished, the copy would be
        numbered anew, above the messages after it (the stress rig)."""
        moved = data != self._imp_listed
        return [m for m, e in zip(live, found)
                if (e is None and doubt) or (e is not None and moved and not m.uid)]

    def _drop_vanished(self, doubted: list[Message]) -> bool:
        """Of these messages, mark those upasfs no longer has expunged;
        True if there were any.  Our listing was made before we took the
        lock and may predate a delete (whose session has since dropped the
        message's line); a walk to a message directory does not make
        upasfs read the mailbox (a listing would, and it would wait for
        the lock we hold), so this look is current."""
        if not doubted:
            return False
        got = self.ns.stat_many([f"{self.fsdir}/{m.fsnum}" for m in doubted])
        gone = [m for m, d in zip(doubted, got) if d is None]
        if gone:
            try:
                self.ns.stat(fsctl.CTL)       # a failed stat may be a hung-up upasfs
            except nsmod.Hungup:
                raise MailboxLost("upas/fs has gone away") from None
            for m in gone:
                m.expunged = True
        return bool(gone)

    def _takes_all(self, live: list[Message], parsed: imp.ImpFile | None,
                   found: list, uidnext: int) -> bool:
        """New messages (a view just opened) take every entry of the file,
        in its order, uids and flags as they are: the file would be written
        back as it is (so _write_imp need not format it to find out)."""
        if parsed is None or uidnext != parsed.uidnext or len(found) != len(parsed.entries):
            return False
        if any(m.uid for m in live):
            return False
        if not self.keep_recent and any("\\Recent" in e.flags for e in parsed.entries):
            return False
        return all(f is e and e.uid for f, e in zip(found, parsed.entries))

    def _as_written(self, data: bytes | None, kwdata: bytes | None) -> bool:
        """The files are as this view last wrote them, and its messages the
        ones it wrote them for: merging them would change nothing (the
        comparison _write_imp makes anyway, made first)."""
        if self.imp_known is None or self._ahead or (data, kwdata) != self.imp_known:
            return False
        return [m for m in self.msgs if not m.expunged] == self._known_live

    def _newer(self, parsed: imp.ImpFile | None, unclaimed: list[imp.Entry],
               live: list[Message], kws: dict) -> list[tuple[imp.Entry, list[str]]]:
        """Entries of messages another session has numbered but this one has
        not listed yet (uids above all of ours), with their keywords.  Our
        rewrite of the file keeps them: dropping them would lose their
        flags, and the next session would number those messages anew, out
        of mailbox order (found by the stress rig).  Such an entry is one
        no message of ours took, and one more than we hold of its digest
        (an identical copy delivered since: issue 13); an entry for a
        message we hold under another uid is not one."""
        if not parsed or not unclaimed:
            return []
        excess: dict[str, int] = {}
        for e in parsed.entries:
            excess[e.digest] = excess.get(e.digest, 0) + 1
        for m in live:
            excess[m.digest] = excess.get(m.digest, 0) - 1
        gone = self._unlisted            # still unlisted after a listing: deleted
        last = max((m.uid for m in self.msgs), default=0)
        out = []
        for e in unclaimed:
            if e.uid > last and excess.get(e.digest, 0) > 0 and (e.digest, e.uid) not in gone:
                last = e.uid
                excess[e.digest] -= 1
                k = kws.get(e.uid)
                out.append((e, list(k[1]) if k and k[0] == e.digest else []))
        return out

    def _apply_entry(self, m: Message, e: imp.Entry | None, kws: dict) -> None:
        fresh = not m.uid
        if e is None:
            return                      # new to the file (or it lost ours): ours stands
        if fresh and e.uid:
            m.uid = e.uid
        new = set(e.flags)              # a new message's \\Recent is the file's
        if not fresh:
            if "\\Recent" in m.flags:     # else ours stands
                new.add("\\Recent")
            else:
                new.discard("\\Recent")
        k = kws.get(m.uid)
        newkw = list(k[1]) if k and k[0] == m.digest else []
        if newkw:
            self.keywords.update(newkw)
        if not fresh and (new != m.flags or newkw != m.keywords):
            if m not in self.flag_changes:
                self.flag_changes.append(m)
        m.flags, m.keywords = new, newkw

    def _imp_stamp(self):
        try:
            d = self.ns.stat(self.imppath)
            k = self.ns.stat(self.kwpath) if self.ns.exists(self.kwpath) else None
            return (d.qid, d.mtime, d.length, k and (k.qid, k.length))
        except nsmod.Error:
            return None

    def _write_imp(self) -> None:
        live = [m for m in self.msgs if not m.expunged]
        rows = [(m.digest, m.uid, self._stored_flags(m)) for m in live]
        rows += [(e.digest, e.uid, e.flags) for e, _ in self._ahead]
        # called right after _merge_imp, the lock still held: a file that
        # would come out as it was read is not rewritten (nor fsynced)
        old, oldkw = self._imp_read
        self._imp_read = (None, None)
        if self._imp_exact and old is not None:
            data = old                  # as it was read (see _takes_all)
        else:
            data = imp.format_rows(self.uidvalidity, self.uidnext, rows, self.keep_recent)
        self._imp_exact = False
        wrote = data != old
        if wrote:
            safewrite.replace(self.ns, self.imppath, data)
        self._imp_now = data
        kwnow = oldkw
        if (oldkw is not None or any(m.keywords for m in live)
                or any(kw for _, kw in self._ahead) or self.ns.exists(self.kwpath)):
            rows = [(m.digest, m.uid, m.keywords) for m in live]
            rows += [(e.digest, e.uid, kw) for e, kw in self._ahead]
            kw = imp.format_keywords(rows)
            if kw != oldkw:
                safewrite.replace(self.ns, self.kwpath, kw)
                kwnow, wrote = kw, True
        self.imp_known, self._known_live = (data, kwnow), live
        if wrote or self.imp_stamp is None:
            self.imp_stamp = self._imp_stamp()

    def _stored_flags(self, m: Message) -> set[str] | frozenset[str]:
        """The flags the .imp gets for m: a view that keeps \\Recent writes
        `r` where the file had it (or did not know m), not where this
        session still shows it (a SELECT elsewhere may have taken it)."""
        if not self.keep_recent or ("\\Recent" in m.flags) == m.file_recent:
            return m.flags
        return m.flags ^ {"\\Recent"}

    # -- change detection ------------------------------------------------
    def check(self) -> None:
        """Notice new mail, vanished messages and others' flag changes."""
        if self.gone:
            return
        relisted = self._relist()
        if self.gone:       # upasfs (or the box) went away: an empty .imp would
            return          # drop every UID and flag (found by the crash harness)
        if relisted or self._imp_stamp() != self.imp_stamp:
            # new uids or vanished messages to record if relisted
            self._under_lock(write=relisted)

    def modify(self, msgs: list[Message], change) -> list[Message]:
        """Apply change(msg) -> bool (True if it changed) to messages, under
        the lock, after catching up with others; the .imp is rewritten."""
        touched = []
        self._relist()
        if self.gone:       # upasfs died: nothing can be recorded, say so
            raise MailboxError("mailbox is gone")
        def apply() -> None:
            touched.extend(m for m in msgs if not m.expunged and change(m))
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

    def recent(self) -> int:
        return sum(1 for m in self.msgs if "\\Recent" in m.flags and not m.expunged)

    def first_unseen(self) -> int | None:
        for i, m in enumerate(self.msgs):
            if "\\Seen" not in m.flags:
                return i + 1
        return None

    def seq(self, m: Message) -> int:
        """The sequence number of m: found by its uid (UIDs ascend in
        mailbox order), else looked for (a message that vanished before it
        was numbered keeps uid 0 until reported)."""
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

    def seqs(self, msgs: list[Message]) -> list[int]:
        """seq() of many messages (in mailbox order), in one pass."""
        out, i, all_ = [], 0, self.msgs
        for m in msgs:
            while i < len(all_) and all_[i] is not m:
                i += 1
            if i == len(all_):            # not in order after all
                return [self.seq(m) for m in msgs]
            out.append(i + 1)
        return out

    def read(self, m: Message, rel: str) -> bytes:
        """A file of a message (rel like `raw` or `2/1/mimeheader`), cached.
        While speculating (prefetch.py) a file not read yet raises Need."""
        c = m.cache.get(rel)
        if c is None:
            c = self.held.get((m.fsnum, rel))
        if not isinstance(c, bytes):
            if self.speculative:
                raise prefetch.Need(() if (m.fsnum, rel) in self.held else (rel,))
            c = self.ns.read(f"{self.fsdir}/{m.fsnum}/{rel}")
            if rel.rsplit("/", 1)[-1] in CACHED:
                m.cache[rel] = c
        return c

    def has(self, m: Message, rel: str) -> bool:
        return rel in m.cache or (m.fsnum, rel) in self.held

    def hold(self, m: Message, rel: str, data) -> None:
        """Keep a file read ahead: for good if it is a CACHED one, else
        until the command is done (None: the read failed)."""
        if isinstance(data, bytes) and rel.rsplit("/", 1)[-1] in CACHED:
            m.cache[rel] = data
        else:
            self.held[(m.fsnum, rel)] = data

    def subdirs(self, m: Message, rel: str) -> list[int]:
        """The MIME part numbers under a message or part directory; none
        MAX_DEPTH levels down, as upasfs splits no deeper (an upas/fs
        without that bound must not make our structure walks recurse
        without end)."""
        key = "dir:" + rel
        if rel.count("/") + 1 >= MAX_DEPTH and rel:
            return []
        if key not in m.cache:
            if self.speculative:
                m.cache[key] = prefetch.probe_children(self, m, rel)
                return m.cache[key]
            p = f"{self.fsdir}/{m.fsnum}" + (f"/{rel}" if rel else "")
            m.cache[key] = sorted(int(n) for n in self.ns.readdir_names(p) if n.isdigit())
        return m.cache[key]

    # -- removal -----------------------------------------------------------
    def expunge(self, pred) -> None:
        """Delete the messages with pred(msg) true (\\Deleted ones) via the
        fs ctl; they show up as vanished at the next check."""
        nums = [str(m.fsnum) for m in self.msgs if not m.expunged and pred(m)]
        head = f"delete {self.fsname}"
        while nums:
            batch, size = [], len(head)
            while nums and size + 1 + len(nums[0]) <= DELETE_BATCH:
                size += 1 + len(nums[0])
                batch.append(nums.pop(0))
            self.ns.write(fsctl.CTL, (head + " " + " ".join(batch)).encode())
        self.fs_stamp = None

    def drop_unannounced(self) -> None:
        """Messages that came and went between two reports to the client
        (after msgs[:exists_reported], the ones it knows) go unreported:
        an EXPUNGE for them would name a number it never had."""
        known = self.exists_reported
        if any(m.expunged for m in self.msgs[known:]):
            self._forget(m for m in self.msgs[known:] if m.expunged)
            self.msgs[known:] = [m for m in self.msgs[known:] if not m.expunged]

    def take_expunged(self) -> list[int]:
        """Drop pending expunges; their sequence numbers as each is removed
        in turn (already adjusted, as `* n EXPUNGE` needs).  Only messages
        the client knows: drop_unannounced first."""
        self.drop_unannounced()
        seqs = [i + 1 - k for k, i in enumerate(i for i, m in enumerate(self.msgs) if m.expunged)]
        if seqs:
            self._forget(m for m in self.msgs if m.expunged)
            self.msgs = [m for m in self.msgs if not m.expunged]
            self.exists_reported -= len(seqs)
        return seqs

    def _forget(self, gone) -> None:
        gone = {id(m) for m in gone}
        self.flag_changes = [m for m in self.flag_changes if id(m) not in gone]

