"""The messages a sequence set names (Session.resolve, resolve_present),
taken as slices of the mailbox: against RFC 3501's definitions, written
here a message at a time.  9.: seq-range `a:b` is every number from the
lower to the higher of the two, `*` the largest in use (the message
count, the highest UID); 6.4.8: UIDs that name no message are passed
over; a sequence number above the count makes the command fail
(docs/spec/servers.md §3.13).  Every message once, in mailbox order."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from upas.imap4d import parser as p
from upas.imap4d.mailbox import Mailbox
from upas.imap4d.message import Message
from upas.imap4d.session import Options, Session

number = st.one_of(st.just(p.STAR), st.integers(1, 60))
ranges = st.lists(st.tuples(number, number), min_size=1, max_size=5)


def session_with(n: int, gaps: list[int]) -> Session:
    s = Session(Options(), lambda user: None, lambda ev: None)
    box = Mailbox(None, "/mail/box/glenda/mbox")
    uid = 0
    for i in range(n):
        uid += 1 + gaps[i % len(gaps)]          # ascending, some gaps
        box.msgs.append(Message(i + 1, "%040x" % i, uid=uid))
    s.box = box
    return s


def named(numbers: list[int], rs, star: int) -> set[int]:
    out = set()
    for a, b in rs:
        a, b = star if a == p.STAR else a, star if b == p.STAR else b
        out |= set(range(min(a, b), max(a, b) + 1))
    return out & set(numbers)


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 40), st.lists(st.integers(0, 3), min_size=1, max_size=5), ranges)
def test_sequence_numbers(n, gaps, rs):
    s = session_with(n, gaps)
    msgs, ok = s.resolve(rs, uid=False)
    seqs = sorted(named(list(range(1, n + 1)), rs, n))
    assert msgs == [s.box.msgs[k - 1] for k in seqs]
    too_high = any((n if b == p.STAR else b) > n or (n if a == p.STAR else a) > n for a, b in rs)
    assert ok is not too_high


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 40), st.lists(st.integers(0, 3), min_size=1, max_size=5), ranges)
def test_uids(n, gaps, rs):
    s = session_with(n, gaps)
    uids = [m.uid for m in s.box.msgs]
    msgs, ok = s.resolve(rs, uid=True)
    want = named(uids, rs, uids[-1])
    assert msgs == [m for m in s.box.msgs if m.uid in want]
    assert ok


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 40), st.lists(st.integers(0, 3), min_size=1, max_size=5), ranges,
       st.sets(st.integers(0, 39), min_size=1))
def test_expunged_are_passed_over_and_a_number_of_one_fails(n, gaps, rs, gone):
    """resolve_present (FETCH, STORE): a plain command names an expunged
    message by its number: the others are answered, the command fails
    (RFC 3501 7.4.1: the expunge is not told during FETCH/STORE)."""
    s = session_with(n, gaps)
    for k in gone:
        if k < n:
            s.box.msgs[k].expunged = True
    s.box.exists_reported = n
    s.box.fs_stamp = s.box.imp_stamp = None
    s.box.gone = True                    # (no upasfs: the check looks at nothing)
    msgs, ok = s.resolve_present(rs, uid=False)
    seqs = sorted(named(list(range(1, n + 1)), rs, n))
    chosen = [s.box.msgs[k - 1] for k in seqs]
    assert msgs == [m for m in chosen if not m.expunged]
    too_high = any((n if b == p.STAR else b) > n or (n if a == p.STAR else a) > n for a, b in rs)
    assert ok is (not too_high and not any(m.expunged for m in chosen))
