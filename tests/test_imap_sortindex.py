"""SORT's and THREAD's index, `<mailbox>.sort.imp` (imap4d/sortindex.py;
docs/decisions.md): a warm SORT or THREAD of the whole mailbox answers
from it; whatever the file is (absent, cut, foreign, of other messages)
the answers are the RFC's, as tests/test_imap_sort.py checks them
without it.  Real imap4d sessions over a shared upasfs."""
from __future__ import annotations

import json
import os
import zlib

import pytest

from tests.fixtures.imap import put_box, select
from tests.mboxgen import mbox, message
from upas.imap4d import sortindex

Y1995 = 790_000_000


@pytest.fixture
def box(imap_preauth):
    """A mailbox of three messages whose sent dates order them 3 1 2,
    and whose References make 2 a reply to 1."""
    put_box(imap_preauth, "keys", [
        message(1, "b topic", sent=Y1995 + 200),
        message(2, "Re: b topic", sent=Y1995 + 300, refs="<1@example.org>"),
        message(3, "a topic", sent=Y1995 + 100)])
    return imap_preauth.box(name="keys")


def _session(srv, name: str = "keys"):
    c = srv.connect()
    select(c, name)
    return c


def _index(path) -> bytes:
    return (path.parent / (path.name + sortindex.SUFFIX)).read_bytes()


def _set_column(path, field: str, values) -> None:
    """Rewrite one line of the index file (a column, or a kept answer)
    with its CRC right (as our own writer would have written other
    values)."""
    file = path.parent / (path.name + sortindex.SUFFIX)
    lines = file.read_bytes().split(b"\n")
    text = json.dumps(values).encode()
    lines = [b"%s %08x %s" % (field.encode(), zlib.crc32(text), text)
             if ln.startswith(field.encode() + b" ") else ln for ln in lines]
    file.write_bytes(b"\n".join(lines))


def test_sort_writes_the_index_and_a_new_session_answers_from_it(imap_preauth, box):
    c = _session(imap_preauth)
    assert c.cmd(b"a SORT (DATE) UTF-8 ALL")[0] == b"* SORT 3 1 2\r\n"
    f = box.parent / (box.name + sortindex.SUFFIX)
    assert f.stat().st_mode & 0o777 == 0o600
    assert f.read_bytes().startswith(b"imap4d sort index 1 ")
    listed = b"".join(c.cmd(b'l LIST "" "*"'))
    assert b"keys" in listed and b"sort" not in listed
    c.close()
    # the dates as the file holds them are what a new session sorts by:
    # made to say the opposite, they give the opposite order
    _set_column(box, "date", [1, 0, 2])
    c = _session(imap_preauth)
    assert c.cmd(b"b SORT (DATE) UTF-8 ALL")[0] == b"* SORT 2 1 3\r\n"
    c.close()


def test_thread_and_every_key_from_the_index_match_the_computed(imap_preauth, box):
    keys = [b"ARRIVAL", b"DATE", b"SUBJECT", b"FROM", b"TO", b"CC", b"DISPLAYFROM",
            b"DISPLAYTO", b"SIZE", b"REVERSE DATE"]
    cold = _session(imap_preauth)        # computed, then written
    first = [cold.cmd(b"k SORT (%s) UTF-8 ALL" % k)[0] for k in keys]
    threads = [cold.cmd(b"t THREAD %s UTF-8 ALL" % a)[0] for a in (b"REFERENCES", b"ORDEREDSUBJECT")]
    cold.close()
    assert threads[0] == b"* THREAD (3)(1 2)\r\n"
    warm = _session(imap_preauth)
    assert [warm.cmd(b"k SORT (%s) UTF-8 ALL" % k)[0] for k in keys] == first
    assert [warm.cmd(b"t THREAD %s UTF-8 ALL" % a)[0]
            for a in (b"REFERENCES", b"ORDEREDSUBJECT")] == threads
    # a subset is found in the index by digest
    assert warm.cmd(b"s SORT (DATE) UTF-8 1:2")[0] == b"* SORT 1 2\r\n"
    assert warm.cmd(b"u UID THREAD REFERENCES UTF-8 2:3")[0] == b"* THREAD (3)(2)\r\n"
    warm.close()


@pytest.mark.parametrize("damage", ["cut", "foreign", "crc"])
def test_a_damaged_index_is_not_used_and_is_made_again(imap_preauth, box, damage):
    c = _session(imap_preauth)
    assert c.cmd(b"a SORT (DATE) UTF-8 ALL")[0] == b"* SORT 3 1 2\r\n"
    c.close()
    f = box.parent / (box.name + sortindex.SUFFIX)
    good = f.read_bytes()
    bad = {"cut": good[:len(good) // 2], "foreign": b"not ours\n",
           "crc": good.replace(b"[%d," % (Y1995 + 200), b"[%d," % (Y1995 + 999))}[damage]
    assert bad != good
    f.write_bytes(bad)
    c = _session(imap_preauth)
    assert c.cmd(b"b SORT (DATE) UTF-8 ALL")[0] == b"* SORT 3 1 2\r\n"
    c.close()
    assert f.read_bytes() == good


def test_new_mail_is_summarized_and_added(imap_preauth, box):
    c = _session(imap_preauth)
    assert c.cmd(b"a SORT (DATE) UTF-8 ALL")[0] == b"* SORT 3 1 2\r\n"
    c.close()
    with open(box, "ab") as f:
        f.write(mbox([message(4, "first of all", sent=Y1995)]))
    c = _session(imap_preauth)
    assert c.cmd(b"b SORT (DATE) UTF-8 ALL")[0] == b"* SORT 4 3 1 2\r\n"
    c.close()
    assert _index(box).split(b"\n")[1] == b"4"
    c = _session(imap_preauth)
    assert c.cmd(b"c THREAD REFERENCES UTF-8 ALL")[0] == b"* THREAD (4)(3)(1 2)\r\n"
    c.close()


def test_rename_and_delete_take_the_index_along(imap_preauth, box):
    c = _session(imap_preauth)
    c.cmd(b"a SORT (DATE) UTF-8 ALL")
    c.cmd(b"u UNSELECT")
    assert c.cmd(b"r RENAME keys other")[-1].startswith(b"r OK")
    d = box.parent
    assert not os.path.exists(d / ("keys" + sortindex.SUFFIX))
    assert os.path.exists(d / ("other" + sortindex.SUFFIX))
    assert c.cmd(b"d DELETE other")[-1].startswith(b"d OK")
    assert not os.path.exists(d / ("other" + sortindex.SUFFIX))
    c.close()


def test_a_thread_of_the_whole_mailbox_is_kept(imap_preauth, box):
    c = _session(imap_preauth)
    c.cmd(b"d STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.cmd(b"e EXPUNGE")                   # UIDs 2 and 3 left, at 1 and 2
    want = [c.cmd(b"a THREAD REFERENCES UTF-8 ALL")[0],
            c.cmd(b"b UID THREAD REFERENCES UTF-8 ALL")[0]]
    assert want == [b"* THREAD (2)(1)\r\n", b"* THREAD (3)(2)\r\n"]
    c.close()
    assert b"\nthread:REFERENCES " in _index(box)
    c = _session(imap_preauth)               # from the kept answer, both numberings
    assert [c.cmd(b"a THREAD REFERENCES UTF-8 ALL")[0],
            c.cmd(b"b UID THREAD REFERENCES UTF-8 ALL")[0]] == want
    c.close()
    # the kept answer is what is sent (in places of the listed messages)
    _set_column(box, "thread:REFERENCES", "(1 2)")
    c = _session(imap_preauth)
    assert c.cmd(b"a THREAD REFERENCES UTF-8 ALL")[0] == b"* THREAD (1 2)\r\n"
    assert c.cmd(b"b UID THREAD REFERENCES UTF-8 ALL")[0] == b"* THREAD (2 3)\r\n"
    # a subset is threaded anew
    assert c.cmd(b"c THREAD REFERENCES UTF-8 1")[0] == b"* THREAD (1)\r\n"
    c.close()

