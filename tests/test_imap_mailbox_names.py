"""Modified UTF-7 and mailbox-name validity (docs/spec/servers.md §3.6, docs/decisions.md)."""
import pytest
from hypothesis import given, strategies as st

from upas.imap4d import mutf7, names


# RFC 3501 5.1.3's own example and a few checked by hand.
@pytest.mark.parametrize("text,wire", [
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("a&b", "a&-b"),
    ("&", "&-"),
    ("INBOX", "INBOX"),
    ("\x01", "&AAE-"),
    ("😀", "&2D3eAA-"),          # outside the BMP: a surrogate pair
])
def test_mutf7_known_values(text, wire):
    assert mutf7.encode(text) == wire
    assert mutf7.decode(wire) == text
    assert mutf7.decode(wire.encode("ascii")) == text


@pytest.mark.parametrize("bad", [
    "&Jjo",        # no terminating -
    "&U,BTF2-",    # non-zero left-over bits
    "&AGE-",       # 'a' shifted: printable ASCII must be itself
    "a\x7fb",      # raw byte outside 0x20-0x7e
    "caf\xe9",     # raw 8-bit
    "&A!E-",       # not a base64 character
    "&2D0-",       # a lone surrogate
    "&A-",         # a whole digit too few for a code unit
])
def test_mutf7_rejects(bad):
    with pytest.raises(mutf7.DecodeError):
        mutf7.decode(bad)


@given(st.text())
def test_mutf7_round_trip(text):
    wire = mutf7.encode(text)
    assert wire.isascii() and all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert mutf7.decode(wire) == text


@pytest.mark.parametrize("wire", ["INBOX", "inbox", "InBoX"])
def test_inbox_any_case_is_mbox(wire):
    n = names.parse(wire)
    assert n.path == "mbox" and n.inbox and not n.folder
    assert names.display("mbox") == "INBOX"


@pytest.mark.parametrize("wire,path,folder", [
    ("foo", "foo", False),
    ("foo/bar", "foo/bar", False),
    ("foo/", "foo", True),
    ("foo//./bar", "foo/bar", False),
    ("Entw&APw-rfe", "Entwürfe", False),
    ("Sent", "Sent", False),
    ("sub/mbox", "sub/mbox", False),   # only the top-level mbox is the inbox
])
def test_valid_names(wire, path, folder):
    n = names.parse(wire)
    assert (n.path, n.folder) == (path, folder)
    assert names.is_listable(path)


@pytest.mark.parametrize("wire", [
    "../bob/mbox", "/etc/passwd", "foo/../../x", "a/../b", "..",
    "mbox", "L.mbox", "foo/L.mbox", "mbox.imp", "foo/bar.imp", "foo.imp.kw", "foo.kw", "foo.save",
    "foo.upasfs", "foo.imap4d", "a/foo.pop3", "foo.mark", "foo.sort",
    "imap.subscribed", "imap.ok", "pipeto", "forward", "names", "headers",
    "pipefrom", "dead.letter", "imap-tmp.x", "mbox.tmp", "INBOX/sub", "inbox/x",
    "", "/", "-rf", "a\x01b".replace("\x01", "&AAE-"), "x" * 260, "&Jjo",
])
def test_invalid_names(wire):
    with pytest.raises(names.BadName):
        names.parse(wire)


def test_unicode_lookalike_of_inbox_is_not_inbox():
    # U+0131 (dotless i) upper-cases to I: it must not become the inbox
    n = names.parse(mutf7.encode("ınbox"))
    assert n.path == "ınbox" and not n.inbox


def test_listable_hides_bookkeeping_files():
    for path in ("mbox.imp", "L.mbox", "imap.subscribed", "pipeto", "x.tmp"):
        assert not names.is_listable(path)
    assert names.is_listable("mbox")
    assert names.box_path("glenda", "a/b") == "/mail/box/glenda/a/b"
    assert names.box_path("glenda", "") == "/mail/box/glenda"


@given(st.text(max_size=40))
def test_parse_never_escapes_the_mail_dir(text):
    """Whatever a client sends, a valid name is a clean relative path."""
    try:
        n = names.parse(mutf7.encode(text))
    except names.BadName:
        return
    comps = n.path.split("/")
    assert not n.path.startswith("/") and ".." not in comps and "" not in comps
    assert not any(c.startswith("L.") or c.endswith(".imp") for c in comps)
    assert n.path == "mbox" or comps[0] not in ("mbox", "imap.subscribed", "pipeto")


def test_list_patterns():
    from upas.imap4d import envelope, listing
    rx = listing.pattern_regex("a/%")
    assert rx.match("a/b") and not rx.match("a/b/c") and not rx.match("ab")
    assert listing.pattern_regex("a*").match("a/b/c")
    assert listing.pattern_regex("inbox", fold=True).match("INBOX")
    assert listing.pattern_regex("a.b").match("a.b") and not listing.pattern_regex("a.b").match("axb")
    assert listing.combine("foo/", "%") == "foo/%"
    for ref, pat in (("", "/etc"), ("", "../x"), ("a/", "../../x"), ("/", "%")):
        with pytest.raises(listing.PatternError):
            listing.combine(ref, pat)
    assert listing._start("a/b/%") == ("a/b", 1)
    assert listing._start("%/%") == ("", 2)
    assert listing._start("a/*")[0] == "a"
    assert envelope.quote('a"b\\c') == '"a\\"b\\\\c"'
