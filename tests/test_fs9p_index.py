"""upasfs's index, `<mailbox>.upasfs.imp` (docs/decisions.md, "upasfs
index"; 9front's upas/fs idx.c is the model): a new upasfs takes an
unchanged mailbox from it without reading, hashing or parsing the file;
any change is seen; a torn, corrupt, foreign or old index is never
trusted; it is 0600 and hidden from LIST; a crash while it is written
leaves upasfs serving what a fresh parse serves.  The expected view is
always a fresh parse of the same file with the index off."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.fixtures.upasfs import (GOLDEN, INDEX_ENV, REPO, index_path, restart_from_index,
                                   start_upasfs)
from upas.mail import mbox, mboxindex, mime
from upas.mail.header import Ignore

GOLD = (GOLDEN / "input" / "mbox").read_bytes()
NOIGNORE = Ignore([])
# the files of a part that come from its header fields alone
FIELD_FILES = ("bcc cc date digest disposition filename from inreplyto messageid "
               "replyto sender subject to type unixheader info unixdate").split()


def msg(subject: str, body: bytes = b"body\n") -> bytes:
    return (f"From glenda Thu Nov 26 12:00:00 EST 2026\nSubject: {subject}\n\n".encode()
            + body + b"\n")


def stored(data: bytes) -> list[bytes]:
    """The file's messages, each with its separator line break."""
    return [data[s:e + 1] for s, e in mbox.scan(data, 0, len(data))]


def view(mb: mbox.Mailbox) -> list:
    """Everything upasfs serves of the mailbox: names, qid paths, every
    file of every part and its length."""
    out = []
    for m in mb.live():
        top = mb.parsed(m)
        out.append((m.name, m.id, m.digest, m.size, m.fromlen, m.sizes, [
            (p.id, p.name, [(f, p.length(f, NOIGNORE), p.file(f, NOIGNORE))
                            for f in mime.FILES]) for p in top.walk()]))
    return out


def fresh(path) -> list:
    return view(mbox.open_mailbox(str(path), "mbox", mime.Ids(), index=False))


def opened(path) -> mbox.Mailbox:
    return mbox.open_mailbox(str(path), "mbox", mime.Ids())


def indexed(path, data: bytes = GOLD) -> bytes:
    """Write data as the mailbox, let upasfs parse all of it and write its
    index with every detail; the index's bytes."""
    path.write_bytes(data)
    mb = opened(path)
    for m in mb.live():
        mb.parsed(m)
    mb.write_index(force=True)
    mb.close()
    return index_file(path).read_bytes()


def index_file(path):
    return path.with_name(path.name + mboxindex.SUFFIX)


class Counted:
    """Counts calls of the readers and parsers a read of the file uses."""

    def __init__(self, monkeypatch):
        self.calls: dict[str, int] = {}
        for mod, name in ((mbox, "scan"), (mbox, "digest_of"),
                          (mime, "parse_message"), (mime, "count_ids")):
            monkeypatch.setattr(mod, name, self._wrap(name, getattr(mod, name)))

    def _wrap(self, name, fn):
        def counted(*a, **kw):
            self.calls[name] = self.calls.get(name, 0) + 1
            return fn(*a, **kw)
        return counted


@pytest.fixture
def trusted(configure):
    """No racy window: the tests write a mailbox and read it at once."""
    configure(upasfs_index_racy=0)


def test_an_unchanged_mailbox_is_not_read_again(tmp_path, trusted, monkeypatch):
    path = tmp_path / "mbox"
    indexed(path)
    want = fresh(path)
    calls = Counted(monkeypatch)
    mb = opened(path)
    assert calls.calls == {}                  # no scan, hash, structure or parse
    # header fields, `info` and `lines` are served from the index without
    # the message's bytes (a listing reads them: `header` is filtered)
    read = mbox.Mailbox.read_message
    monkeypatch.setattr(mbox.Mailbox, "read_message", lambda *a: pytest.fail("read"))
    for m in mb.live():
        for p in mb.parsed(m).walk():
            for f in FIELD_FILES + ["lines"]:
                p.file(f)
    monkeypatch.setattr(mbox.Mailbox, "read_message", read)
    assert view(mb) == want
    assert calls.calls == {}                  # nothing parsed: every tree a detail
    assert [m.name for m in mb.live()] == ["1", "2", "3", "4", "5"]


def test_a_message_added_since_is_the_only_one_parsed(tmp_path, trusted, monkeypatch):
    path = tmp_path / "mbox"
    indexed(path)
    with open(path, "ab") as f:
        f.write(msg("new", b"Content-Type: multipart/mixed; boundary=x\n\n--x\n\nhi\n--x--\n"))
    want = fresh(path)
    calls = Counted(monkeypatch)
    mb = opened(path)
    assert calls.calls.get("count_ids") == 1 and "parse_message" not in calls.calls
    assert view(mb) == want


def test_trees_parsed_since_the_last_write_are_kept_outside_memory(tmp_path, trusted,
                                                                  monkeypatch):
    """A message parsed again after its tree left the cache (256 trees)
    is built from its detail, spilled to a temporary file until the
    index is written, then read from the index."""
    path = tmp_path / "mbox"
    path.write_bytes(b"".join(msg(f"m{i}") for i in range(300)))
    want = fresh(path)
    mb = opened(path)
    for m in mb.live():
        mb.parsed(m)
    assert all(isinstance(m.detail, int) and m.detail & 1 == mboxindex.SPILL
               for m in mb.live())
    calls = Counted(monkeypatch)
    first = [mb.parsed(m).file("subject") for m in mb.live()[:10]]   # evicted: not cached
    assert first == [b"m%d" % i for i in range(10)] and calls.calls == {}
    mb.write_index(force=True)
    assert all(m.detail & 1 == mboxindex.INDEX for m in mb.live())
    mb._cache.clear()
    assert view(mb) == want and "parse_message" not in calls.calls
    for kind, off, n, crc in [(0, 0, 1, 0), (1, 2**40 - 1, 2**24 - 1, 2**32 - 1)]:
        assert mboxindex.unplace(mboxindex.place(kind, off, n, crc)) == (kind, off, n, crc)


def _edit_in_place(data: bytes) -> bytes:
    i = data.index(b"first message")
    return data[:i] + b"FIRST" + data[i + 5:]


def _replace_same_size(path, data: bytes) -> None:
    st = os.stat(path)
    other = path.with_name("other")
    other.write_bytes(_edit_in_place(data))
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.rename(other, path)


CHANGES = {
    "append": lambda p, d: p.write_bytes(d + msg("appended")),
    "rewrite": lambda p, d: p.write_bytes(b"".join(stored(d)[i] for i in (0, 2, 3, 4))),
    "reorder": lambda p, d: p.write_bytes(b"".join(stored(d)[i] for i in (1, 0, 2, 3, 4))),
    "in-place, same size and mtime": lambda p, d: _keep_mtime(p, _edit_in_place(d)),
    "in-place and append": lambda p, d: p.write_bytes(_edit_in_place(d) + msg("x")),
    "truncation": lambda p, d: p.write_bytes(b"".join(stored(d)[:3])),
    "emptied": lambda p, d: p.write_bytes(b""),
    "replaced by another file": _replace_same_size,
}


def _keep_mtime(path, data: bytes) -> None:
    st = os.stat(path)
    with open(path, "r+b") as f:            # in place: same inode
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_is_seen(tmp_path, trusted, change):
    path = tmp_path / "mbox"
    indexed(path)
    CHANGES[change](path, GOLD)
    assert view(opened(path)) == fresh(path)
    # and the index written then describes the changed file
    assert view(opened(path)) == fresh(path)


def test_a_racy_index_is_not_trusted(tmp_path, monkeypatch, configure):
    """An index of a file read within $UPASFS_INDEX_RACY of its last
    change may hide a write in place in the same timestamp tick: it is
    used only by digest, the file read and hashed again."""
    path = tmp_path / "mbox"
    configure(upasfs_index_racy=3600)
    indexed(path)
    assert index_file(path).read_bytes().split(b"\n")[1].split(b" ")[6] == b"0"
    want = fresh(path)
    calls = Counted(monkeypatch)
    assert view(opened(path)) == want
    assert calls.calls["digest_of"] == 5
    assert "parse_message" not in calls.calls and "count_ids" not in calls.calls
    key = (1, 2, 3, 10 * 10**9, 11 * 10**9, b"")
    assert mboxindex.is_trusted(key, 11 * 10**9 + 3600 * 10**9)
    assert not mboxindex.is_trusted(key, 11 * 10**9 + 3600 * 10**9 - 1)


def test_a_torn_or_corrupt_index_is_never_used(tmp_path, trusted):
    path = tmp_path / "mbox"
    good = indexed(path)
    want = fresh(path)
    cuts = sorted(set(range(0, len(good), max(1, len(good) // 40))) | {len(good) - 1})
    flips = [good.index(b"\n") - 1, good.index(b"\n") + 3,       # first and key lines
             good.index(b"\n", good.index(b"\n") + 1) + 45,      # an entry
             len(good) - 75 - 20,                                 # a detail
             len(good) - 20]                                      # the trailer
    for damage in [("cut", c) for c in cuts] + [("flip", f) for f in flips]:
        bad = good[:damage[1]] if damage[0] == "cut" else \
            good[:damage[1]] + bytes([good[damage[1]] ^ 0x20]) + good[damage[1] + 1:]
        index_file(path).write_bytes(bad)
        assert view(opened(path)) == want, damage
        assert mboxindex.load(str(index_file(path))) is not None, damage  # whole again


@pytest.mark.parametrize("bad", [b"[[1,[],[]]]", b"[" * 100000 + b"]" * 100000, b"{}",
                                 b"[0,[0],[],1]", b'[0,[], "x", 1]', b"not json"])
def test_a_detail_that_is_not_ours_is_refused(bad):
    """Whatever the CRC let through, a detail decode() cannot take raises
    ValueError (the message is then parsed)."""
    with pytest.raises(ValueError):
        mboxindex.decode(bad, b"", 1, "1")


def test_an_old_index_is_replaced_and_a_foreign_file_left_alone(tmp_path, trusted):
    path = tmp_path / "mbox"
    good = indexed(path)
    old = b"upasfs index 0 " + good.split(b" ", 3)[3]
    index_file(path).write_bytes(old)
    assert view(opened(path)) == fresh(path)
    assert index_file(path).read_bytes().startswith(mboxindex.first_line())
    shadow = b"imap internal mailbox description\n0000000001 0000000006\n"
    index_file(path).write_bytes(shadow)      # say, the .imp of a mailbox `mbox.upasfs`
    mb = opened(path)
    for m in mb.live():
        mb.parsed(m)
    mb.write_index(force=True)
    assert view(mb) == fresh(path)
    assert index_file(path).read_bytes() == shadow


def test_the_index_is_0600(tmp_path, trusted):
    path = tmp_path / "mbox"
    old = os.umask(0)
    try:
        indexed(path)
    finally:
        os.umask(old)
    assert os.stat(index_file(path)).st_mode & 0o777 == 0o600
    assert not index_file(path).with_name("mbox.upasfs.imp.tmp").exists()


CUT_WRITE = r"""
import dataclasses, os, sys
from upas import config
from upas.mail import mbox, mboxindex, mime
config.use(dataclasses.replace(config.current(), upasfs_index_racy=0))
path, limit, where = sys.argv[1], int(sys.argv[2]), sys.argv[3]
mb = mbox.open_mailbox(path, "mbox", mime.Ids())
for m in mb.live():
    mb.parsed(m)
real_write, real_rename, done = os.write, os.rename, [0]
def write(fd, b):
    n = len(b) if where != "write" else min(len(b), limit - done[0])
    if n < len(b):
        real_write(fd, bytes(b[:n]))
        os._exit(9)
    done[0] += n
    return real_write(fd, b)
def rename(a, b):
    real_rename(a, b)
    os._exit(9)
os.write, os.rename = write, rename
mb._idx_dirty = True
mb.write_index(force=True)
"""


def test_a_write_cut_anywhere_leaves_a_correct_view(tmp_path, trusted):
    """A process that dies at any byte of an index write, or just after
    its rename (before the directory's fsync), leaves a file system on
    which upasfs serves what a fresh parse serves."""
    path = tmp_path / "mbox"
    data = GOLD + msg("later")
    size = len(indexed(path, data))
    path.write_bytes(GOLD)                    # the index now describes another file
    want = fresh(path)
    for limit in sorted(set(range(0, size, max(1, size // 16))) | {size - 1, size + 10}):
        env = dict(os.environ, PYTHONPATH=str(REPO))
        r = subprocess.run([sys.executable, "-c", CUT_WRITE, str(path), str(limit), "write"],
                           env=env, cwd=REPO)
        assert r.returncode == 9 or limit >= size, limit
        assert view(opened(path)) == want, limit
    r = subprocess.run([sys.executable, "-c", CUT_WRITE, str(path), "0", "rename"],
                       env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO)
    assert r.returncode == 9
    assert view(opened(path)) == want


# -- the served tree ---------------------------------------------------------

def summary_lines(c) -> list[list[bytes]]:
    return [line.split(b" ") for line in c.read("mbox/summary").splitlines()]


def test_mark_tells_instances_and_numbering_apart(upasfs_factory):
    fs = upasfs_factory()
    with fs.client() as c:
        mark = c.read("mbox/mark").split()
        assert len(mark) == 4 and len(mark[0]) == 16 and mark[3] == b"5"
        assert c.read("mbox/mark").split() == mark            # nothing changed
        with open(fs.mbox, "ab") as f:
            f.write(msg("new mail"))
        grown = c.read("mbox/mark").split()
        assert grown[:2] == mark[:2] and grown[2] != mark[2] and grown[3] == b"6"
        c.write("ctl", b"delete mbox 2")
        shrunk = c.read("mbox/mark").split()
        assert shrunk[:2] == mark[:2] and shrunk[2] != grown[2] and shrunk[3] == b"5"
        names = [s.name for s in c.readdir("mbox")]
        assert "mark" not in names and "summary" not in names
        with pytest.raises(Exception, match="permission denied"):
            c.open("mbox/mark", "w")
    fs2, _ = restart_from_index(fs)
    try:
        with fs2.client() as c:
            again = c.read("mbox/mark").split()
    finally:
        fs2.stop()
    assert again[0] != mark[0]                # another upasfs, same numbers


def test_summary_agrees_with_the_files(upasfs_factory):
    data = GOLD + msg("crlf", b"one\r\ntwo\r\n\r\n")
    fs = upasfs_factory(mbox=data)
    with fs.client() as c:
        rows = summary_lines(c)
        assert rows[0] == c.read("mbox/mark").split()
        assert [r[0] for r in rows[1:]] == [s.name.encode() for s in c.readdir("mbox")]
        for n, digest, raw, hsize, hlines, bsize, lines, crs in rows[1:]:
            d = f"mbox/{n.decode()}"
            rawb, hdr, body = c.read(f"{d}/raw"), c.read(f"{d}/rawheader"), c.read(f"{d}/rawbody")
            assert digest == c.read(f"{d}/digest")
            assert (int(raw), int(hsize), int(hlines), int(bsize), int(lines), int(crs)) == \
                (len(rawb), len(hdr), hdr.count(b"\n"), len(body), int(c.read(f"{d}/lines")),
                 rawb.count(b"\r"))
        assert rows[-1][-1] == b"3"


def test_summary_follows_every_change_of_the_list(upasfs_factory):
    """upasfs makes `summary`'s lines again only when the list of messages
    changed: after an append, a ctl delete and a Tremove of a message
    directory (which only marks it while a fid holds it) it lists exactly
    the message directories there are."""
    fs = upasfs_factory()
    with fs.client() as c:
        def listed():
            rows = summary_lines(c)[1:]
            assert [r[0] for r in rows] == [s.name.encode() for s in c.readdir("mbox")
                                            if s.name.isdigit()]
            return [r[0] for r in rows]
        first = listed()
        assert listed() == first
        with open(fs.mbox, "ab") as f:
            f.write(msg("new mail"))
        assert len(listed()) == len(first) + 1
        c.write("ctl", b"delete mbox %s" % first[1])
        assert first[1] not in listed()
        held = c.open(f"mbox/{first[2].decode()}/raw")
        c.remove(f"mbox/{first[2].decode()}")
        assert first[2] not in listed()
        held.close()


def test_kill_9_while_the_index_is_written(upasfs_factory):
    """kill -9 at random points of an index write (upasfs writes it on
    its way out after SIGTERM; the kill comes once its temporary file
    appears), a message delivered before each start: every next upasfs
    serves what a fresh parse of the file serves."""
    rng = random.Random(os.environ.get("INDEX_KILL_SEED", 1))
    data = b"".join(msg(f"m{i}", (b"line of text %d\n" % i) * rng.randint(1, 40))
                    for i in range(600)) + GOLD
    env = dict(INDEX_ENV, UPASFS_INDEX_DELAY="3600")
    fs = upasfs_factory(mbox=data, env=env)
    tmp = index_path(fs).with_name("mbox.upasfs.imp.tmp")
    torn = 0
    try:
        for i in range(7):
            want = fresh(fs.mbox)
            with fs.client() as c:
                rows = summary_lines(c)[1:]
                assert [(r[0].decode(), r[1]) for r in rows] == [(w[0], w[2]) for w in want]
                for w in want:                          # every message parsed, kept
                    info = dict((f, content) for f, _, content in w[6][0][2])["info"]
                    assert c.read(f"mbox/{w[0]}/info") == info, (i, w[0])
            fs.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while not tmp.exists() and fs.proc.poll() is None and time.monotonic() < deadline:
                pass
            time.sleep(rng.uniform(0, 0.001))
            fs.proc.kill()
            fs.proc.wait()
            torn += tmp.exists()
            with open(fs.mbox, "ab") as f:
                f.write(msg(f"delivered {i}"))
            fs = start_upasfs(fs.mailroot, fs.namespace, fs.user, ("-p",), env=env)
            assert view(opened(fs.mbox)) == fresh(fs.mbox)
    finally:
        fs.stop()
    assert torn >= 1, "no kill landed inside a write"


def test_the_index_is_hidden_from_list(imap_preauth):
    c = imap_preauth.connect()
    assert c.cmd(b"s SELECT INBOX")[-1].startswith(b"s OK ")
    box = imap_preauth.box("glenda", "mbox")
    assert os.path.exists(str(box) + mboxindex.SUFFIX)     # the shared upasfs wrote it
    listed = b"".join(c.cmd(b'a LIST "" "*"'))
    assert b"upasfs" not in listed and b"INBOX" in listed
    assert c.cmd(b"b CREATE box.upasfs")[-1].startswith(b"b NO ")
    assert c.cmd(b"c SELECT mbox.upasfs.imp")[-1].startswith(b"c NO ")
    c.close()
