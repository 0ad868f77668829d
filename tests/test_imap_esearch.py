"""ESEARCH (RFC 4731), SEARCHRES (RFC 5182), WITHIN (RFC 5032) and ESORT
(RFC 5267): the RFCs' examples as exact replies over a real socket, on
mailboxes made so that the RFCs' answers are the right ones."""
from __future__ import annotations

import re
import time

import pytest

from tests.fixtures.imap import put_box, select
from tests.mboxgen import DAY, message

Y1993, Y1995 = 730_000_000, 790_000_000


@pytest.fixture
def c(imap_client):
    return imap_client


def fetched(lines: list[bytes]) -> list[int]:
    return [int(m.group(1)) for x in lines if (m := re.match(rb"\* (\d+) FETCH", x))]


def smith_box(srv, c, n: int, hits: tuple[int, ...]) -> None:
    """n messages; `hits` are FLAGGED, SINCE 1-Feb-1994 and NOT FROM
    "Smith"; decoys fail one of the three each."""
    smith, old = hits[0] + 1, hits[0] + 2
    put_box(srv, "smith", [message(k, f"m {k}", frm="Smith <smith@example.org>" if k == smith else
                               "jones@example.org",
                               internal=Y1993 if k == old or k not in hits + (smith,) else Y1995)
                       for k in range(1, n + 1)])
    select(c, "smith")
    flagged = ",".join(str(k) for k in sorted(hits + (smith, old)))
    c.cmd(b"f STORE %s +FLAGS.SILENT (\\Flagged)" % flagged.encode())


PROGRAM = b'FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'


def test_capability(c):
    caps = c.cmd(b"a CAPABILITY")[0].split()
    for cap in (b"ESEARCH", b"SEARCHRES", b"WITHIN", b"ESORT"):
        assert cap in caps


def test_rfc4731_examples(c, imap_preauth):
    """RFC 4731 3.1: MIN and COUNT, then `RETURN ()` (ALL)."""
    smith_box(imap_preauth, c, 12, (2, 10, 11))
    assert c.cmd(b"A282 SEARCH RETURN (MIN COUNT) " + PROGRAM) == [
        b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n', b"A282 OK SEARCH completed\r\n"]
    assert c.cmd(b"A283 SEARCH RETURN () " + PROGRAM) == [
        b'* ESEARCH (TAG "A283") ALL 2,10:11\r\n', b"A283 OK SEARCH completed\r\n"]
    c.cmd(b"s STORE 1:3 +FLAGS.SILENT (\\Seen)")
    assert c.cmd(b"A284 SEARCH RETURN (MIN) UNSEEN")[0] == b'* ESEARCH (TAG "A284") MIN 4\r\n'
    # UID SEARCH says UID; no match: only COUNT (RFC 4731 3.1)
    assert c.cmd(b"u UID SEARCH RETURN (MAX ALL MIN) 10:*")[0] == \
        b'* ESEARCH (TAG "u") UID MAX 12 ALL 10:12 MIN 10\r\n'
    assert c.cmd(b"n SEARCH RETURN (MIN MAX ALL COUNT) SUBJECT nothing") == [
        b'* ESEARCH (TAG "n") COUNT 0\r\n', b"n OK SEARCH completed\r\n"]
    assert c.cmd(b"b SEARCH RETURN (PARTIAL 1:5) ALL") == [
        b"b BAD SEARCH unknown search return option\r\n"]
    # without RETURN, SEARCH answers as ever
    assert c.cmd(b"p SEARCH " + PROGRAM)[0] == b"* SEARCH 2 10 11\r\n"


def test_rfc5182_examples(c, imap_preauth):
    """RFC 5182 2.2/4: SAVE then `FETCH $` (2, 84 and 882), pipelined
    too, `$` in UID COPY and in a search."""
    smith_box(imap_preauth, c, 882, (2, 84, 882))
    assert c.cmd(b"A282 SEARCH RETURN (SAVE) " + PROGRAM) == [b"A282 OK SEARCH completed\r\n"]
    lines = c.cmd(b"A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.HEADER)")
    assert fetched(lines) == [2, 84, 882] and lines[-1] == b"A283 OK FETCH completed\r\n"
    c.send(b"A282 SEARCH RETURN (SAVE) " + PROGRAM + b"\r\nA283 FETCH $ (UID FLAGS)\r\n")
    assert c.until(b"A282") == [b"A282 OK SEARCH completed\r\n"]
    assert fetched(c.until(b"A283")) == [2, 84, 882]
    c.cmd(b"c CREATE other")
    assert re.fullmatch(rb"A301 OK \[COPYUID \d+ 2,84,882 1,2,3\] uid COPY completed\r\n",
                        c.cmd(b'A301 UID COPY $ "other"')[-1])
    assert c.cmd(b"A302 SEARCH $ SMALLER 4096 NOT 84")[0] == b"* SEARCH 2 882\r\n"
    assert c.cmd(b"A303 UID SEARCH UID $")[0] == b"* SEARCH 2 84 882\r\n"


def test_searchres_rules(c, imap_preauth):
    """RFC 5182 2.1-2.4: SAVE with MIN/MAX keeps only those; with ALL or
    COUNT all; a failed SAVE empties `$`; `$` follows expunges and is
    empty in another mailbox."""
    smith_box(imap_preauth, c, 12, (2, 10, 11))
    assert c.cmd(b"a SEARCH $")[0] == b"* SEARCH\r\n"           # nothing saved yet
    assert c.cmd(b"b SEARCH RETURN (SAVE MIN MAX) " + PROGRAM)[0] == \
        b'* ESEARCH (TAG "b") MIN 2 MAX 11\r\n'
    assert c.cmd(b"c SEARCH $")[0] == b"* SEARCH 2 11\r\n"
    c.cmd(b"d SEARCH RETURN (SAVE MIN COUNT) " + PROGRAM)
    assert c.cmd(b"e SEARCH $")[0] == b"* SEARCH 2 10 11\r\n"
    c.cmd(b"f STORE 10 +FLAGS.SILENT (\\Deleted)")
    c.cmd(b"g EXPUNGE")
    assert c.cmd(b"h SEARCH $")[0] == b"* SEARCH 2 10\r\n"       # 11 is now 10
    assert c.cmd(b"i SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")[0].startswith(b"i NO [BADCHARSET]")
    assert c.cmd(b"j FETCH $ FLAGS") == [b"j OK FETCH completed\r\n"]
    c.cmd(b"k SEARCH RETURN (SAVE) ALL")
    select(c, "INBOX")
    assert c.cmd(b"l UID SEARCH $")[0] == b"* SEARCH\r\n"


def test_rfc5032_within_example(c, imap_preauth):
    """RFC 5032 3: `SEARCH UNSEEN YOUNGER 259200` finds 4 8 15 16 23 42."""
    now = time.time()
    young = (4, 8, 15, 16, 23, 42)
    put_box(imap_preauth, "within", [
        message(k, f"m {k}", internal=now - DAY if k in young + (5,) else now - 10 * DAY)
        for k in range(1, 43)])
    select(c, "within")
    c.cmd(b"s STORE 5 +FLAGS.SILENT (\\Seen)")
    assert c.cmd(b"a1 SEARCH UNSEEN YOUNGER 259200") == [
        b"* SEARCH 4 8 15 16 23 42\r\n", b"a1 OK SEARCH completed\r\n"]
    older = [k for k in range(1, 43) if k not in young + (5,)]
    assert c.cmd(b"a2 SEARCH OLDER 259200")[0] == \
        b"* SEARCH " + b" ".join(b"%d" % k for k in older) + b"\r\n"
    assert c.cmd(b"a3 SEARCH YOUNGER 0") == [b"a3 BAD SEARCH bad syntax\r\n"]


def test_esort(c, imap_preauth):
    """RFC 5267 3: SORT RETURN answers ESEARCH; MIN and MAX are the first
    and last in sort order, ALL keeps the order."""
    put_box(imap_preauth, "esort", [message(k, f"s {k}", sent=Y1995 + (10 - k) * 60)
                                for k in range(1, 6)])
    select(c, "esort")
    assert c.cmd(b"a SORT RETURN (MIN MAX ALL COUNT) (DATE) UTF-8 ALL") == [
        b'* ESEARCH (TAG "a") MIN 5 MAX 1 ALL 5,4,3,2,1 COUNT 5\r\n', b"a OK SORT completed\r\n"]
    assert c.cmd(b"b UID SORT RETURN (ALL) (REVERSE DATE) UTF-8 2:4")[0] == \
        b'* ESEARCH (TAG "b") UID ALL 2:4\r\n'
    assert c.cmd(b"c SORT RETURN (SAVE MIN) (DATE) UTF-8 ALL")[0] == b'* ESEARCH (TAG "c") MIN 5\r\n'
    assert c.cmd(b"d SEARCH $")[0] == b"* SEARCH 5\r\n"
    assert c.cmd(b"e SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT none")[0] == \
        b'* ESEARCH (TAG "e") COUNT 0\r\n'
