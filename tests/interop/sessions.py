"""The client sessions of the interop exchanges, shared by `make interop`
(tests/interop, against plan9port's programs) and the regular suite's
replays of what was recorded there (tests/test_interop_replay.py): the
same calls in the same order, so that our programs' half comes out the
same both times.
"""
from __future__ import annotations

import hashlib
import imaplib
import poplib
import shutil
from pathlib import Path

from auth import demo
from tests.fixtures.acceptor import TESTDATA
from tests.fixtures.imap import ImapClient
from tests.fixtures.pop3 import PopClient

USER = "glenda"
SECRET = demo.USERS[USER][1]
WRONG = "not-the-secret"
RUNS = 3
PARTS = b" ".join(b"BODY.PEEK[%s]" % p for p in (
    b"", b"HEADER", b"TEXT", b"1", b"1.MIME", b"2", b"2.MIME", b"2.1", b"2.5.MIME", b"3",
    b"3.1.2")) + b" BODYSTRUCTURE ENVELOPE RFC822.SIZE"
# a ninth message whose Subject is folded, continued after four spaces
FOLDED = (b"From bob@example.org Fri Nov 27 09:00:00 2026\n"
          b"Date: Fri, 27 Nov 2026 09:00:00 +0000\n"
          b"From: Bob Bobson <bob@example.org>\n"
          b"To: glenda@example.org\n"
          b"Subject: a subject long enough that its writer\n"
          b"    folded it onto a second line\n"
          b"Message-ID: <folded.1@example.org>\n"
          b"\n"
          b"The subject of this one is folded.\n\n")
MTIME = 1796000000          # of the mailbox file `9p ls -l` lists


def mailroot(dest: Path, folded: bool = False) -> Path:
    """A copy of testdata/mail at dest/mail (glenda's mailbox with FOLDED
    appended if asked)."""
    root = dest / "mail"
    shutil.copytree(TESTDATA, root)
    if folded:
        with open(root / "box" / USER / "mbox", "ab") as f:
            f.write(FOLDED)
    return root


def mailbox_for(root: Path, user: str) -> Path:
    """glenda's testdata mailbox as user's /mail/box/USER/mbox under root."""
    box = root / "box" / user
    box.mkdir(parents=True, exist_ok=True)
    shutil.copy(TESTDATA / "box" / USER / "mbox", box / "mbox")
    return box / "mbox"


# -- logins through factotum ----------------------------------------------------------

def pop3_apop_wrong_then_right(addr) -> None:
    p = poplib.POP3(*addr, timeout=20)
    try:
        p.apop(USER, WRONG)
    except poplib.error_proto as e:
        assert b"authentication failed" in e.args[0], e
    else:
        raise AssertionError("a wrong APOP was taken")
    assert p.apop(USER, SECRET).startswith(b"+OK")
    assert p.stat()[0] == 8
    p.quit()


def pop3_user_pass(addr) -> None:
    p = poplib.POP3(*addr, timeout=20)
    p.user(USER)
    assert p.pass_(SECRET).startswith(b"+OK")
    assert p.stat()[0] == 8
    p.quit()


def imap_login_wrong_then_right(addr) -> None:
    m = imaplib.IMAP4(*addr, timeout=20)
    try:
        m.login(USER, WRONG)
    except imaplib.IMAP4.error:
        pass
    else:
        raise AssertionError("a wrong LOGIN was taken")
    assert m.login(USER, SECRET)[0] == "OK"
    assert m.select("INBOX") == ("OK", [b"8"])
    m.logout()


def imap_cram(addr) -> None:
    m = imaplib.IMAP4(*addr, timeout=20)
    assert m.login_cram_md5(USER, SECRET)[0] == "OK"
    assert m.select("INBOX") == ("OK", [b"8"])
    m.logout()


# -- reading every part -----------------------------------------------------------------

def imap_every_part(addr) -> list[bytes]:
    """imap4d -a: SELECT INBOX, FETCH every part of every message RUNS
    times, LOGOUT; the lines, but for RECENT (only a first session has
    any)."""
    c = ImapClient(addr)
    out = [c.greeting]
    out += c.cmd(b"s SELECT INBOX")
    for i in range(RUNS):
        out += c.cmd(b"f%d FETCH 1:* (%s)" % (i, PARTS))
    out += c.cmd(b"l LOGOUT")
    c.close()
    return [line for line in out if not line.endswith(b" RECENT\r\n")]


def pop3_every_message(addr, user: str, secret: str) -> list[bytes]:
    """APOP, STAT, LIST, UIDL, RETR and TOP of every message, QUIT."""
    c = PopClient(addr)
    digest = hashlib.md5(c.chal.encode() + secret.encode()).hexdigest()
    out = [c.cmd(f"APOP {user} {digest}".encode())]
    out += [c.cmd(b"STAT"), c.cmd(b"LIST") + c.multi(), c.cmd(b"UIDL") + c.multi()]
    for n in range(1, 9):
        out += [c.cmd(b"RETR %d" % n) + c.multi(), c.cmd(b"TOP %d 2" % n) + c.multi()]
    out += [c.cmd(b"RETR 9"), c.cmd(b"QUIT")]
    c.close()
    return out
