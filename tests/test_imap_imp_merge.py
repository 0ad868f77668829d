"""The merge of a view's messages with the .imp (upas/imap4d/impstate.py),
without upasfs or files: the bytes of the .imp as other sessions left them,
the messages as a listing gave them, and the merge's two questions (a new
UIDVALIDITY; which messages upasfs no longer has) answered here.  The
sessions that these situations come from are made with real upasfs views
in test_imap_imp_behind.py."""
from upas.imap4d import imp
from upas.imap4d.impstate import ImpState
from upas.imap4d.message import Message

A, B, C, X = "a" * 40, "b" * 40, "c" * 40, "e" * 40


def imp_file(uidnext: int, *rows, validity: int = 7) -> bytes:
    """A .imp as Plan 9 writes it: (digest, uid, flag letters) rows, in
    mailbox order (letters as in the file: s a f D d r)."""
    return imp.format_rows(validity, uidnext, [
        (d, u, {f for c, f in imp.FLAG_CHARS if c in letters}) for d, u, letters in rows], True)


def listing(*digests: str) -> list[Message]:
    return [Message(n, d, flags={"\\Recent"}) for n, d in enumerate(digests, 1)]


def merge(state, data, msgs, kw=None, *, settle=False, force=False, gone=(), asked=None):
    def vanished(ms):
        if asked is not None:
            asked.extend(ms)
        return [m for m in ms if m.fsnum in gone]
    return state.merge(data, kw, msgs, settle=settle, force=force,
                       new_validity=lambda: 1234, vanished=vanished)


def test_a_new_view_takes_the_file_as_it_is():
    data = imp_file(3, (A, 1, "s"), (B, 2, ""))
    state, msgs = ImpState(), listing(A, B)
    assert merge(state, data, msgs) is not None
    assert [(m.uid, m.flags) for m in msgs] == [(1, {"\\Seen"}), (2, set())]
    assert (state.uidvalidity, state.uidnext) == (7, 3)
    assert state.render(msgs) == (None, None)       # nothing to write back


def test_new_messages_are_numbered_in_mailbox_order():
    state, msgs = ImpState(), listing(A, B, C)
    merge(state, imp_file(2, (A, 1, "")), msgs)
    assert [m.uid for m in msgs] == [1, 2, 3] and state.uidnext == 4
    data, kw = state.render(msgs)
    assert imp.parse_imp(data).entries == [imp.Entry(A, 1, frozenset()), imp.Entry(B, 2, set()),
                                           imp.Entry(C, 3, set())] and kw is None
    assert imp.parse_imp(data).uidnext == 4


def test_no_file_gets_a_new_uidvalidity():
    state, msgs = ImpState(), listing(A)
    merge(state, None, msgs)
    assert state.uidvalidity == 1234 and msgs[0].uid == 1


def test_a_message_the_file_lacks_before_ones_it_knows_is_doubted():
    """B (new to us) has no line though C after it has one: most likely a
    message deleted since our listing -- not numbered anew above C."""
    data = imp_file(4, (A, 1, ""), (C, 3, ""))
    state, msgs = ImpState(), listing(A, B, C)
    state.listed = data                     # no write since our listing
    asked: list = []
    assert merge(state, data, msgs, asked=asked) is None      # list again first
    assert [m.uid for m in msgs] == [0, 0, 0] and asked == [msgs[1]]
    assert merge(state, data, msgs, gone={2}) is not None     # upasfs: B is gone
    assert msgs[1].expunged and [m.uid for m in msgs if not m.expunged] == [1, 3]


def test_a_listed_copy_deleted_since_does_not_take_its_twins_line():
    """The stress rig's `UID 17 at seq 11`: our listing has copy X1 of X,
    not its twin X2; another session numbered both (5, 6), expunged X1
    and dropped its line.  The file changed since we listed, so X1, which
    would take X2's line, is looked up first."""
    before = imp_file(5, (A, 1, ""), (B, 2, ""))
    state, msgs = ImpState(), listing(A, B)
    merge(state, before, msgs)
    state.render(msgs)
    state.unlocked()                        # the file as we left it
    msgs.append(Message(3, X, flags={"\\Recent"}))           # our new listing: X1
    after = imp_file(7, (A, 1, ""), (B, 2, ""), (X, 6, ""))  # X2's line only
    asked: list = []
    assert merge(state, after, msgs, gone={3}, asked=asked) is not None
    assert asked == [msgs[2]] and msgs[2].expunged and msgs[2].uid == 0
    msgs.append(Message(4, X, flags={"\\Recent"}))           # X2, listed next
    merge(state, after, msgs)
    assert msgs[3].uid == 6                 # its own line


def test_a_file_unchanged_since_the_listing_is_not_doubted():
    """No session wrote the file since we listed: no delete we missed, no
    look at upasfs (SELECT of a quiet mailbox asks upasfs nothing more)."""
    data = imp_file(3, (A, 1, ""), (X, 2, ""))
    state, msgs = ImpState(), listing(A, X)
    state.listed = data                     # read before the listing
    asked: list = []
    merge(state, data, msgs, asked=asked)
    assert asked == [] and [m.uid for m in msgs] == [1, 2]


def test_lines_of_messages_not_listed_yet_are_kept():
    """Another session numbered C, which our listing lacks: our rewrite
    keeps its line and flags (dropping them lost a \\Deleted once)."""
    state, msgs = ImpState(), listing(A)
    merge(state, imp_file(3, (A, 1, ""), (C, 2, "D")), msgs)
    msgs[0].flags = msgs[0].flags | {"\\Flagged"}     # replaced, never changed in place
    data, _ = state.render(msgs)
    assert [(e.digest, e.uid, set(e.flags)) for e in imp.parse_imp(data).entries] == \
        [(A, 1, {"\\Flagged"}), (C, 2, {"\\Deleted"})]


def test_others_flag_changes_and_keywords_are_reported():
    state, msgs = ImpState(), listing(A, B)
    merge(state, imp_file(3, (A, 1, ""), (B, 2, "")), msgs)
    kw = imp.format_keywords([(B, 2, ["$Forwarded"])])
    got = merge(state, imp_file(3, (A, 1, "s"), (B, 2, "")), msgs, kw)
    assert got.changed == [msgs[0], msgs[1]] and got.keywords == {"$Forwarded"}
    assert "\\Seen" in msgs[0].flags and msgs[1].keywords == ["$Forwarded"]


def test_a_read_only_view_leaves_recent_as_the_file_has_it():
    """EXAMINE and STATUS (keep_recent) write `r` back where the file had
    it, though the session shows \\Recent (RFC 3501 6.3.2)."""
    data = imp_file(3, (A, 1, "r"), (B, 2, "s"))
    state, msgs = ImpState(keep_recent=True), listing(A, B, C)
    merge(state, data, msgs)
    out, _ = state.render(msgs)
    assert [set(e.flags) for e in imp.parse_imp(out).entries] == \
        [{"\\Recent"}, {"\\Seen"}, {"\\Recent"}]
    state, msgs = ImpState(), listing(A, B, C)
    merge(state, data, msgs)
    out, _ = state.render(msgs)
    assert not any("\\Recent" in e.flags for e in imp.parse_imp(out).entries)


def test_lines_are_taken_whole_only_when_they_are_the_messages():
    """imp.lines_of, what a new view takes without the match: the lines
    one a message, in order, uids ascending; anything else is match's."""
    good = imp_file(4, (A, 1, "s"), (B, 3, ""))
    assert imp.lines_of(good, [A, B]) == ([1, 3], [frozenset({"\\Seen"}), frozenset()])
    assert imp.lines_of(good, [B, A]) is None                  # another order
    assert imp.lines_of(good, [A]) is None                     # a line more
    assert imp.lines_of(imp_file(4, (A, 3, ""), (B, 1, "")), [A, B]) is None   # out of order
    assert imp.lines_of(imp_file(4, (A, 0, ""), (B, 1, "")), [A, B]) is None   # Plan 9's uid 0
    assert imp.lines_of(good[:-1], [A, B]) is None             # cut short
    state, msgs = ImpState(), listing(A, B)
    assert merge(state, good, msgs) is not None
    assert [(m.uid, m.flags) for m in msgs] == [(1, {"\\Seen"}), (3, set())]
    assert state.render(msgs) == (None, None)       # the file as it was


def test_lines_of_reads_every_field_as_parse_imp_does():
    """imp.lines_of reads the file by columns (strided slices): what it
    gives is what the line parser gives, for every flag letter and the
    largest uid; any one byte of a line made wrong (a digest, a digit, a
    flag letter, a separator) and it gives None; the digests may come as
    selectmark's record holds them (a column of 41-byte lines, from an
    offset) or as a list."""
    letters = ["", "s", "a", "f", "D", "d", "r", "safDdr", "sf", "ad"]
    digests = ["%040x" % (k * 7919) for k in range(len(letters))]
    rows = [(d, 10 ** k + k, f) for k, (d, f) in enumerate(zip(digests, letters))]
    rows[-1] = (digests[-1], 4294967295, letters[-1])
    data = imp_file(4294967295, *rows)
    want = imp.parse_imp(data).entries
    got = imp.lines_of(data, digests)
    assert got == ([e.uid for e in want], [e.flags for e in want])
    record = b"head\n" + "".join(d + "\n" for d in digests).encode()
    assert imp.lines_of(data, digests, record, len(b"head\n")) == got
    assert imp.lines_of(data, digests, record, 0) is None      # not the column
    line = imp.BODY_AT + 3 * 61                 # the 4th line: each byte in turn
    for k in range(61):
        for wrong in (b"x", b" ", b"-", b"0", b"s"):
            bad = data[:line + k] + wrong + data[line + k + 1:]
            if bad == data:
                continue
            out = imp.lines_of(bad, digests)
            parsed = imp.parse_imp(bad).entries
            if out is not None:         # still a valid line: read as the parser reads it
                assert len(parsed) == len(digests) and [e.digest for e in parsed] == digests
                assert out == ([e.uid for e in parsed], [e.flags for e in parsed]), (k, wrong)
    assert imp.lines_of(data, digests[:-1] + ["f" * 39]) is None
    assert imp.lines_of(data, digests[:-1] + ["\u00e9" * 40]) is None


def test_with_uids_finds_what_a_pass_over_the_messages_finds():
    """Mailbox.with_uids (QRESYNC's SELECT: the changed messages) looks a
    few uids up by bisection: it gives what the plain filter gives, with
    messages expunged, a uid that is not there, one not numbered yet (uid
    0) among them, and many uids."""
    from upas.imap4d.mailbox import Mailbox
    box = Mailbox(None, "/mail/box/glenda/mbox")
    box.msgs = [Message(n, "%040x" % n, uid=3 * n) for n in range(1, 201)]
    box.msgs[10].expunged = True
    def plain(uids):
        return [m for m in box.msgs if m.uid in uids and not m.expunged]
    for uids in ({3, 33, 600}, {33}, {4}, {3, 4}, set(range(0, 700, 3)), set()):
        assert box.with_uids(uids) == plain(uids), uids
    box.msgs[50].uid = 0
    for uids in ({3, 303, 600}, {153}, {156, 600}):
        assert box.with_uids(uids) == plain(uids), uids


def numbered(*rows: tuple[int, str]) -> list[Message]:
    """A listing with upasfs's message numbers given: (number, digest)."""
    return [Message(n, d, flags={"\\Recent"}) for n, d in rows]


def test_the_copy_left_takes_its_own_line_by_upasfs_numbers():
    """Copies X (uids 2, 3) between A and C; pop3 deleted the first
    (upasfs number 2), and no line was dropped yet.  upasfs's numbers
    say which copy is left: the second, uid 3 -- not uid 2, which a
    session that saw it go would not take (it would number the copy
    anew, above C: the session rig's uid_not_ascending)."""
    data = imp_file(5, (A, 1, ""), (X, 2, ""), (X, 3, ""), (C, 4, ""))
    state, msgs = ImpState(), numbered((1, A), (3, X), (4, C))
    merge(state, data, msgs, settle=True, force=True)
    assert [m.uid for m in msgs] == [1, 3, 4]
    state, msgs = ImpState(), numbered((1, A), (2, X), (4, C))     # the second went
    merge(state, data, msgs, settle=True, force=True)
    assert [m.uid for m in msgs] == [1, 2, 4]


def test_numbers_that_do_not_fit_the_lines_leave_the_first_copy():
    """upasfs numbered the mailbox anew (a restart) or lines went with
    their messages: the numbers around the copies are not as far apart
    as their lines, and tell nothing; the first line is taken, as before."""
    data = imp_file(5, (A, 1, ""), (X, 2, ""), (X, 3, ""), (C, 4, ""))
    state, msgs = ImpState(), numbered((1, A), (2, X), (3, C))
    merge(state, data, msgs, settle=True, force=True)
    assert [m.uid for m in msgs] == [1, 2, 4]
