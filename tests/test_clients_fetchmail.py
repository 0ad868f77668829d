"""fetchmail against the whole host (make run's set-up): every message over
POP3 (APOP; USER/PASS over TLS) and IMAP, byte-identical to the source once
CRLF and dot-stuffing are undone; a second run fetches nothing new."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("fetchmail") is None,
                       reason="fetchmail not installed (apt-get install fetchmail)"),
]

# fetchmail hands each message to this MDA: files 0, 1, 2 ... in order.
DELIVER = 'n=0; while [ -e "$1/$n" ]; do n=$((n+1)); done; cat > "$1/$n"\n'


def source_messages(mbox: Path) -> list[bytes]:
    """What upas/fs calls `raw`: each entry without its From_ line and
    without the separating blank line."""
    data = mbox.read_bytes()
    entries = [e for e in data.split(b"\nFrom ") if e]
    out = []
    for i, e in enumerate(entries):
        body = e.split(b"\n", 1)[1]
        if i < len(entries) - 1:
            body += b"\n"             # the split ate the newline before "From "
        out.append(body[:-1] if body.endswith(b"\n\n") else body)
    return out


def delivered(directory: Path) -> list[bytes]:
    files = sorted(directory.iterdir(), key=lambda p: int(p.name))
    return [p.read_bytes() for p in files]


class Fetchmail:
    def __init__(self, tmp: Path, host):
        self.tmp, self.host = tmp, host
        self.out = tmp / "out"
        self.out.mkdir()
        (tmp / "deliver.sh").write_text(DELIVER)

    def run(self, poll: str) -> subprocess.CompletedProcess:
        rc = self.tmp / "fetchmailrc"
        rc.write_text(
            "set no bouncemail\nset no syslog\nset invisible\n"
            f"poll {poll}\n"
            f"  keep no rewrite mda \"/bin/sh {self.tmp}/deliver.sh {self.out}\"\n")
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=str(self.tmp), FETCHMAILHOME=str(self.tmp))
        return subprocess.run(["fetchmail", "-f", str(rc), "-i", str(self.tmp / "ids"),
                               "--nodetach", "-v"], env=env, capture_output=True,
                              text=True, timeout=90)


def check(fm: Fetchmail, poll: str, mbox: Path):
    r = fm.run(poll)
    assert r.returncode == 0, r.stdout + r.stderr
    want = source_messages(mbox)
    got = delivered(fm.out)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == w
    again = fm.run(poll)
    assert again.returncode == 1, again.stdout + again.stderr   # 1: no new mail
    assert len(delivered(fm.out)) == len(want)


def test_pop3_apop(mail_host, tmp_path):
    h, port = mail_host.addrs["pop3"]
    check(Fetchmail(tmp_path, mail_host),
          f"{h} service {port} protocol APOP uidl user glenda password glenda-apop",
          mail_host.mailroot / "box" / "glenda" / "mbox")


def test_pop3_user_pass_over_tls(mail_host, tmp_path):
    h, port = mail_host.addrs["pop3s"]
    check(Fetchmail(tmp_path, mail_host),
          f"{h} service {port} protocol POP3 uidl auth password user bob"
          f" password bob-apop ssl sslcertck sslcertfile {mail_host.cafile} sslcommonname localhost",
          mail_host.mailroot / "box" / "bob" / "mbox")


def test_imap(mail_host, tmp_path):
    h, port = mail_host.addrs["imap4d"]
    check(Fetchmail(tmp_path, mail_host),
          f"{h} service {port} protocol IMAP auth cram-md5"
          " user glenda password glenda-apop"     # fetchmail does STARTTLS by itself
          f" sslcertck sslcertfile {mail_host.cafile} sslcommonname localhost",
          mail_host.mailroot / "box" / "glenda" / "mbox")


def test_pop3_uidl_keep_fetches_every_identical_copy(mail_host, tmp_path):
    """Issue 13: byte-identical messages (one upasfs digest) have unique
    UIDLs, so fetchmail's `uidl keep` mode fetches each copy once: all of
    them at first, nothing the second time, one when one more arrives."""
    from upas.mbappend import append_mbox
    mbox = mail_host.mailroot / "box" / "glenda" / "mbox"
    data = mbox.read_bytes()
    first = data[:data.index(b"\nFrom ") + 1]          # entry + blank line
    append_mbox(str(mbox), first)
    append_mbox(str(mbox), first)
    h, port = mail_host.addrs["pop3"]
    poll = f"{h} service {port} protocol APOP uidl user glenda password glenda-apop"
    fm = Fetchmail(tmp_path, mail_host)
    check(fm, poll, mbox)
    append_mbox(str(mbox), first)
    r = fm.run(poll)
    assert r.returncode == 0, r.stdout + r.stderr
    got = delivered(fm.out)
    assert len(got) == len(source_messages(mbox)) and got[-1] == got[0]
