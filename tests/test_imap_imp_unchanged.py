"""The .imp work a session skips when nothing asks for it (issue 8).

A view that opens a mailbox whose .imp numbers every message, in order,
as it would write it, does not format or rewrite it; one that re-reads a
file it wrote itself, for the same messages, does not merge it again.
Anything else -- a line Plan 9 would not write, a `r` flag a SELECT
drops, a uidnext too low, another session's change -- takes the full
merge and rewrite.  Views of one real upasfs, as test_imap_imp_behind.
"""
import os

import pytest

from tests.test_imap_imp_behind import _view
from upas.imap4d import imp


@pytest.fixture
def view(upasfs, monkeypatch):
    for name in ("user", "USER", "LOGNAME"):    # 9P attaches as the mail's owner
        monkeypatch.setenv(name, "glenda")

    return lambda: _view(upasfs)


def _file(upasfs) -> str:
    return upasfs.mbox + ".imp"


def _key(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _counting(monkeypatch, name: str) -> list:
    """Count the calls of imp.NAME made from now on."""
    calls: list = []
    real = getattr(imp, name)
    monkeypatch.setattr(imp, name, lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def test_an_exact_file_is_not_rewritten(upasfs, view, monkeypatch):
    first = view()
    path = _file(upasfs)
    before, key = open(path, "rb").read(), _key(path)
    formatted = _counting(monkeypatch, "format_rows")
    again = view()
    assert formatted == []                      # not even formatted to compare
    assert _key(path) == key and open(path, "rb").read() == before
    assert [(m.uid, m.flags) for m in again.msgs] == [(m.uid, m.flags - {"\\Recent"}) for m in first.msgs]


@pytest.mark.parametrize("spoil", ["junk line", "recent flag", "low uidnext"])
def test_a_file_select_would_change_is_rewritten_canonical(upasfs, view, spoil):
    view()
    path = _file(upasfs)
    good = open(path, "rb").read()
    f = imp.parse_imp(good)
    if spoil == "junk line":
        bad = good + b"not an entry\n"
    elif spoil == "recent flag":
        f.entries[0].flags = set(f.entries[0].flags) | {"\\Recent"}
        bad = imp.format_imp(f, recent=True)
    else:
        bad = good.replace(b" %010d\n" % f.uidnext, b" %010d\n" % 1, 1)
    with open(path, "wb") as out:
        out.write(bad)
    box = view()
    assert open(path, "rb").read() == good
    assert [m.uid for m in box.msgs] == [e.uid for e in f.entries]
    if spoil == "recent flag":
        assert "\\Recent" in box.msgs[0].flags


def test_a_view_sees_another_sessions_change_to_a_file_it_wrote(upasfs, view, monkeypatch):
    mine, other = view(), view()
    change = lambda m: setattr(m, "flags", m.flags | {"\\Flagged"}) or True     # noqa: E731
    mine.modify(mine.msgs[:1], change)                        # mine wrote the file
    other.modify(other.msgs[1:2], change)
    mine.flag_changes.clear()
    mine.check()
    assert mine.flag_changes == [mine.msgs[1]] and "\\Flagged" in mine.msgs[1].flags
    mine.modify(mine.msgs[2:3], change)             # mine writes the file again:
    parsed = _counting(monkeypatch, "parse_imp")
    mine.modify(mine.msgs[3:4], change)             # its own file: no merge
    assert parsed == []
    fresh = view()
    assert [("\\Flagged" in m.flags) for m in fresh.msgs[:5]] == [True, True, True, True, False]
    assert open(_file(upasfs), "rb").read() == imp.format_imp(imp.parse_imp(
        open(_file(upasfs), "rb").read()), recent=False)
