"""SAVEDATE (RFC 8514) over a real socket: FETCH SAVEDATE of messages
stored by APPEND and COPY (the moment they were saved, whatever their
internal date) and of mail upas delivered (its internal date); the SEARCH
keys SAVEDBEFORE, SAVEDON, SAVEDSINCE, SAVEDATESUPPORTED; the dates last
across sessions, and Plan 9's .imp stays in its format.

RFC 8514's examples, read in its text as vendored by MailKit
(github.com/jstedfast/MailKit, rfc/rfc8514.txt): 4.2 A101 FETCH 998
(SAVEDATE) and 4.3 A102 SEARCH SAVEDON, A103 SEARCH SAVEDSINCE, all three
in test_rfc8514_examples, on 1001 delivered messages (whose save date is
their internal date).  Our OK texts are Plan 9's ("FETCH completed"
where the RFC has "Fetch completed.").  RFC 8514 has no other example."""
from __future__ import annotations

import calendar
import re
import time

from tests.mboxgen import message

MSG = b"Subject: old news\r\n\r\nfrom 1994\r\n"
DATE_TIME = rb'"(\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4})"'


def today() -> bytes:
    return time.strftime("%d-%b-%Y").encode()


def fetch_dates(c, seqs: bytes) -> list[tuple[bytes, bytes]]:
    lines = c.cmd(b"f FETCH " + seqs + b" (INTERNALDATE SAVEDATE)")
    assert lines[-1] == b"f OK FETCH completed\r\n"
    return [tuple(re.findall(DATE_TIME, ln)) for ln in lines[:-1]]


def test_savedate(imap_preauth):
    srv = imap_preauth
    c = srv.connect()
    assert b"SAVEDATE" in c.cmd(b"a CAPABILITY")[0].split()
    day = today()
    n = srv.box().read_bytes().count(b"\nFrom ") + 1
    assert c.cmd(b'b APPEND INBOX (\\Seen) "07-Feb-1994 21:52:25 -0800" {%d+}\r\n%s\r\n'
                 % (len(MSG), MSG), b"b")[-1].startswith(b"b OK [APPENDUID ")
    c.cmd(b"c SELECT INBOX")
    dates = fetch_dates(c, b"1:*")
    assert len(dates) == n + 1
    # delivered mail: saved when it was delivered, its internal date
    for internal, saved in dates[:-1]:
        assert saved == internal
    internal, saved = dates[-1]
    assert internal == b"07-Feb-1994 21:52:25 -0800"
    assert saved.startswith(day)                # saved today, not in 1994
    # SEARCH: the date of the save date, time and zone disregarded
    assert c.cmd(b"d SEARCH SAVEDON " + day)[0] == b"* SEARCH %d\r\n" % (n + 1)
    assert c.cmd(b"e SEARCH SAVEDSINCE " + day)[0] == b"* SEARCH %d\r\n" % (n + 1)
    assert c.cmd(b"g SEARCH SAVEDBEFORE " + day)[0] == \
        b"* SEARCH " + b" ".join(b"%d" % i for i in range(1, n + 1)) + b"\r\n"
    assert c.cmd(b"h SEARCH SAVEDATESUPPORTED")[0] == \
        b"* SEARCH " + b" ".join(b"%d" % i for i in range(1, n + 2)) + b"\r\n"
    assert c.cmd(b"i SEARCH SAVEDON 7-Feb-1994")[0] == b"* SEARCH\r\n"
    assert c.cmd(b"j SEARCH ON 7-Feb-1994")[0] == b"* SEARCH %d\r\n" % (n + 1)

    # COPY: the copy is saved now; its internal date is the original's
    c.cmd(b"k CREATE kept")
    assert c.cmd(b"l COPY 1 kept")[-1].startswith(b"l OK [COPYUID ")
    c.cmd(b"m SELECT kept")
    (internal1, saved1), = fetch_dates(c, b"1")
    assert internal1 == dates[0][0] and saved1.startswith(day)
    # a second save into the same mailbox: its line follows the first
    assert c.cmd(b'n APPEND kept {%d+}\r\n%s\r\n' % (len(MSG), MSG),
                 b"n")[-1].startswith(b"n OK [APPENDUID ")
    (_, saved2), = fetch_dates(c, b"2")
    assert saved2.startswith(day)
    kept = srv.box(name="kept.save.imp").read_bytes().split(b"\n")
    assert kept[0] == b"imap save dates" and len(kept) == 4 and kept[3] == b""
    c.close()

    # another session, later: the same dates
    c = srv.connect()
    c.cmd(b"a SELECT INBOX")
    assert fetch_dates(c, b"1:*") == dates
    c.close()
    # Plan 9's .imp is as Plan 9 writes it; the dates are beside it
    imp = srv.box(name="mbox.imp").read_bytes()
    assert re.fullmatch(rb"imap internal mailbox description\n\d{10} \d{10}\n",
                        b"\n".join(imp.split(b"\n")[:2]) + b"\n")
    assert all(re.fullmatch(rb"[0-9a-f]{40} \d{10} [s-][a-][f-][D-][d-][r-]--", ln)
               for ln in imp.split(b"\n")[2:-1])
    saves = srv.box(name="mbox.save.imp").read_bytes().split(b"\n")
    assert saves[0] == b"imap save dates" and len(saves) == 3 and saves[2] == b""
    assert re.fullmatch(rb"[0-9a-f]{40} \d{10}", saves[1])
    # the file is hidden as Plan 9 hides .imp files
    c = srv.connect()
    listed = b"".join(c.cmd(b'a LIST "" *'))
    assert b"save.imp" not in listed and b"kept" in listed
    c.close()


def test_savedate_syntax(imap_preauth):
    c = imap_preauth.connect()
    c.cmd(b"a SELECT INBOX")
    assert c.cmd(b"b SEARCH SAVEDON")[-1].startswith(b"b BAD ")
    assert c.cmd(b"c SEARCH SAVEDBEFORE 32-Jan-2026")[-1].startswith(b"c BAD ")
    c.close()


def test_rfc8514_examples(imap_preauth):
    """RFC 8514 4.2 and 4.3: 998 saved at 01-Jan-2015 18:50:53 +0100, 993
    and 994 on 28-Dec-2014, 995-1001 after it, the others before."""
    def wall(k: int) -> int:
        if k == 998:
            return calendar.timegm((2015, 1, 1, 18, 50, 53))
        if k in (993, 994):
            return calendar.timegm((2014, 12, 28, 0, 30 + k - 993, 0))
        if k > 994:
            return calendar.timegm((2014, 12, 29, 23, k - 994, 0))
        return calendar.timegm((2014, 12, 27, 23, 59, 0)) - k
    imap_preauth.box().write_bytes(b"".join(
        message(k, f"m {k}", internal=wall(k)).replace(b" GMT ", b" +0100 ", 1) for k in range(1, 1002)))
    c = imap_preauth.connect()
    c.cmd(b"a SELECT INBOX")
    assert c.cmd(b"A101 FETCH 998 (SAVEDATE)") == [
        b'* 998 FETCH (SAVEDATE "01-Jan-2015 18:50:53 +0100")\r\n', b"A101 OK FETCH completed\r\n"]
    assert c.cmd(b"A102 SEARCH SAVEDON 28-Dec-2014") == [
        b"* SEARCH 993 994\r\n", b"A102 OK SEARCH completed\r\n"]
    assert c.cmd(b"A103 SEARCH SAVEDSINCE 28-Dec-2014") == [
        b"* SEARCH 993 994 995 996 997 998 999 1000 1001\r\n", b"A103 OK SEARCH completed\r\n"]
    c.close()
