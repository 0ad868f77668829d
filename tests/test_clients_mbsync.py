"""A real client: mbsync (isync) syncing a whole mail tree both ways with
imap4d, then a flag change and a deletion on each side propagating.

mbsync runs imap4d through its Tunnel option (a server on stdin/stdout,
as the launcher runs it) over the shared posted upasfs, and logs in with
CRAM-MD5 through the real auth stack; a second run uses `imap4d -a`, whose
`* PREAUTH` greeting mbsync accepts only in upper case (docs/decisions.md:
isync 1.4 says `IMAP error: bogus greeting response preauth`)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MBSYNC = shutil.which("mbsync")
pytestmark = pytest.mark.skipif(MBSYNC is None, reason="mbsync (apt package isync) is not installed")

LOGIN = """\
IMAPAccount plan9
Tunnel "{python} -m upas.imap4d -s imap.test"
User glenda
Pass glenda-apop
AuthMechs CRAM-MD5
"""

PREAUTH = """\
IMAPAccount plan9
Tunnel "{python} -m upas.imap4d -a -s imap.test"
"""

CONFIG = """
IMAPStore far
Account plan9

MaildirStore near
Path {near}/
Inbox {near}/INBOX
SubFolders Verbatim

Channel all
Far :far:
Near :near:
Patterns *
Create Both
Remove Both
Expunge Both
SyncState *
"""


def run_mbsync(cfg: Path, env: dict) -> str:
    p = subprocess.run([MBSYNC, "-c", str(cfg), "-a"], env=env, capture_output=True,
                       timeout=120, cwd=str(Path(__file__).resolve().parents[1]))
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, out
    return out


def maildir_msgs(d: Path) -> dict[str, tuple[str, bytes]]:
    """Subject -> (maildir flags, bytes) of a maildir folder."""
    out = {}
    for sub in ("cur", "new"):
        for f in sorted((d / sub).iterdir()) if (d / sub).is_dir() else []:
            data = f.read_bytes()
            m = re.search(rb"^Subject: (.*)$", data, re.M)
            flags = f.name.split(":2,")[1] if ":2," in f.name else ""
            out[m.group(1).decode() if m else ""] = (flags, data)
    return out


def imap_subjects(c, box: bytes) -> dict[str, bytes]:
    """Subject -> FLAGS of every message of a server mailbox."""
    c.cmd(b"s SELECT " + box)
    lines = c.cmd(b"f FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])")
    out = {}
    for ln in lines[:-1]:
        fl = re.search(rb"FLAGS \(([^)]*)\)", ln).group(1)
        sub = re.search(rb"Subject: ([^\r\n]*)", ln)
        out[sub.group(1).decode() if sub else ""] = fl
    c.cmd(b"u UNSELECT")
    return out


def test_mbsync_two_way(imap_factory, tmp_path):
    srv = imap_factory(flags=("-p",))
    c = srv.connect()
    assert c.cmd(b"l LOGIN glenda glenda-apop") == [b"l OK LOGIN succeeded\r\n"]
    # a server tree with several folders
    for box in (b"Sent", b"Archive/2026"):
        assert c.cmd(b"a CREATE " + box)[-1].startswith(b"a OK ")
        for i in range(2):
            msg = b"Subject: %s %d\r\nFrom: glenda@upas.local\r\n\r\nbody %d\r\n" % (box, i, i)
            assert c.cmd(b"b APPEND %s {%d+}\r\n%s\r\n" % (box, len(msg), msg))[-1].startswith(b"b OK ")
    # and a near (local) folder the server does not have yet
    near = tmp_path / "near"
    for sub in ("cur", "new", "tmp"):
        (near / "Local" / sub).mkdir(parents=True)
    (near / "Local" / "cur" / "1700000000.1.host:2,S").write_bytes(
        b"Subject: made locally\nFrom: glenda@upas.local\n\nlocal body\n")
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(LOGIN.format(python=sys.executable) + CONFIG.format(near=near))
    env = dict(srv.env, HOME=str(tmp_path))

    run_mbsync(cfg, env)
    inbox = maildir_msgs(near / "INBOX")
    assert len(inbox) == 8 and "first message: plain text" in inbox
    assert set(maildir_msgs(near / "Sent")) == {"Sent 0", "Sent 1"}
    assert set(maildir_msgs(near / "Archive" / "2026")) == {"Archive/2026 0", "Archive/2026 1"}
    assert len(maildir_msgs(near / "lists" / "mbox")) >= 1
    body = inbox["first message: plain text"][1]
    assert b"This is a plain ASCII message.\n" in body
    # up: the local folder and its message, flags included
    assert srv.box(name="Local").is_file()
    assert imap_subjects(c, b"Local") == {"made locally": b"\\Seen"}

    # a flag change and a deletion on each side
    c.cmd(b"s SELECT INBOX")
    c.cmd(b"t STORE 1 +FLAGS (\\Flagged)")
    c.cmd(b"v STORE 2 +FLAGS (\\Deleted)")
    c.cmd(b"w EXPUNGE")
    c.cmd(b"x UNSELECT")
    sent_dir = near / "Sent" / "cur"
    files = sorted(sent_dir.iterdir()) + sorted((near / "Sent" / "new").iterdir())
    by_subject = {re.search(rb"Subject: (.*)", f.read_bytes()).group(1): f for f in files}
    by_subject[b"Sent 0"].unlink()                            # deleted locally
    f = by_subject[b"Sent 1"]
    base = f.name.split(":2,")[0]
    os.rename(f, near / "Sent" / "cur" / (base + ":2,FS"))    # flagged+seen locally

    run_mbsync(cfg, env)
    inbox = maildir_msgs(near / "INBOX")
    assert len(inbox) == 7 and "multipart with attachments" not in inbox
    assert "F" in inbox["first message: plain text"][0]
    sent = imap_subjects(c, b"Sent")
    assert set(sent) == {"Sent 1"}
    assert sent["Sent 1"] == b"\\Seen \\Flagged"
    assert b"Sent 0" not in srv.box(name="Sent").read_bytes()
    # nothing lost: the server INBOX still holds the other seven
    assert srv.box().read_bytes().count(b"\nFrom ") + 1 == 7
    c.close()


def test_mbsync_preauth(imap_factory, tmp_path):
    """`imap4d -a`: mbsync takes the PREAUTH greeting and syncs without a
    login; a deletion made locally reaches the server's mbox."""
    srv = imap_factory(flags=("-a",), auth=False)
    near = tmp_path / "near"
    near.mkdir()
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(PREAUTH.format(python=sys.executable) + CONFIG.format(near=near))
    env = dict(srv.env, HOME=str(tmp_path))
    run_mbsync(cfg, env)
    inbox = maildir_msgs(near / "INBOX")
    assert len(inbox) == 8 and "slides and notes" in inbox
    victim = next(f for sub in ("cur", "new") for f in (near / "INBOX" / sub).iterdir()
                  if b"Subject: slides and notes" in f.read_bytes())
    victim.unlink()
    run_mbsync(cfg, env)
    assert b"slides and notes" not in srv.box().read_bytes()
    assert srv.box().read_bytes().count(b"\nFrom ") + 1 == 7
