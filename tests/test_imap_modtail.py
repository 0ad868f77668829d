"""SELECT's QRESYNC questions answered from the MODSEQ record's log alone,
once a session proved its base sound (modtail.py; issue 16, tenth part):
every answer is the parsed record's, for records our writers make, with
a log, a torn log, a damaged byte anywhere, the proof naming that very
record or another; and over real sessions, other sessions' flag changes,
an expunge, a Plan 9 imap4d's change and a proof left stale are all
reported as RFC 7162 3.2.5 says."""
import re

from hypothesis import given, settings, strategies as st

from upas import ns as nsmod
from upas.imap4d import modseq as ms, modtail

from tests.test_imap_condstore import highest, ok, uidvalidity
from tests.test_imap_modseq_lean import DAMAGE, _answers, _full, records


class _Proof:
    """A namespace whose only file is the proof `line` (None: none)."""

    def __init__(self, line: bytes | None) -> None:
        self.line = line

    def read(self, path: str) -> bytes:
        if self.line is None or not path.endswith(modtail.SUFFIX):
            raise nsmod.Error("file does not exist")
        return modtail.MAGIC + self.line


def _proved(data: bytes, line: bytes | None) -> ms.Modseqs:
    """A session's Modseqs after a sync that took the record as it is,
    the proof file beside it holding `line`."""
    box = modtail.Proved("/nowhere")
    box._rec, box._mine, box._ns = None, data, _Proof(line)
    return box


def _proof_of(data: bytes) -> bytes | None:
    """The line a session that read `data` writes down, if it would."""
    if not modtail.sound(ms.lean(data)):
        return None
    return modtail.proof_line(data)


@settings(max_examples=300, deadline=None)
@given(records(), st.data())
def test_the_log_answers_as_the_parsed_record(data, draw):
    base_top = ms.head(data)[1]
    asked = [0, base_top, base_top + 1, ms.head_highest(data)] + \
        draw.draw(st.lists(st.integers(0, 10**4 + 10), max_size=3))
    known = draw.draw(st.sampled_from([[(1, 10**6)], [(1, 5), (9, 400)], [(3, 3)]]))
    uids = ms.parse(data).msgs
    some = sorted(uids)[:3] + [draw.draw(st.integers(1, 10**6))]
    uidnext = max(uids, default=0) + 1
    cut = draw.draw(st.integers(1, max(1, len(data) - 1)))
    at = draw.draw(st.integers(0, len(data) - 1))
    byte = draw.draw(st.sampled_from(DAMAGE))
    original = _proof_of(data)
    for v in (data, data[:cut], data[:at] + bytes([byte]) + data[at + 1:],
              data[:at] + bytes([byte]) + data[at:]):
        want = _answers(_full(v), asked, known, uidnext, some)
        # the proof of this very record (if a session would write one), of
        # the undamaged one (a stale or a torn file's: the same base, or not)
        for line in (_proof_of(v), original, b"0 " + b"0" * 40 + b"\n"):
            assert _answers(_proved(v, line), asked, known, uidnext, some) == want


def test_the_proof_is_used_for_a_sound_base():
    """A sound base with a log of flag changes: its proof makes a Tail,
    which answers for a MODSEQ at or above the base's highest only."""
    rec = ms.Record(7, 10, {u: (1 + u % 10, 0) for u in range(1, 101)}, [(4, [(101, 102)])],
                    0, "a" * 40 + " -")
    data = ms.format_record(rec) + ms.format_entry(ms.LogEntry(11, "b" * 40 + " -", [
        (5, [(3, 3), (50, 52)]), (6, [(200, 300)])]))
    data += ms.format_entry(ms.LogEntry(12, "c" * 40 + " -", [(5, [(51, 51)])]))
    line = _proof_of(data)
    tail = modtail.tail(data, line)
    assert line is not None and tail is not None
    assert tail.changed_since(10) == {3, 50, 51, 52}          # (not 200-300: no messages)
    assert tail.changed_since(11) == {51}
    assert tail.changed_since(9) is None                      # below the base: lean's
    assert tail.of_many([3, 4, 51, 150]) == [11, 5, 12, 0]
    assert tail.vanished(3, [(1, 200)]) == [(101, 102)]
    assert tail.of_many(list(range(1, 300))) is None        # past the lookups' budget
    assert tail.of_many([3]) == [11]                        # (looked up already)
    assert modtail.tail(data, line.replace(b" ", b"  ")) is None
    torn = data[:-3]                                    # its last entry cut: the same base
    assert modtail.tail(torn, line).changed_since(11) == set()


def _synced(srv) -> tuple[int, int]:
    """A client's first sync of INBOX: its UIDVALIDITY and HIGHESTMODSEQ."""
    c = srv.connect()
    ok(c, b"a ENABLE QRESYNC")
    m = highest(ok(c, b"b SELECT INBOX"))
    ok(c, b"c LOGOUT")
    return uidvalidity(srv), m


def _select_qresync(srv, v: int, m: int) -> list[bytes]:
    c = srv.connect()
    ok(c, b"a ENABLE QRESYNC")
    r = ok(c, b"b SELECT INBOX (QRESYNC (%d %d))" % (v, m))
    ok(c, b"c LOGOUT")
    return r


def _fetches(r: list[bytes]) -> dict[int, tuple[bytes, int]]:
    """uid -> (flags, MODSEQ) of a SELECT's FETCH lines."""
    out = {}
    for ln in r:
        got = re.match(rb"\* \d+ FETCH \(UID (\d+) FLAGS \((.*)\) MODSEQ \((\d+)\)\)", ln)
        if got:
            out[int(got.group(1))] = (got.group(2), int(got.group(3)))
    return out


def _store(srv, cmd: bytes) -> None:
    c = srv.connect()
    ok(c, b"a SELECT INBOX")
    ok(c, b"b " + cmd)
    ok(c, b"c LOGOUT")


def test_reconnects_read_the_log_and_miss_nothing(imap_preauth):
    """A client resyncs from one MODSEQ again and again while others flag
    messages (the proof written at the first resync, the record's log
    read alone after it), expunge one, and a Plan 9 imap4d (which knows
    no MODSEQs) changes the .imp: each SELECT reports exactly what changed
    since (RFC 7162 3.2.5.1)."""
    srv = imap_preauth
    v, m = _synced(srv)
    proof = srv.box(name="mbox" + modtail.SUFFIX)
    _store(srv, b"UID STORE 2,5 +FLAGS.SILENT (\\Flagged)")
    r = _select_qresync(srv, v, m)
    h1 = highest(r)
    assert _fetches(r) == {2: (b"\\Flagged", h1), 5: (b"\\Flagged", h1)}
    record = srv.box(name="mbox" + ms.SUFFIX).read_bytes()
    assert proof.read_bytes() == modtail.MAGIC + modtail.stamp(record, ms.log_at(record))
    _store(srv, b"UID STORE 7 +FLAGS.SILENT (\\Seen)")
    record = srv.box(name="mbox" + ms.SUFFIX).read_bytes()
    assert proof.read_bytes() == modtail.MAGIC + modtail.stamp(record, ms.log_at(record))
    assert ms.log_at(record) < len(record)          # its log, read alone
    r = _select_qresync(srv, v, m)
    h2 = highest(r)
    assert h2 > h1 and _fetches(r) == {2: (b"\\Flagged", h1), 5: (b"\\Flagged", h1),
                                       7: (b"\\Seen", h2)}
    assert _fetches(_select_qresync(srv, v, h1)) == {7: (b"\\Seen", h2)}
    assert not _fetches(_select_qresync(srv, v, h2))
    # an expunge: the record is written anew; the next resync reads it whole
    _store(srv, b"UID STORE 5 +FLAGS.SILENT (\\Deleted)")
    c = srv.connect()
    ok(c, b"a SELECT INBOX")
    ok(c, b"b EXPUNGE")
    ok(c, b"c LOGOUT")
    r = _select_qresync(srv, v, h1)
    assert b"* VANISHED (EARLIER) 5\r\n" in r and _fetches(r) == {7: (b"\\Seen", h2)}
    # a Plan 9 imap4d's change of the .imp (message 1: \Answered)
    h3 = highest(r)
    path = srv.box(name="mbox.imp")
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:-8] + b"-a------"
    path.write_bytes(b"\n".join(lines))
    r = _select_qresync(srv, v, h3)
    assert _fetches(r) == {1: (b"\\Answered", highest(r))} and highest(r) > h3


def test_a_proof_of_another_base_is_not_trusted(imap_preauth):
    """The proof names the base it checked: a record whose base was made
    anew since (here by hand: a message's MODSEQ raised in it) is read
    whole, and its change is reported."""
    srv = imap_preauth
    v, m = _synced(srv)
    _store(srv, b"UID STORE 2 +FLAGS.SILENT (\\Flagged)")
    h1 = highest(_select_qresync(srv, v, m))                # the proof written
    path = srv.box(name="mbox" + ms.SUFFIX)
    rec = ms.parse(path.read_bytes())
    rec.highest += 5
    rec.msgs[3] = (rec.highest, rec.msgs[3][1])
    path.write_bytes(ms.format_record(rec))
    r = _select_qresync(srv, v, h1)
    assert _fetches(r) == {3: (b"", h1 + 5)}


def test_a_base_laid_out_otherwise_is_not_proved():
    """lean() splits the base on any whitespace, so it takes a line with a
    space before its uid or two between words (hand-edited, or another
    writer's); a Tail, reading the lines in place, would misread them
    (hypothesis found both: a MODSEQ 0 for a message that has one, and a
    ValueError).  Such a base gets no proof, and every answer is the
    parsed record's."""
    head = b"imap modseq\n0000000001 100\nh " + b"a" * 40 + b" -\n"
    for lines in (b"0000000001 100 00000000\n 0000000002 1 00000000\n",
                  b"0000000001  100 00000000\n0000000002 1 00000000\n",
                  b"0000000001 100\t00000000\n0000000002 1 00000000\n"):
        data = head + lines
        assert modtail.sound(ms.lean(data)) and modtail.proof_line(data) is None
        want = _answers(_full(data), [0, 1, 100], [(1, 10**6)], 3, [1, 2])
        assert want[3] == [100, 1]                      # as the record says
        assert _answers(_proved(data, _proof_of(data)), [0, 1, 100], [(1, 10**6)], 3,
                        [1, 2]) == want
    laid_out = head + b"0000000001 100 00000000\n0000000002 1 00000000\n"
    assert modtail.proof_line(laid_out) == modtail.stamp(laid_out, ms.log_at(laid_out))
