"""A STORE on one message rewrites its flags in the .imp in place (issue
16; imp.flags_edit): the 8-byte flags field of its line, one write and an
fdatasync, instead of the whole file by tmp + fsync + rename.  The file
comes out byte for byte as the whole rewrite would make it, in Plan 9's
format.  A change of more lines is written whole, so that a crash leaves
the old file or the new one (a cut write of many fields would leave a
STORE done for some of its messages: neither).  imp.flags_span still
finds the lines a change of flags spans, for the MODSEQ record's log.
"""
import hashlib
import os

from tests.test_imap_selectmark import _view
from upas.imap4d import imp


def _file(flags: dict[int, set[str]], n: int = 300, uidnext: int = 301) -> bytes:
    rows = [(hashlib.sha1(b"%d" % i).hexdigest(), i + 1, frozenset(flags.get(i, ())))
            for i in range(n)]
    return imp.format_rows(7, uidnext, rows, False)


def test_the_edit_is_the_flags_field_of_one_line():
    old = _file({})
    for k, flags in ((0, {"\\Seen"}), (150, {"\\Deleted", "\\Flagged"}), (299, {"\\Draft"})):
        new = _file({k: flags})
        at, field = imp.flags_edit(old, new)
        assert len(field) == 8 and field == imp.format_flags(flags, False).encode()
        patched = bytearray(old)
        patched[at:at + 8] = field
        assert bytes(patched) == new
    assert imp.flags_edit(old, _file({}, uidnext=302)) is None                  # the header
    assert imp.flags_edit(old, old) is None
    assert imp.flags_edit(old, _file({}, n=301)) is None                        # a line more
    other = old.replace(hashlib.sha1(b"5").hexdigest().encode(), b"0" * 40)
    assert imp.flags_edit(old, other) is None                                   # a digest


def test_an_edit_of_many_lines_is_written_whole():
    """Lines 3, 4, 40 and 41 change: the span is lines 3 to 41 (the MODSEQ
    log's), and no in-place edit is offered for it."""
    old = _file({3: {"\\Flagged"}, 40: {"\\Seen", "\\Recent"}}, n=60)
    change = {3: {"\\Seen"}, 4: {"\\Deleted", "\\Seen"}, 40: {"\\Seen"}, 41: {"\\Answered"}}
    new = _file(change, n=60)
    assert imp.flags_span(old, new) == (3, 42)
    assert imp.flags_edit(old, new) is None
    assert imp.flags_span(old, old) == ()
    # anything but flags: no span at all
    assert imp.flags_span(old, new.replace(b"0000000042", b"0000000099")) is None
    assert imp.flags_span(old, new.replace(b"s-------", b"S-------", 1)) is None


def test_a_store_on_one_message_writes_in_place(upasfs, monkeypatch):
    box = _view(upasfs, monkeypatch)
    path = upasfs.mbox + ".imp"
    ino = os.stat(path).st_ino
    m = box.msgs[2]
    box.modify([m], lambda x: setattr(x, "flags", x.flags | {"\\Flagged"}) or True)
    assert os.stat(path).st_ino == ino                  # the same file, edited
    entries = imp.parse_imp(open(path, "rb").read()).entries
    assert "\\Flagged" in entries[2].flags and entries[2].uid == m.uid
    assert open(path, "rb").read() == box.state.known[0]   # what the rewrite makes
    fresh = _view(upasfs, monkeypatch)
    assert [(x.uid, set(x.flags)) for x in fresh.msgs] == \
        [(x.uid, set(x.flags) - {"\\Recent"}) for x in box.msgs]
    box.modify(box.msgs[:2], lambda x: setattr(x, "flags", x.flags | {"\\Seen"}) or True)
    assert os.stat(path).st_ino != ino                  # two lines: replaced whole
    assert open(path, "rb").read() == box.state.known[0]
    ino = os.stat(path).st_ino
    box.modify(box.msgs, lambda x: setattr(x, "flags", x.flags | {"\\Answered"}) or True)
    assert os.stat(path).st_ino != ino and open(path, "rb").read() == box.state.known[0]


def test_the_flags_columns_and_the_changed_lines():
    """with_flags writes each line's field from its flags (no `r`, as the
    whole rewrite); changed_lines finds another session's STORE by the
    lines whose field differs (issue 16: both read the file as columns)."""
    flags = {0: {"\\Seen", "\\Recent"}, 7: {"\\Answered", "\\Draft"}, 299: {"\\Deleted"}}
    old = _file({})
    new = imp.with_flags(old, [frozenset(flags.get(k, ())) for k in range(300)])
    assert new == _file({k: f - {"\\Recent"} for k, f in flags.items()})
    assert new[imp.BODY_AT + 52:imp.BODY_AT + 61] == b"s-------\n"
    assert imp.with_flags(old, [frozenset()] * 299) is None          # a line short
    assert imp.changed_lines(old, new) == [(0, {"\\Seen"}), (7, {"\\Answered", "\\Draft"}),
                                           (299, {"\\Deleted"})]
    assert imp.changed_lines(old, _file({150: {"\\Seen"}})) == [(150, {"\\Seen"})]
    assert imp.changed_lines(old, old) == []
    assert imp.changed_lines(old, _file({}, uidnext=302)) is None     # the header
