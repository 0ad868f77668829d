"""testdata/golden/upasfs/ctl-demo.txt reproduced against a real upasfs
over its posted socket (docs/spec/fs-auth.md §1.1-1.3, §1.7-1.8; docs/decisions.md:
numbers never reused, Tremove deletes, change detection by size and content)."""
from __future__ import annotations

import os
import shutil
import stat

import pytest

from tests.fixtures.upasfs import GOLDEN
from upas.ninep import DMDIR, Error, QTDIR

APPENDED = (b"From glenda Thu Nov 26 12:00:00 EST 2026\n"
            b"Subject: appended later\n\nnew mail\n\n")
SAME_SECOND = (b"From glenda Thu Nov 26 13:00:00 EST 2026\n"
               b"Subject: appended in the same second\n\nlost mail?\n\n")
LATER = (b"From glenda Thu Nov 26 14:00:00 EST 2026\n"
         b"Subject: appended a second later\n\nmore mail\n\n")
INFO6 = (b"glenda\n\n\nglenda\nThu Nov 26 12:00:00 EST 2026\nappended later\n"
         b"text/plain\n\n\n73c3b06b258841c37d6948e795184118776a3845\n\n\n"
         b"Thu Nov 26 12:00:00 EST 2026\n\n\n1\n")


def names(c, path=""):
    return [s.name for s in c.readdir(path)]


def from_lines(path):
    data = open(path, "rb").read()
    return len(data), sum(1 for ln in data.split(b"\n") if ln.startswith(b"From "))


def ctl(c, line):
    return c.write("ctl", line.encode() + b"\n")


def test_ctl_demo_transcript(upasfs):
    box = os.path.dirname(upasfs.mbox)
    other = os.path.join(box, "other")
    shutil.copy(GOLDEN / "input" / "mbox", other)
    with upasfs.client() as c:
        assert names(c) == ["ctl", "mbox"]
        assert names(c, "mbox") == ["1", "2", "3", "4", "5"]
        assert c.read("ctl") == b""
        with pytest.raises(Error, match="^unknown control message$"):
            ctl(c, "bogus command")
        for line in ("delete", "delete nosuchbox 1", "delete mbox 99"):
            assert ctl(c, line) == len(line) + 1
        assert from_lines(upasfs.mbox) == (3397, 5)

        ctl(c, "delete mbox 1")
        assert names(c, "mbox") == ["2", "3", "4", "5"]
        assert from_lines(upasfs.mbox) == (2840, 4)
        assert open(upasfs.mbox, "rb").readline() == \
            b"From ken@plan9.bell-labs.com Tue Nov 24 10:00:00 EST 2026\n"
        assert stat.S_IMODE(os.stat(os.path.join(box, "L.mbox")).st_mode) == 0o666
        assert not os.path.exists(upasfs.mbox + ".tmp")
        with pytest.raises(Error):
            c.read("mbox/1/subject")

        c.remove("mbox/2")                              # Tremove deletes
        assert names(c, "mbox") == ["3", "4", "5"]
        assert from_lines(upasfs.mbox) == (1500, 3)
        assert open(upasfs.mbox, "rb").readline() == \
            b"From andre@example.fr Wed Nov 25 11:30:00 EST 2026\n"

        with pytest.raises(Error, match="^permission denied$"):
            c.write("mbox/3/subject", b"x\n")
        assert c.read("mbox/3.anything/subject") == \
            b"=?utf-8?B?Q2Fmw6kgw6AgUGFyaXMg4oKs?= and =?ISO-8859-1?Q?na=EFve_caf=E9?="
        with pytest.raises(Error, match="^file does not exist$"):
            c.read("mbox/3/nosuchfile")
        with pytest.raises(Error, match="^permission denied$"):
            c.create("mbox/newfile")
        st = c.stat("mbox/3")
        assert (st.qid.path, st.qid.vers, st.qid.type, st.mode, st.length) == \
            (0x201C, 0, QTDIR, DMDIR | 0o555, 0)

        ctl(c, f"open {other} work")
        listing = {s.name: s.mode for s in c.readdir("")}
        assert list(listing) == ["ctl", "mbox", "work"]
        assert listing == {"ctl": 0o666, "mbox": DMDIR | 0o555, "work": DMDIR | 0o555}
        assert names(c, "work") == ["1", "2", "3", "4", "5"]
        assert c.read("work/3/subject").startswith(b"=?utf-8?B?Q2Fm")
        ctl(c, f"open {other} work")                    # same path, same name
        with pytest.raises(Error, match="^mbox name in use$"):
            ctl(c, f"open {upasfs.mbox} work")
        with pytest.raises(Error, match="^No such file or directory$"):
            ctl(c, f"open {os.path.join(box, 'nonexistent')}")
        with pytest.raises(Error, match="^/ not allowed in mailbox name$"):
            ctl(c, f"open {other} a/b")
        ctl(c, f"open {other}")
        assert names(c) == ["ctl", "mbox", "work", "other"]
        for line in ("close other", "close work", "close nosuchbox"):
            ctl(c, line)
        assert names(c) == ["ctl", "mbox"]

        with open(upasfs.mbox, "ab") as f:             # new mail from outside
            f.write(APPENDED)
        assert names(c, "mbox") == ["3", "4", "5", "6"]
        assert c.read("mbox/6/subject") == b"appended later"
        assert c.read("mbox/6/info") == INFO6
        ctl(c, "delete mbox 3 4 5")
        assert names(c, "mbox") == ["6"]
        assert open(upasfs.mbox, "rb").read() == APPENDED

        # the race plan9port loses: an append in the same second as our rewrite
        ctl(c, "delete mbox 6")
        with open(upasfs.mbox, "ab") as f:
            f.write(SAME_SECOND)
        assert names(c, "mbox") == ["7"]                # noticed at once (docs/decisions.md)
        with open(upasfs.mbox, "ab") as f:
            f.write(LATER)
        assert names(c, "mbox") == ["7", "8"]
        assert c.read("mbox/7/subject") == b"appended in the same second"
        assert c.read("mbox/8/subject") == b"appended a second later"
        assert open(upasfs.mbox, "rb").read() == SAME_SECOND + LATER


def test_plan9_paths_in_open_are_found_under_mailroot(upasfs):
    shutil.copy(GOLDEN / "input" / "mbox", os.path.join(upasfs.mailroot, "box", "glenda", "x"))
    with upasfs.client() as c:
        ctl(c, "open /mail/box/glenda/x")
        ctl(c, "open x y")                              # relative: /mail/box/$user/x
        assert names(c) == ["ctl", "mbox", "x", "y"]
        assert names(c, "y") == ["1", "2", "3", "4", "5"]
        shutil.copy(GOLDEN / "input" / "mbox",
                    os.path.join(upasfs.mailroot, "box", "glenda", "it's spaced"))
        ctl(c, "open '/mail/box/glenda/it''s spaced' sp")   # rc-style quoting
        assert names(c, "sp") == ["1", "2", "3", "4", "5"]
        with pytest.raises(Error, match="^unknown control message$"):
            ctl(c, "open")
        with pytest.raises(Error, match="^unknown control message$"):
            c.write("ctl", b"")


def test_auth_and_attach_rules(upasfs):
    from upas.ninep import codec
    with pytest.raises(Error, match="^permission denied$"):
        upasfs.client(uname="bob")
    with upasfs.client() as c:                          # Tauth -> Rerror
        with pytest.raises(Error, match="^upas/fs: authentication not required$"):
            c.rpc(codec.Tauth(0, 77, "glenda", ""))


def test_numbers_never_reused_and_qid_vers_rises(upasfs):
    with upasfs.client() as c:
        v0 = c.stat("mbox").qid.vers
        ctl(c, "delete mbox 4 5")
        v1 = c.stat("mbox").qid.vers
        assert v1 > v0
        with open(upasfs.mbox, "ab") as f:
            f.write(APPENDED)
        st = c.stat("mbox")                              # a stat syncs
        assert st.qid.vers > v1
        assert names(c, "mbox") == ["1", "2", "3", "6"]


def test_deletion_waits_for_the_last_clunk(upasfs):
    with upasfs.client() as c:
        f = c.open("mbox/2/raw")
        c.remove("mbox/2")
        assert names(c, "mbox") == ["1", "3", "4", "5"]
        assert from_lines(upasfs.mbox)[1] == 5          # still in the file
        assert f.read(5) == b"Date:"
        f.close()
        names(c, "mbox")
        assert from_lines(upasfs.mbox)[1] == 4


def test_9front_ctl_verbs(upasfs):
    box = os.path.dirname(upasfs.mbox)
    with upasfs.client() as c:
        ctl(c, "create newbox")
        assert os.path.isdir(os.path.join(box, "newbox"))
        assert "newbox" in names(c)
        shutil.copy(GOLDEN / "input" / "mbox", os.path.join(box, "old"))
        ctl(c, "rename old new")
        assert os.path.exists(os.path.join(box, "new"))
        assert not os.path.exists(os.path.join(box, "old"))
        ctl(c, "remove new")
        assert not os.path.exists(os.path.join(box, "new"))
        ctl(c, "flag mbox +s-r 1 2")
        with pytest.raises(Error, match="^bad flag$"):
            ctl(c, "flag mbox x 1")
        with pytest.raises(Error, match="^move not supported$"):
            ctl(c, "move mbox 1 other")


def test_tremove_of_a_message_file_deletes_the_message_but_parts_stay(upasfs):
    """Bell/p9p: Tremove marks the fid's message deleted; a part is never purged."""
    with upasfs.client() as c:
        c.remove("mbox/2/1/body")                       # a part: just clunked
        assert names(c, "mbox/2")[-3:] == ["1", "2", "3"]
        c.remove("mbox/3/subject")                      # a file of message 3
        assert names(c, "mbox") == ["1", "2", "4", "5"]
        c.remove("ctl")                                 # anything else: clunked
        assert names(c) == ["ctl", "mbox"]
    assert from_lines(upasfs.mbox)[1] == 4


def test_ctl_delete_is_on_disk_before_the_reply_even_with_an_open_fid(upasfs):
    """An acknowledged `delete` must survive upasfs being killed right
    after it (the reliability harness saw deleted mail come back): the
    message is purged at once although a fid still holds it open."""
    import signal

    with open(upasfs.mbox, "rb") as f:
        before = f.read()
    c = upasfs.client()
    subject = c.read("mbox/2/subject")
    raw = c.read("mbox/2/raw")
    held = c.open("mbox/2/raw")
    assert held.read(10) == raw[:10]
    c.write("ctl", b"delete mbox 2")
    # the reader that had it open still gets the whole message
    assert raw[:10] + held.read() == raw
    with open(upasfs.mbox, "rb") as f:
        after = f.read()
    assert len(after) < len(before)
    assert b"Subject: " + subject not in after
    upasfs.proc.send_signal(signal.SIGKILL)
    upasfs.proc.wait()
    with open(upasfs.mbox, "rb") as f:
        assert f.read() == after
    c.close()


def test_deleting_the_last_messages_cuts_the_file_in_place(upasfs):
    """The rewrite after a delete of the last messages only would write the
    file's own first bytes again: the file is cut there instead (one
    ftruncate, no copy), and is byte for byte what the rewrite gives --
    the file without those messages.  A delete with a message after it
    still rewrites (a new file)."""
    with open(upasfs.mbox, "ab") as f:
        f.write(APPENDED + LATER)
    with open(upasfs.mbox, "rb") as f:
        before = f.read()
    c = upasfs.client()
    nums = sorted(int(n) for n in names(c, "mbox") if n.isdigit())
    ino = os.stat(upasfs.mbox).st_ino
    c.write("ctl", b"delete mbox %d %d" % (nums[-2], nums[-1]))
    with open(upasfs.mbox, "rb") as f:
        after = f.read()
    assert after == before[:before.index(APPENDED)]
    assert os.stat(upasfs.mbox).st_ino == ino
    assert sorted(int(n) for n in names(c, "mbox") if n.isdigit()) == nums[:-2]
    c.write("ctl", b"delete mbox %d" % nums[0])
    assert os.stat(upasfs.mbox).st_ino != ino
    with open(upasfs.mbox, "rb") as f:
        assert len(f.read()) < len(after)
    c.close()
