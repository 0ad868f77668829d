"""flagreport.lines, the FETCH lines of flags a STORE, a FETCH of
flags/UIDs/MODSEQs and the unasked reports send, against a formatter
written here a message at a time from the grammar:

  RFC 3501 9:  response-data = "*" SP message-data CRLF
               message-data  = nz-number SP "FETCH" SP msg-att
               msg-att       = "(" item *(SP item) ")"
               "FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")"
               "UID" SP uniqueid
  RFC 7162 7:  fetch-mod-resp = "MODSEQ" SP "(" permsg-modsequence ")"

the items in the order given (fetch.py puts UID first for UID FETCH, and
MODSEQ after it for CHANGEDSINCE), the system flags in Plan 9's order
(\\Seen \\Answered \\Flagged \\Deleted \\Draft \\Recent), then the
keywords as the message has them; no \\Recent once IMAP4rev2 is enabled
(RFC 9051 E.6); a message the MODSEQ record does not know shows 0."""
from hypothesis import given, settings
from hypothesis import strategies as st

from upas.imap4d import flagreport, imp, rev2
from upas.imap4d.mailbox import Mailbox
from upas.imap4d.message import Message
from upas.imap4d.session import Options, Session
from upas.transport.events import Flush

SYSTEM = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent")
# atoms; "a%b", "100%", "x%s", "%d" (not atoms: '%' is a list wildcard) stand for
# any byte the builder's own format could take for a field
KEYWORDS = ("$Junk", "$NotJunk", "$Forwarded", "NonJunk", "work", "a%b", "100%", "x%s", "%d")


def expected_line(seq: int, m: Message, items, modseq: int, rev2_on: bool) -> bytes:
    atts = []
    for item in items:
        if item == "UID":
            atts.append("UID %d" % m.uid)
        elif item == "MODSEQ":
            atts.append("MODSEQ (%d)" % modseq)
        else:
            shown = [f for f in SYSTEM if f in m.flags and not (rev2_on and f == "\\Recent")]
            atts.append("FLAGS (" + " ".join(shown + list(m.keywords)) + ")")
    return ("* %d FETCH (" % seq + " ".join(atts) + ")\r\n").encode()


message = st.tuples(st.sets(st.sampled_from(SYSTEM)),
                    st.lists(st.sampled_from(KEYWORDS), unique=True, max_size=3),
                    st.booleans(),                                 # a shared frozenset, or a set
                    st.one_of(st.none(), st.integers(1, 2 ** 63 - 1)))   # its MODSEQ, if recorded


@settings(max_examples=300, deadline=None)
@given(st.lists(message, min_size=1, max_size=40),
       st.lists(st.sampled_from([flagreport.UID, flagreport.MODSEQ, flagreport.FLAGS]), max_size=4),
       st.sampled_from(["all", "run", "some"]), st.integers(0, 2 ** 32), st.booleans(),
       st.integers(1, 10 ** 6), st.sampled_from([1, 3, 8, flagreport.CHUNK]),
       st.sampled_from([1, 2, flagreport.FIRST]))
def test_lines_are_the_grammars_a_message_at_a_time(made, items, which, pick, rev2_on, first_uid,
                                                   chunk, first):
    sent = []                                      # what the session sends
    s = Session(Options(), lambda user: None, sent.append)
    if rev2_on:
        s.enabled.add(rev2.NAME.upper())
    box = Mailbox(None, "/mail/box/glenda/mbox")
    box.msgs = []
    modseqs = {}
    uid = first_uid
    for n, (flags, kws, shared, modseq) in enumerate(made):
        uid += 1 + n % 3                          # ascending, with gaps
        m = Message(n + 1, "%040x" % n, uid=uid, flags=imp.flagset(flags) if shared else set(flags))
        if kws:
            m.keywords = kws
        box.msgs.append(m)
        if modseq is not None:
            box.modseqs.rec.msgs[uid] = (modseq, 0)
        modseqs[uid] = modseq or 0
    if which == "all":
        msgs = box.msgs
    elif which == "run":                           # STORE 3:7
        lo = pick % len(box.msgs)
        msgs = box.msgs[lo:lo + 1 + pick // 7 % len(box.msgs)]
    else:                                          # STORE 1,4,9: chosen by the bits of pick
        msgs = [m for i, m in enumerate(box.msgs) if pick >> (i % 32) & 1] or box.msgs[-1:]
    want = b"".join(expected_line(box.msgs.index(m) + 1, m, items, modseqs[m.uid], rev2_on)
                    for m in msgs)
    was = flagreport.CHUNK, flagreport.FIRST       # (parts of FIRST lines, up to CHUNK)
    flagreport.CHUNK, flagreport.FIRST = chunk, first
    try:
        assert flagreport.lines(s, box, msgs, items) == want
        flagreport.send(s, box, msgs, items)
    finally:
        flagreport.CHUNK, flagreport.FIRST = was
    parts = sent[::2]
    assert b"".join(parts) == want
    # each part sent at once (a Flush after it) but the last, which goes
    # with the tagged reply; the first of `first` lines, each next twice
    # the last, up to CHUNK
    assert sent[1::2] == [Flush()] * (len(parts) - 1)
    sizes = [part.count(b"\r\n") for part in parts]
    assert sum(sizes) == len(msgs)
    assert sizes[0] == min(first, chunk, len(msgs))
    for a, b in zip(sizes, sizes[1:-1]):
        assert b == min(2 * a, chunk)
    if len(sizes) > 1:
        assert 0 < sizes[-1] <= min(2 * sizes[-2], chunk)


def test_no_messages_no_lines():
    s = Session(Options(), lambda user: None, lambda ev: None)
    box = Mailbox(None, "/mail/box/glenda/mbox")
    assert flagreport.lines(s, box, [], [flagreport.UID, flagreport.FLAGS]) == b""
