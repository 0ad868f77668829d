"""Issue 17, item 6: mail is readable by its owner only.

On a host started as `make run` starts it, every way mail and what
describes it get written -- the copied tree, deliveries (a new mailbox
too), IMAP CREATE, APPEND, flags (.imp), keywords (.kw.imp), the digest
cache, SUBSCRIBE, RENAME of INBOX, EXPUNGE (upasfs's rewrite), pop3's
size cache and DELE -- leaves files 0600 and directories 0700.  Lock
files (L.mbox) are Plan 9's 0666 less the umask (docs/running.md); the
0700 directory keeps other users from them.
"""
import hashlib
import imaplib
import os
import poplib
import re
import stat
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(90)


def modes(root):
    """(path, mode) of everything under root that is not 0600/0700."""
    bad = []
    for d, dirs, files in os.walk(root):
        for name in dirs:
            m = stat.S_IMODE(os.stat(os.path.join(d, name)).st_mode)
            if m != 0o700:
                bad.append((os.path.join(d, name), oct(m)))
        for name in files:
            path = os.path.join(d, name)
            m = stat.S_IMODE(os.lstat(path).st_mode)
            if m != 0o600 and not name.startswith("L."):
                bad.append((path, oct(m)))
    return bad


def test_everything_the_servers_write_is_owner_only(mail_host):
    root = mail_host.mailroot
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert modes(root) == []                       # the copied tree
    env = dict(os.environ, MAILROOT=str(root))
    # 16 messages: enough for imap4d to keep a digest cache (fetchcache.SMALL)
    for user in ["glenda"] * 16 + ["newuser"]:
        (root / "box" / user).mkdir(mode=0o700, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "upas.mbappend", f"/mail/box/{user}/mbox"],
                           input=b"Subject: modes\n\nhi\n", env=dict(env, user=user), timeout=30)
        assert r.returncode == 0
    h, port = mail_host.addrs["imap4d"]
    c = imaplib.IMAP4(h, port, timeout=30)
    c.login_cram_md5("glenda", "glenda-apop")
    assert c.enable("QRESYNC")[0] == "OK"
    assert c.create("work/2026/q1")[0] == "OK"
    assert c.append("work/2026/q1", "(\\Seen $Important)", None,
                    b"Subject: appended\r\n\r\nbody\r\n")[0] == "OK"
    assert c.append("fresh", None, None, b"Subject: new box\r\n\r\nbody\r\n")[0] in ("OK", "NO")
    assert c.subscribe("work/2026/q1")[0] == "OK"
    assert c.select("INBOX")[0] == "OK"
    assert c.store("1:*", "+FLAGS", "($Keyword)")[0] == "OK"
    assert c.fetch("1:*", "(ENVELOPE BODYSTRUCTURE RFC822.SIZE)")[0] == "OK"
    assert (root / "box" / "glenda" / "mbox.imap4d.imp").exists()
    # a QRESYNC resync (RFC 7162 3.2.5) reads the MODSEQ record whole and
    # writes its proof beside the mailbox (imap4d/modtail.py): owner-only,
    # and no mailbox in LIST (RFC 3501 6.3.8 lists mailboxes only)
    assert c.select("INBOX")[0] == "OK"
    uidvalidity = c.response("UIDVALIDITY")[1][0].decode()
    assert c._simple_command("SELECT", f"INBOX (QRESYNC ({uidvalidity} 1))")[0] == "OK"
    assert c.noop()[0] == "OK"          # (the proof is written after SELECT's OK)
    assert (root / "box" / "glenda" / "mbox.modseq.ok.imp").exists()
    typ, listed = c.list()
    assert typ == "OK" and listed and not [x for x in listed if b".imp" in x], listed
    assert modes(root) == []
    assert c.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert c.expunge()[0] == "OK"
    assert c.rename("INBOX", "old-inbox")[0] == "OK"
    c.logout()
    p = poplib.POP3(*mail_host.addrs["pop3"], timeout=30)
    chal = re.search(rb"<[^>]+>", p.getwelcome()).group(0)
    assert p._shortcmd("APOP bob " + hashlib.md5(chal + b"bob-apop").hexdigest()
                       ).startswith(b"+OK")
    p.dele(1)
    p.quit()
    written = {f.name for f in (root / "box" / "glenda").rglob("*")}
    # SELECT's record of upasfs's listing (imap4d/selectmark.py) among them
    assert any(n.endswith(".mark.imp") for n in written), written
    assert {"mbox.imp", "old-inbox", "old-inbox.kw.imp",
            "q1", "q1.imp"} <= written, written
    assert modes(root) == []
