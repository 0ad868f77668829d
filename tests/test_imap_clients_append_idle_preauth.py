"""Real client libraries against imap4d (logins through the real
auth stack): imaplib APPEND, imapclient folders, STATUS, ID and IDLE with
mail delivered meanwhile; imaplib and imapclient over a `-a` (PREAUTH)
session: SELECT, STORE, EXPUNGE, MOVE, NAMESPACE, LOGOUT.

imaplib (and so imapclient) accepts only upper-case untagged responses;
these work because imap4d sends `* PREAUTH`, `* BYE`, `* N EXPUNGE` and
NAMESPACE's `NIL` in upper case (docs/decisions.md)."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from imapclient import IMAPClient

MSG = b"Subject: hello\r\nFrom: a@b\r\n\r\nFrom the start\r\nline two\r\n"


@pytest.fixture
def srv(imap_factory):
    return imap_factory(flags=("-p",))


@pytest.fixture
def ic(srv):
    c = IMAPClient(srv.addr[0], port=srv.addr[1], ssl=False, timeout=20)
    c.login("glenda", "glenda-apop")
    yield c
    assert c.logout() == b"logging out"


def test_imaplib_append(srv):
    m = srv.imaplib()
    m.login("glenda", "glenda-apop")
    typ, data = m.append("INBOX", r"(\Answered)", '"02-Jan-2006 15:04:05 +0000"', MSG)
    assert typ == "OK" and data[0].startswith(b"[APPENDUID ")
    m.select("INBOX")
    typ, data = m.fetch("9", "(FLAGS BODY.PEEK[])")
    # stored as Plan 9 stores it: a body line `From ` is escaped with a space
    assert data[0][1] == MSG.replace(b"\r\nFrom the", b"\r\n From the")
    assert b"\\Answered" in data[0][0]
    assert m.logout()[0] == "BYE"


def test_imapclient_folders(ic):
    ic.create_folder("Archive/2026")
    ic.create_folder("Grüße")
    names = [n for _, _, n in ic.list_folders()]
    assert names == ["INBOX", "Archive", "Archive/2026", "Grüße", "lists", "lists/mbox"]
    flags = {n: f for f, _, n in ic.list_folders()}
    assert flags["Archive"] == (b"\\Noselect", b"\\HasChildren")
    ic.subscribe_folder("Grüße")
    assert [n for _, _, n in ic.list_sub_folders()] == ["INBOX", "Grüße"]
    ic.rename_folder("Grüße", "Archive/Grüße")
    assert ic.folder_exists("Archive/Grüße") and not ic.folder_exists("Grüße")
    st = ic.folder_status("Archive/Grüße", ["MESSAGES", "UIDNEXT"])
    assert st == {b"MESSAGES": 0, b"UIDNEXT": 1}
    ic.delete_folder("Archive/Grüße")
    assert not ic.folder_exists("Archive/Grüße")
    fields = ic.id_({"name": "pytest"})
    fields = fields[0] if len(fields) == 1 else fields
    assert dict(zip(fields[::2], fields[1::2]))[b"name"] == b"upas imap4d"
def test_imapclient_idle_sees_delivery_within_a_second(ic, srv):
    """docs/decisions.md: new mail during IDLE at once (Plan 9: within 15 s)."""
    ic.select_folder("INBOX")
    ic.idle()
    time.sleep(0.1)
    deliver(srv, b"From: someone@example.org\nSubject: new\n\nhi\n")
    t0 = time.monotonic()                        # the mail is in the file now
    got = []
    while time.monotonic() - t0 < 3 and not any(r[1] == b"EXISTS" for r in got):
        got += ic.idle_check(timeout=0.2)
    took = time.monotonic() - t0
    ic.idle_done()
    assert (9, b"EXISTS") in got
    assert took < 1.0, f"took {took:.2f}s"


def deliver(srv, message: bytes) -> None:
    """Deliver as the mail system does: `python -m upas.mbappend BOX < msg`."""
    box = str(srv.box())
    subprocess.run([sys.executable, "-m", "upas.mbappend", box], input=message,
                   env=srv.env, check=True, timeout=20)


def test_imaplib_preauth_session(imap_preauth):
    """`-a`: imaplib takes the PREAUTH greeting as authenticated."""
    m = imap_preauth.imaplib()
    assert m.welcome == b"* PREAUTH imap.test IMAP4rev1 server ready user glenda authenticated"
    assert m.state == "AUTH"
    assert m.select("INBOX") == ("OK", [b"8"])
    m.store("2:3", "+FLAGS", r"(\Deleted)")
    assert m.expunge() == ("OK", [b"2", b"2"])
    assert m.namespace() == ("OK", [b'(("" "/")) NIL NIL'])
    assert m.logout() == ("BYE", [b"logging out"])
    imap_preauth.wait_idle()
    assert b"multipart with attachments" not in imap_preauth.box().read_bytes()


def test_imapclient_preauth_session(imap_preauth):
    """`-a` with imapclient: no login, then SELECT, STORE \\Deleted,
    EXPUNGE (its responses parsed), MOVE, NAMESPACE and LOGOUT."""
    c = IMAPClient(*imap_preauth.addr, ssl=False, timeout=20)
    assert c.welcome == b"* PREAUTH imap.test IMAP4rev1 server ready user glenda authenticated"
    assert c.select_folder("INBOX")[b"EXISTS"] == 8
    c.add_flags([2, 3], [b"\\Deleted"])
    assert c.expunge() == (b"EXPUNGE messages erased",
                           [(2, b"EXPUNGE"), (2, b"EXPUNGE"), (6, b"EXISTS"), (6, b"RECENT")])
    assert c.search(["ALL"]) == [1, 4, 5, 6, 7, 8]          # UIDs
    c.move([1], "lists/mbox")
    assert c.search(["ALL"]) == [4, 5, 6, 7, 8]
    ns = c.namespace()
    assert (ns.personal, ns.other, ns.shared) == ((("", "/"),), None, None)
    assert c.logout() == b"logging out"
    imap_preauth.wait_idle()
    inbox = imap_preauth.box().read_bytes()
    assert b"multipart with attachments" not in inbox and b"first message" not in inbox
    assert b"first message: plain text" in imap_preauth.box(name="lists/mbox").read_bytes()
