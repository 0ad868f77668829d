"""A second real client: offlineimap syncing the mail tree both ways,
then a flag change and a deletion on each side propagating.

offlineimap connects over TCP to the test acceptor (which runs one imap4d
per connection, as the launcher does) and logs in with CRAM-MD5 through
the real auth stack."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

OFFLINEIMAP = shutil.which("offlineimap")
pytestmark = pytest.mark.skipif(OFFLINEIMAP is None,
                                reason="offlineimap (apt package offlineimap3) is not installed")

CONFIG = """\
[general]
accounts = plan9
metadata = {meta}

[Account plan9]
localrepository = near
remoterepository = far

[Repository near]
type = Maildir
localfolders = {near}

[Repository far]
type = IMAP
remotehost = {host}
remoteport = {port}
ssl = no
remoteuser = glenda
remotepass = glenda-apop
auth_mechanisms = CRAM-MD5
"""


def run(cfg: Path, env: dict) -> str:
    p = subprocess.run([OFFLINEIMAP, "-c", str(cfg), "-u", "basic", "-o"], env=env,
                       capture_output=True, timeout=60,
                       cwd=str(Path(__file__).resolve().parents[1]))
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0 and "ERROR" not in out, out
    return out


def subjects(d: Path) -> dict[str, Path]:
    out = {}
    for sub in ("cur", "new"):
        for f in (d / sub).iterdir():
            m = re.search(rb"^Subject: (.*)$", f.read_bytes(), re.M)
            out[m.group(1).decode() if m else ""] = f
    return out


def test_offlineimap_two_way(imap_factory, tmp_path):
    srv = imap_factory(flags=("-p",))
    c = srv.connect()
    assert c.cmd(b"l LOGIN glenda glenda-apop")[-1] == b"l OK LOGIN succeeded\r\n"
    c.cmd(b"a CREATE Sent")
    msg = b"Subject: sent 0\r\nFrom: glenda@upas.local\r\n\r\nbody\r\n"
    c.cmd(b"b APPEND Sent {%d+}\r\n%s\r\n" % (len(msg), msg))
    near = tmp_path / "near"
    cfg = tmp_path / "offlineimaprc"
    cfg.write_text(CONFIG.format(meta=tmp_path / "meta", near=near,
                                 host=srv.addr[0], port=srv.addr[1]))
    env = dict(srv.env, HOME=str(tmp_path))

    run(cfg, env)
    inbox = subjects(near / "INBOX")
    assert len(inbox) == 8 and "first message: plain text" in inbox
    assert set(subjects(near / "Sent")) == {"sent 0"}

    # a new local message goes up; a flag change and a deletion on each side
    (near / "Sent" / "new" / "1700000000.1.host").write_bytes(
        b"Subject: sent locally\nFrom: glenda@upas.local\n\nhi\n")
    inbox["first message: plain text"].rename(
        inbox["first message: plain text"].parent.parent / "cur" /
        (inbox["first message: plain text"].name.split(":2,")[0] + ":2,F"))
    inbox["multipart with attachments"].unlink()
    c.cmd(b"s SELECT Sent")
    c.cmd(b"t STORE 1 +FLAGS (\\Seen)")
    c.cmd(b"u UNSELECT")
    run(cfg, env)

    assert b"multipart with attachments" not in srv.box().read_bytes()
    c.cmd(b"v SELECT INBOX")
    flags = c.cmd(b"w FETCH 1 FLAGS")[0]
    assert b"\\Flagged" in flags
    sent = subjects(near / "Sent")
    assert set(sent) == {"sent 0", "sent locally"}
    assert sent["sent 0"].name.endswith(":2,S")
    assert b"Subject: sent locally" in srv.box(name="Sent").read_bytes()
    c.close()
