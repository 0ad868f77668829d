"""QUOTA (RFC 9208) and STATUS=SIZE (RFC 8438) over a real socket."""
from __future__ import annotations

import re

import pytest

from upas.imap4d import names


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
