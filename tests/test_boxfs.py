"""The store's /mail/box over 9P (upas/boxfs.py), as a frontend's name
space uses it: each user reaches only their own directory, and L.mbox is an
exclusive-use file whose open holds the store's mail lock, so a frontend's
lock and the store's own (upasfs, deliveries) exclude each other."""
import os
import resource
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.fixtures.ratfs import wait_for_socket
from upas import ns as nsmod
from upas.mail import safewrite
from upas.mail.lock import LockError, MailLock
from upas.ninep import client as ninep
from upas.ninep.codec import Stat

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_boxfs(tmp_path, process_env, preexec=None) -> tuple[Path, str, subprocess.Popen]:
    """A store's boxfs on a copy of testdata/mail, and this process a
    frontend of it (no mail of its own, /mail/box/USER from the store)."""
    root = tmp_path / "mail"
    shutil.copytree(os.path.join(REPO, "testdata", "mail"), root)
    sock = tmp_path / "boxfs"
    env = dict(os.environ, MAILROOT=str(root))
    p = subprocess.Popen([sys.executable, "-m", "upas.boxfs", "-s", f"unix!{sock}"], env=env,
                         preexec_fn=preexec)
    wait_for_socket(str(sock), p, timeout=20)
    process_env.set("MAILROOT", str(tmp_path / "frontend"))
    process_env.set("boxfs", f"unix!{sock}")
    return root, f"unix!{sock}", p


@pytest.fixture
def boxfs(tmp_path, process_env):
    root, addr, p = start_boxfs(tmp_path, process_env)
    yield root, addr
    p.terminate()
    p.wait(10)


def test_a_user_sees_only_their_own_directory(boxfs):
    root, addr = boxfs
    ns = nsmod.Namespace.default("glenda")
    names = ns.readdir_names("/mail/box/glenda")
    assert "mbox" in names and names == sorted(os.listdir(root / "box" / "glenda"))
    for path in ("/mail/box/bob/mbox", "/mail/box/glenda/../bob/mbox"):
        with pytest.raises(nsmod.Error):
            ns.read(path)
    with ninep.Client.dial(addr, uname="glenda") as c:
        assert c.readdir_names("..") == c.readdir_names("")   # `..` stops at the root
    with pytest.raises(ninep.Error, match="permission denied"):
        ninep.Client.dial(addr, uname="../glenda")
    os.symlink(root / "box" / "bob", root / "box" / "glenda" / "bob")
    with pytest.raises(nsmod.Error, match="permission denied"):
        ns.read("/mail/box/glenda/bob/mbox")


def test_the_attach_name_names_the_users_tree(boxfs):
    """9pfuse attaches as the local login (root) with -a USER: the aname
    picks the directory, under the same checks as a uname."""
    root, addr = boxfs
    with ninep.Client.dial(addr, uname="root", aname="bob") as c:
        assert sorted(c.readdir_names("")) == sorted(os.listdir(root / "box" / "bob"))
    for bad in ("../glenda", "nosuchuser"):
        with pytest.raises(ninep.Error, match="permission denied"):
            ninep.Client.dial(addr, uname="glenda", aname=bad)


def test_confine_after_login_remounts_as_the_user(boxfs):
    ns = nsmod.Namespace.default("nobody-yet")
    ns.confine("bob")
    assert ns.read("/mail/box/bob/mbox").startswith(b"From ")
    with pytest.raises(nsmod.Error):
        ns.stat("/mail/box/glenda")


def test_files_dirs_rename_and_crash_safe_replace(boxfs):
    root, _ = boxfs
    ns = nsmod.Namespace.default("glenda")
    home = root / "box" / "glenda"
    ns.create("/mail/box/glenda/f", 0o700, dir=True)
    safewrite.replace(ns, "/mail/box/glenda/f/a", b"one\n")
    safewrite.replace(ns, "/mail/box/glenda/f/a", b"two\n")     # over an existing file
    assert (home / "f" / "a").read_bytes() == b"two\n"
    assert not (home / "f" / "a.tmp").exists()
    assert (home / "f" / "a").stat().st_mode & 0o777 == safewrite.MODE
    ns.rename("/mail/box/glenda/f/a", "/mail/box/glenda/f/b")
    assert sorted(os.listdir(home / "f")) == ["b"]
    with pytest.raises(nsmod.Error):
        ns.rename("/mail/box/glenda/f/b", "/mail/box/glenda/b")
    with ninep.Client.dial(boxfs[1], uname="glenda") as c:     # a name is one element
        for name in ("../b", "x/b", ".."):
            st = Stat.sync()
            st.name = name
            with pytest.raises(ninep.Error, match="permission denied"):
                c.wstat("f/b", st)
    assert sorted(os.listdir(home / "f")) == ["b"]
    d = ns.append("/mail/box/glenda/f/b", b"three\n")
    assert d.length == 10 == (home / "f" / "b").stat().st_size
    ns.write_at("/mail/box/glenda/f/b", [(0, b"TWO")], sync=True)
    assert (home / "f" / "b").read_bytes() == b"TWO\nthree\n"
    ns.remove("/mail/box/glenda/f/b")
    ns.remove("/mail/box/glenda/f")
    assert not (home / "f").exists()


def test_the_lock_excludes_the_store_and_other_frontends(boxfs):
    root, _ = boxfs
    home = str(root / "box" / "glenda")
    front1 = nsmod.Namespace.default("glenda")
    with front1.lock("/mail/box/glenda"):
        # the store's own lockers (upasfs, mbappend) wait for it ...
        with pytest.raises(LockError):
            MailLock(home, timeout=0.3).acquire()
        # ... and so does another frontend (another process, or connection)
        front2 = nsmod.Namespace.default("glenda")
        with pytest.raises(LockError):
            with front2.lock("/mail/box/glenda", timeout=0.3):
                pass
        st = front1.stat("/mail/box/glenda/L.mbox")
        assert st.mode & 0x20000000                     # DMEXCL, as on Plan 9
    with MailLock(home, timeout=1):                      # let go: taken at once
        with pytest.raises(LockError):
            with front1.lock("/mail/box/glenda", timeout=0.3):
                pass
    got = threading.Event()

    def frontend_waits():
        with nsmod.Namespace.default("glenda").lock("/mail/box/glenda", timeout=10):
            got.set()
    with MailLock(home, timeout=1):
        t = threading.Thread(target=frontend_waits)
        t.start()
        assert not got.wait(0.7)
    t.join(10)
    assert got.is_set()


def test_a_frontend_that_hangs_up_loses_its_lock(boxfs):
    root, _ = boxfs
    ns = nsmod.Namespace.default("glenda")
    with pytest.raises(RuntimeError):
        with ns.lock("/mail/box/glenda"):
            ns.close()                  # the connection goes, as a dead frontend's
            with MailLock(str(root / "box" / "glenda"), timeout=5):
                pass
            raise RuntimeError("the store took the lock")


def test_a_durable_append_the_store_refuses_midway_is_cut_back(tmp_path, process_env):
    """ns.append(sync=True) through boxfs is all or nothing, as a local
    one is: a message whose writes the store refuses part of the way (here
    its file size limit, EFBIG, as a full disk gives ENOSPC) leaves the
    mailbox as it was, not the first part of a message at its end (which
    the next delivery would follow as a message of its own, torn)."""
    size = (Path(REPO) / "testdata" / "mail" / "box" / "glenda" / "mbox").stat().st_size
    limit = size + 100_000              # two of the 64 KiB writes fit, the third not

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    root, _, p = start_boxfs(tmp_path, process_env, preexec=small_files)
    try:
        box = root / "box" / "glenda" / "mbox"
        before = box.read_bytes()
        ns = nsmod.Namespace.default("glenda")
        msg = b"From glenda Mon Dec  7 15:00:00 2026\nSubject: big\n\n" + b"x" * 300_000 + b"\n"
        with ns.lock("/mail/box/glenda"):
            with pytest.raises(nsmod.Error):
                ns.append("/mail/box/glenda/mbox", msg, sync=True)
        assert box.read_bytes() == before
        small = b"From glenda Mon Dec  7 15:00:01 2026\nSubject: small\n\nok\n"
        with ns.lock("/mail/box/glenda"):
            ns.append("/mail/box/glenda/mbox", small, sync=True)
        assert box.read_bytes() == before + small
    finally:
        p.terminate()
        p.wait(10)
