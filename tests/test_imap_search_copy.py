"""SEARCH with several keys, STORE forms, COPY/UID COPY with COPYUID into a
real mbox (From line, digest, .imp), over a real socket and upasfs."""
import hashlib
import re

import pytest


@pytest.fixture
def c(imap_client):
    imap_client.cmd(b"s SELECT INBOX")
    return imap_client


def search(c, keys: bytes, uid: bool = False) -> list[int]:
    r = c.cmd((b"a UID SEARCH " if uid else b"a SEARCH ") + keys)
    assert r[-1] == (b"a OK uid SEARCH completed\r\n" if uid else b"a OK SEARCH completed\r\n"), r
    line = [x for x in r if x.startswith(b"* SEARCH")][0]
    return [int(x) for x in line.split()[2:]]


SEARCHES = [
    (b"ALL", [1, 2, 3, 4, 5, 6, 7, 8]),
    (b"FROM rob", [1]),
    (b'FROM "Ken Thompson"', [2]),
    (b"TO ken", [1]),
    (b"CC dmr", [1]),
    (b"SUBJECT multipart", [2]),
    (b"SUBJECT {5+}\r\ncaf\xc3\xa9", [3]),           # the RFC 2047-decoded subject
    (b"BODY forwarded", [4]),
    (b"BODY {3+}\r\n\xe2\x80\x94", [4]),             # an em dash in a base64 UTF-8 part
    (b"TEXT {6+}\r\nvoil\xc3\xa0", [7, 8]),          # 8-bit UTF-8; quoted-printable latin-1
    (b"TEXT notes", [2, 8]),
    (b"TEXT glenda", [1, 2, 3, 4, 5, 6, 7, 8]),
    (b"HEADER Message-ID orig4", []),
    (b'HEADER In-Reply-To ""', [1]),
    (b"LARGER 1000", [2, 8]),
    (b"SMALLER 200", [5]),
    (b"SINCE 26-Nov-2026", [4, 5, 8]),
    (b"BEFORE 24-Nov-2026", [1]),
    (b"ON 25-Nov-2026", [3, 6, 7]),
    (b"SENTBEFORE 24-Nov-2026", [1]),
    (b"OR FROM rob FROM ken", [1, 2]),
    (b"NOT OR FROM rob FROM ken", [3, 4, 5, 6, 7, 8]),
    (b"(FROM rob) (TO glenda)", [1]),
    (b"2:4 NOT 3", [2, 4]),
    (b"UID 6:*", [6, 7, 8]),
    (b"* ALL", [8]),
    (b"RECENT NEW UNSEEN", [1, 2, 3, 4, 5, 6, 7, 8]),
    (b"OLD", []),
    (b"CHARSET US-ASCII SEEN", []),
]


def test_search_keys(c):
    """One session for all the key forms."""
    for keys, hits in SEARCHES:
        assert search(c, keys) == hits, keys


def test_search_flags_and_uid_results(c):
    c.cmd(b"a STORE 2 +FLAGS (\\Answered \\Seen)")
    c.cmd(b"a STORE 3 +FLAGS (\\Flagged \\Draft work)")
    assert search(c, b"ANSWERED") == [2]
    assert search(c, b"UNANSWERED SEEN") == []
    assert search(c, b"FLAGGED DRAFT KEYWORD work") == [3]
    assert search(c, b"UNKEYWORD work UNDRAFT SEEN") == [2]
    c.cmd(b"a STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.cmd(b"a EXPUNGE")
    assert search(c, b"FLAGGED") == [2]
    assert search(c, b"FLAGGED", uid=True) == [3]


def test_store_forms(c):
    # a keyword new to the mailbox is announced before a FETCH shows it
    # (RFC 3501 7.2.6, docs/decisions.md)
    assert c.cmd(b"a STORE 1:2 FLAGS (\\Seen $Forwarded)") == [
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Forwarded)\r\n",
        b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Draft \\Deleted $Forwarded \\*)] Limited\r\n",
        b"* 1 FETCH (FLAGS (\\Seen \\Recent $Forwarded))\r\n",
        b"* 2 FETCH (FLAGS (\\Seen \\Recent $Forwarded))\r\n", b"a OK STORE completed\r\n"]
    assert c.cmd(b"b STORE 1 -FLAGS $forwarded") == [
        b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n", b"b OK STORE completed\r\n"]
    assert c.cmd(b"c STORE 1 FLAGS ()") == [b"* 1 FETCH (FLAGS (\\Recent))\r\n", b"c OK STORE completed\r\n"]
    assert c.cmd(b"d STORE 9 +FLAGS (\\Seen)") == [b"d NO STORE failed\r\n"]
    assert c.cmd(b"e UID STORE 9,2 +FLAGS.SILENT (\\Seen)") == [b"e OK uid STORE completed\r\n"]


def test_copy_with_copyuid(c, imap_preauth):
    lists = imap_preauth.box(name="lists/mbox")
    before = lists.read_bytes()
    r = c.cmd(b"a STORE 2 +FLAGS (\\Flagged $Junk)")
    r = c.cmd(b"b UID COPY 1:2 lists/mbox")
    m = re.fullmatch(rb"b OK \[COPYUID (\d+) 1,2 (\d+),(\d+)\] uid COPY completed\r\n", r[-1])
    assert m, r
    after = lists.read_bytes()
    assert after.startswith(before)
    added = after[len(before):]
    src = imap_preauth.box().read_bytes()
    first = src[:src.index(b"\nFrom ken@") + 1]     # message 1 and its separator line
    assert added.startswith(first)
    assert added.count(b"\nFrom ") + added.startswith(b"From ") == 2
    imp = lists.with_name("mbox.imp").read_bytes().split(b"\n")
    entry1 = hashlib.sha1(first[:-1]).hexdigest().encode()
    assert imp[-3] == entry1 + b" %010d -----r--" % int(m.group(2))
    assert imp[-2].endswith(b" %010d --f--r--" % int(m.group(3)))
    # the copies are there with those uids, flags and the keyword
    t = imap_preauth.connect()
    r = t.cmd(b"a SELECT lists/mbox")
    assert b"* OK [UIDVALIDITY %s] UIDs valid\r\n" % m.group(1) in r
    n = int(r[1].split()[1])
    assert b"* %d RECENT\r\n" % n in r                  # never selected: all recent
    r = t.cmd(b"b UID FETCH %s:* FLAGS" % m.group(2))
    assert r == [b"* %d FETCH (UID %s FLAGS (\\Recent))\r\n" % (n - 1, m.group(2)),
                 b"* %d FETCH (UID %s FLAGS (\\Flagged \\Recent $Junk))\r\n" % (n, m.group(3)),
                 b"b OK uid FETCH completed\r\n"]
    assert t.cmd(b"c FETCH 1:* UID")[:-1] == [b"* %d FETCH (UID %d)\r\n" % (i, i) for i in range(1, n + 1)]
    # INBOX as a target works too (docs/decisions.md)
    r = c.cmd(b"c COPY 3 inbox")
    assert r[:2] == [b"* 9 EXISTS\r\n", b"* 9 RECENT\r\n"]      # reported before the OK
    assert r[2] == b"c OK [COPYUID %s 3 9] COPY completed\r\n" % r[2].split()[3]
    assert c.cmd(b"d FETCH 9 (UID BODY.PEEK[HEADER.FIELDS (Subject)])")[0].endswith(b"Subject: =?utf-8?B?Q2Fmw6kgw6AgUGFyaXMg4oKs?= and =?ISO-8859-1?Q?na=EFve_caf=E9?=\r\n\r\n)\r\n")


def test_copy_nothing_when_a_message_is_missing(c, imap_preauth):
    lists = imap_preauth.box(name="lists/mbox")
    before = lists.read_bytes()
    assert c.cmd(b"a COPY 1,99 lists/mbox") == [b"a NO COPY failed\r\n"]
    assert c.cmd(b"b COPY 1 ../bob/mbox") == [b"b NO COPY bad mailbox\r\n"]
    assert lists.read_bytes() == before


def test_uid_expunge_only_the_given_uids(c, imap_preauth):
    c.cmd(b"a STORE 2:4 +FLAGS.SILENT (\\Deleted)")
    assert c.cmd(b"b UID EXPUNGE 3:4,99") == [b"* 3 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n", b"* 6 EXISTS\r\n",
                                             b"* 6 RECENT\r\n", b"b OK uid EXPUNGE messages erased\r\n"]
    assert search(c, b"DELETED", uid=True) == [2]
    assert c.cmd(b"c CHECK") == [b"c OK CHECK completed\r\n"]
    e = imap_preauth.connect()
    assert e.cmd(b"a EXAMINE INBOX")[1] == b"* 6 EXISTS\r\n"
    assert e.cmd(b"b EXPUNGE") == [b"b NO EXPUNGE some messages not expunged\r\n"]
