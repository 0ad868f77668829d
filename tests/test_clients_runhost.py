"""The client lines `make run` prints, run exactly as printed (taken from
the host's instructions, not rebuilt here) against a running host: each
fetchmail line delivers every message of glenda's mailbox byte for byte
(fetchmail must not rewrite `To: glenda` into `glenda@host` nor add a
Received: line), and the mutt line opens her INBOX and lists it."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

import pytest

from tests.test_clients_fetchmail import source_messages
from tests.test_clients_mutt import run_mutt, subjects

pytestmark = pytest.mark.timeout(120)


def printed(text: str, title: str) -> list[str]:
    """The command lines printed under each heading starting with `title`."""
    return re.findall(rf"^  {re.escape(title)}[^\n]*:\n    ([^\n]+)$", text, re.M)


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
def test_printed_fetchmail_lines_deliver_every_message_byte_for_byte(mail_host, tmp_path):
    text = mail_host.instructions()
    lines = printed(text, "fetchmail")
    assert len(lines) == 2                         # APOP on 110, USER/PASS on 995
    want = sorted(source_messages(mail_host.mailroot / "box" / "glenda" / "mbox"))
    assert any(b"\nTo: glenda\n" in b"\n" + m for m in want)   # what a rewrite would change
    for line in lines:
        out = re.search(r"mkdir -p (\S+) ", line)
        outdir = shlex.split(out.group(1))[0]
        # fetchmail's lock and ids: its own (as root the lock is /var/run/fetchmail.pid
        # unless FETCHMAILHOME is set, shared with any other fetchmail running)
        env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
        r = subprocess.run(["sh", "-c", line], env=env, capture_output=True, text=True,
                           timeout=90)
        assert r.returncode == 0, line + "\n" + r.stdout + r.stderr
        got = sorted(open(os.path.join(outdir, f), "rb").read() for f in os.listdir(outdir))
        assert got == want, line


@pytest.mark.skipif(shutil.which("mutt") is None, reason="mutt not installed")
def test_printed_mutt_line_opens_the_inbox(mail_host, tmp_path):
    (line,) = printed(mail_host.instructions(), "mutt")
    argv = shlex.split(line)
    assert argv[0] == "mutt"
    box = mail_host.mailroot / "box" / "glenda" / "mbox"
    before = box.read_bytes()
    want = [s for s in subjects(box) if s.isascii() and 0 < len(s) < 40]
    assert len(want) >= 3
    screen = run_mutt(argv[1:], want, tmp_path)
    for s in want:
        assert s in screen, (s, screen[-2000:])
    assert box.read_bytes() == before               # read, not changed
