"""APPEND (docs/spec/servers.md §3.10, RFC 3501 6.3.11) with APPENDUID (RFC 4315),
MULTIAPPEND (RFC 3502: several messages, stored all or none) and BINARY's
literal8 (RFC 3516 4.4).

The message is stored by the delivery code (upas/mbappend.py), as Plan 9
stores mail: `From <user> <date>` + the message with CRLF turned into LF
and lines beginning `From ` escaped with a space, ending in LF, then the
blank separator line.  The date line uses the client's date-time with its
zone (9front's form, which INTERNALDATE gives back unchanged); a date in
the future becomes now.

Nothing is written until the whole literal has arrived, so a client that
disconnects mid-APPEND leaves the mailbox as it was; mbappend appends
through the session's name space under the mailbox directory's lock with
one write and an fdatasync, and cuts the file back to its old length if
that fails.

UIDs: before appending, the target is opened as Plan 9's `status` view
(mailbox.Mailbox), which gives every message already in the file its uid;
after appending, a re-check gives the new message the next one.  So the
uid reported in APPENDUID is the one every later session sees, and UIDs
keep ascending in mailbox order.  The next APPEND to the same mailbox
skips the view if, under the lock, the mailbox file (its stat: qid and
length) and its .imp are as this session left them: it appends the message
and the .imp lines (_deliver_at_tail), two fdatasyncs and no listing of the
target; that look also proves the mailbox still exists, so such an APPEND
does not stat it first (if the look fails, Plan 9's check is made then:
TRYCREATE after the literal, not before; docs/decisions.md).  Every file is reached through the name space (ns.lock, ns.append,
ns.write_at, ns.stat), so a mail store served over 9P can take them.
"""
from __future__ import annotations

import functools
import hashlib
import posixpath
import re
import time
from dataclasses import dataclass, field
from typing import Callable

from upas import config
from upas import ns as nsmod
from upas.mail.lock import LockError

from . import imp, names, savedate
from . import parser as p
from .mailbox import Mailbox, MailboxError, MailboxLost
from .sequenceset import sequence_set

FIND_WAIT = 0.025            # seconds between looks for the new message in upasfs
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class Item:
    """One message to store: its mbox entry (From line .. final LF)."""
    entry: bytes
    flags: set[str] = field(default_factory=set)
    keywords: list[str] = field(default_factory=list)

    @functools.cached_property
    def digest(self) -> str:        # (the .imp line and the save date ask it)
        return hashlib.sha1(self.entry).hexdigest()


def from_line(user: str, when: int, zone_secs: int) -> bytes:
    """`From user Www Mmm dd hh:mm:ss +hhmm yyyy` in the given zone."""
    t = time.gmtime(when + zone_secs)
    off = zone_secs // 60
    sign = "-" if off < 0 else "+"
    return ("From %s %s %s %02d %02d:%02d:%02d %s%02d%02d %d\n" % (
        user, _DAYS[t.tm_wday], p.MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_hour,
        t.tm_min, t.tm_sec, sign, abs(off) // 60, abs(off) % 60, t.tm_year)).encode()


def mbox_entry(user: str, message: bytes, when: int, zone_secs: int) -> bytes:
    """The stored form of a client's message (the digest covers exactly
    this): mbappend's, without its separator line."""
    from upas import mbappend           # not at start-up: it loads upasfs's mbox code
    head = from_line(user, when, zone_secs)
    stored = mbappend.format_message(head + message.replace(b"\r\n", b"\n"), user)
    return stored[:-1]


# ---------------------------------------------------------------- storing

def _target(s, path: str) -> Mailbox:
    """The Mailbox that assigns the target's uids: the selected one, or a
    fresh `status` view.  The view the last APPEND used is taken again only
    if nothing changed since (else a long-lived view would hand \\Recent
    back to messages another session has since seen): a run of APPENDs
    then lists and reads the target once, not once per message."""
    if s.box is not None and s.box.path == path and not s.box.gone:
        return s.box
    kept = s.extra.get("append_box")
    if kept is not None and kept.path == path and kept.unchanged():
        return kept
    box = Mailbox(s.ns, path, readonly=True, keep_recent=True)
    box.open()
    s.extra["append_box"] = box
    return box


def deliver(s, path: str, items: list[Item], tail: bool = True) -> tuple[int, list[int | None]]:
    """Append items to the mailbox at `path`; (uidvalidity, uid of each).
    A uid is None only if upasfs has not shown the message in time.
    `tail`: try _deliver_at_tail first (False: the caller just did)."""
    if tail and at_tail(s, path):
        got = _deliver_at_tail(s, path, items)
        if got is not None:
            return got
    box = _target(s, path)
    known = {id(m) for m in box.msgs}
    from upas import mbappend           # not at start-up: it loads upasfs's mbox code
    with s.ns.lock(posixpath.dirname(path)):
        after = _key(mbappend.append_locked(s.ns, path, _stored(items)))
        savedate.record(s.ns, path, [it.digest for it in items])
    found = _find(box, known, items)
    if box is not s.box and all(found):
        _remember_tail(s, box, after)
    return box.uidvalidity, [m.uid if m else None for m in found]


def _stored(items: list[Item]) -> bytes:
    return b"".join(it.entry + b"\n" for it in items)


def _key(d: nsmod.Dir) -> tuple:
    """What names this very content of a file: its qid and length."""
    return (d.qid, d.length)


# ------------------------------------------------ a run of APPENDs, at the tail

@dataclass
class _Tail:
    """A mailbox (not the selected one) whose .imp, as of `imp`, numbers
    every message of its file, as of `key`: both as this session left them
    after its last APPEND there."""
    path: str
    key: tuple
    imp: bytes
    kw: bytes | None


def _remember_tail(s, box: Mailbox, after: tuple) -> None:
    """After an APPEND through a view of the target: if nobody wrote the
    mailbox since our append (so the view, which has listed our message,
    listed the whole file) and the .imp is still what the view wrote
    (every listed message numbered), the next APPEND may skip the view."""
    s.extra.pop("append_tail", None)
    if box.imp_known is None or any(not m.uid for m in box.msgs if not m.expunged):
        return
    with s.ns.lock(box.dir):
        try:
            if _key(s.ns.stat(box.path)) != after:
                return
        except nsmod.Error:
            return
        if (imp.read_file(s.ns, box.imppath), imp.read_file(s.ns, box.kwpath)) != box.imp_known:
            return
    s.extra["append_tail"] = _Tail(box.path, after, *box.imp_known)


def at_tail(s, path: str) -> bool:
    """This session's last APPEND went to `path`, not the selected mailbox:
    the next may go at the tail (_deliver_at_tail), whose look under the
    lock also proves the mailbox is still there, as the file it left."""
    tail = s.extra.get("append_tail")
    return tail is not None and tail.path == path and (s.box is None or s.box.path != path)


def _kw_unchanged(ns: nsmod.Namespace, kwpath: str, kw: bytes | None) -> bool:
    """The .kw.imp is still `kw` (None: absent, and no `.tmp` of it that
    imp.read_file would take in): two stats where read_file's failing read
    and two stats took three calls."""
    if kw is not None:
        return imp.read_file(ns, kwpath) == kw
    return not ns.exists(kwpath) and not ns.exists(kwpath + ".tmp")


Answer = Callable[[int, list[int]], None]


def _deliver_at_tail(s, path: str, items: list[Item],
                     answer: Answer | None = None) -> tuple[int, list[int | None]] | None:
    """Append without listing the target in upasfs, when nothing but this
    session has written the mailbox and its .imp since its last APPEND
    there (checked under the lock, by the file's stat and the .imp's bytes):
    the new messages are then the file's last, their uids the next ones, and
    the .imp gets their lines at its end.  None: not so, take the long way
    (keywords too: they live in the .kw.imp).  `answer(validity, uids)` is
    called once both files are synced, still under the lock: APPEND's OK
    goes out while the save date is written (nobody else sees the mailbox
    before it is)."""
    tail = s.extra.get("append_tail")
    if tail is None or tail.path != path or any(it.keywords for it in items):
        return None
    from upas import mbappend
    ns, imppath = s.ns, path + ".imp"
    with ns.lock(posixpath.dirname(path)):
        try:
            if _key(ns.stat(path)) != tail.key:
                return None
        except nsmod.Error:
            return None
        if imp.read_file(ns, imppath) != tail.imp or not _kw_unchanged(ns, path + ".kw.imp", tail.kw):
            return None
        head = imp.header(tail.imp)
        if head is None:
            return None
        validity, first = head
        s.extra.pop("append_tail")          # until both files are written
        # the message and its lines; no reply before both are synced, and
        # either alone after a crash is harmless: a message without its line
        # is numbered later, a line without its message is dropped as
        # deleted mail is
        uids = list(range(first, first + len(items)))
        lines = b"".join(imp.format_entry(imp.Entry(it.digest, uid, it.flags | {"\\Recent"}), True)
                         for it, uid in zip(items, uids))
        # the two syncs wait together (ns.together): the order of the
        # writes does not matter, as above
        stored, new = ns.together(
            [path, imppath], lambda: mbappend.append_locked(ns, path, _stored(items)),
            lambda: imp.append_in_place(ns, imppath, tail.imp, first + len(items), lines))
        s.extra["append_tail"] = _Tail(path, _key(stored), new, tail.kw)
        try:
            if answer is not None:
                answer(validity, uids)
        finally:            # the client gone meanwhile: its message has a save date
            savedate.record(s.ns, path, [it.digest for it in items])
    return validity, uids


def _find(box: Mailbox, known: set[int], items: list[Item]) -> list:
    """The new messages of these items, in order, once upasfs shows them,
    given the items' flags.  The first look is Mailbox.modify's: its merge
    numbers the new messages and, in the same hold of the lock, they take
    their flags (one merge and one .imp write where a look and then a
    STORE took two); a message upasfs shows late is looked for again and
    flagged then."""
    digests = [it.digest for it in items]
    out: list = [None] * len(items)

    def flagged(m) -> bool:
        it = items[next(i for i, x in enumerate(out) if x is m)]
        m.flags |= it.flags - {"\\Recent"}
        m.keywords = list(dict.fromkeys(m.keywords + it.keywords))
        return True
    try:
        box.modify(_Fresh(box, known, digests, out, items), flagged)
    except MailboxLost:         # stored all the same: no APPENDUID
        return out
    except MailboxError:        # upasfs went away: stored, its flags are not
        return out
    late = [i for i, m in enumerate(out) if m is None]
    for _ in range(config.current().imap_append_find_tries if late else 0):
        time.sleep(FIND_WAIT)
        try:
            box.check()
        except MailboxLost:
            return out
        _match(box, known, digests, out)
        if all(out):
            break
    todo = [out[i] for i in late if out[i] is not None
            and (items[i].flags - {"\\Recent"} or items[i].keywords)]
    if todo:
        try:
            box.modify(todo, flagged)
        except MailboxError:
            pass
    return out


def _match(box: Mailbox, known: set[int], digests: list[str], out: list) -> None:
    """Fill out[] with the messages new since `known` whose digests these
    are, in order."""
    fresh = [m for m in box.msgs if id(m) not in known and not m.expunged]
    i = 0
    for k, d in enumerate(digests):
        while i < len(fresh) and fresh[i].digest != d:
            i += 1
        out[k] = fresh[i] if i < len(fresh) else None
        i += 1


class _Fresh:
    """The messages Mailbox.modify is to flag, found when it walks them:
    under the lock, after the merge that numbered the new messages."""

    def __init__(self, box: Mailbox, known: set[int], digests: list[str], out: list,
                 items: list[Item]):
        self.box, self.known, self.digests, self.out, self.items = box, known, digests, out, items

    def __iter__(self):
        _match(self.box, self.known, self.digests, self.out)
        return iter([m for m, it in zip(self.out, self.items)
                     if m is not None and (it.flags - {"\\Recent"} or it.keywords)])


# ---------------------------------------------------------------- APPEND

def _mailbox_refusal(s, req, raw: bytes) -> str | None:
    """Plan 9's checks before the message literal is asked for."""
    try:
        name = names.parse(raw)
    except names.BadName:
        return f"NO {req.echo} bad mailbox"
    try:
        st = s.ns.stat(names.box_path(s.user, name.path))
    except nsmod.Error:
        st = None
    if st is None or st.isdir:
        return f"NO [TRYCREATE] {req.echo} mailbox does not exist"
    return None


def literal_check(s, req, parts: list[bytes], size: int) -> str | None:
    """Before `+ Ready for literal data`: the arguments so far must parse
    (else BAD now, not after the message) and name an existing mailbox;
    the messages of one APPEND together stay within the literal limit
    (MULTIAPPEND holds them all until the last has come)."""
    if sum(map(len, parts[1::2])) + size > s.opts.max_literal:     # the literals so far
        return f"NO [TOOBIG] {req.echo} messages too large together"
    r = p.Reader(parts, utf8=names.UTF8.get())
    try:
        r.tag()
        r.sp()
        r.atom()
        r.sp()
        if r.peek() == 0x7B and r.i == len(r.parts) - 1:
            return None        # this literal is the mailbox name itself
        raw = r.astring()
        r.sp()
        _flags_and_date(r)
        while r.i < len(r.parts) - 1:       # messages before the one asked for
            _message(r)
            r.sp()
            _flags_and_date(r)
    except p.ParseError as e:
        return f"BAD {req.echo} {e.msg}"
    if at_tail(s, _path(s, raw) or ""):
        return None     # checked under the lock after the literal (cmd_append)
    return _mailbox_refusal(s, req, raw)


def _path(s, raw: bytes) -> str | None:
    """The path of the mailbox named `raw`; None for a bad name."""
    try:
        return names.box_path(s.user, names.parse(raw).path)
    except names.BadName:
        return None


def _flags_and_date(r: p.Reader) -> tuple[list[str], tuple[int, int] | None]:
    """The optional flag list and date-time, up to the message literal."""
    flags: list[str] = []
    if r.peek() == 0x28:
        flags = r.paren_list(r.flag)
        r.sp()
    date = None
    if r.peek() == 0x22:
        date = _date_time(r)
        r.sp()
    if r.peek() not in (0x7B, 0x7E):
        raise p.ParseError()
    return flags, date


def _message(r: p.Reader) -> tuple[bytes, bool]:
    """A message literal, and whether it is a literal8 (`~{n}`, RFC 3516
    4.4: BINARY's APPEND)."""
    binary = r.peek() == 0x7E
    if binary:
        r.pos += 1
    return r.literal(), binary


@dataclass
class Submitted:
    """One message of an APPEND, as the client gave it."""
    flags: list[str]
    date: tuple[int, int] | None
    data: bytes
    binary: bool


def parse_append(r: p.Reader) -> tuple[bytes, list[Submitted]]:
    """`mailbox 1*([SP flags] [SP date-time] SP literal)`: several messages
    in one command is MULTIAPPEND (RFC 3502 6)."""
    raw = r.astring()
    r.sp()
    msgs = []
    while True:
        flags, date = _flags_and_date(r)
        msgs.append(Submitted(flags, date, *_message(r)))
        if r.at_end():
            return raw, msgs
        r.sp()


def _date_time(r: p.Reader) -> tuple[int, int]:
    """(unix time, zone offset in seconds) of an APPEND date-time."""
    save = r.pos
    when = r.date_time()
    text = r.text[save:r.pos]
    m = re.search(rb"([+-])(\d\d)(\d\d)\"$", text)
    zone = (int(m.group(2)) * 60 + int(m.group(3))) * 60 * (-1 if m.group(1) == b"-" else 1)
    return when, zone


def _refused(s, req, raw: bytes) -> bool:
    """Plan 9's checks of the mailbox (_mailbox_refusal); True once its NO
    is sent."""
    refusal = _mailbox_refusal(s, req, raw)
    if refusal:
        s.updates(req)
        s.tagged(req, refusal)
    return refusal is not None


def cmd_append(s, req) -> None:
    raw, msgs = req.args
    path = _path(s, raw)
    # a run of APPENDs to one mailbox: the tail path's look under the lock
    # stands for the check that the mailbox exists (made if it fails)
    tail = path is not None and at_tail(s, path)
    if not tail and _refused(s, req, raw):
        return
    if any(m.binary and b"\0" in m.data for m in msgs):
        # RFC 3516 4.4: a mailbox that cannot hold the binary content says
        # so; an mbox line holds no NUL (docs/decisions.md)
        return s.no(req, "binary content cannot be stored here", code="UNKNOWN-CTE")
    now = int(time.time())
    items = [_item(s.user, m, now) for m in msgs]
    answered: list[bool] = []

    def answer(validity: int, uids: list) -> None:
        answered.append(True)
        _ok(s, req, validity, uids)
        s.flush()           # now, not after what the command does after it
    try:
        # all in one write: every message is stored, or none (RFC 3502 6)
        got = _deliver_at_tail(s, path, items, answer) if tail else None
        if got is None and tail and _refused(s, req, raw):
            return
        validity, uids = got or deliver(s, path, items, tail=not tail)
    except (MailboxError, nsmod.Error, OSError, LockError) as e:
        s.log(f"append: {e}")
        if not answered:    # (else stored and told: the save date failed)
            s.no(req, "message save failed")
        return
    if not answered:
        _ok(s, req, validity, uids)


def _ok(s, req, validity: int, uids: list) -> None:
    code = f"APPENDUID {validity} {sequence_set(uids)}" if all(uids) else None
    s.ok(req, code=code)


def _item(user: str, m: Submitted, now: int) -> Item:
    when, zone = m.date if m.date else (now, time.localtime(now).tm_gmtoff)
    return Item(mbox_entry(user, m.data, min(when, now), zone),
                {f for f in m.flags if f.startswith("\\")},
                [f for f in m.flags if not f.startswith("\\")])
