"""mutt opens the IMAP INBOX of the whole host over TLS and lists the
subjects (driven on a pseudo-terminal, mutt being a screen program)."""
import email
import email.header
import email.policy
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import termios
import time

import pytest

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(shutil.which("mutt") is None,
                       reason="mutt not installed (apt-get install mutt)"),
]


def subjects(mbox):
    out = []
    for entry in mbox.read_bytes().split(b"\nFrom ")[0:]:
        msg = email.message_from_bytes(entry.split(b"\n", 1)[1], policy=email.policy.default)
        out.append(str(msg["subject"] or ""))
    return out


def run_mutt(args, want, home, timeout=30, program="mutt"):
    """Run mutt (or neomutt) on a 200x60 pty until every string in `want`
    has been drawn."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm", LANG="C.UTF-8", LC_ALL="C.UTF-8", HOME=str(home))
        os.execvp(program, [program, *args])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
    os.kill(pid, signal.SIGWINCH)
    screen = b""
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            text = screen.decode("utf-8", "replace")
            if all(w in text for w in want):
                break
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
        os.write(fd, b"q")
        time.sleep(0.3)
    finally:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return screen.decode("utf-8", "replace")


def test_mutt_lists_inbox_subjects(mail_host, tmp_path):
    h, port = mail_host.addrs["imaps"]
    want = subjects(mail_host.mailroot / "box" / "glenda" / "mbox")
    marks = [f"S<{s}>" for s in want]
    cmds = (f"set ssl_ca_certificates_file={mail_host.cafile}; set ssl_verify_host=no; "
            "set imap_user=glenda; set imap_pass=glenda-apop; set imap_passive=no; "
            "set sort=date-sent; set index_format='S<%s>'; set charset=utf-8; "
            "set header_cache=''; set message_cachedir=''; set certificate_file=/dev/null; "
            "set mail_check=60; set timeout=60; "
            f"set folder=imaps://glenda@{h}:{port}/; set spoolfile=+INBOX")
    screen = run_mutt(["-n", "-F", "/dev/null", "-R", "-e", cmds, "-f", "+INBOX"],
                      marks, tmp_path)
    drawn = re.findall(r"S<([^>\x1b]*)>", screen)
    for s in want:
        assert s in drawn, (s, screen[-2000:])
