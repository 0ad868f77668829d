"""upasfs looks at a mailbox file once for the reads a session sent
together (mbox.one_look, the 9P server's `batch`), and at every read
outside such a batch (tests/test_mail_mbox.py holds what each look
must catch)."""
from __future__ import annotations

import contextlib
import os

import pytest

from tests.fixtures.ninep import RawConn, sample_tree
from upas.mail import mbox, mime
from upas.ninep import codec
from upas.ninep.codec import OREAD

FROM = b"From glenda Thu Nov 26 12:00:00 EST 2026\n"


def msg(subject: str) -> bytes:
    return FROM + f"Subject: {subject}\n\nbody\n\n".encode()


@pytest.fixture
def box(tmp_path, monkeypatch):
    """A mailbox of three messages, and the list of the paths os.stat
    was asked about since it was opened."""
    path = tmp_path / "mbox"
    path.write_bytes(msg("one") + msg("two") + msg("three"))
    mb = mbox.open_mailbox(str(path), "mbox", mime.Ids())
    stats: list[str] = []
    real = os.stat

    def counted(p, *a, **kw):
        stats.append(os.fspath(p))
        return real(p, *a, **kw)
    monkeypatch.setattr(os, "stat", counted)
    return mb, stats


def test_reads_in_one_look_stat_the_file_once(box):
    mb, stats = box
    with mbox.one_look():
        got = [mb.unparsed_file(m, "raw") for m in mb.live()]
    assert got == [msg(s)[len(FROM):-1] for s in ("one", "two", "three")]
    assert stats.count(mb.path) == 1


def test_reads_outside_a_look_stat_the_file_each(box):
    mb, stats = box
    for m in mb.live():
        mb.unparsed_file(m, "raw")
    assert stats.count(mb.path) == 3


def test_a_file_replaced_between_two_looks_is_caught_by_the_second(box, tmp_path):
    """The look of a later batch sees a file another writer replaced
    (same size, other bytes): the digest check finds the message gone, as
    for a read with no batch (tests/test_mail_mbox.py)."""
    mb, _ = box
    first = mb.live()[0]
    with mbox.one_look():
        assert mb.read_message(first) == msg("one")[:-1]
    other = tmp_path / "other"
    other.write_bytes(msg("ONE") + msg("two") + msg("three"))
    os.rename(other, mb.path)
    with mbox.one_look(), pytest.raises(mbox.MailError):
        mb.read_message(first)


def test_nested_looks_are_the_outer_one(box):
    mb, stats = box
    with mbox.one_look():
        for m in mb.live():
            with mbox.one_look():
                mb.unparsed_file(m, "raw")
    assert stats.count(mb.path) == 1


def test_the_server_answers_the_requests_of_one_recv_in_one_batch(serve_9p):
    """An inline server made with `batch` enters it around the requests
    of each recv: four whole-file reads sent in one write are answered in
    one batch, as they would be one by one."""
    entered: list[int] = []

    @contextlib.contextmanager
    def batch():
        entered.append(1)
        yield
    addr = serve_9p(lambda u, a: sample_tree(), inline=True, batch=batch)
    reqs = []
    for k in range(4):
        fid, tag = 10 + k, 20 + 4 * k
        reqs += [codec.Twalk(tag, 0, fid, ["hello"]), codec.Topen(tag + 1, fid, OREAD),
                 codec.Tread(tag + 2, fid, 0, 100), codec.Tclunk(tag + 3, fid)]
    with RawConn(addr) as c:
        c.start()
        before = len(entered)
        c.send(b"".join(codec.pack(m) for m in reqs))
        replies = [c.recv() for _ in reqs]
    assert [r.data for r in replies if isinstance(r, codec.Rread)] == [b"hello, world\n"] * 4
    assert len(entered) - before == 1


BAD_WALKS = [  # the names of a Twalk, as they travel, that do not decode
    b"\x02\x00\xff\xfe",                     # not UTF-8
    b"\x05\x00hello\x00",                    # a byte after the names
    b"\x09\x00hello",                        # a name past the message's end
]


@pytest.mark.parametrize("names", BAD_WALKS)
def test_a_whole_file_read_of_a_malformed_walk_answers_as_one_by_one(serve_9p, names):
    """A whole-file read (Twalk, Topen, Tread, Tclunk in one write) whose
    walk does not decode gets the replies the four get one at a time: the
    server's own decoding of the walk leaves it to the general path."""
    record = codec.pack_file_read((10, 11, 12, 13), 0, 5, 1, names, 100)
    addr = serve_9p(lambda u, a: sample_tree(), inline=True)
    with RawConn(addr) as one, RawConn(addr) as together:
        one.start()
        together.start()
        walk_end = 4 + int.from_bytes(record[:4], "little")
        rest = record[walk_end:]
        one.send(record[:walk_end])
        want = [codec.pack(one.recv())]
        for k in range(3):
            one.send(rest[[0, 12, 35][k]:[12, 35, 46][k]])
            want.append(codec.pack(one.recv()))
        together.send(record)
        assert [codec.pack(together.recv()) for _ in range(4)] == want
