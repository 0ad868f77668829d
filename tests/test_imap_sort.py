"""SORT and THREAD (RFC 5256), SORT=DISPLAY (RFC 5957): the RFCs'
examples as exact replies over a real socket, on mailboxes made so that
the RFC's answers are the right ones, and every sort key.

The examples were read in the RFC texts as vendored by MailKit
(github.com/jstedfast/MailKit, rfc/rfc5256.txt, rfc/rfc5957.txt):
RFC 5256 3  SORT A282, A283, A284: test_rfc5256_sort_examples.
RFC 5256 3  THREAD A283, A284 (ORDEREDSUBJECT):
            test_rfc5256_thread_orderedsubject_example; A285 (REFERENCES):
            test_rfc5256_thread_references_a285.
RFC 5256 4  `* SORT 2 3 6` (a response alone, no command): not a test of
            its own; `* THREAD (2)(3 6 (4 23)(44 7 96))`:
            test_rfc5256_thread_references_examples; `* THREAD ((3)(5))`:
            test_thread_references_dummy_parent.
RFC 5957    has no C:/S: example; DISPLAYFROM and DISPLAYTO are in
            test_sort_every_key."""
from __future__ import annotations

import re

import pytest

from tests.fixtures.imap import put_box, select
from tests.mboxgen import DAY, message
from upas.imap4d.summary import base_subject

Y1993, Y1995, Y2001 = 730_000_000, 790_000_000, 980_000_000


@pytest.fixture
def c(imap_client):
    return imap_client


def test_capability_lists_sort_and_thread(c):
    caps = c.cmd(b"a CAPABILITY")[0].split()
    for cap in (b"SORT", b"SORT=DISPLAY", b"THREAD=ORDEREDSUBJECT", b"THREAD=REFERENCES",
                b"ESORT"):
        assert cap in caps


# ------------------------------------------------------------ RFC 5256 SORT

def test_rfc5256_sort_examples(c, imap_preauth):
    """RFC 5256 section 4's three SORT examples."""
    subjects = {2: "Re: alpha", 84: "[list] beta", 882: "Fwd: gamma"}
    put_box(imap_preauth, "big", [
        message(n, subjects.get(n, f"zz {n}"), internal=Y1995 if n in subjects else Y1993,
                sent=Y1993 + n) for n in range(1, 883)])
    put_box(imap_preauth, "five", [
        message(1, "Re: Beta", sent=Y1995 + 40), message(2, "beta (fwd)", sent=Y1995 + 10),
        message(3, "[PATCH] =?UTF-8?Q?alpha?=", sent=Y1995 + 30),
        message(4, "ALPHA", sent=Y1995 + 20), message(5, "Fwd: Re: alpha", sent=Y1995 + 50)])
    select(c, "big")
    assert c.cmd(b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994") == [
        b"* SORT 2 84 882\r\n", b"A282 OK SORT completed\r\n"]
    select(c, "five")
    assert c.cmd(b"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL") == [
        b"* SORT 5 3 4 1 2\r\n", b"A283 OK SORT completed\r\n"]
    assert c.cmd(b'A284 SORT (SUBJECT) US-ASCII TEXT "not in mailbox"') == [
        b"* SORT\r\n", b"A284 OK SORT completed\r\n"]


def test_sort_every_key(c, imap_preauth):
    put_box(imap_preauth, "keys", [
        message(1, "c", frm='"Zed" <alice@example.org>', to="carol@example.org",
                cc="bob@example.org", internal=Y1995 + 300, sent=Y1995 + 2 * DAY,
                body="x" * 300),
        message(2, "b", frm="Bob <bob@example.org>", to='"Al" <zoe@example.org>',
                cc="alice@example.org", internal=Y1995 + 100, sent=Y1995 + 3 * DAY,
                body="x" * 100),
        message(3, "a", frm="carol@example.org", to="Bea <anne@example.org>",
                internal=Y1995 + 200, sent=Y1995 + DAY, body="x" * 200)])
    select(c, "keys")
    want = {"ARRIVAL": "2 3 1", "CC": "3 2 1", "DATE": "3 1 2", "FROM": "1 2 3",
            "SIZE": "2 3 1", "SUBJECT": "3 2 1", "TO": "3 1 2",
            # display names (RFC 5957), else the address: Bob, carol@, Zed / Al, Bea, carol@
            "DISPLAYFROM": "2 3 1", "DISPLAYTO": "2 3 1"}
    for key, order in want.items():
        assert c.cmd(b"k SORT (%s) UTF-8 ALL" % key.encode())[0] == b"* SORT %s\r\n" % order.encode()
        rev = " ".join(reversed(order.split()))
        assert c.cmd(b"k SORT (REVERSE %s) UTF-8 ALL" % key.encode())[0] == \
            b"* SORT %s\r\n" % rev.encode()
    # UID SORT answers UIDs; ties keep mailbox order, even reversed (RFC 5256 2.2)
    assert c.cmd(b"u UID SORT (REVERSE TO SUBJECT) UTF-8 2:3")[:2] == [
        b"* SORT 2 3\r\n", b"u OK uid SORT completed\r\n"]
    assert c.cmd(b"t SORT (REVERSE ARRIVAL) UTF-8 1:2") == [b"* SORT 1 2\r\n",
                                                            b"t OK SORT completed\r\n"]
    assert c.cmd(b"x SORT (COLOUR) UTF-8 ALL") == [b"x BAD SORT unknown sort criterion\r\n"]
    assert c.cmd(b"y SORT () UTF-8 ALL") == [b"y BAD SORT bad syntax\r\n"]
    assert c.cmd(b"z SORT (DATE) KOI8-R ALL") == [
        b'z NO [BADCHARSET] ("US-ASCII" "UTF-8") SORT failed\r\n']


def test_sort_subject_decodes_encoded_words(c, imap_preauth):
    """Roundcube's complaint (issue 18): encoded subjects sort by their
    text, and Fwd:/Re: are not part of it."""
    put_box(imap_preauth, "enc", [
        message(1, "Zebra"), message(2, "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus Berlin"),
        message(3, "Fwd: apple"), message(4, "=?ISO-8859-1?B?SGFsbG8=?="),
        message(5, "RE: [list] Banana")])
    select(c, "enc")
    assert c.cmd(b"a SORT (SUBJECT) UTF-8 ALL")[0] == b"* SORT 3 5 2 4 1\r\n"


@pytest.mark.parametrize("subject,base,reply", [
    ("Re: hello", "hello", True),
    ("re: RE: Fwd: hello", "hello", True),
    ("[list] Re: hello", "hello", True),
    ("Re [2]: hello", "hello", True),
    ("[list] hello", "hello", False),
    ("[list]", "[list]", False),              # (4): a blob is kept if nothing follows
    ("hello (fwd) (FWD)", "hello", True),
    ("[Fwd: hello]", "hello", True),
    ("[fwd: Re: hello (fwd)]", "hello", True),
    ("  hello \t  world  ", "hello world", False),
    ("Fw: x", "x", True),
    ("Ref: x", "Ref: x", False),
    ("", "", False),
])
def test_base_subject_rfc5256_2_1(subject, base, reply):
    assert base_subject(subject) == (base, reply)


# ------------------------------------------------------------ RFC 5256 THREAD

def parse_threads(text: str) -> list:
    """`(a b (c)(d))...` as nested [number, [children...]] lists."""
    tokens = re.findall(r"\(|\)|\d+", text)
    pos = 0

    def thread() -> list:
        # after "(": numbers chained as only children, then nested threads
        nonlocal pos
        chain: list = []
        while tokens[pos].isdigit():
            chain.append([int(tokens[pos]), []])
            pos += 1
        kids = []
        while tokens[pos] == "(":
            pos += 1
            kids.append(thread())
        pos += 1                                    # ")"
        if not chain:
            return [0, kids]                        # a dummy
        for a, b in zip(chain, chain[1:]):
            a[1].append(b)
        chain[-1][1].extend(kids)
        return chain[0]
    out = []
    while pos < len(tokens):
        pos += 1
        out.append(thread())
    return out


ORDERED = ("(166)(167)(168)(169)(172)(170)(171)(173)(174 (175)(176)(178)(181)(180))"
           "(179)(177 (183)(182)(188)(184)(185)(186)(187)(189))(190)(191)(192)(193)"
           "(194 195)(196 (197)(198))(199)(200 202)(201)(203)(204)(205)(206 207)(208)")


def test_rfc5256_thread_orderedsubject_example(c, imap_preauth):
    """RFC 5256 section 4's ORDEREDSUBJECT example, on messages whose
    subjects and dates make it the answer."""
    msgs = {n: message(n, f"old {n}", internal=Y1993, sent=Y1993) for n in range(1, 166)}
    for i, (root, kids) in enumerate(parse_threads(ORDERED)):
        t = Y2001 + i * DAY
        msgs[root] = message(root, f"topic {i}", internal=Y2001, sent=t)
        for j, (kid, _) in enumerate(kids):
            msgs[kid] = message(kid, f"Re: topic {i}", internal=Y2001, sent=t + 60 * (j + 1))
    put_box(imap_preauth, "ordered", [msgs[n] for n in sorted(msgs)])
    select(c, "ordered")
    assert c.cmd(b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000") == [
        b"* THREAD " + ORDERED.encode() + b"\r\n", b"A283 OK THREAD completed\r\n"]
    assert c.cmd(b'A284 THREAD ORDEREDSUBJECT US-ASCII TEXT "gewp"') == [
        b"* THREAD\r\n", b"A284 OK THREAD completed\r\n"]


REFERENCES = ("(166)(167)(168)(169)(172)((170)(179))(171)(173)((174)(175)(176)(178)(181)(180))"
              "((177)(183)(182)(188 (184)(189))(185 186)(187))(190)(191)(192)(193)((194)(195 196))"
              "(197 198)(199)(200 202)(201)(203)(204)(205 206 207)(208)")


def test_rfc5256_thread_references_a285(c, imap_preauth):
    """RFC 5256 section 3's A285 (THREAD REFERENCES UTF-8 SINCE
    5-MAR-2000): each message refers to its parents in the answer, a
    dummy is a parent that is not in the mailbox, sent dates follow the
    answer's order and subjects all differ (no thread is joined by
    subject)."""
    msgs = {n: message(n, f"old {n}", internal=Y1993, sent=Y1993) for n in range(1, 166)}
    clock = iter(range(Y2001, Y2001 + 1000 * 60, 60))

    def place(node: list, refs: list[str]) -> None:
        n, kids = node
        mid = f"<{n}@example.org>" if n else f"<dummy{next(clock)}@example.org>"
        if n:
            msgs[n] = message(n, f"topic {n}", internal=Y2001, sent=next(clock), refs=" ".join(refs))
        for kid in kids:
            place(kid, refs + [mid])
    for root in parse_threads(REFERENCES):
        place(root, [])
    assert sorted(msgs) == list(range(1, 209))
    put_box(imap_preauth, "refs", [msgs[n] for n in sorted(msgs)])
    select(c, "refs")
    assert c.cmd(b"A285 THREAD REFERENCES UTF-8 SINCE 5-MAR-2000") == [
        b"* THREAD " + REFERENCES.encode() + b"\r\n", b"A285 OK THREAD completed\r\n"]


def test_rfc5256_thread_references_examples(c, imap_preauth):
    """RFC 5256 section 4's REFERENCES answers: `(2)(3 6 (4 23)(44 7 96))`
    and, UIDs once the others are expunged, `(3 6 (4 23)(44 7 96))`."""
    parent = {6: 3, 4: 6, 23: 4, 44: 6, 7: 44, 96: 7}

    def refs(n: int) -> str:
        chain = []
        while n in parent:
            n = parent[n]
            chain.insert(0, f"<{n}@example.org>")
        return " ".join(chain)
    msgs = []
    for n in range(1, 97):
        subject = ("Re: thread" if n in parent else "thread") if n in (3, *parent) else \
            "lonely" if n == 2 else f"other {n}"
        msgs.append(message(n, subject, sent=Y1995 + n * 60, refs=refs(n)))
    put_box(imap_preauth, "refs", msgs)
    select(c, "refs")
    assert c.cmd(b"A285 THREAD REFERENCES US-ASCII 2:4,6:7,23,44,96") == [
        b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n", b"A285 OK THREAD completed\r\n"]
    c.cmd(b"d UID STORE 1:2,5,8:22,24:43,45:95 +FLAGS.SILENT (\\Deleted)")
    c.cmd(b"e EXPUNGE")
    assert c.cmd(b"A285 UID THREAD REFERENCES US-ASCII ALL") == [
        b"* THREAD (3 6 (4 23)(44 7 96))\r\n", b"A285 OK uid THREAD completed\r\n"]


def test_thread_references_dummy_parent(c, imap_preauth):
    """RFC 5256 section 4: `((3)(5))`, siblings of a parent not there."""
    put_box(imap_preauth, "lost", [
        message(1, "one", sent=Y1995), message(2, "two", sent=Y1995 + 1),
        message(3, "Re: gone", sent=Y1995 + 2, in_reply_to="<gone@example.org>"),
        message(4, "four", sent=Y1995 + 3),
        message(5, "Re: gone", sent=Y1995 + 4, refs="<gone@example.org>")])
    select(c, "lost")
    assert c.cmd(b"a THREAD REFERENCES US-ASCII 3,5")[0] == b"* THREAD ((3)(5))\r\n"
    assert c.cmd(b"b THREAD REFERENCES UTF-8 ALL")[0] == b"* THREAD (1)(2)((3)(5))(4)\r\n"
    assert c.cmd(b"c THREAD NOSUCH UTF-8 ALL") == [b"c BAD THREAD unknown thread algorithm\r\n"]


def test_thread_references_by_subject_and_loops(c, imap_preauth):
    """Step 5: a reply whose parent is missing joins its subject's thread;
    a link that would make a loop is not made (3 is 4's child, as 3's
    References said first; 4's then would make 4 its own grandchild)."""
    put_box(imap_preauth, "subj", [
        message(1, "plan", sent=Y1995),
        message(2, "Re: plan", sent=Y1995 + 10, in_reply_to="<missing@example.org>"),
        message(3, "loop", sent=Y1995 + 20, refs="<4@example.org>"),
        message(4, "Re: loop", sent=Y1995 + 30, refs="<3@example.org>"),
        message(5, "self", sent=Y1995 + 40, refs="<5@example.org>")])
    select(c, "subj")
    assert c.cmd(b"a THREAD REFERENCES UTF-8 ALL")[0] == b"* THREAD (1 2)(4 3)(5)\r\n"


def test_thread_deep_chain_is_not_recursion(c, imap_preauth):
    """A reply chain deeper than Python's recursion limit."""
    n = 1500
    put_box(imap_preauth, "deep", [message(i, "Re: deep" if i > 1 else "deep", sent=Y1995 + i,
                                       in_reply_to=f"<{i - 1}@example.org>" if i > 1 else "")
                               for i in range(1, n + 1)])
    select(c, "deep")
    assert c.cmd(b"a THREAD REFERENCES UTF-8 ALL")[0] == \
        b"* THREAD (" + b" ".join(b"%d" % i for i in range(1, n + 1)) + b")\r\n"


def test_imapclient_sort_thread_esearch(imap_preauth):
    """imapclient (a real client library) drives SORT, THREAD and, by
    its raw command interface, ESEARCH and ESORT; its parsers read our
    answers (UIDs: imapclient sends UID commands)."""
    from imapclient import IMAPClient
    from imapclient.response_parser import parse_response
    put_box(imap_preauth, "club", [
        message(1, "Re: meeting", frm="Zoe <zoe@example.org>", sent=Y1995 + 300,
                in_reply_to="<3@example.org>"),
        message(2, "=?UTF-8?Q?=C3=84pfel?=", frm="adam@example.org", sent=Y1995 + 100),
        message(3, "meeting", frm="Bob <bob@example.org>", sent=Y1995 + 200),
        message(4, "Fwd: meeting", frm="carl@example.org", sent=Y1995 + 400)])
    c = IMAPClient(*imap_preauth.addr, ssl=False, timeout=20)
    for cap in (b"SORT", b"THREAD=REFERENCES", b"THREAD=ORDEREDSUBJECT", b"ESEARCH", b"ESORT"):
        assert c.has_capability(cap.decode())
    c.select_folder("club")
    assert c.sort(["SUBJECT", "DATE"]) == [3, 1, 4, 2]
    assert c.sort("REVERSE DATE", ["NOT", "FROM", "adam"]) == [4, 1, 3]
    assert c.sort(["DISPLAYFROM"]) == [2, 3, 4, 1]
    assert c.thread("REFERENCES") == ((2,), (3, (1,), (4,)))
    assert c.thread("ORDEREDSUBJECT") == ((2,), (3, (1,), (4,)))
    raw = c._raw_command_untagged(b"SEARCH", [b"RETURN", b"(MIN MAX COUNT)", b"ALL"],
                                  response_name="ESEARCH")
    assert list(parse_response(raw))[-6:] == [b"MIN", 1, b"MAX", 4, b"COUNT", 4]
    raw = c._raw_command_untagged(b"SORT", [b"RETURN", b"(ALL)", b"(DATE)", b"UTF-8", b"ALL"],
                                  response_name="ESEARCH")
    assert list(parse_response(raw))[-2:] == [b"ALL", b"2:3,1,4"]
    c.logout()
