"""QUOTA (RFC 9208) and STATUS=SIZE (RFC 8438) over a real socket.

The examples were read in the RFC texts as vendored by MailKit
(github.com/jstedfast/MailKit, rfc/rfc8438.txt and rfc/rfc9208.txt).
Every C:/S: example, and where it is tested:

RFC 8438 4  A01 STATUS frop (MESSAGES SIZE UIDNEXT), and A02 SELECT/A03
            FETCH 1:* (RFC822.SIZE), the long way to the same numbers:
            test_rfc8438_status_size_example.  Our STATUS names Plan 9's
            items in Plan 9's fixed order, then the extensions' (so
            UIDNEXT before SIZE; docs/spec item 50, RFC 3501 fixes no order).  Our SELECT's texts after
            the codes are Plan 9's, and HIGHESTMODSEQ is sent once
            CONDSTORE is enabled (RFC 7162 3.1.2), so A02 is preceded by
            ENABLE CONDSTORE.
RFC 8438 4  A04 LIST "" % RETURN (STATUS (MESSAGES SIZE)):
            test_rfc8438_list_status_size_example; our delimiter is "/"
            where the example's is ".", and our LIST adds child flags.
RFC 9208 4.1.4  S0003 STATUS INBOX (MESSAGES DELETED DELETED-STORAGE):
            test_rfc9208_status_deleted_storage_example.
RFC 9208 4.2.1, 4.2.2  `* QUOTA "" (STORAGE 10 512)`, `* QUOTAROOT INBOX
            ""`: test_rfc9208_getquotaroot_example.
Not tests, for what we do not offer (docs/decisions.md, "Sorting,
threading, extended search and quota"): 4.1.1 G0001 and 4.1.2 G0002 (a
"#user/alice" root, a "!partition/sda4" root and the MESSAGE resource:
we have one root, "", and STORAGE; G0001's root answers NO here, tested);
4.1.3 S0000-S0002 (SETQUOTA, QUOTASET not offered: BAD, tested); 4.2.2
`* QUOTAROOT comp.mail.mime` (a mailbox without a root: every mailbox
here is under ""); 4.3.1 OVERQUOTA Examples 1-3 (nothing is refused for
being over quota, as Plan 9's delivery has no quota).
"""
from __future__ import annotations

import re
import shutil

import pytest

from upas.imap4d import names
from tests.mboxgen import message
from tests.test_imap_condstore import seed


def listable_bytes(srv) -> int:
    root = srv.box().parent
    return sum(f.stat().st_size for f in root.rglob("*")
               if f.is_file() and names.is_listable(str(f.relative_to(root))))


@pytest.fixture
def quota512(imap_factory):
    return imap_factory(flags=("-a",), auth=False, env={"IMAP4D_QUOTA": "512"})


def test_rfc9208_getquotaroot_example(quota512):
    """RFC 9208 4.1.2: `* QUOTAROOT INBOX ""` and `* QUOTA "" (STORAGE 10
    512)` for a user whose mailboxes hold 10 KiB, limit 512 KiB."""
    pad = 10 * 1024 - 100 - listable_bytes(quota512)
    assert pad > 0
    quota512.box(name="pad").write_bytes(b"x" * pad)
    c = quota512.connect()
    assert b"QUOTA=RES-STORAGE" in c.cmd(b"a CAPABILITY")[0].split()
    assert c.cmd(b"A003 GETQUOTAROOT INBOX") == [
        b'* QUOTAROOT INBOX ""\r\n', b'* QUOTA "" (STORAGE 10 512)\r\n',
        b"A003 OK GETQUOTAROOT completed\r\n"]
    assert c.cmd(b'G0001 GETQUOTA ""') == [b'* QUOTA "" (STORAGE 10 512)\r\n',
                                           b"G0001 OK GETQUOTA completed\r\n"]
    assert c.cmd(b'G0002 GETQUOTA "!partition/sda4"') == [
        b"G0002 NO GETQUOTA no such quota root\r\n"]
    assert c.cmd(b"A004 GETQUOTAROOT nosuch") == [b"A004 NO GETQUOTAROOT no such mailbox\r\n"]
    assert c.cmd(b"A005 GETQUOTAROOT ../bob/mbox") == [b"A005 NO GETQUOTAROOT no such mailbox\r\n"]
    assert c.cmd(b"A006 SETQUOTA \"\" (STORAGE 1)") == [b"A006 BAD SETQUOTA illegal command\r\n"]
    quota512.box(name="pad").write_bytes(b"x" * (pad + 1024))       # more mail: more used
    assert c.cmd(b'G0003 GETQUOTA ""')[0] == b'* QUOTA "" (STORAGE 11 512)\r\n'


def sized(k: int, size: int, seen: bool = False) -> bytes:
    """An mbox entry whose RFC822.SIZE is `size` (CRLF line ends; the
    blank line that ends an mbox entry is not the message's)."""
    def crlf(pad: int) -> int:
        entry = message(k, f"m {k}", body="x" * pad + "\n").split(b"\n", 1)[1]
        return len(entry) + entry.count(b"\n") - 2
    return message(k, f"m {k}", body="x" * (size - crlf(0)) + "\n")


FROP = (3224, 1222, 444, 4516, 544, 922, 31126, 2423)


def frop(srv) -> None:
    """RFC 8438's mailbox frop: 8 messages of 44421 octets, UIDNEXT
    242344, UIDVALIDITY 1364851417, 7 the first unseen, HIGHESTMODSEQ 3914."""
    srv.box(name="frop").write_bytes(b"".join(sized(k, n) for k, n in enumerate(FROP, 1)))
    rows = [(242335 + k, {"\\Seen"} if k < 7 else (), (), 3900 + k) for k in range(1, 9)]
    seed(srv, "frop", rows, 3914, uidvalidity=1364851417)


def test_rfc8438_status_size_example(imap_preauth):
    frop(imap_preauth)
    c = imap_preauth.connect()
    assert c.cmd(b"A01 STATUS frop (MESSAGES SIZE UIDNEXT)") == [
        b"* STATUS frop (MESSAGES 8 UIDNEXT 242344 SIZE 44421)\r\n", b"A01 OK STATUS completed\r\n"]
    c.cmd(b"e ENABLE CONDSTORE")
    r = c.cmd(b'A02 SELECT "frop"')
    for want in (rb"\* FLAGS \(\\Seen \\Answered \\Flagged \\Deleted \\Draft\)",
                 rb"\* 8 EXISTS", rb"\* \d RECENT", rb"\* OK \[UNSEEN 7\] .*",
                 rb"\* OK \[UIDVALIDITY 1364851417\] .*", rb"\* OK \[UIDNEXT 242344\] .*",
                 rb"\* OK \[HIGHESTMODSEQ 3914\] .*", rb"A02 OK \[READ-WRITE\] .*"):
        assert any(re.fullmatch(want + rb"\r\n", ln) for ln in r), (want, r)
    assert c.cmd(b"A03 FETCH 1:* (RFC822.SIZE)") == [
        b"* %d FETCH (RFC822.SIZE %d)\r\n" % (k, n) for k, n in enumerate(FROP, 1)] + [
        b"A03 OK FETCH completed\r\n"]


def test_rfc8438_list_status_size_example(imap_preauth):
    home = imap_preauth.box().parent
    shutil.rmtree(home / "lists")
    imap_preauth.box().write_bytes(b"".join(sized(k, 970 if k == 17 else 954) for k in range(1, 18)))
    frop(imap_preauth)
    c = imap_preauth.connect()
    r = c.cmd(b'A04 LIST "" % RETURN (STATUS (MESSAGES SIZE))')
    assert [ln for ln in r if ln.startswith(b"* STATUS")] == [
        b'* STATUS "INBOX" (MESSAGES 17 SIZE 16234)\r\n', b'* STATUS "frop" (MESSAGES 8 SIZE 44421)\r\n']
    assert [re.sub(rb"\(.*?\)", b"()", ln) for ln in r if ln.startswith(b"* LIST")] == [
        b'* LIST () "/" "INBOX"\r\n', b'* LIST () "/" "frop"\r\n']
    assert r[-1] == b"A04 OK LIST completed\r\n"


def test_rfc9208_status_deleted_storage_example(imap_preauth):
    """RFC 9208 4.1.4: 12 messages, 4 of them \\Deleted, 7600 octets of
    them: 8 KiB."""
    imap_preauth.box().write_bytes(b"".join(sized(k, 1900 if k <= 4 else 500) for k in range(1, 13)))
    c = imap_preauth.connect()
    c.cmd(b"a SELECT INBOX")
    c.cmd(b"b STORE 1:4 +FLAGS.SILENT (\\Deleted)")
    c.cmd(b"c UNSELECT")
    assert c.cmd(b"S0003 STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)") == [
        b"* STATUS INBOX (MESSAGES 12 DELETED 4 DELETED-STORAGE 8)\r\n", b"S0003 OK STATUS completed\r\n"]


def test_quota_without_a_limit(imap_preauth):
    """No limit configured: the usage, beside the largest number64."""
    c = imap_preauth.connect()
    used = (listable_bytes(imap_preauth) + 1023) // 1024
    assert c.cmd(b'a GETQUOTA ""')[0] == b'* QUOTA "" (STORAGE %d 9223372036854775807)\r\n' % used


def test_status_size_is_the_sum_of_rfc822_sizes(imap_preauth):
    """RFC 8438: SIZE is the mailbox's size as the sum of its messages'
    RFC822.SIZE; DELETED-STORAGE (RFC 9208) the KiB of \\Deleted ones."""
    c = imap_preauth.connect()
    assert b"STATUS=SIZE" in c.cmd(b"a CAPABILITY")[0].split()
    c.cmd(b"b SELECT INBOX")
    sizes = [int(x) for x in re.findall(rb"RFC822.SIZE (\d+)", b"".join(c.cmd(b"c FETCH 1:* RFC822.SIZE")))]
    c.cmd(b"d STORE 2 +FLAGS.SILENT (\\Deleted)")
    c.cmd(b"e UNSELECT")
    assert c.cmd(b"f STATUS INBOX (SIZE MESSAGES DELETED-STORAGE)") == [
        b"* STATUS INBOX (MESSAGES %d SIZE %d DELETED-STORAGE %d)\r\n"
        % (len(sizes), sum(sizes), (sizes[1] + 1023) // 1024),
        b"f OK STATUS completed\r\n"]
    assert c.cmd(b"g STATUS lists/mbox (SIZE)")[0].startswith(b"* STATUS lists/mbox (SIZE ")
    lines = c.cmd(b'h LIST "" "*" RETURN (STATUS (SIZE))')
    assert b"* STATUS \"INBOX\" (SIZE %d)\r\n" % sum(sizes) in lines, lines


def test_imapclient_reads_quota_and_status_size(quota512):
    """imapclient's QUOTA calls parse our answers."""
    from imapclient import IMAPClient
    c = IMAPClient(*quota512.addr, ssl=False, timeout=20)
    used = (listable_bytes(quota512) + 1023) // 1024
    roots, quotas = c.get_quota_root("INBOX")
    assert (roots.mailbox, roots.quota_roots) == ("INBOX", [""])
    assert [(q.quota_root, q.resource, q.usage, q.limit) for q in quotas] == [
        ("", "STORAGE", used, 512)]
    assert c.folder_status("INBOX", ["MESSAGES", "SIZE"])[b"MESSAGES"] == 8
    c.logout()
