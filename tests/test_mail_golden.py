"""The mail layer alone (no 9P) against the golden upas/fs output: every
file of every message and part, the part tree and the object ids."""
from __future__ import annotations

import pytest

from tests.fixtures.upasfs import GOLDEN
from upas.mail import mbox, mime

FS = GOLDEN / "fs" / "mbox"
pytestmark = pytest.mark.skipif(not FS.is_dir(), reason="golden data missing")


@pytest.fixture
def box(tmp_path):
    path = tmp_path / "mbox"
    path.write_bytes((GOLDEN / "input" / "mbox").read_bytes())
    return mbox.open_mailbox(str(path), "mbox", mime.Ids())


def _check(part: mime.Part, d, seen: list) -> None:
    want_parts = sorted(p.name for p in d.iterdir() if p.is_dir())
    assert [p.name for p in part.parts] == want_parts
    before = part.length("body")
    assert before == len(part.file("body"))            # undecoded until opened
    part.open_body()
    for name in mime.FILES:
        assert part.file(name) == (d / name).read_bytes(), f"{d}/{name}"
        seen.append(name)
    for p in part.parts:
        _check(p, d / p.name, seen)


def test_every_file_of_every_message_and_part(box):
    seen: list[str] = []
    msgs = box.live()
    assert [m.name for m in msgs] == ["1", "2", "3", "4", "5"]
    for m in msgs:
        _check(box.parsed(m), FS / m.name, seen)
    assert len(seen) == 13 * 25


def test_object_ids_follow_upas_fs(box):
    # mailbox 1, its root 2, then messages; a multipart level numbers all
    # its children before descending (qid paths in _stat.txt).
    ids = {m.name: [p.id for p in box.parsed(m).walk()] for m in box.live()}
    assert ids == {"1": [3], "2": [4, 5, 6, 7], "3": [8],
                   "4": [9, 10, 12, 13, 11, 14], "5": [15]}
    assert box.ids.last == 16          # the read that found EOF took one


def test_digest_covers_the_stored_message(box):
    data = (GOLDEN / "input" / "mbox").read_bytes()
    import hashlib
    m1 = box.live()[0]
    stored = data[m1.start:m1.end]
    assert stored.startswith(b"From rob@") and not stored.endswith(b"\n\n")
    assert m1.digest == hashlib.sha1(stored).hexdigest().encode()
    assert (FS / "1" / "digest").read_bytes() == m1.digest


def test_base64_body_length_changes_when_opened(box):
    part = box.parsed(box.live()[1]).parts[1]           # report.bin
    assert part.length("body") == len(part.file("rawbody")) == 353
    part.open_body()
    assert part.length("body") == 261
