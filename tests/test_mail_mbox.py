"""Mailbox scanning, syncing and crash-safe rewriting (docs/spec/fs-auth.md §1.7-1.8,
docs/decisions.md: change detection by size and content; a rewrite never drops
mail it has not seen), bad input, mdir, and mbappend delivery."""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import threading
import time

import pytest

from tests.fixtures.upasfs import GOLDEN
from upas import mbappend
from upas.mail import mbox, mime
from upas.mail.lock import MailLock

GOLD = (GOLDEN / "input" / "mbox").read_bytes()


def msg(subject: str, body: bytes = b"body\n", sender: str = "glenda") -> bytes:
    return (f"From {sender} Thu Nov 26 12:00:00 EST 2026\nSubject: {subject}\n\n".encode()
            + body + b"\n")


def opened(path, data: bytes | None = None) -> mbox.Mailbox:
    if data is not None:
        path.write_bytes(data)
    return mbox.open_mailbox(str(path), "mbox", mime.Ids())


def subjects(mb) -> list[bytes]:
    return [mb.parsed(m).file("subject") for m in mb.live()]


def stored(data: bytes) -> list[bytes]:
    return [data[s:e] for s, e in mbox.scan(data, 0, len(data))]


def test_scan_rule_bell():
    data = msg("a") + msg("b")
    assert [s[:9] for s in stored(data)] == [b"From glen"] * 2
    assert stored(data)[0] == msg("a")[:-1]              # separator excluded
    assert stored(b"junk\n" + data) == []                # must begin with From
    assert stored(b"") == []
    # a `From ` line inside a body starts a message, as in upas/fs
    assert len(stored(msg("a", b"text\nFrom here\n"))) == 2


def test_delete_rewrites_via_tmp_keeping_other_bytes(tmp_path):
    path = tmp_path / "mbox"
    path.write_bytes(GOLD)
    os.chmod(path, 0o640)
    mb = opened(path)
    before = {m.name: (m.digest, GOLD[m.start:m.end]) for m in mb.live()}
    seen = []
    real_rename = os.rename

    def spy(a, b):
        seen.append((os.path.basename(a), os.path.basename(b)))
        return real_rename(a, b)
    os.rename = spy
    try:
        mb.delete(["2", "4"])
    finally:
        os.rename = real_rename
    assert seen == [("mbox.tmp", "mbox")]
    data = path.read_bytes()
    want = b"".join(before[n][1] + b"\n" for n in ("1", "3", "5"))
    assert data == want                                  # each kept message + one \n
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert [(m.name, m.digest) for m in mb.live()] == [(n, before[n][0]) for n in "135"]
    mb.sync()                                            # our own rewrite is not new mail
    assert [m.name for m in mb.live()] == ["1", "3", "5"]


def test_append_noticed_by_size_and_content_same_second(tmp_path):
    path = tmp_path / "mbox"
    mb = opened(path, msg("one"))
    st = os.stat(path)
    with open(path, "ab") as f:
        f.write(msg("two"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    mb.sync()
    assert subjects(mb) == [b"one", b"two"]
    # same size, same mtime, different content: still noticed
    data = path.read_bytes().replace(b"two", b"TWO")
    st = os.stat(path)
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    mb.sync()
    assert [m.name for m in mb.live()] == ["1", "3"]
    assert subjects(mb) == [b"one", b"TWO"]


def test_rewrite_keeps_mail_appended_by_a_writer_without_the_lock(tmp_path):
    path = tmp_path / "mbox"
    path.write_bytes(msg("one") + msg("two"))

    class Racing(mbox.Mailbox):
        def _copy_messages(self, src, out):
            placed = super()._copy_messages(src, out)
            with open(path, "ab") as f:                  # lands mid-rewrite
                f.write(msg("late"))
            return placed

    mb = Racing(str(path), "mbox", mime.Ids())
    mb.sync()
    mb.delete(["1"])
    assert path.read_bytes() == msg("two") + msg("late")
    mb.sync()
    assert [m.name for m in mb.live()] == ["2", "3"]
    assert subjects(mb) == [b"two", b"late"]


def test_crash_recovery_renames_tmp_back(tmp_path):
    path = tmp_path / "mbox"
    (tmp_path / "mbox.tmp").write_bytes(GOLD)
    mb = opened(path)
    assert len(mb.live()) == 5 and path.read_bytes() == GOLD
    assert not (tmp_path / "mbox.tmp").exists()


def test_external_rewrite_matches_by_digest_in_order(tmp_path):
    path = tmp_path / "mbox"
    mb = opened(path, msg("a") + msg("b") + msg("c"))
    tmp = tmp_path / "new"
    tmp.write_bytes(msg("a") + msg("c") + msg("d"))
    os.rename(tmp, path)                                  # new inode
    mb.sync()
    assert [m.name for m in mb.live()] == ["1", "3", "4"]
    assert subjects(mb) == [b"a", b"c", b"d"]


@pytest.mark.parametrize("data, count, after", [
    (b"", 0, 1),
    (msg("x")[:-2], 1, 2),                                # no final newline
    (b"\0\xff\x00garbage\n" + msg("x"), 0, 0),            # junk first: none (Bell)
    (msg("x", b"\0\x01\xfe binary \x00\n\x00\n"), 1, 2),
    (msg("x", b"text\nFrom inside the body\n"), 2, 3),
])
def test_bad_input_is_served_and_kept(tmp_path, data, count, after):
    path = tmp_path / "mbox"
    mb = opened(path, data)
    assert len(mb.live()) == count
    digests = [m.digest for m in mb.live()]
    for m in mb.live():
        part = mb.parsed(m)
        part.open_body()
        assert all(isinstance(part.file(name), bytes) for name in mime.FILES)
    mbappend.append_mbox(str(path), mbappend.format_message(b"Subject: new\n\nhi\n", "g"))
    mb.sync()
    assert path.read_bytes().startswith(data)             # nothing lost or moved
    assert len(mb.live()) == after
    assert [m.digest for m in mb.live()][:count] == digests
    if after > count:
        assert mb.parsed(mb.live()[-1]).file("subject") == b"new"


def test_fifty_megabyte_message(tmp_path):
    big = b"".join(b"%07d 0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU\n"
                   % i for i in range(660000))
    assert len(big) > 50 * 1000 * 1000
    path = tmp_path / "mbox"
    path.write_bytes(msg("small") + msg("big", big) + msg("after"))
    mb = opened(path)
    assert subjects(mb) == [b"small", b"big", b"after"]
    part = mb.parsed(mb.live()[1])
    assert part.length("rawbody") == len(big) and part.file("lines") == b"660000"
    mb.delete(["1"])
    assert subjects(mb) == [b"big", b"after"]
    assert path.read_bytes() == msg("big", big) + msg("after")


def test_mdir(tmp_path):
    d = tmp_path / "box"
    d.mkdir()
    (d / "1700000001.00").write_bytes(msg("second")[:-1])
    (d / "1700000000.00").write_bytes(msg("first")[:-1])
    (d / "notmail").write_bytes(b"x")
    (d / "1700000002.00").write_bytes(b"")
    mb = mbox.open_mailbox(str(d), "box", mime.Ids())
    assert subjects(mb) == [b"first", b"second"]
    name = mbappend.append_mdir(str(d), mbappend.format_message(b"Subject: third\n\nx\n", "g"))
    mb.sync()
    assert subjects(mb) == [b"first", b"second", b"third"]
    mb.delete(["1"])
    assert not (d / "1700000000.00").exists() and (d / name).exists()
    assert [m.name for m in mb.live()] == ["2", "3"]


def test_mbappend_format_and_from_escaping():
    out = mbappend.format_message(b"Subject: s\n\nFrom me\n>From you\nend", "bob", 0)
    first, rest = out.split(b"\n", 1)
    assert first.startswith(b"From bob ") and first.endswith(b"1970")
    assert rest == b"Subject: s\n\n From me\n>From you\nend\n\n"
    assert len(stored(out + out)) == 2
    keep = mbappend.format_message(b"From x Thu Nov 26 12:00:00 EST 2026\nSubject: s\n\nb\n", "y")
    assert keep.startswith(b"From x Thu Nov 26 12:00:00 EST 2026\n")


@pytest.mark.parametrize("body, want", [
    (b"From a\nFrom b\nFrom c", b" From a\n From b\n From c"),     # every line, the first too
    (b"x\n\nFrom \nFrom", b"x\n\n From \nFrom"),                  # `From` without its blank stays
    (b"From", b"From"), (b"", b""), (b"\nFrom \n", b"\n From \n"),
    (b" From x\nfrom y\n>From z", b" From x\nfrom y\n>From z"),   # only `From ` at a line's start
])
def test_mbappend_escape_from(body, want):
    assert mbappend.escape_from(body) == want


def test_mbappend_escape_from_line_by_line():
    """Upas's rule applied one line at a time, on lines made of the pieces
    that matter (`From `, `From`, blanks, newlines)."""
    import random
    rnd = random.Random(7)
    pieces = [b"From ", b"From", b" ", b"\n", b"x", b"\nFrom "]
    for _ in range(2000):
        body = b"".join(rnd.choice(pieces) for _ in range(rnd.randrange(12)))
        lines = body.split(b"\n")
        want = b"\n".join(b" " + ln if ln.startswith(b"From ") else ln for ln in lines)
        assert mbappend.escape_from(body) == want


def test_mbappend_waits_for_the_lock(tmp_path):
    box = tmp_path / "mail" / "box" / "glenda"
    box.mkdir(parents=True)
    path = box / "mbox"
    path.write_bytes(GOLD)
    env = dict(os.environ, MAILROOT=str(tmp_path / "mail"), user="glenda")
    with MailLock(str(box)):
        p = subprocess.Popen([sys.executable, "-m", "upas.mbappend", "/mail/box/glenda/mbox"],
                             stdin=subprocess.PIPE, env=env)
        p.stdin.write(b"Subject: delivered\n\nhello\n")
        p.stdin.close()
        time.sleep(0.7)
        assert p.poll() is None and path.read_bytes() == GOLD
    assert p.wait(10) == 0
    data = path.read_bytes()
    assert data.startswith(GOLD) and data.endswith(b"Subject: delivered\n\nhello\n\n")
    mb = opened(path)
    assert len(mb.live()) == 6
    assert [m.digest for m in mb.live()[:5]] == \
        [hashlib.sha1(s).hexdigest().encode() for s in stored(GOLD)]


def test_lock_excludes_threads_and_processes(tmp_path):
    order = []
    with MailLock(str(tmp_path)):
        def other():
            with MailLock(str(tmp_path)):
                order.append("t")
        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.2)
        order.append("main")
    t.join(5)
    assert order == ["main", "t"]


def test_nested_lock_stays_held_for_other_processes(tmp_path):
    probe = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
             "except OSError:\n    print('held')\n")
    lockfile = str(tmp_path / "L.mbox")

    def other() -> str:
        return subprocess.run([sys.executable, "-c", probe, lockfile],
                              capture_output=True, text=True).stdout.strip()
    with MailLock(str(tmp_path)):
        with MailLock(str(tmp_path)):
            pass
        assert other() == "held"
    assert other() == "free"
    assert stat.S_IMODE(os.stat(lockfile).st_mode) == 0o666


def test_readers_do_not_wait_forever_for_a_held_lock(tmp_path, configure):
    path = tmp_path / "mbox"
    mb = opened(path, msg("one"))
    configure(upasfs_read_lock_wait=0.3)
    probe = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", probe, str(tmp_path / "L.mbox")],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        with open(path, "ab") as f:
            f.write(msg("two"))
        t0 = time.monotonic()
        mb.refresh()                                      # lock busy: old state served
        assert time.monotonic() - t0 < 5
        assert subjects(mb) == [b"one"]
    finally:
        holder.kill()
        holder.wait()
    mb.refresh()
    assert subjects(mb) == [b"one", b"two"]


def test_read_after_a_rewrite_behind_our_back_is_checked(tmp_path):
    """A message is read without rehashing only while the file is the one
    last read; after another writer replaced it (same size, same offsets,
    other bytes) the digest check finds the change: the message is gone
    rather than served with the new bytes."""
    path = tmp_path / "mbox"
    mb = opened(path, msg("aaaa") + msg("bbbb"))
    first, second = mb.live()
    assert mb.unparsed_file(first, "raw") == msg("aaaa")[len(b"From glenda Thu Nov 26 12:00:00 EST 2026\n"):-1]
    assert mb.unparsed_file(second, "rawunix") == msg("bbbb")[:-1]
    tmp = tmp_path / "other"
    tmp.write_bytes(msg("cccc") + msg("bbbb"))
    os.rename(tmp, path)
    with pytest.raises(mbox.MailError):
        mb.read_message(first)
    # upas/fs's merge: matching in order, the unmatched first message
    # took the second with it; both come back as new messages
    assert not first.inmbox and not second.inmbox
    assert [mb.unparsed_file(m, "rawunix") for m in mb.live()] == \
        [msg("cccc")[:-1], msg("bbbb")[:-1]]


def test_in_place_write_is_seen_and_an_unchanged_file_not_hashed(tmp_path, monkeypatch):
    """The case the stat check exists for: a write in place, same size, same
    inode (a later tick, so mtime and ctime move), is caught by the digest;
    while the file is untouched, reads hash nothing."""
    path = tmp_path / "mbox"
    mb = opened(path, msg("aaaa") + msg("bbbb"))
    first, _ = mb.live()
    hashed = []
    real = mbox.digest_of
    monkeypatch.setattr(mbox, "digest_of", lambda *a: hashed.append(a) or real(*a))
    assert mb.read_message(first) == msg("aaaa")[:-1]
    assert hashed == []
    time.sleep(0.02)                        # past any timestamp tick
    with open(path, "r+b") as f:
        f.seek(f.read().index(b"aaaa"))
        f.write(b"zzzz")
    for _ in range(2):                      # and stays caught
        with pytest.raises(mbox.MailError):
            mb.read_message(first)
    assert hashed
    # read again whole, as after the rename above: matching in order, both
    # come back as new messages, each with its own bytes
    assert [(m.name, mb.read_message(m)) for m in mb.live()] == \
        [("3", msg("zzzz")[:-1]), ("4", msg("bbbb")[:-1])]
    # the same found by a sync before any read (a stat of the mailbox)
    mb = opened(path, msg("aaaa") + msg("bbbb"))
    first, _ = mb.live()
    time.sleep(0.02)
    with open(path, "r+b") as f:
        f.seek(f.read().index(b"aaaa"))
        f.write(b"yyyy")
    mb.refresh()
    with pytest.raises(mbox.MailError):
        mb.read_message(first)
    assert [mb.read_message(m) for m in mb.live()] == [msg("yyyy")[:-1], msg("bbbb")[:-1]]


def _open_on(path) -> list[str]:
    """This process's descriptors open on path's file."""
    return _open_on_inode(os.stat(path))


def _open_on_inode(st: os.stat_result) -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            f = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if (f.st_dev, f.st_ino) == (st.st_dev, st.st_ino):
            out.append(fd)
    return out


def test_the_mailbox_file_is_kept_open_only_while_it_is_the_one_read(tmp_path):
    """Reads keep one descriptor of the mailbox file between them; a file
    replaced by another writer (same bytes, another inode) is read from
    the new one, the old descriptor closed; close() lets it go."""
    path = tmp_path / "mbox"
    mb = opened(path, msg("aaaa") + msg("bbbb"))
    first, second = mb.live()
    for m, subject in ((first, "aaaa"), (second, "bbbb"), (first, "aaaa")):
        assert mb.read_message(m) == msg(subject)[:-1]
    assert len(_open_on(path)) == 1
    old = os.stat(path)
    tmp = tmp_path / "other"
    tmp.write_bytes(path.read_bytes())
    os.rename(tmp, path)
    assert mb.read_message(second) == msg("bbbb")[:-1]
    assert [m.name for m in mb.live()] == [first.name, second.name]
    assert not _open_on_inode(old)
    mb.refresh()
    assert mb.read_message(first) == msg("aaaa")[:-1]
    assert len(_open_on(path)) == 1
    mb.close()
    assert _open_on(path) == []


def test_open_fids_counted_without_the_lock_across_threads(tmp_path):
    """incref/decref take no lock (every open and clunk of every session
    comes there): counts stay exact across threads, and a deleted message
    stays in the file until the last holder lets go, then is purged."""
    path = tmp_path / "mbox"
    mb = opened(path, msg("a") + msg("b"))
    a = mb.lookup("1")

    def churn() -> None:
        for _ in range(20000):
            mb.incref(a)
            mb.decref(a)
    threads = [threading.Thread(target=churn) for _ in range(8)]
    mb.incref(a)                        # held throughout
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.refs == 1
    a.deleted = True                    # as the fs's remove marks it
    mb.sync()
    assert path.read_bytes().count(b"Subject: a") == 1       # held: kept
    mb.decref(a)                                             # the last holder
    assert b"Subject: a" not in path.read_bytes()
    assert [m.name for m in mb.live()] == ["2"]
