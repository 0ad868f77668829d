"""The upasfs command: -i (one connection on stdin), -S (post a second
name), -b with the background reader, mdir mailboxes, bad mailboxes."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.fixtures.upasfs import GOLDEN, REPO, upasfs_root
from upas import ninep
from upas.ninep import Error

APPENDED = (b"From glenda Thu Nov 26 12:00:00 EST 2026\n"
            b"Subject: appended later\n\nnew mail\n\n")


def test_dash_i_serves_stdin(tmp_path):
    root = upasfs_root(tmp_path, (GOLDEN / "input" / "mbox").read_bytes())
    ours, theirs = socket.socketpair()
    env = dict(os.environ, MAILROOT=str(root), user="glenda")
    p = subprocess.Popen([sys.executable, "-m", "upas.fs9p", "-i", "-np",
                          "-f", "/mail/box/glenda/mbox"],
                         stdin=theirs, stdout=theirs, env=env, cwd=str(REPO))
    theirs.close()
    try:
        with ninep.Client(ours, uname="glenda") as c:
            assert [s.name for s in c.readdir("mbox")] == ["1", "2", "3", "4", "5"]
            assert c.read("mbox/1/subject") == b"first message: plain text"
        assert p.wait(10) == 0                 # EOF on stdin ends the server
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_also_posted_as_mail(upasfs_factory):
    fs = upasfs_factory(args=("-p", "-S", "mail"))
    assert os.path.exists(os.path.join(fs.namespace, "mail"))
    with ninep.Client.dial("unix!" + os.path.join(fs.namespace, "mail"), uname="glenda") as c:
        assert [s.name for s in c.readdir("")] == ["ctl", "mbox"]
    fs.stop()


def test_background_reader_announces_new_mail(tmp_path):
    root = upasfs_root(tmp_path, (GOLDEN / "input" / "mbox").read_bytes())
    env = dict(os.environ, MAILROOT=str(root), NAMESPACE=str(tmp_path / "ns"),
               user="glenda", UPASFS_POLL="0.2")
    os.makedirs(tmp_path / "ns", mode=0o700)
    p = subprocess.Popen([sys.executable, "-m", "upas.fs9p", "-s", "-b"],
                         stdout=subprocess.PIPE, env=env, cwd=str(REPO))
    try:
        addr = "unix!" + str(tmp_path / "ns" / "upasfs")
        for _ in range(300):
            try:
                ninep.Client.dial(addr, uname="glenda").close()
                break
            except (OSError, Error):
                time.sleep(0.05)
        with open(root / "box" / "glenda" / "mbox", "ab") as f:
            f.write(APPENDED)
        line = p.stdout.readline()                 # no client asked: the reader saw it
        assert line == f"[ glenda / appended later / {len(APPENDED) - 1} ]\n".encode()
    finally:
        p.terminate()
        p.wait()


def test_mdir_mailbox_over_9p(upasfs):
    d = os.path.join(upasfs.mailroot, "box", "glenda", "dir")
    os.mkdir(d)
    for i, subj in enumerate(("one", "two")):
        with open(os.path.join(d, f"17000000{i}0.00"), "wb") as f:
            f.write(f"From glenda Thu Nov 26 12:00:00 EST 2026\nSubject: {subj}\n\nx\n".encode())
    with upasfs.client() as c:
        c.write("ctl", f"open {d}\n".encode())
        assert [s.name for s in c.readdir("dir")] == ["1", "2"]
        assert c.read("dir/2/subject") == b"two"
        c.write("ctl", b"delete dir 1\n")
        assert [s.name for s in c.readdir("dir")] == ["2"]
        assert sorted(os.listdir(d)) == ["1700000010.00", "L.mbox"]


@pytest.mark.parametrize("data", [b"", b"\x00\xff junk without a From line\n"])
def test_empty_and_junk_mailboxes_are_served(upasfs_factory, data):
    fs = upasfs_factory(mbox=data)
    with fs.client() as c:
        assert c.readdir("mbox") == []
        assert c.stat("mbox").mode == ninep.DMDIR | 0o555
    assert open(fs.mbox, "rb").read() == data


def test_missing_mailbox_is_fatal(tmp_path):
    root = upasfs_root(tmp_path)
    env = dict(os.environ, MAILROOT=str(root), NAMESPACE=str(tmp_path / "ns"), user="nobody")
    p = subprocess.run([sys.executable, "-m", "upas.fs9p", "-s"], env=env, cwd=str(REPO),
                       capture_output=True, timeout=30)
    assert p.returncode == 1
    assert p.stderr == b"upas/fs: opening mailbox: No such file or directory\n"


def test_vanished_mailbox_gives_an_error_not_a_crash(upasfs):
    with upasfs.client() as c:
        os.remove(upasfs.mbox)
        with pytest.raises(Error, match="^No such file or directory$"):
            c.read("mbox/1/raw")
        assert [s.name for s in c.readdir("")] == ["ctl", "mbox"]   # still serving
        with open(upasfs.mbox, "wb") as f:
            f.write((GOLDEN / "input" / "mbox").read_bytes())
        assert c.read("mbox/1/subject") == b"first message: plain text"


def test_concurrent_readers_during_deletes_and_appends(upasfs):
    """Clients reading while messages are deleted and mail arrives: every
    read either succeeds with the right bytes or says the file is gone."""
    import threading
    gold = {n: (GOLDEN / "fs" / "mbox" / n / "rawunix").read_bytes() for n in "12345"}
    errors: list[str] = []
    stop = threading.Event()

    def reader(k: int) -> None:
        with upasfs.client() as c:
            i = 0
            while not stop.is_set():
                n = "12345"[(i + k) % 5]
                i += 1
                try:
                    data = c.read(f"mbox/{n}/rawunix")
                except Error as e:
                    if str(e) != "file does not exist":
                        errors.append(str(e))
                    continue
                if data != gold[n]:
                    errors.append(f"wrong bytes for {n}")

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        with upasfs.client() as c:
            for n in ("2", "4"):
                time.sleep(0.2)
                c.write("ctl", f"delete mbox {n}\n".encode())
                with open(upasfs.mbox, "ab") as f:
                    f.write(APPENDED)
                time.sleep(0.2)
            assert [s.name for s in c.readdir("mbox")] == ["1", "3", "5", "6", "7"]
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert errors == []
    data = open(upasfs.mbox, "rb").read()
    assert data == gold["1"] + b"\n" + gold["3"] + b"\n" + gold["5"] + b"\n" + APPENDED * 2
