"""What one view of a mailbox knows of its `.imp` and `.kw.imp` (imp.py),
and the merge of those files with the view's messages.  No I/O: the
caller (mailbox.Mailbox) reads the files under the mail lock, hands their
bytes to merge(), writes what render() gives, and answers merge's two
questions (a new UIDVALIDITY; which messages upasfs no longer has).

Sessions list upasfs before they take the lock (upasfs takes it to read
the mailbox), so the listing a merge works from may be out of date in
three ways; each is met by listing again and merging again (a few times
at most: mailbox.Mailbox's loop), or by asking upasfs about the messages
in doubt (a walk, which needs no lock):
- it may predate a delete another session has recorded: a message we
  list that the file does not know, older than messages it does know, is
  most likely such a one, and numbering it anew would put UIDs out of
  order (the stress rig saw the disorder spread); so is a message we have
  numbered whose entry has gone (writing it back would also drop the line
  of a later identical copy); a message still there after a new listing
  lost its entry and is numbered anew (or keeps its uid);
- the file may number messages we have not listed (kept: _newer); those
  a new listing still lacks were deleted, and go;
- a new message we list may have been deleted since and its line dropped,
  leaving the line of an identical copy we have not listed for it to take:
  when the file changed since our listing, the new messages that take a
  line are looked up (_unconfirmed).
"""
from __future__ import annotations

import bisect
import itertools
import operator
from dataclasses import dataclass, field
from typing import Callable

from upas.imap4d import imp
from upas.imap4d.message import RECENT, Message
from upas.imap4d.msgview import Lazy


_REWRITE = object()     # lines_for's .kw.imp when it is to be made anew


@dataclass
class Merged:
    """What a merge changed that the session reports."""
    changed: list[Message] = field(default_factory=list)   # others' flag changes
    keywords: set[str] = field(default_factory=set)        # keywords messages have


class ImpState:
    """The .imp as one view knows it: UIDVALIDITY, UIDNEXT, entries of
    messages it has not listed, the files as it last read and wrote them."""

    def __init__(self, keep_recent: bool = False):
        # a read-only view (EXAMINE, STATUS) leaves \\Recent as the file has
        # it (RFC 3501 6.3.2; Plan 9's EXAMINE cleared it: docs/decisions.md)
        self.keep_recent = keep_recent
        self.uidvalidity = 0
        self.uidnext = 1
        self.ahead: list[tuple[imp.Entry, list[str]]] = []   # see _newer
        self.unlisted: set[tuple[str, int]] = set()   # ahead, before our last listing
        self.read: tuple[bytes | None, bytes | None] = (None, None)
        # the .imp and .kw.imp as this view last wrote them (or found them
        # right), set by a merge and render under one lock; else None
        self.known: tuple[bytes, bytes | None] | None = None
        self.known_live: list[Message] = []      # the messages it was for
        # the .imp's bytes whose lines are these messages in order with
        # these flags (the objects): render then writes the flags fields
        # of those messages as they are now, not every line anew
        # (.imp, messages, None (the flags are read from the messages),
        # keywords, .kw.imp, the file it came from)
        self.lines_for: tuple | None = None
        self.exact = False              # the merge took the file as it is
        self.kw_exact = False           # and the .kw.imp (see render)
        self.doubted: bytes | None = None       # the .imp as a merge found it doubtful
        # the .imp as it stood when our listing was made: as we left it at
        # our last unlock (or read just before the first listing); a file
        # unchanged since has recorded no delete our listing predates
        self.listed: bytes | None = None
        self.now: bytes | None = None           # the .imp as last read or written
        self._parsed: tuple[bytes | None, imp.ImpFile | None] = (None, None)

    # -- around the lock ---------------------------------------------------
    def listing(self) -> None:
        """A whole listing of upasfs is (still) ours: entries ahead of it
        that it lacks were deleted (see _newer)."""
        self.unlisted = {(e.digest, e.uid) for e, _ in self.ahead}

    def unlocked(self) -> None:
        """The lock is let go: the file stands as we read or wrote it."""
        self.listed = self.now

    # -- the merge ---------------------------------------------------------
    def merge(self, data: bytes | None, kwdata: bytes | None, msgs: list[Message], *,
              settle: bool, force: bool, new_validity: Callable[[], int], taken: bool = False,
              vanished: Callable[[list[Message]], list[Message]]) -> Merged | None:
        """Reconcile the files' bytes (None: absent) with the messages (in
        mailbox order; the expunged ones are those the client has not been
        told of yet).  Messages without a uid get new ones -- unless the
        file and our listing disagree as an out-of-date listing would
        (_doubtful): then None, nothing taken.  The disagreement is acted
        on when `force`d, or when `settle`: our new listing showed nothing
        new and the file is as it was when we doubted (a listing made
        before another session's write, which we waited for at the lock, is
        out of date again).  new_validity() gives a new file's UIDVALIDITY;
        vanished(msgs) those of msgs upasfs no longer has (they are marked
        expunged here).  `taken`: the messages were made from these
        bytes' lines already (imp.lines_of: see _take_lines)."""
        self.now = data
        live = None                     # (a new view taking the lines needs no pass)
        if self.known is not None:
            live = _live(msgs)
            if self._as_written(data, kwdata, live):
                self.read = (data, kwdata)
                return Merged()
        if data is not None and not self.uidvalidity:
            got = self._take_lines(data, kwdata, msgs, taken)
            if got is not None:
                return got
        if live is None:
            live = _live(msgs)
        got = self._changed_lines(data, kwdata, live, vanished)
        if got is not None:
            return got
        live = [m for m in msgs if not m.expunged]      # (_changed_lines may find some gone)
        parsed = self.parse(data)
        if parsed and self.uidvalidity and parsed.uidvalidity != self.uidvalidity:
            parsed = None               # someone else's box now; keep ours
        if not self.uidvalidity:
            self.uidvalidity = parsed.uidvalidity if parsed else new_validity()
        found, uidnext, unclaimed = self._match(parsed, msgs, live)
        self.read = (data, kwdata)      # render() skips an unchanged file
        self.known = None
        doubt = self._doubtful(msgs, live, found, unclaimed)
        gone = vanished(self._unconfirmed(live, found, doubt, data))
        if gone:
            for m in gone:
                m.expunged = True
            live = [m for m in msgs if not m.expunged]
            found, uidnext, unclaimed = self._match(parsed, msgs, live)
            doubt = self._doubtful(msgs, live, found, unclaimed)
        if doubt and not force:
            if not settle or data != self.doubted:
                self.doubted = data
                return None             # nothing taken: list again first
        self.exact = self._takes_all(live, parsed, found, uidnext) and imp.as_parsed(data, parsed)
        kws = imp.parse_keywords(kwdata) if kwdata else {}
        out = Merged()
        for m, e in zip(live, found):
            self._apply_entry(m, e, kws, out)
            m.file_recent = e is None or "\\Recent" in e.flags
        self.uidnext = uidnext
        for m in live:
            if not m.uid:
                m.uid = self.uidnext
                self.uidnext += 1
        self.ahead = self._newer(parsed, unclaimed, msgs, live, kws)
        self._parsed = (None, None)     # taken: not kept for the session's life
        return out

    def _take_lines(self, data: bytes, kwdata: bytes | None, msgs: list[Message],
                    taken: bool) -> Merged | None:
        """A new view whose messages are the .imp's lines, in order
        (imp.lines_of), takes each one's uid and flags from its line by
        position (or was made with them: `taken`): no Entry made, no
        match, the file left as it is; what the whole merge would do.  Not
        when a line holds \\Recent (this SELECT takes it: the merge
        rewrites the file) or the lines are not the messages; None then."""
        head = imp.header(data)
        if head is None or self.uidvalidity or imp.holds_recent(data):
            if taken:                   # made from these lines: new messages again
                for m in msgs:
                    m.uid, m.flags, m.file_recent = 0, RECENT, True
            return None
        if not taken:
            got = None if any(m.uid or m.expunged for m in msgs) else \
                imp.lines_of(data, [m.digest for m in msgs])
            if got is None:
                return None
            for m, uid, flags in zip(msgs, *got):
                m.uid, m.flags, m.file_recent = uid, flags, False
        self.uidvalidity, uidnext = head
        if msgs:
            uidnext = max(uidnext, msgs[-1].uid + 1)
        out = Merged()
        kws = imp.parse_keywords(kwdata) if kwdata else {}
        for uid, (digest, words) in kws.items():
            k = _place(msgs, uid)
            if k < len(msgs) and msgs[k].uid == uid and msgs[k].digest == digest:
                msgs[k].keywords = list(words)
                out.keywords.update(words)
        self.uidnext = uidnext
        self.read = (data, kwdata)
        self.known = None
        self.exact = uidnext == head[1]     # the file is what render would write
        self.kw_exact = True
        self.ahead = []
        self._lines(data, msgs, kwdata)
        self._parsed = (None, None)
        return out

    def _changed_lines(self, data: bytes | None, kwdata: bytes | None, live: list[Message],
                       vanished: Callable[[list[Message]], list[Message]]) -> Merged | None:
        """What other sessions did since we left the files, when that is
        STOREs, EXPUNGEs we have seen in our listing, and APPENDs whose
        messages our listing has at its end: the .imp as we last left it
        (its lines our messages in order) without the lines of the
        messages gone, some flags fields changed (Plan 9's lines are
        fixed-width: a compare of the bytes finds them), and a line for
        each new message, its digest.  Only those lines are looked at; no
        Entry made, no match.  None when anything else changed (the whole
        merge then)."""
        known = self.known
        if known is None or data is None or known[0] is None or self.ahead or self.keep_recent:
            return None
        old, oldkw = known
        was = self.known_live
        kept = [m for m in was if not m.expunged]
        new = live[len(kept):]
        if live[:len(kept)] != kept or any(m.uid for m in new):
            return None
        heads = imp.header(old), imp.header(data)
        if None in heads or heads[0][0] != heads[1][0]:
            return None                 # another UIDVALIDITY
        gone = [k for k, m in enumerate(was) if m.expunged]
        last = max(kept[-1].uid if kept else 0, heads[0][1] - 1)
        got, stale, unnumbered = None, False, False
        # the lines of the messages we saw go are dropped, or still there
        # (ours to drop: this view's own EXPUNGE, or a delete in upasfs);
        # the new messages have lines, or none has one yet (ours to number)
        for stale, unnumbered in ((False, False), (False, True), (True, False), (True, True)):
            if (stale and not gone) or (unnumbered and not new):
                continue
            body = old[imp.BODY_AT:] if stale else imp.without_lines(old, gone)
            got = self._lines_since(old, data, [] if unnumbered else new, body, last)
            if got is not None:
                break
        if got is None:
            return None
        if stale:
            at = list(itertools.accumulate(not m.expunged for m in was))
            got = ([(at[k] - 1, f) for k, f in got[0] if not was[k].expunged], got[1])
        lines, added = got
        if new and not unnumbered and data != self.listed:
            went = vanished(new)        # one went since we listed it? (see _unconfirmed)
            for m in went:
                m.expunged = True
            if went:
                return None             # the whole merge, without it
        out = Merged()
        for m, (uid, f) in zip(new, added):
            m.uid, m.flags, m.file_recent = uid, f, False
        for k, f in lines:
            m = live[k]
            if "\\Recent" in m.flags:         # ours stands (the file has none)
                f = imp.flagset(f | {"\\Recent"})
            if f != m.flags:
                m.flags = f
                out.changed.append(m)
        if kwdata != oldkw or new:
            self._changed_keywords(oldkw, kwdata, live, new, out)
        self.uidnext = max(heads[1][1], self.uidnext, (kept[-1].uid if kept else 0) + 1)
        if unnumbered:
            for m in new:               # new to the file (mail delivered): ours stand
                m.uid = self.uidnext
                self.uidnext += 1
        else:
            self.uidnext = max(self.uidnext, live[-1].uid + 1 if live else 1)
        self.read = (data, kwdata)
        self.known = None
        self.exact = self.kw_exact = not stale and not unnumbered   # what render would write
        self._parsed = (None, None)
        if stale:
            self._lines(data[:imp.BODY_AT] + imp.without_lines(data, gone), kept, _REWRITE, data)
        else:
            self._lines(data, kept if unnumbered else live, kwdata)
        return out

    @staticmethod
    def _lines_since(old: bytes, data: bytes, new: list[Message], body: bytes,
                     last: int) -> tuple[list, list] | None:
        """(flags changed, lines added) when data is `body` (entry lines
        of `old`) with some flags fields changed, then a line for each of
        the new messages, their uids above `last`; else None."""
        lines = imp.changed_lines(data[:imp.BODY_AT] + body, data[:imp.BODY_AT + len(body)])
        # a new message's line was numbered since we wrote the file: its
        # uid is not below that file's uidnext (a line we had, of a message
        # gone, is not a new identical copy's)
        added = imp.new_lines(data[imp.BODY_AT + len(body):], [m.digest for m in new], last)
        return None if lines is None or added is None else (lines, added)

    def _lines(self, data: bytes, live: list[Message], kw, source: bytes | None = None) -> None:
        """data's lines are live's messages, with their flags and keywords
        now (and uidnext ours), kw the .kw.imp; they were made from the
        file `source` (data itself unless given): see lines_for."""
        ok = not self.keep_recent and not self.ahead
        self.lines_for = (data, live, None, _keywords(live), kw, source or data) if ok else None

    @staticmethod
    def _changed_keywords(oldkw: bytes | None, kwdata: bytes | None, live: list[Message],
                          fresh: list[Message], out: Merged) -> None:
        """The keywords of the messages whose .kw.imp line changed, and of
        the fresh ones."""
        old = imp.parse_keywords(oldkw) if oldkw else {}
        new = imp.parse_keywords(kwdata) if kwdata else {}
        mine = {m.uid for m in fresh}
        for uid in old.keys() | new.keys():
            if old.get(uid) == new.get(uid) and uid not in mine:
                continue
            k = _place(live, uid)
            if k == len(live) or live[k].uid != uid:
                continue
            m = live[k]
            got = new.get(uid)
            words = list(got[1]) if got and got[0] == m.digest else []
            out.keywords.update(words)
            if words != m.keywords:
                m.keywords = words
                if uid not in mine and m not in out.changed:
                    out.changed.append(m)

    def parse(self, data: bytes | None) -> imp.ImpFile | None:
        """imp.parse_imp of the .imp's bytes, kept: the file parsed before
        the lock is taken (mailbox.Mailbox.open) and found the same under
        it is not parsed again, so sessions do not parse it one after the
        other in the lock.  (Nothing changes a parsed file's entries.)"""
        if data and data == self._parsed[0]:
            return self._parsed[1]
        got = imp.parse_imp(data) if data else None
        self._parsed = (data, got)
        return got

    def _match(self, parsed: imp.ImpFile | None, msgs: list[Message],
               live: list[Message]) -> imp.Match:
        """imp.match for our live messages; the entries of the messages we
        have seen expunged are nobody's (a new identical copy must not take
        one: its uid would be the one this session reports expunged)."""
        gone = {(m.digest, m.uid) for m in msgs if m.expunged and m.uid} \
            if len(live) < len(msgs) else frozenset()
        return imp.match(parsed, [(m.digest, m.uid) for m in live], self.uidnext, gone,
                         [m.fsnum for m in live])

    def _doubtful(self, msgs: list[Message], live: list[Message],
                  found: list[imp.Entry | None], unclaimed: list[imp.Entry]) -> bool:
        """The file and our listing disagree in a way an out-of-date listing
        explains (see the module's docstring): a message we numbered whose
        entry has gone; a message the file does not know while it knows one
        after it (numbered by us or another session: a new uid would not
        ascend); or an entry at or below our uids that we would drop
        without having seen its message expunged."""
        if not unclaimed and not any(e is None for e in found):   # (`in` calls Entry.__eq__)
            return False                # the usual case: each has its entry
        if any(m.uid and e is None for m, e in zip(live, found)):
            return True
        uids = [m.uid or (e.uid if e is not None else 0) for m, e in zip(live, found)]
        new = 0 in uids
        if new and any(uids[uids.index(0):]):
            return True
        last = max(uids, default=0)
        ours = {(m.digest, m.uid) for m in msgs if m.expunged}
        for e in unclaimed:
            key = (e.digest, e.uid)
            if key in ours:
                continue
            if e.uid <= last or (new and key not in self.unlisted):
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
        moved = data != self.listed
        return [m for m, e in zip(live, found)
                if (e is None and doubt) or (e is not None and moved and not m.uid)]

    def _takes_all(self, live: list[Message], parsed: imp.ImpFile | None,
                   found: list, uidnext: int) -> bool:
        """New messages (a view just opened) take every entry of the file,
        in its order, uids and flags as they are: the file would be written
        back as it is (so render need not format it to find out)."""
        if parsed is None or uidnext != parsed.uidnext or len(found) != len(parsed.entries):
            return False
        if any(m.uid for m in live):
            return False
        if not self.keep_recent and any("\\Recent" in e.flags for e in parsed.entries):
            return False
        return all(f is e and e.uid for f, e in zip(found, parsed.entries))

    def _as_written(self, data: bytes | None, kwdata: bytes | None,
                    live: list[Message]) -> bool:
        """The files are as this view last wrote them, and its messages the
        ones it wrote them for: merging them would change nothing (the
        comparison render makes anyway, made first)."""
        if self.known is None or self.ahead or (data, kwdata) != self.known:
            return False
        return live == self.known_live

    def _newer(self, parsed: imp.ImpFile | None, unclaimed: list[imp.Entry],
               msgs: list[Message], live: list[Message],
               kws: dict) -> list[tuple[imp.Entry, list[str]]]:
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
        gone = self.unlisted             # still unlisted after a listing: deleted
        last = max((m.uid for m in msgs), default=0)
        out = []
        for e in unclaimed:
            if e.uid > last and excess.get(e.digest, 0) > 0 and (e.digest, e.uid) not in gone:
                last = e.uid
                excess[e.digest] -= 1
                k = kws.get(e.uid)
                out.append((e, list(k[1]) if k and k[0] == e.digest else []))
        return out

    def _apply_entry(self, m: Message, e: imp.Entry | None, kws: dict, out: Merged) -> None:
        fresh = not m.uid
        if e is None:
            return                      # new to the file (or it lost ours): ours stands
        if fresh and e.uid:
            m.uid = e.uid
        new = imp.flagset(e.flags)      # a new message's \\Recent is the file's
        if not fresh and ("\\Recent" in m.flags) != ("\\Recent" in new):
            new = imp.flagset(new ^ {"\\Recent"})     # ours stands
        k = kws.get(m.uid)
        newkw = list(k[1]) if k and k[0] == m.digest else []
        if newkw:
            out.keywords.update(newkw)
        if not fresh and (new != m.flags or newkw != m.keywords):
            out.changed.append(m)
        m.flags, m.keywords = new, newkw

    # -- writing -------------------------------------------------------------
    def render(self, msgs: list[Message]) -> tuple[bytes | None, bytes | None]:
        """The .imp and .kw.imp to write after merge (and the change it was
        for), None for one that would come out as it was read; from now on
        the files are taken to be these."""
        live = _live(msgs)
        old, oldkw = self.read
        self.read = (None, None)
        held = self.lines_for
        if self.exact and self.kw_exact and old is not None and held is not None and \
                held[0] is old and held[4] is oldkw and held[1] == live:
            # the merge took both files as they are (_take_lines) and nothing
            # changed since: what the passes below would find, without them
            self.exact = self.kw_exact = False
            self.now = old
            self.known, self.known_live = (old, oldkw), live
            self.lines_for = (old, live, *held[2:])
            return None, None
        patched, kw_same = self._patched(old, oldkw, live)
        if self.exact and old is not None:
            data = old                  # as it was read (see _takes_all)
        elif patched is not None:
            data = patched
        else:
            rows = [(m.digest, m.uid, self._stored_flags(m)) for m in live]
            rows += [(e.digest, e.uid, e.flags) for e, _ in self.ahead]
            data = imp.format_rows(self.uidvalidity, self.uidnext, rows, self.keep_recent)
        kw = oldkw
        if (self.kw_exact and self.exact) or kw_same:
            pass                        # as read, no keyword changed since
        elif oldkw is not None or any(m.keywords for m in live) or any(k for _, k in self.ahead):
            kwrows = [(m.digest, m.uid, m.keywords) for m in live]
            kwrows += [(e.digest, e.uid, k) for e, k in self.ahead]
            kw = imp.format_keywords(kwrows)
        self.exact = self.kw_exact = False
        self.now = data
        self.known, self.known_live = (data, kw), live
        self._lines(data, live, kw)
        return (data if data != old else None), (kw if kw != oldkw else None)

    def _patched(self, old: bytes | None, oldkw: bytes | None,
                 live: list[Message]) -> tuple[bytes | None, bool]:
        """The file made from `old` (lines_for) with the flags fields of its
        messages as they are now (imp.with_flags), a line for each message
        numbered since (at the end) and our uidnext, if its lines are
        still our first messages (else None); and whether the .kw.imp
        `oldkw` is the one made with them and no message's keywords were
        replaced since."""
        got, self.lines_for = self.lines_for, None
        if got is None or old is None or self.ahead or self.keep_recent:
            return None, False
        data, was, _, words, kw, source = got
        if source is not old and source != old:
            return None, False
        if was is live and isinstance(live, Lazy):
            # a lazy view written again (a STORE on its columns): its mask
            # bytes are the flags, no message made (the slice and walks
            # below would make them all)
            extra: list[Message] = []
            kw_same = kw == oldkw and all(map(operator.is_, words, live.keywords()))
            data = imp.with_masks(data, _file_masks(live))
        elif live[:len(was)] != was:
            return None, False
        else:
            extra = live[len(was):]
            kw_same = kw == oldkw and not any(m.keywords for m in extra) and \
                all(map(operator.is_, words, (m.keywords for m in was)))
            data = imp.with_flags(data, [m.flags for m in was])
        if data is None:
            return None, False
        return imp.with_lines(data, self.uidnext, [(m.digest, m.uid, m.flags) for m in extra]), \
            kw_same

    def _stored_flags(self, m: Message) -> set[str] | frozenset[str]:
        """The flags the .imp gets for m: a view that keeps \\Recent writes
        `r` where the file had it (or did not know m), not where this
        session still shows it (a SELECT elsewhere may have taken it)."""
        if not self.keep_recent or ("\\Recent" in m.flags) == m.file_recent:
            return m.flags
        return m.flags ^ {"\\Recent"}


# -- a view's messages as a list or as columns (msgview.Lazy) ----------------
def _live(msgs) -> list[Message] | Lazy:
    """The messages not expunged: a Lazy none of whose messages is, as it
    is (no message made: a SELECT's merge and render; the comparisons
    with it are by identity, or make it whole)."""
    if isinstance(msgs, Lazy) and msgs.full is None and not msgs.any_expunged():
        return msgs
    return [m for m in msgs if not m.expunged]


def _file_masks(lazy: Lazy) -> bytes:
    """The mask (imp.with_masks') of each message of a Lazy: its column's,
    a made message's from its flags (they are the truth)."""
    codes = lazy.masks.translate(imp.NO_RECENT)
    if not lazy.made:
        return codes
    out = bytearray(codes)
    for k, m in lazy.made.items():
        out[k] = imp.file_mask(m.flags)
    return bytes(out)


def _keywords(live) -> list[list[str]]:
    """Each message's keywords list (the objects, compared by identity)."""
    if isinstance(live, Lazy) and live.full is None:
        return live.keywords()
    return [m.keywords for m in live]


def _place(msgs, uid: int) -> int:
    """Where uid is, or would go, among msgs (uids ascending)."""
    if isinstance(msgs, Lazy) and msgs.full is None:
        return bisect.bisect_left(msgs.uids, uid)
    return bisect.bisect_left(msgs, uid, key=lambda m: m.uid)
