"""Issue 13, mailbox lists: DELETE of a folder whose only content is a lock
file, LIST patterns the grammar allows (RFC 3501 9: list-mailbox =
1*list-char / string), and LIST-EXTENDED (RFC 5258): \\NonExistent for a
subscribed name that is gone, RECURSIVEMATCH and CHILDINFO as in the
RFC's examples.  Real imap4d sessions over a real socket."""
from __future__ import annotations

import re

import pytest


@pytest.fixture
def c(imap_client):
    return imap_client


def ok(c, line: bytes) -> list[bytes]:
    r = c.cmd(line)
    assert r[-1].split(b" ")[1] == b"OK", r
    return r


def listed(lines: list[bytes]) -> dict[bytes, tuple[set[bytes], bool]]:
    """name -> (attributes, CHILDINFO ("SUBSCRIBED") given) of LIST lines."""
    out = {}
    for line in lines[:-1]:
        m = re.fullmatch(rb'\* LIST \(([^)]*)\) "/" "([^"]*)"( \("CHILDINFO" \("SUBSCRIBED"\)\))?\r\n',
                         line)
        assert m, line
        out[m.group(2)] = (set(m.group(1).split()), bool(m.group(3)))
    return out


# ---------------------------------------------------------------- DELETE

def test_delete_folder_left_with_only_its_lock_file(c, imap_preauth):
    folder = imap_preauth.box(name="work")
    ok(c, b"a CREATE work/child")
    ok(c, b"b SELECT work/child")                     # takes work/L.mbox
    ok(c, b"c APPEND work/child {12}\r\nSubject: x\r\n\r\n")
    ok(c, b"d CLOSE")
    ok(c, b"e DELETE work/child")
    assert sorted(p.name for p in folder.iterdir()) == ["L.mbox"]   # the case at hand
    assert c.cmd(b"f DELETE work") == [b"f OK work DELETE completed\r\n"]
    assert not folder.exists()
    assert b"work" not in b"".join(c.cmd(b'g LIST "" *'))


def test_delete_folder_with_a_mailbox_still_refused(c, imap_preauth):
    ok(c, b"a CREATE keep/box")
    ok(c, b"b SELECT keep/box")
    ok(c, b"c CLOSE")
    assert c.cmd(b"d DELETE keep")[-1].startswith(b"d NO ")
    assert imap_preauth.box(name="keep/box").is_file()


# ---------------------------------------------------------------- patterns

def test_any_pattern_the_grammar_allows_answers_ok(c):
    # every list-char that is not a letter, unquoted (ATOM-CHAR, list-wildcards,
    # resp-specials): no mailbox matches, and that is an OK
    assert c.cmd(b"a LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*") == [b"a OK LIST completed\r\n"]
    assert c.cmd(b'b LIST "" "&"') == [b"b OK LIST completed\r\n"]
    assert c.cmd(b'c LIST "" &Jjo') == [b"c OK LIST completed\r\n"]
    assert c.cmd(b'd LSUB "" &-x&') == [b"d OK LSUB completed\r\n"]
    assert c.cmd(b'e LIST "&" %')[-1] == b"e OK LIST completed\r\n"
    # a valid encoding still names what it encodes
    ok(c, b"f CREATE Entw&APw-rfe")
    assert c.cmd(b'g LIST "" Entw&APw-*') == [b'* LIST (\\Noinferiors \\Marked) "/" "Entw&APw-rfe"\r\n',
                                              b"g OK LIST completed\r\n"]


# ---------------------------------------------------------------- LIST-EXTENDED

def _fruit(c):
    """RFC 5258 5's example hierarchy (examples 2-4), as folders and
    mailboxes: Fruit/{Apple,Banana,Peach}, Tofu, Vegetable/{Broccoli,Corn};
    subscribed Fruit/Banana, Fruit/Peach, Vegetable, Vegetable/Broccoli;
    then Fruit/Peach deleted."""
    for box in (b"Fruit/Apple", b"Fruit/Banana", b"Fruit/Peach", b"Tofu",
                b"Vegetable/Broccoli", b"Vegetable/Corn"):
        ok(c, b"a CREATE " + box)
    for box in (b"Fruit/Banana", b"Fruit/Peach", b"Vegetable", b"Vegetable/Broccoli"):
        ok(c, b"b SUBSCRIBE " + box)
    ok(c, b"c DELETE Fruit/Peach")


def test_rfc5258_example2_subscribed_nonexistent(c):
    _fruit(c)
    got = listed(ok(c, b'd LIST (SUBSCRIBED) "" "*"'))
    # (INBOX is subscribed in the test mail, as in Cyrus's rendering of the example)
    assert got.keys() == {b"INBOX", b"Fruit/Banana", b"Fruit/Peach", b"Vegetable",
                          b"Vegetable/Broccoli"}
    assert all(b"\\Subscribed" in a for a, _ in got.values())
    # "* LIST (\Subscribed \NonExistent) "/" "Fruit/Peach"": gone, still subscribed
    assert got[b"Fruit/Peach"] == ({b"\\NonExistent", b"\\Subscribed"}, False)
    assert b'* LIST (\\NonExistent \\Subscribed) "/" "Fruit/Peach"\r\n' in c.cmd(
        b'e LIST (SUBSCRIBED) "" "Fruit/*"')
    # LSUB keeps Plan 9's \Noselect for it
    assert b'* LSUB (\\Noselect) "/" "Fruit/Peach"\r\n' in c.cmd(b'f LSUB "" "Fruit/*"')


def test_rfc5258_recursivematch_percent(c):
    """`LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)`: Fruit is
    not subscribed but has a subscribed child that % does not reach:
    CHILDINFO; Vegetable is subscribed and has such a child: \\Subscribed
    and CHILDINFO; Tofu: neither, not listed."""
    _fruit(c)
    got = listed(ok(c, b'd LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)'))
    assert got.keys() == {b"INBOX", b"Fruit", b"Vegetable"}
    assert got[b"INBOX"][1] is False
    assert b"\\Subscribed" not in got[b"Fruit"][0] and got[b"Fruit"][1]
    assert b"\\Subscribed" in got[b"Vegetable"][0] and got[b"Vegetable"][1]
    assert b"\\HasChildren" in got[b"Fruit"][0] and b"\\HasChildren" in got[b"Vegetable"][0]


def test_rfc5258_example9_recursivematch_star2(c):
    """RFC 5258 5, example 9 (D03): with pattern "*2", foo2 (not subscribed)
    and eps2 (subscribed) get CHILDINFO, since foo2/bar1 and eps2/mamba are
    subscribed but do not match "*2"; baz2 is not listed: its subscribed
    children all match and are listed themselves.  (INBOX does not match.)"""
    for box in (b"foo2/bar1", b"foo2/bar2", b"baz2/bar2", b"baz2/bar22", b"baz2/bar222",
                b"eps2/mamba", b"qux2/bar2"):
        ok(c, b"a CREATE " + box)
    for box in (b"foo2/bar1", b"foo2/bar2", b"baz2/bar2", b"baz2/bar22", b"baz2/bar222",
                b"eps2", b"eps2/mamba", b"qux2/bar2"):
        ok(c, b"b SUBSCRIBE " + box)
    got = listed(ok(c, b'D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"'))
    want = {b"foo2": (False, True), b"foo2/bar2": (True, False), b"baz2/bar2": (True, False),
            b"baz2/bar22": (True, False), b"baz2/bar222": (True, False),
            b"eps2": (True, True), b"qux2/bar2": (True, False)}
    assert {n: (b"\\Subscribed" in a, ci) for n, (a, ci) in got.items()} == want


def test_recursivematch_needs_a_base_option_and_childinfo_needs_recursivematch(c):
    _fruit(c)
    assert c.cmd(b'a LIST (RECURSIVEMATCH) "" %')[-1].startswith(b"a BAD ")
    assert not any(b"CHILDINFO" in l for l in ok(c, b'b LIST (SUBSCRIBED) "" %'))
