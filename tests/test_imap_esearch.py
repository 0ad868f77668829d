"""ESEARCH (RFC 4731), SEARCHRES (RFC 5182), WITHIN (RFC 5032) and ESORT
(RFC 5267): the RFCs' examples as exact replies over a real socket, on
mailboxes made so that the RFCs' answers are the right ones.

The example texts were read in the RFC texts as vendored by MailKit
(github.com/jstedfast/MailKit, rfc/rfc4731.txt, rfc5182.txt, rfc5032.txt).
Every C:/S: example of each, and where it is tested:

RFC 4731 3.1  A282 MIN COUNT, A283 RETURN () ALL, A284 MIN UNSEEN:
              test_rfc4731_examples; A285 UID MIN 7 MAX 3800, A286 COUNT 15
              DELETED: test_rfc4731_3_1_uid_min_max_and_count.
RFC 4731 3.2  a1-a4, ESEARCH with MODSEQ on RFC 7162's Example 15
              mailbox: test_rfc4731_3_2_modseq.
RFC 5182 2.2  Examples 1, 2 (SAVE then FETCH $, pipelined):
              test_rfc5182_examples; 3 (UID SEARCH UID $ SMALLER 4096):
              test_rfc5182_example_3; 4 (OR $ 1,3000:3021 TEXT in UTF-8):
              test_rfc5182_example_4; 5 (KOI8-R, see the test for why `$` stays):
              test_rfc5182_example_5, which expects Plan 9's `NO
              [BADCHARSET] ("US-ASCII" "UTF-8") SEARCH failed` where the RFC
              shows `[BADCHARSET UTF-8]` (not even RFC 3501's grammar, which
              wants the charsets in parentheses); 6 (COPY $
              when $ is empty): test_rfc5182_examples_6_to_9.
RFC 5182 2.3  Examples 7, 8, 9 (pipelined SAVE, COPY $, STORE $):
              test_rfc5182_examples_6_to_9.  Our OK texts are Plan 9's
              (`OK uid SEARCH completed`, `OK SEARCH completed` where the
              RFC has `OK completed`).  Our COPY's OK carries RFC 4315's
              [COPYUID], and we answer pipelined commands in order (the RFC
              allows either order for Example 8).
RFC 5182 2.4  Example 10 (SAVE with MIN/MAX/ALL/COUNT):
              test_rfc5182_example_10.  The RFC's first reply says TAG "C283"
              for command C282 and its last two commands share the tag C286:
              a slip of the RFC (RFC 4731 says TAG is the command's tag);
              we expect "C282" and tag the last command C287.
RFC 5267 3.3  E01 UID SORT RETURN () (REVERSE DATE) ... (read in MailKit's
              rfc/rfc5267.txt): test_rfc5267_example_e01; the RFC elides
              the list after four UIDs ("[...]"), our mailbox ends it.
RFC 5267 4.2-4.4  A01 (CONTEXT COUNT), B01-B04 (UPDATE, ADDTO, REMOVEFROM,
              NOUPDATE, CANCELUPDATE), A02-A04 (PARTIAL): not tests; we do
              not offer CONTEXT=SEARCH, CONTEXT=SORT or PARTIAL (only ESORT),
              and RETURN (PARTIAL ...) is BAD (test_rfc4731_examples).
RFC 5032 4    `a1 SEARCH UNSEEN YOUNGER 259200`: test_rfc5032_within_example.
              The RFC prints the reply as `a1 * SEARCH 4 8 15 16 23 42`, a
              tag before the `*` that no IMAP reply has; we expect
              `* SEARCH 4 8 15 16 23 42` and `a1 OK`.
"""
from __future__ import annotations

import re
import time

import pytest

from tests.fixtures.imap import put_box, select
from tests.mboxgen import DAY, message
from tests.test_imap_condstore import seed

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
    # UID SEARCH says UID; no match: only COUNT (RFC 4731 3.1); the items
    # in the order every RFC 4731 and RFC 5182 example has (MIN MAX ALL
    # COUNT), whatever the order asked
    assert c.cmd(b"u UID SEARCH RETURN (MAX ALL MIN) 10:*")[0] == \
        b'* ESEARCH (TAG "u") UID MIN 10 MAX 12 ALL 10:12\r\n'
    assert c.cmd(b"n SEARCH RETURN (MIN MAX ALL COUNT) SUBJECT nothing") == [
        b'* ESEARCH (TAG "n") COUNT 0\r\n', b"n OK SEARCH completed\r\n"]
    assert c.cmd(b"b SEARCH RETURN (PARTIAL 1:5) ALL") == [
        b"b BAD SEARCH unknown search return option\r\n"]
    # without RETURN, SEARCH answers as ever
    assert c.cmd(b"p SEARCH " + PROGRAM)[0] == b"* SEARCH 2 10 11\r\n"


def test_rfc4731_3_1_uid_min_max_and_count(c, imap_preauth):
    """RFC 4731 3.1: `UID SEARCH RETURN (MIN MAX) 1:5000` answers UIDs
    (MIN 7 MAX 3800); `1:5000` is message numbers there too (RFC 3501
    6.4.4), so the mailbox's UIDs are 7 to 3800.  `SEARCH RETURN (COUNT)
    DELETED` counts 15."""
    put_box(imap_preauth, "uids", [message(k, f"m {k}") for k in range(1, 4)])
    seed(imap_preauth, "uids", [(u, (), (), 1) for u in (7, 1000, 3800)], 1)
    select(c, "uids")
    assert c.cmd(b"A285 UID SEARCH RETURN (MIN MAX) 1:5000") == [
        b'* ESEARCH (TAG "A285") UID MIN 7 MAX 3800\r\n', b"A285 OK uid SEARCH completed\r\n"]
    put_box(imap_preauth, "deleted", [message(k, f"m {k}") for k in range(1, 31)])
    select(c, "deleted")
    c.cmd(b"s STORE 2:15,30 +FLAGS.SILENT (\\Deleted)")
    assert c.cmd(b"A286 SEARCH RETURN (COUNT) DELETED") == [
        b'* ESEARCH (TAG "A286") COUNT 15\r\n', b"A286 OK SEARCH completed\r\n"]


def test_rfc4731_3_2_modseq(imap_preauth):
    """RFC 4731 3.2: RFC 7162's Example 15 with result options; MODSEQ is
    the highest of the messages returned (2 has 917162488, 23 907162321,
    7 917162500).  The RFC's OK text is "Search complete", ours
    "SEARCH completed"."""
    srv = imap_preauth
    put_box(srv, "ex", [message(k, f"m {k}") for k in range(1, 24)])
    hits = {2: 917162488, 5: 900000005, 6: 900000006, 7: 917162500, 11: 900000011,
            12: 900000012, 18: 900000018, 19: 900000019, 20: 900000020, 23: 907162321}
    seed(srv, "ex", [(k, (), (), hits.get(k, 1000 + k)) for k in range(1, 24)], 917162500)
    c = srv.connect()
    c.cmd(b"e ENABLE CONDSTORE")
    select(c, "ex")
    prog = b' MODSEQ "/flags/\\\\draft" all 620162338'
    assert c.cmd(b"a1 SEARCH RETURN (MIN)" + prog) == [
        b'* ESEARCH (TAG "a1") MIN 2 MODSEQ 917162488\r\n', b"a1 OK SEARCH completed\r\n"]
    assert c.cmd(b"a2 SEARCH RETURN (MAX)" + prog)[0] == \
        b'* ESEARCH (TAG "a2") MAX 23 MODSEQ 907162321\r\n'
    assert c.cmd(b"a3 SEARCH RETURN (MIN MAX)" + prog)[0] == \
        b'* ESEARCH (TAG "a3") MIN 2 MAX 23 MODSEQ 917162488\r\n'
    assert c.cmd(b"a4 SEARCH RETURN (MIN COUNT)" + prog)[0] == \
        b'* ESEARCH (TAG "a4") MIN 2 COUNT 10 MODSEQ 917162500\r\n'
    c.close()


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


def test_rfc5182_example_3(c, imap_preauth):
    """RFC 5182 2.2 Example 3: `$` as UIDs (17 900 901) in a UID SEARCH,
    with and without the UID key; UIDs given by `seed`."""
    box = [message(1, "old", internal=1_000_000_000), message(2, "s", frm="Smith <s@example.org>"),
           message(3, "a"), message(4, "b"), message(5, "c"), message(6, "big", body="x" * 5000)]
    for k, m in enumerate(box):
        box[k] = m.replace(b"GMT 2001", b"GMT 2005") if k else m
    put_box(imap_preauth, "uids", box)
    seed(imap_preauth, "uids", [(u, (), (), 1) for u in (3, 9, 17, 900, 901, 950)], 1)
    select(c, "uids")
    assert c.cmd(b'A300 SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM "Smith"') == [
        b"A300 OK SEARCH completed\r\n"]
    assert c.cmd(b"A301 UID SEARCH UID $ SMALLER 4096") == [
        b"* SEARCH 17 900 901\r\n", b"A301 OK uid SEARCH completed\r\n"]
    assert c.cmd(b"A301 UID SEARCH $ SMALLER 4096") == [
        b"* SEARCH 17 900 901\r\n", b"A301 OK uid SEARCH completed\r\n"]


def test_rfc5182_example_4(c, imap_preauth):
    """RFC 5182 2.2 Example 4: `(OR $ 1,3000:3021) TEXT` with 8 octets of
    UTF-8 (the RFC's YYYYYYYY placeholder) finds 882 1102 3003 3005 3006."""
    word = "\u00e4\u00f6\u00fc\u00df"               # 8 octets in UTF-8
    saved, texts = (882, 1102, 2000), (500, 882, 1102, 1500, 3003, 3005, 3006)
    utf8 = b"Content-Type: text/plain; charset=utf-8\nSubject:"
    put_box(imap_preauth, "big", [message(
        k, f"m {k}", frm="Smith <s@example.org>" if k == 1500 else "e@example.org",
        internal=Y1995 if k in saved + (1500,) else Y1993,
        body=f"text {word}\n" if k in texts else "").replace(b"Subject:", utf8)
        for k in range(1, 3022)])
    select(c, "big")
    assert c.cmd(b'P282 SEARCH RETURN (SAVE) SINCE 1-Feb-1994 NOT FROM "Smith"') == [
        b"P282 OK SEARCH completed\r\n"]
    c.send(b"P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8}\r\n")
    assert c.until(b"+")[0].startswith(b"+ ")
    c.send(word.encode() + b"\r\n")
    assert c.until(b"P283") == [b"* SEARCH 882 1102 3003 3005 3006\r\n",
                                b"P283 OK SEARCH completed\r\n"]


def test_rfc5182_example_5(c, imap_preauth):
    """RFC 5182 2.2 Example 5: a SEARCH in KOI8-R (the RFC's XXXX
    placeholder for 4 octets) fails.  The example's comment says `$` is
    then empty, but B283 has no SAVE and the RFC's own rules (2.1: "a
    SEARCH command with no SAVE result option that caused the server to
    return NO ... MUST NOT change the search result variable") keep it:
    we follow 2.1.  A failed SEARCH that has SAVE empties it."""
    smith_box(imap_preauth, c, 12, (2, 10, 11))
    assert c.cmd(b"B282 SEARCH RETURN (SAVE) " + PROGRAM) == [b"B282 OK SEARCH completed\r\n"]
    c.send(b"B283 SEARCH CHARSET KOI8-R (OR $ 1,3000:3021) TEXT {4}\r\n")
    assert c.until(b"+")[0].startswith(b"+ ")
    c.send(b"\xc1\xc2\xd7\xc7\r\n")
    assert c.until(b"B283")[-1].startswith(b"B283 NO [BADCHARSET] ")
    assert c.cmd(b"x SEARCH $") == [b"* SEARCH 2 10 11\r\n", b"x OK SEARCH completed\r\n"]
    assert c.cmd(b"B284 SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")[-1].startswith(b"B284 NO ")
    assert c.cmd(b"y SEARCH $") == [b"* SEARCH\r\n", b"y OK SEARCH completed\r\n"]


NEW, OLD = 1_170_000_000, 1_100_000_000     # after and before 28-Oct-2006 and 12-Feb-2006


def test_rfc5182_examples_6_to_9(c, imap_preauth):
    """RFC 5182 2.2 Example 6 and 2.3 Examples 7-9, pipelined as there:
    Eric's mail since 28-Oct-2006 is 3:15,27,29:103, $Junk is on 1, 2
    and 104, nothing since then is from another."""
    eric = set(range(3, 16)) | {27} | set(range(29, 104))
    put_box(imap_preauth, "eric", [message(
        k, f"m {k}", frm="Eric <eric@example.org>" if k in eric or k % 2 else "o@example.org",
        internal=NEW if k in eric else OLD) for k in range(1, 106)])
    select(c, "eric")
    c.cmd(b"k STORE 1,2,104 +FLAGS.SILENT ($Junk)")
    c.cmd(b'm CREATE "Other Messages"')
    c.cmd(b"j CREATE Junk")
    c.send(b'E282 SEARCH RETURN (SAVE) SINCE 28-Oct-2006 NOT FROM "Eric"\r\n'
           b'E283 COPY $ "Other Messages"\r\n')
    assert c.until(b"E282") == [b"E282 OK SEARCH completed\r\n"]
    assert c.until(b"E283") == [b"E283 OK COPY completed\r\n"]
    c.send(b'G282 SEARCH RETURN (SAVE) KEYWORD $Junk\r\n'
           b'G283 SEARCH RETURN (ALL) SINCE 28-Oct-2006 FROM "Eric"\r\n')
    assert c.until(b"G282") == [b"G282 OK SEARCH completed\r\n"]
    assert c.until(b"G283") == [b'* ESEARCH (TAG "G283") ALL 3:15,27,29:103\r\n',
                                b"G283 OK SEARCH completed\r\n"]
    c.send(b'H282 SEARCH RETURN (SAVE) KEYWORD $Junk\r\n'
           b'H283 SEARCH RETURN (SAVE) SINCE 28-Oct-2006 FROM "Eric"\r\n')
    assert c.until(b"H283") == [b"H282 OK SEARCH completed\r\n", b"H283 OK SEARCH completed\r\n"]
    assert c.cmd(b"h SEARCH RETURN (ALL) $")[0] == b'* ESEARCH (TAG "h") ALL 3:15,27,29:103\r\n'
    c.send(b'F282 SEARCH RETURN (SAVE) KEYWORD $Junk\r\nF283 COPY $ "Junk"\r\n'
           b'F284 STORE $ +FLAGS.Silent (\\Deleted)\r\n')
    r = c.until(b"F284")
    assert r[0] == b"F282 OK SEARCH completed\r\n"
    assert re.fullmatch(rb"F283 OK \[COPYUID \d+ 1(,2|:2),104 1(,2,3|:3)\] COPY completed\r\n", r[1]), r
    assert r[2:] == [b"F284 OK STORE completed\r\n"]
    assert c.cmd(b"d SEARCH DELETED")[0] == b"* SEARCH 1 2 104\r\n"


def test_rfc5182_example_10(c, imap_preauth):
    """RFC 5182 2.4 Example 10: what `$` holds after SAVE with MIN, MAX,
    ALL and COUNT (found: 2,10:15,21)."""
    found = {2, 21} | set(range(10, 16))
    put_box(imap_preauth, "c", [message(
        k, f"m {k}", frm="Smith <s@example.org>" if k == 3 else "o@example.org",
        internal=NEW if k in found | {3} else OLD) for k in range(1, 25)])
    select(c, "c")
    prog = b' SINCE 12-Feb-2006 NOT FROM "Smith"'
    c.cmd(b"s SEARCH RETURN (SAVE) UID 1")
    assert c.cmd(b"C282 SEARCH RETURN (ALL)" + prog) == [
        b'* ESEARCH (TAG "C282") ALL 2,10:15,21\r\n', b"C282 OK SEARCH completed\r\n"]
    assert c.cmd(b"x SEARCH $")[0] == b"* SEARCH 1\r\n"         # unchanged
    for tag, opts, reply, saved in (
            (b"C283", b"(ALL SAVE)", b"ALL 2,10:15,21", b"2 10 11 12 13 14 15 21"),
            (b"C284", b"(SAVE MIN)", b"MIN 2", b"2"),
            (b"C285", b"(MAX SAVE MIN)", b"MIN 2 MAX 21", b"2 21"),
            (b"C286", b"(MAX SAVE MIN COUNT)", b"MIN 2 MAX 21 COUNT 8", b"2 10 11 12 13 14 15 21"),
            (b"C287", b"(ALL SAVE MIN)", b"MIN 2 ALL 2,10:15,21", b"2 10 11 12 13 14 15 21")):
        assert c.cmd(tag + b" SEARCH RETURN " + opts + prog) == [
            b'* ESEARCH (TAG "%s") %s\r\n' % (tag, reply), tag + b" OK SEARCH completed\r\n"]
        assert c.cmd(b"x SEARCH $")[0] == b"* SEARCH " + saved + b"\r\n"


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


def test_rfc5267_example_e01(c, imap_preauth):
    """RFC 5267 3.3: UIDs 23758-23765 sent in that order, 23762 \\Deleted,
    23760 $Junk; REVERSE DATE gives descending UIDs, each its own item
    (a range is ascending, 3.2).  Our OK text is Plan 9's."""
    put_box(imap_preauth, "e", [message(k, f"m {k}", sent=Y1995 + k * 60) for k in range(1, 9)])
    seed(imap_preauth, "e", [(23757 + k, {"\\Deleted"} if k == 5 else (),
                              ("$Junk",) if k == 3 else (), 1) for k in range(1, 9)], 1)
    select(c, "e")
    assert c.cmd(b"E01 UID SORT RETURN () (REVERSE DATE) UTF-8 UNDELETED UNKEYWORD $Junk") == [
        b'* ESEARCH (TAG "E01") UID ALL 23765,23764,23763,23761,23759,23758\r\n',
        b"E01 OK uid SORT completed\r\n"]


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
