"""A relist reads only the new lines of upasfs's `summary` when only mail
was added (issue 16; upas/mail/fsview.py _read_summary; upasfs too adds
the new lines to those it made, fs9p/tree.py): what it gives is
what a whole read of the file gives, after appends, after a delete, and
with nothing changed; and the lines before the new ones are not read again.
"""
import dataclasses
import os

import pytest

from upas.mail import fsview
from upas.mail.fsview import FsView, parse_summary
from upas.mbappend import append_mbox, format_message
from upas.ns import Namespace


@pytest.fixture
def view(upasfs, monkeypatch):
    for name in ("user", "USER", "LOGNAME"):
        monkeypatch.setenv(name, "glenda")
    monkeypatch.setattr(fsview, "_SUMMARIES", {})
    ns = Namespace("glenda")
    ns.bind_dir("/mail/box", os.path.join(upasfs.mailroot, "box"))
    ns.mount("/mail/fs", upasfs.addr)
    v = FsView.open(ns, "/mail/box/glenda/mbox")
    yield v, os.path.join(upasfs.mailroot, "box", "glenda", "mbox")
    ns.close()


def whole(v):
    return parse_summary(v.ns.read(f"{v.dir}/summary"))


def add(path, n):
    for i in range(n):
        append_mbox(path, format_message(
            b"From: a@example.org\nSubject: grown %d\n\nbody %d\n" % (i, i), "glenda"))


def test_appends_read_as_the_whole_file(view):
    v, path = view
    first = v.summary()
    assert first == whole(v)
    add(path, 3)
    got = v.summary()
    assert got == whole(v)
    assert got.nums[:len(first.nums)] == first.nums and len(got.nums) == len(first.nums) + 3
    assert v.summary() == whole(v)                          # nothing changed
    # upasfs added the new lines to those it kept: they are the messages'
    assert got.nums == v.numbers()
    assert got.digests == [v.read(n, "digest").decode() for n in got.nums]
    sizes = [(len(v.read(n, "raw")), len(v.read(n, "rawbody"))) for n in got.nums]
    assert sizes == [(int(r.split()[2]), int(r.split()[5])) for r in got.rows]


def test_a_delete_reads_the_whole_file_again(view):
    v, path = view
    add(path, 2)
    first = v.summary()
    v.delete([first.nums[1]])
    add(path, 1)
    got = v.summary()
    assert got == whole(v) and first.nums[1] not in got.nums


def test_the_lines_before_the_new_ones_are_not_read_again(view):
    v, path = view
    first = v.summary()
    # a line of the kept summary altered where upasfs never changes one: if
    # the next read took the lines before the new ones from the file, it
    # would not carry the alteration
    rows = list(first.rows)
    rows[0] = rows[0].replace(b" ", b"  ", 1)[:len(rows[0])]
    fsview._SUMMARIES[v.dir] = dataclasses.replace(first, rows=rows)
    add(path, 1)
    got = v.summary()
    assert got.rows[0] == rows[0] and got.rows[1:] == whole(v).rows[1:]
