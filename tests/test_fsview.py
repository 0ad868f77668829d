"""The servers' one view of upasfs (upas/mail/fsview.py): a mailbox has
one view name in a shared upasfs, whichever server opens it, so pop3 and
imap4d see one view of a folder, numbered alike (docs/decisions.md, "One
view name per mailbox"); the inbox stays `mbox`, as upas/fs names it.
"""
import subprocess
import sys

from upas import ninep
from upas.mail.fsview import view_name

GLENDA = "/mail/box/glenda"


def test_the_inbox_is_mbox_as_upas_fs_names_it():
    assert view_name("glenda", f"{GLENDA}/mbox") == "mbox"


def test_a_folder_is_its_path_with_bangs():
    assert view_name("glenda", f"{GLENDA}/lists/mbox") == "lists!mbox"
    assert view_name("glenda", f"{GLENDA}/old mail/mbox") == "old mail!mbox"
    assert view_name("glenda", f"{GLENDA}/archive") == "archive"


def test_no_two_mailboxes_share_a_name():
    """`!` and `%` in a mailbox's own name are escaped, so `a!b` is not
    the folder a's mailbox b; a mailbox named ctl is not the root's ctl
    file; a mailbox outside /mail/box/USER is not one inside it."""
    paths = [f"{GLENDA}/a/b", f"{GLENDA}/a!b", f"{GLENDA}/a%21b", f"{GLENDA}/ctl",
             f"{GLENDA}/%63tl", f"{GLENDA}/tmp/x", "/tmp/x", "/mail/box/bob/mbox",
             f"{GLENDA}/mail/box/bob/mbox", f"{GLENDA}/mbox", f"{GLENDA}/sub/mbox"]
    names = [view_name("glenda", p) for p in paths]
    assert len(set(names)) == len(paths), names
    assert view_name("glenda", f"{GLENDA}/a!b") == "a%21b"
    assert view_name("glenda", f"{GLENDA}/100%") == "100%25"
    assert view_name("glenda", f"{GLENDA}/ctl") == "%63tl"
    assert view_name("glenda", "/tmp/x") == "!tmp!x"
    assert all("/" not in n and n != "ctl" for n in names)


def test_pop3_and_imap4d_open_a_folder_as_one_view(pop3_factory):
    """With the user's upasfs shared, a pop3 session on glenda/lists and an
    imap4d session selecting lists/mbox use one view of the file: upasfs
    holds it once (it held it twice, `lists!mbox` and `imap-<sha1>`, each
    numbered on its own)."""
    srv = pop3_factory(["-p"], posted_upasfs="glenda")
    c = srv.connect()
    c.cmd(b"USER glenda/lists")
    assert c.cmd(b"PASS glenda-apop") == b"+OK mailbox is /mail/box/glenda/lists/mbox\r\n"
    stat = c.cmd(b"STAT")
    assert stat.startswith(b"+OK ")
    env = dict(srv.env, user="glenda", USER="glenda", LOGNAME="glenda")
    imap = subprocess.run([sys.executable, "-m", "upas.imap4d", "-a", "-s", "imap.test"],
                          input=b"a SELECT lists/mbox\r\nb LOGOUT\r\n", env=env,
                          capture_output=True, timeout=60)
    assert b"a OK [READ-WRITE]" in imap.stdout, imap.stdout
    exists = int(stat.split()[1])
    assert b"* %d EXISTS\r\n" % exists in imap.stdout
    c.cmd(b"QUIT")
    with ninep.Client.dial(srv.env["upasfs"], uname="glenda") as fs:
        views = sorted(d.name for d in fs.readdir("") if d.name != "ctl")
    assert views == ["lists!mbox"]
