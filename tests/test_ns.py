"""The namespace: cleanname, mount resolution and confinement."""
import os
import time

import pytest

from tests.fixtures.ninep import MemDir, MemFile
from upas.ninep.codec import Stat
from upas.ns import Error, Namespace, cleanname


@pytest.mark.parametrize("raw,clean", [
    ("/mail/box/glenda/mbox", "/mail/box/glenda/mbox"),
    ("/mail//box/./glenda/", "/mail/box/glenda"),
    ("/mail/box/../box/bob", "/mail/box/bob"),
    ("/../..", "/"),
    ("a/../../b", "../b"),
    ("", "."),
    ("./", "."),
    ("bob/lists", "bob/lists"),
])
def test_cleanname(raw, clean):
    assert cleanname(raw) == clean


@pytest.fixture
def tree(tmp_path):
    box = tmp_path / "box"
    (box / "glenda").mkdir(parents=True)
    (box / "bob").mkdir()
    (box / "glenda" / "mbox").write_bytes(b"From a Thu Jan  1 00:00:00 GMT 1970\n\nx\n")
    (box / "bob" / "mbox").write_bytes(b"bob's mail\n")
    (tmp_path / "secret").write_bytes(b"outside\n")
    ns = Namespace("glenda")
    ns.bind_dir("/mail/box", str(box))
    yield ns, tmp_path
    ns.close()


def test_read_write_stat_readdir(tree):
    ns, root = tree
    assert ns.read("/mail/box/glenda/mbox").startswith(b"From a ")
    ns.create("/mail/box/glenda/new", 0o600)
    assert ns.write("/mail/box/glenda/new", b"hello") == 5
    d = ns.stat("/mail/box/glenda/new")
    assert (d.name, d.length, d.mode & 0o777, d.isdir) == ("new", 5, 0o600, False)
    assert [x.name for x in ns.readdir("/mail/box/glenda")] == ["mbox", "new"]
    assert ns.stat("/mail/box/glenda").isdir
    ns.rename("/mail/box/glenda/new", "/mail/box/glenda/old")
    assert ns.exists("/mail/box/glenda/old") and not ns.exists("/mail/box/glenda/new")
    ns.remove("/mail/box/glenda/old")
    with pytest.raises(Error, match="file does not exist"):
        ns.read("/mail/box/glenda/old")
    with pytest.raises(Error, match="file already exists"):
        ns.create("/mail/box/glenda/mbox")


def test_dotdot_cannot_climb_out_of_a_mount(tree):
    ns, root = tree
    # Lexically cleaned at the root: /mail/box/../../secret is /secret, unmounted.
    with pytest.raises(Error, match="file does not exist"):
        ns.read("/mail/box/../../secret")
    assert ns.read("/mail/box/glenda/../bob/mbox") == b"bob's mail\n"


def test_symlink_cannot_leave_the_mount(tree):
    ns, root = tree
    os.symlink(root / "secret", root / "box" / "glenda" / "escape")
    os.symlink(root, root / "box" / "glenda" / "updir")
    with pytest.raises(Error, match="permission denied"):
        ns.read("/mail/box/glenda/escape")
    with pytest.raises(Error, match="permission denied"):
        ns.create("/mail/box/glenda/updir/planted")
    assert not (root / "planted").exists()


def test_links_inside_the_mount_are_followed_and_outside_refused(tree):
    """A link is judged by where it leads: inside the mount it is followed,
    a directory link out of it is refused below any depth, and a dangling
    link leading out is refused as the name of a new file."""
    ns, root = tree
    os.symlink(root / "box" / "bob", root / "box" / "glenda" / "bobs")
    assert ns.read("/mail/box/glenda/bobs/mbox") == b"bob's mail\n"
    (root / "outside").mkdir()
    os.symlink(root / "outside", root / "box" / "glenda" / "out")
    with pytest.raises(Error, match="permission denied"):
        ns.create("/mail/box/glenda/out/a/b")
    os.symlink(root / "new", root / "box" / "glenda" / "dangling")
    with pytest.raises(Error, match="permission denied"):
        ns.create("/mail/box/glenda/dangling")
    assert not (root / "new").exists() and not list((root / "outside").iterdir())


def test_confine_leaves_only_the_users_box(tree):
    ns, root = tree
    ns.confine("glenda")
    assert ns.read("/mail/box/glenda/mbox").startswith(b"From ")
    for path in ("/mail/box/bob/mbox", "/mail/box/glenda/../bob/mbox", "/mail/box"):
        with pytest.raises(Error, match="file does not exist"):
            ns.stat(path)


def test_longest_prefix_wins(tree, tmp_path):
    ns, root = tree
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "mbox").write_bytes(b"other\n")
    ns.bind_dir("/mail/box/bob", str(other))
    assert ns.read("/mail/box/bob/mbox") == b"other\n"
    assert ns.read("/mail/box/glenda/mbox").startswith(b"From ")
    assert ns.local_path("/mail/box/bob/mbox") == str(other / "mbox")


def test_relative_paths_refused(tree):
    ns, _ = tree
    with pytest.raises(Error, match="not absolute"):
        ns.read("mail/box/glenda/mbox")


def test_qid_version_changes_with_a_same_size_rewrite(tree):
    """A rewrite to the same length must still change qid.vers (an XOR of
    mtime and ctime once left only the size, so such rewrites looked equal)."""
    ns, root = tree
    path = "/mail/box/glenda/mbox"
    before = ns.stat(path).qid.vers
    data = ns.read(path)
    time.sleep(0.01)
    ns.write(path, data.replace(b"x", b"y"))
    after = ns.stat(path)
    assert after.length == len(data)
    assert after.qid.vers != before


def test_a_server_that_hangs_up_at_attach_is_a_namespace_error(tmp_path):
    """A 9P service that closes the connection during Tversion (a busy or
    dying server) fails the file operation with ns.Error, which the
    servers turn into a protocol error; before, the 9P client's Hungup
    escaped as another exception and pop3 exited without a reply."""
    import socket
    import threading

    path = str(tmp_path / "hangup")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)

    def hang_up() -> None:
        conn, _ = lsock.accept()
        conn.recv(64)
        conn.close()
    t = threading.Thread(target=hang_up, daemon=True)
    t.start()
    ns = Namespace("glenda")
    ns.mount("/mail/fs", "unix!" + path, lazy=True)
    with pytest.raises(Error, match="cannot mount"):
        ns.read("/mail/fs/ctl")
    t.join(5)
    lsock.close()


def test_batched_reads_and_stats_local_and_9p(tree, memtree_addr):
    ns, root = tree
    paths = ["/mail/box/glenda/mbox", "/mail/box/glenda/none", "/mail/box/bob/mbox"]
    assert ns.read_many(paths) == [ns.read(paths[0]), None, b"bob's mail\n"]
    assert ns.read_many(paths, 4) == [b"From", None, b"bob'"]
    st = ns.stat_many(paths)
    assert st[0] == ns.stat(paths[0]) and st[1] is None and st[2].length == 11
    mem, addr = memtree_addr
    from upas.ninep import Client
    ns.bind_9p("/mnt/mem", Client.dial(addr, uname="glenda"))
    paths = ["/mnt/mem/hello", "/mnt/mem/nope", "/mnt/mem/big", "/mnt/mem/many/5"]
    got = ns.read_many(paths)
    assert got == [b"hello, world\n", None, bytes(mem.kids["big"].data), b"xxxxx"]
    st = ns.stat_many(paths)
    assert [d and (d.name, d.length) for d in st] == [
        ("hello", 13), None, ("big", 200 * 1024), ("5", 5)]
    # paths on two mounts: one by one, the same answers
    mixed = ns.read_many(["/mnt/mem/hello", "/mail/box/bob/mbox"], 5)
    assert mixed == [b"hello", b"bob's"]
    assert [d.name for d in ns.stat_many(["/mnt/mem/hello", "/mail/box/bob"])] == ["hello", "bob"]
    # paths not in clean form, and one under a mount inside the 9P mount
    odd = ["/mnt/mem/hello", "/mnt/mem//many/./5", "/mnt/mem/many/../hello", "/mnt/mem/many/5/"]
    assert ns.read_many(odd, 5) == [b"hello", b"xxxxx", b"hello", b"xxxxx"]
    ns.bind_dir("/mnt/mem/many", str(root / "box" / "glenda"))
    assert ns.read_many(["/mnt/mem/hello", "/mnt/mem/many/mbox"], 4) == [b"hell", b"From"]
    # the one-read size of a 9P mount; none for a local file
    c = Client.dial(addr, uname="glenda")
    ns.bind_9p("/mnt/other", c)
    assert ns.iounit("/mnt/other/hello") == c.iounit == c.msize - 24
    assert ns.iounit("/mail/box/glenda/mbox") is None
    # names only, on both kinds of mount
    assert ns.readdir_names("/mnt/other/many") == [d.name for d in ns.readdir("/mnt/other/many")]
    assert ns.readdir_names("/mail/box") == [d.name for d in ns.readdir("/mail/box")] != []


def test_read_many_begin_local(tmp_path):
    """The two halves of read_many: on a local bind all the work is done when
    collected; the same files, None where one is missing."""
    (tmp_path / "a").write_bytes(b"alpha")
    ns = Namespace("glenda")
    ns.bind_dir("/mail/box/glenda", str(tmp_path))
    finish = ns.read_many_begin(["/mail/box/glenda/a", "/mail/box/glenda/b"], 3)
    (tmp_path / "b").write_bytes(b"beta")       # made before the collection
    assert finish() == [b"alp", b"bet"]


# -- delivery's operations: append, write in place, the stat key ----------------
# (what APPEND and mbappend use; defined so that a mail store served over
# 9P can take them: here the same calls on a local mount and over 9P)

def test_append_ends_an_unended_last_line_and_reports_the_new_key(tree):
    ns, root = tree
    path = "/mail/box/glenda/mbox"
    (root / "box" / "glenda" / "mbox").write_bytes(b"From a\n\ncut off")
    before = ns.stat(path)
    d = ns.append(path, b"From b\n\nnew\n\n", after=b"\n", sync=True)
    assert (root / "box" / "glenda" / "mbox").read_bytes() == b"From a\n\ncut off\nFrom b\n\nnew\n\n"
    assert d.length == len(b"From a\n\ncut off\nFrom b\n\nnew\n\n")
    assert (d.qid, d.length) == (ns.stat(path).qid, ns.stat(path).length)
    assert d.qid != before.qid                # another content, another key
    ns.append(path, b"more\n", after=b"\n")   # ended: nothing added before it
    assert (root / "box" / "glenda" / "mbox").read_bytes().endswith(b"\n\nmore\n")


def test_append_creates_only_with_a_mode_and_checks_a_prefix(tree):
    ns, root = tree
    with pytest.raises(Error, match="file does not exist"):
        ns.append("/mail/box/glenda/new", b"x")
    ns.append("/mail/box/glenda/new", b"head\n", perm=0o600)
    assert (root / "box" / "glenda" / "new").stat().st_mode & 0o777 == 0o600
    assert ns.append("/mail/box/glenda/new", b"rec\n", prefix=b"other") is None
    assert ns.append("/mail/box/glenda/new", b"rec\n", prefix=b"head\n") is not None
    assert (root / "box" / "glenda" / "new").read_bytes() == b"head\nrec\n"


def test_write_at_edits_in_place(tree):
    ns, root = tree
    (root / "box" / "glenda" / "f").write_bytes(b"0123456789")
    d = ns.write_at("/mail/box/glenda/f", [(10, b"abc"), (2, b"XY")], sync=True)
    assert (root / "box" / "glenda" / "f").read_bytes() == b"01XY456789abc"
    assert d.length == 13


class _SyncedFile(MemFile):
    """A file whose server takes Plan 9's sync (the all-"don't touch" wstat)."""
    def __init__(self, name: str, data: bytes):
        super().__init__(name, data, 0o666)
        self.syncs = 0

    def wstat(self, st, user: str) -> None:
        assert st == Stat.sync()
        self.syncs += 1


def test_append_and_write_at_over_9p(serve_9p):
    box = _SyncedFile("mbox", b"From a\n\ncut off")
    addr = serve_9p(lambda uname, aname: MemDir("/", [box], mode=0o777))
    ns = Namespace("glenda")
    ns.mount("/mail/box/glenda", addr)
    try:
        d = ns.append("/mail/box/glenda/mbox", b"From b\n\nx\n\n", after=b"\n", sync=True)
        assert bytes(box.data) == b"From a\n\ncut off\nFrom b\n\nx\n\n" and box.syncs == 1
        assert d.length == len(box.data)
        assert ns.append("/mail/box/glenda/mbox", b"y", prefix=b"nope") is None
        ns.write_at("/mail/box/glenda/mbox", [(0, b"F")], sync=True)
        assert box.syncs == 2 and len(box.data) == d.length
    finally:
        ns.close()


def test_together_runs_both_synced_writes_and_raises_after_both(tree):
    """Namespace.together (an APPEND's mailbox and .imp): both calls run,
    on two threads for host files; their results in order; an error of one
    is raised only once the other has finished its write."""
    ns, tmp = tree
    box = "/mail/box/glenda"
    ns.write(f"{box}/mbox.imp", b"imp\n")
    got = ns.together([f"{box}/mbox", f"{box}/mbox.imp"],
                      lambda: ns.append(f"{box}/mbox", b"y\n", sync=True).length,
                      lambda: ns.write_at(f"{box}/mbox.imp", [(4, b"more\n")], sync=True).length)
    assert got == [len(b"From a Thu Jan  1 00:00:00 GMT 1970\n\nx\ny\n"), 9]
    assert (tmp / "box" / "glenda" / "mbox.imp").read_bytes() == b"imp\nmore\n"

    def slow():
        time.sleep(0.2)
        return ns.write_at(f"{box}/mbox.imp", [(0, b"IMP")], sync=True)
    with pytest.raises(Error):
        ns.together([f"{box}/nothere", f"{box}/mbox.imp"],
                    lambda: ns.write_at(f"{box}/nothere", [(0, b"x")], sync=True), slow)
    assert (tmp / "box" / "glenda" / "mbox.imp").read_bytes() == b"IMP\nmore\n"
