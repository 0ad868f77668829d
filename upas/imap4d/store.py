"""STORE and UID STORE (docs/spec/servers.md §3.10; docs/decisions.md: keywords stored)."""
from __future__ import annotations

import _thread
import contextlib

from upas.mail.lock import LockError
from upas.transport.events import Hangup
from upas.imap4d import condstore, flagreport, imp, msgview
from upas.imap4d import parser as p
from upas.imap4d.mailbox import Mailbox, Message
from upas.imap4d.request import Request


def parse_store(r: p.Reader):
    ranges = r.seqset()
    r.sp()
    unchangedsince = condstore.parse_unchangedsince(r)
    try:
        word = r.atom().upper()
    except p.ParseError:
        raise p.ParseError("illegal store attribute") from None
    op = word[0] if word[:1] in "+-" else ""
    word = word.lstrip("+-")
    if word not in ("FLAGS", "FLAGS.SILENT"):
        raise p.ParseError("illegal store attribute")
    if r.peek() != 0x20:
        raise p.ParseError("no flags given")
    r.sp()
    return ranges, op, word.endswith(".SILENT"), r.flag_list(), unchangedsince


def changer(op: str, flags: list[str]):
    """change(msg) -> bool for replace (""), add ("+") or remove ("-");
    \\Recent can never be changed."""
    sysflags = {f for f in flags if f.startswith("\\") and f != "\\Recent"}
    kws = [f for f in flags if not f.startswith("\\")]
    # each distinct set of flags becomes the one frozenset its messages
    # share (imp.flagset), worked out once a command: STORE 1:* on 10,000
    # messages makes a few sets, not 10,000
    made: dict = {}

    def flags_of(old) -> frozenset[str]:
        if op == "":
            new = sysflags | (old & {"\\Recent"})
        elif op == "+":
            new = old | sysflags
        else:
            new = old - sysflags
        return imp.flagset(new)

    def new_flags(old) -> frozenset[str]:
        key = old if isinstance(old, frozenset) else frozenset(old)
        new = made.get(key)
        if new is None:
            new = made[key] = flags_of(key)
        return new

    def change(m: Message) -> bool:
        # system flags first: the common STORE names no keyword
        old = m.flags
        new = new_flags(old)
        changed = new != old
        if changed:
            m.flags = new
        words = _keywords(op, m.keywords, kws)
        if words != m.keywords:
            m.keywords, changed = words, True
        return changed

    def flags_only(m: Message) -> bool:
        # (called once a message of a STORE 1:*: a dict lookup by the
        # flags object, which messages share, before anything else)
        old = m.flags
        try:
            new = made[old]
        except (KeyError, TypeError):
            new = new_flags(old)
        if new is old or new == old:
            return False
        m.flags = new
        return True
    return change if kws or op == "" else flags_only


def mask_table(op: str, flags: list[str]) -> bytes | None:
    """What +FLAGS or -FLAGS of system flags only does to a message's mask
    byte (msgview.Lazy's, imp.MASK_BIT's bits), as a translate() table;
    None for any other STORE (a keyword, FLAGS, a flag without a bit)."""
    bits = [imp.MASK_BIT.get(f) for f in flags if f != "\\Recent"]
    if op not in ("+", "-") or None in bits:
        return None
    mask = sum(set(bits))
    return bytes((m | mask) if op == "+" else (m & ~mask) for m in range(256))


def _on_columns(box: Mailbox, msgs: msgview.Picked, table: bytes, change):
    """box.modify's `columns`: the change made on the lazy view's mask
    bytes (msgview.Lazy.retag) when msgs are still a run of its places
    after the merge (which may have made the view whole), the made
    messages through change() (their flags are the truth).  No Message
    is made: a STORE 1:* on 10,000 of a fresh SELECT made them all
    (3.3 ms) to change each in turn."""
    def columns() -> bool:
        lazy, places = box.lazy(), msgs.places
        if lazy is not msgs.lazy or lazy.full is not None or not isinstance(places, range):
            return False
        for k, m in lazy.made.items():
            if k in places:
                change(m)
        lazy.retag(places, table)
        return True
    return columns


def _keywords(op: str, have: list[str], kws: list[str]) -> list[str]:
    if op == "":
        return _dedup(kws)
    if op == "+":
        return _dedup(have + kws)
    low = {k.lower() for k in kws}
    return [k for k in have if k.lower() not in low]


def _dedup(kws: list[str]) -> list[str]:
    seen, out = set(), []
    for k in kws:
        if k.lower() not in seen:
            seen.add(k.lower())
            out.append(k)
    return out


# the lines of a STORE's reply past which they are sent while its files
# are written (_Reply): more than one part of flagreport's
REPLY_AHEAD = flagreport.CHUNK


def store(s, req: Request) -> None:
    ranges, op, silent, flags, unchangedsince = req.args
    box: Mailbox = s.box
    if box.readonly:            # EXAMINE: RFC 3501 6.3.2 (Plan 9 stored anyway)
        s.no(req, "mailbox is read-only")
        return
    if unchangedsince is not None:
        condstore.enable(s, [condstore.CONDSTORE])
    # a STORE of system flags on a lazy view changes its columns (_on_columns)
    table = mask_table(op, flags) if unchangedsince is None else None
    msgs, ok = s.resolve_present(ranges, req.uid, columns=table is not None)
    change = changer(op, flags)
    columns = _on_columns(box, msgs, table, change) \
        if table is not None and isinstance(msgs, msgview.Picked) else None
    modified: list[Message] = []
    if unchangedsince is not None:
        change = _conditional(box, change, unchangedsince, modified)
    kws = [f for f in flags if not f.startswith("\\")] if op != "-" else []
    # many lines without CONDSTORE (no MODSEQ to wait for) go while the
    # files are written (_Reply); a few are not worth a thread (~0.3 ms)
    reply = _Reply(s, box, msgs, req.uid, kws) \
        if len(msgs) >= REPLY_AHEAD and not silent and not condstore.enabled(s) else None
    try:
        with reply or contextlib.nullcontext():    # its lines sent before what follows
            box.modify(msgs, change, looked=True,  # resolve_present checked
                       changed=reply.start if reply is not None else None, columns=columns)
    except (LockError, Hangup):
        raise                               # the session answers NO [INUSE]; the client is gone
    except Exception as e:
        s.log(f"store: {e}")
        s.no(req)
        return
    if reply is None:
        _told(box, msgs)
        box.keywords.update(kws)
        s.announce_keywords()               # before a FETCH shows them
    if modified:
        failed = set(map(id, modified))
        msgs = [m for m in msgs if id(m) not in failed]
    if condstore.enabled(s):
        # the MODSEQs even when .SILENT (RFC 7162 3.1.3)
        _report(s, box, msgs, req.uid, silent)
    elif not silent and reply is None:
        _report(s, box, msgs, req.uid)
    # one look at upasfs a STORE (resolve_present's): mail that came
    # since is told at the next command (RFC 3501 7: any time)
    box.listed = True
    code = None
    if modified:
        nums = [m.uid for m in modified] if req.uid else box.seqs(modified)
        code = "MODIFIED " + condstore.modseq.format_set(condstore.modseq.ranges(nums))
    if ok:
        s.ok(req, "completed" if code is None else "conditional STORE failed", code=code)
    else:
        s.no(req, code=code)


def _told(box: Mailbox, msgs: list[Message]) -> None:
    """Others' changes of msgs merged so far are told by STORE's reply,
    not again at the command's end."""
    if box.flag_changes:
        # (others' changes are of made messages: a lazy view's pick's are
        # those it made, none made for this)
        lazy = isinstance(msgs, msgview.Picked) and msgs.lazy.full is None
        here = set(map(id, msgs.made().values() if lazy else msgs))
        box.flag_changes[:] = [m for m in box.flag_changes if id(m) not in here]


class _Reply:
    """STORE's FETCH lines without CONDSTORE, made and sent by a thread
    started once the messages are changed (under the lock) while this one
    writes the .imp and the MODSEQ record and syncs them: the client reads
    the lines meanwhile (a STORE 1:* on 10,000 messages is 390 KB of
    them), not after the files' fsyncs.  The tagged line waits for both
    (the `with` block around the change), and nothing else is sent until
    then: the client reads what it read before, in the same order.  The
    lines show the flags as changed in memory, as a failed write's
    tagged NO leaves them too (docs/decisions.md, "STORE's reply while
    its files are synced").  A stalled client holds the thread, never
    the lock."""

    def __init__(self, s, box: Mailbox, msgs: list[Message], uid: bool, kws: list[str]):
        self.s, self.box, self.msgs, self.uid, self.kws = s, box, msgs, uid, kws
        self.sent: _thread.LockType | None = None      # held until the lines are sent
        self.error: BaseException | None = None
        self.late = False                   # the thread could not be started

    def start(self) -> None:
        """(box.modify's `changed`: the lock held, the files not written.)
        Changes merged after this are told at the command's end.  A bare
        thread and a lock, not threading.Thread: its start and join cost
        a session just forked ~0.5 ms of CPU (its bookkeeping), these ~0.25."""
        _told(self.box, self.msgs)
        self.box.keywords.update(self.kws)
        self.sent = _thread.allocate_lock()
        self.sent.acquire()
        begun = _thread.allocate_lock()
        begun.acquire()
        try:
            _thread.start_new_thread(self._run, (begun,))
        except RuntimeError:            # no thread to be had: the lines go after
            self.sent = None
            self.late = True
            return
        # the thread has the GIL first: the first lines go out now, not when
        # this one next lets it go (its next system call, or 5 ms on)
        begun.acquire()

    def _lines(self) -> None:
        self.s.announce_keywords()          # before a FETCH shows them
        _report(self.s, self.box, self.msgs, self.uid)

    def _run(self, begun: _thread.LockType) -> None:
        begun.release()
        try:
            self._lines()
        except BaseException as e:      # noqa: BLE001 -- raised by __exit__
            self.error = e
        finally:
            self.sent.release()

    def __enter__(self) -> "_Reply":
        return self

    def __exit__(self, *exc) -> None:
        """The lines are all sent (the thread ended) when the block ends,
        however it ends; what sending them raised (Hangup) is raised if
        the block raised nothing."""
        if self.sent is not None:
            self.sent.acquire()
            self.sent = None
            if self.error is not None and exc[0] is None:
                raise self.error
        elif self.late and exc[0] is None:
            self.late = False
            self._lines()


def _conditional(box: Mailbox, change, unchangedsince: int, modified: list[Message]):
    """change(), for the messages whose MODSEQ is not above
    UNCHANGEDSINCE; the others go to `modified` (RFC 7162 3.1.3).  The
    MODSEQs are looked at under the lock, after the merge, first synced
    with what the others wrote."""
    synced = False

    def conditional(m: Message) -> bool:
        nonlocal synced
        if not synced:
            box.modseqs.sync(box.ns)
            synced = True
        if box.modseqs.of(m.uid) > unchangedsince:
            modified.append(m)
            return False
        return change(m)
    return conditional


def _report(s, box: Mailbox, msgs: list[Message], uid: bool,
            silent: bool | None = None) -> None:
    """`* n FETCH (FLAGS (...))` for each message (flagreport.send).  With
    CONDSTORE (silent not None) `(UID u MODSEQ (n) FLAGS (...))`, without
    the flags when silent, as RFC 7162 3.1.3's examples."""
    items = [flagreport.UID] if uid else []
    if silent is not None:
        items.append(flagreport.MODSEQ)
    if not silent:
        items.append(flagreport.FLAGS)
    if msgs:
        flagreport.send(s, box, msgs, items)

