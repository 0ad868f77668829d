"""A frontend whose mail/box is the store's boxfs mounted by the kernel
(issue 19's standard-mount deployment): plan9port's 9pfuse mounts
tcp!STORE!11571 through FUSE on the frontend's mail/box/glenda, and the
frontend runs `runhost -K`, its files reached through the kernel alone.

The store and frontends are network namespaces (tests/fixtures/netns.py,
root); the kernel needs FUSE (/dev/fuse and fusermount).  Expected values
are the store's own mbox (Python's mailbox module) and what a boxfs
frontend (no kernel mount) tells of the same mailbox.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_frontends import append_at_once, imap, intact, message, store_messages, uids_flags

pytestmark = pytest.mark.timeout(240)

BOXFS = 11571
# 9pfuse's kernel caches: attributes for -A seconds (0: every stat asks the
# store, so an append's fstat sees the store's own end of file) and names
# for 1 s, fixed, so a .imp replaced by rename elsewhere shows after it.
ATTR_TIMEOUT = "0"
SEEN_WITHIN = 3.0


def converge(k, b) -> float:
    """Seconds until NOOPs on k show the flags b shows (at most SEEN_WITHIN
    and a poll: past that the caller's assertion fails)."""
    start = time.monotonic()
    while uids_flags(k) != uids_flags(b) and time.monotonic() - start <= SEEN_WITHIN:
        time.sleep(0.1)
        assert k.noop()[0] == "OK"
    return time.monotonic() - start


def fuse_usable() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "the kernel has no FUSE (/dev/fuse)"
    if shutil.which("fusermount") is None:
        return "needs fusermount (apt package fuse)"
    return None


def _pids_of(word: str) -> list[int]:
    """Processes whose command line holds `word` (our mount point)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if word.encode() in argv:
                out.append(int(d.name))
    return out


@pytest.fixture
def fuse_front(p9p, cluster):
    """fe3: glenda's /mail/box of the store mounted by 9pfuse (attached
    as root, the local login, with -a glenda), runhost -K."""
    why = fuse_usable()
    if why:
        pytest.skip(why)
    cluster.fronts["fe3"] = cluster.net.add("fe3")
    mtpt = cluster.tmp / "fe3" / "mail" / "box" / "glenda"
    mtpt.mkdir(parents=True)
    mount = ["env", f"PLAN9={p9p.root}", p9p.bin("9pfuse"), "-A", ATTR_TIMEOUT, "-a", "glenda",
             f"tcp!{cluster.store}!{BOXFS}", str(mtpt)]
    try:
        cluster.start_front("fe3", kernel_mount=True, mount=mount)
        yield cluster
    finally:
        for pid in _pids_of(str(mtpt)):
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass


def test_imap_through_the_kernel_mount_agrees_with_a_boxfs_frontend(fuse_front):
    c = fuse_front
    assert "boxfs" not in c.printed["fe3"]
    k, b = imap(c.fronts["fe3"]), imap(c.fronts["fe1"])
    n = int(k.select("INBOX")[1][0])
    assert int(b.select("INBOX")[1][0]) == n == len(store_messages(c.mailroot))
    assert k.response("UIDVALIDITY") == b.response("UIDVALIDITY")
    assert uids_flags(k) == uids_flags(b)
    assert k.store("1", "+FLAGS", "(\\Flagged \\Seen)")[0] == "OK"
    assert b.store("2", "+FLAGS", "(\\Answered)")[0] == "OK"
    assert b.noop()[0] == "OK"
    took = converge(k, b)
    print(f"a flag set on the boxfs frontend seen through 9pfuse after {took:.2f}s")
    assert took <= SEEN_WITHIN
    flags = dict(uids_flags(b))
    first, second = (u for u, _ in uids_flags(b)[:2])
    assert flags[first] == "\\Flagged \\Seen" and flags[second] == "\\Answered"
    assert k.append("INBOX", "(\\Seen)", None, message("kernel@fe3"))[0] == "OK"
    assert int(b.select("INBOX")[1][0]) == n + 1
    assert uids_flags(k) == uids_flags(b)
    assert store_messages(c.mailroot)[-1]["Message-ID"] == "<kernel@fe3>"
    k.logout()
    b.logout()


def test_appends_through_the_kernel_mount_and_deliveries_on_the_store(fuse_front):
    c = fuse_front
    before = len(store_messages(c.mailroot))
    sent = append_at_once(c, [("fe3", 0), ("fe3", 1)])
    msgs = store_messages(c.mailroot)[before:]
    assert sorted(m["Message-ID"] for m in msgs) == sorted(sent)
    assert len(sent) == 24 and all(intact(m) for m in msgs)
    k, b = imap(c.fronts["fe3"]), imap(c.fronts["fe1"])
    assert int(k.select("INBOX")[1][0]) == int(b.select("INBOX")[1][0]) == before + 24
    assert uids_flags(k) == uids_flags(b)
    k.logout()
    b.logout()


# In fe3's mount namespace: an O_APPEND write (as the -K frontend's
# upas/ns.py appends) after an fstat, the store's file growing in between.
APPENDER = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_APPEND)
print(os.fstat(fd).st_size, flush=True)
sys.stdin.readline()                    # the store has appended meanwhile
print(os.fstat(fd).st_size, flush=True)
os.write(fd, b"FRONTEND\\n")
"""


# "5": a cache as 9pfuse's default -A 1, long enough for the test's steps
@pytest.mark.parametrize("attr, lands_at_end", [("0", True), ("5", False)])
def test_the_attribute_cache_decides_where_an_append_lands(fuse_front, p9p, attr, lands_at_end):
    """Why -A 0: the kernel puts an O_APPEND write at the end of file it has
    cached; with 9pfuse's default -A 1 a delivery on the store less than a
    second before is overwritten (the concurrent-APPEND test above lost
    deliveries so) (the mail lock cannot help: the size was
    cached before the lock was taken).  With -A 0 every fstat asks the store."""
    c = fuse_front
    mtpt = c.tmp / "fe3" / f"attr{attr}"
    mtpt.mkdir()
    pid = str(c.procs["fe3"].pid)               # runhost, in fe3's namespaces
    enter = ["nsenter", "-t", pid, "-m", "-n"]
    subprocess.run(enter + ["env", f"PLAN9={p9p.root}", p9p.bin("9pfuse"), "-A", attr,
                            "-a", "glenda", f"tcp!{c.store}!{BOXFS}", str(mtpt)],
                   check=True, timeout=30)
    try:
        mbox = c.mailroot / "box" / "glenda" / "mbox"
        p = subprocess.Popen(enter + [sys.executable, "-c", APPENDER, str(mtpt / "mbox")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = int(p.stdout.readline())
        assert first == mbox.stat().st_size
        with open(mbox, "ab") as f:             # a delivery on the store
            f.write(b"STORE\n")
        p.stdin.write("go\n")
        p.stdin.flush()
        second = int(p.stdout.readline())
        assert p.wait(30) == 0
        tail = mbox.read_bytes()[first:]
        if lands_at_end:
            assert (second, tail) == (first + 6, b"STORE\nFRONTEND\n")
        else:
            assert (second, tail) == (first, b"FRONTEND\n")    # the delivery overwritten
    finally:
        for pid9 in _pids_of(str(mtpt)):
            os.kill(pid9, 15)
