"""imap4d parser, without sockets: framing, literals, limits, the strict
grammar and the argument parsers (docs/spec/servers.md §3.3)."""
import pytest
from hypothesis import given, settings, strategies as st

from upas.imap4d import parser as p


def frame(data: bytes, **kw):
    f = p.Framer(**kw)
    f.feed(data)
    return f, f.next_event()


def reader(line: bytes) -> p.Reader:
    _, ev = frame(line + b"\r\n")
    assert isinstance(ev, p.CommandEvent)
    r = p.Reader(ev.parts)
    p.command_head(r)
    r.sp()
    return r


def error(fn, line: bytes) -> str:
    with pytest.raises(p.ParseError) as e:
        r = reader(line)
        fn(r)
        r.end()
    return e.value.msg


# ------------------------------------------------------------ framing

def test_command_needs_whole_line():
    f = p.Framer()
    f.feed(b"a NOOP")
    assert f.next_event() is None
    f.feed(b"\r\n")
    assert f.next_event() == p.CommandEvent([b"a NOOP"])


def test_bare_lf_ends_a_line_too():
    _, ev = frame(b"a NOOP\n")
    assert ev.parts == [b"a NOOP"]


def test_sync_literal_waits_for_acceptance():
    f, ev = frame(b"a SELECT {3}\r\n")
    assert ev == p.LiteralEvent([b"a SELECT {3}"], 3, True)
    assert f.next_event() is ev            # still undecided
    f.accept()
    assert f.next_event() is None          # the 3 bytes are not there yet
    f.feed(b"f")
    assert f.next_event() is None
    f.feed(b"oo\r\n")
    ev = f.next_event()
    assert ev.parts == [b"a SELECT {3}", b"foo", b""]
    r = p.Reader(ev.parts)
    assert p.command_head(r) == ("a", "SELECT")
    r.sp()
    assert r.astring() == b"foo"
    r.end()


def test_literal_plus_and_refusal_discards_its_bytes():
    f, ev = frame(b"a APPEND x {5+}\r\nhello more\r\nb NOOP\r\n")
    assert ev.sync is False and ev.size == 5
    f.refuse()
    assert f.next_event() == p.CommandEvent([b"b NOOP"])


def test_refused_sync_literal_drops_command_only():
    f, ev = frame(b"a SELECT {3}\r\n")
    f.refuse()
    f.feed(b"b NOOP\r\n")
    assert f.next_event() == p.CommandEvent([b"b NOOP"])


def test_literal_data_may_hold_crlf_and_braces():
    f, ev = frame(b"a LOGIN {4}\r\n")
    f.accept()
    f.feed(b"a\r\n}  {2}\r\nxy\r\n")
    ev = f.next_event()
    assert ev.parts == [b"a LOGIN {4}", b"a\r\n}", b"  {2}"]
    f.accept()
    ev = f.next_event()
    assert ev.parts == [b"a LOGIN {4}", b"a\r\n}", b"  {2}", b"xy", b""]


def test_overlong_line_is_dropped_whole():
    f, ev = frame(b"a " + b"x" * 200, max_line=100)
    assert isinstance(ev, p.TooLongEvent) and ev.prefix.startswith(b"a xx")
    f.feed(b"yyy\r\nb NOOP\r\n")
    assert f.next_event() == p.CommandEvent([b"b NOOP"])


def test_huge_literal_number_is_not_a_literal():
    _, ev = frame(b"a SELECT {99999999999}\r\n")
    assert isinstance(ev, p.CommandEvent)
    r = p.Reader(ev.parts)
    p.command_head(r)
    r.sp()
    with pytest.raises(p.ParseError) as e:
        r.astring()
    assert e.value.msg == "number out of range"


# ------------------------------------------------------------ tokens

def test_tag_and_command_rules():
    """The session's head parser: a bad tag and a bad command name are
    told apart (`* BAD empty command line` vs `a BAD no command`)."""
    r = p.Reader([b"A1.b] SELECT x"])
    assert p.command_head(r) == ("A1.b]", "SELECT")
    # `*` ends a tag (RFC 3501 tag: no list-wildcards): then no space follows
    for bad, tag in ((b"+a NOOP", None), (b"(a NOOP", None), (b"a*b NOOP", "a"), (b' NOOP', None)):
        with pytest.raises(p.HeadError) as e:
            p.command_head(p.Reader([bad]))
        assert e.value.tag == tag
    with pytest.raises(p.HeadError) as e:      # two spaces
        p.command_head(p.Reader([b"a  NOOP"]))
    assert e.value.tag == "a" and isinstance(e.value, p.ParseError)
    r = p.Reader([b"a UID fetch 1 FLAGS"])
    assert p.command_head(r) == ("a", "UID") and p.uid_command(r) == "fetch"
    with pytest.raises(p.ParseError):
        p.uid_command(p.Reader([b""]))


def test_quoted_strings():
    assert reader(b'a X "a\\"b\\\\c"').astring() == b'a"b\\c'
    assert error(lambda r: r.astring(), b'a X "bad\\n"') == "bad syntax"
    assert error(lambda r: r.astring(), b'a X "caf\xc3\xa9"') == "bad syntax"
    assert error(lambda r: r.astring(), b'a X "open') == "bad syntax"


def test_numbers():
    assert reader(b"a X 4294967295").number() == 4294967295
    assert error(lambda r: r.number(), b"a X 4294967296") == "number out of range"
    assert error(lambda r: r.number(nonzero=True), b"a X 0") == "bad syntax"


def test_trailing_garbage_and_double_space():
    r = reader(b"a X foo ")
    r.astring()
    with pytest.raises(p.ParseError):
        r.end()


# ------------------------------------------------------------ sets

def test_sequence_sets():
    assert reader(b"a X 1:3,5,7:*").seqset() == [(1, 3), (5, 5), (7, p.STAR)]
    assert reader(b"a X 3:1").seqset() == [(1, 3)]            # RFC 3501: either order
    assert reader(b"a X *").seqset() == [(p.STAR, p.STAR)]
    assert error(lambda r: r.seqset(), b"a X 0") == "bad syntax"
    assert error(lambda r: r.seqset(), b"a X 1:0") == "bad syntax"
    assert error(lambda r: r.seqset(), b"a X 1,,2") == "bad syntax"
    assert error(lambda r: r.seqset(), b"a X 1:99999999999") == "number out of range"


def test_huge_set_is_ranges_not_numbers():
    r = reader(b"a X 1:4294967295")
    assert r.seqset() == [(1, 4294967295)]


# ------------------------------------------------------------ flags

def test_flags():
    assert reader(b"a X (\\seen \\DELETED $Junk)").flag_list() == ["\\Seen", "\\Deleted", "$Junk"]
    assert reader(b"a X ()").flag_list() == []
    assert reader(b"a X \\Flagged \\Draft").flag_list() == ["\\Flagged", "\\Draft"]
    assert error(lambda r: r.flag_list(), b"a X (\\Bogus)") == "flag not supported"
    assert error(lambda r: r.flag_list(), b"a X (\\Seen") == "bad syntax"


# ------------------------------------------------------------ fetch

def atts(line: bytes):
    r = reader(line)
    a = p.fetch_atts(r)
    r.end()
    return a


def test_fetch_macros_and_lists():
    assert [a.name for a in atts(b"a X ALL")] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]
    assert [a.name for a in atts(b"a X fast")] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    assert [a.name for a in atts(b"a X FULL")][-1] == "BODY"
    assert [a.name for a in atts(b"a X (uid flags)")] == ["UID", "FLAGS"]


def test_fetch_sections():
    a, = atts(b"a X BODY.PEEK[1.2.HEADER.FIELDS.NOT (To Cc)]<10.20>")
    assert a == p.FetchAtt("BODY[]", p.Section((1, 2), "HEADER.FIELDS.NOT", ("To", "Cc")), (10, 20), True)
    assert a.section.label() == '1.2.HEADER.FIELDS.NOT ("To" "Cc")'
    a, = atts(b"a X BODY[]")
    assert a.section == p.Section() and not a.peek
    a, = atts(b"a X BODY[3.MIME]")
    assert a.section.label() == "3.MIME"
    a, = atts(b"a X body[text]<0.10>")
    assert a.section.label() == "TEXT" and a.partial == (0, 10)


def test_fetch_errors():
    assert error(p.fetch_atts, b"a X (FLAGS $Junk)") == "illegal fetch attribute"
    assert error(p.fetch_atts, b"a X BOGUS") == "illegal fetch attribute"
    assert error(p.fetch_atts, b"a X BODY[MIME]") == "illegal fetch section text"
    assert error(p.fetch_atts, b"a X BODY[FOO]") == "illegal fetch section text"
    assert error(p.fetch_atts, b"a X BODY[0]") == "illegal fetch section text"
    assert error(p.fetch_atts, b"a X BODY[1]<0.0>") == "bad syntax"
    assert error(p.fetch_atts, b"a X (FLAGS") == "bad syntax"
    assert error(p.fetch_atts, b"a X ((FLAGS)") == "illegal fetch attribute"
    assert error(p.fetch_atts, b"a X ()") == "bad syntax"


# ------------------------------------------------------------ search

def prog(line: bytes):
    r = reader(line)
    charset, key, ret = p.search_program(r)
    r.end()
    assert ret is None
    return charset, key


def test_search_return_saved_and_within():
    """RFC 4731's RETURN (`RETURN ()` is ALL), RFC 5182's `$`, RFC 5032's
    OLDER and YOUNGER."""
    r = reader(b'a X RETURN (MIN count SAVE) CHARSET UTF-8 $ YOUNGER 60 OLDER 5')
    charset, k, ret = p.search_program(r)
    r.end()
    assert (charset, ret) == ("UTF-8", ("MIN", "COUNT", "SAVE"))
    assert [(x.op, x.args) for x in k.kids] == [
        ("SEQ", (p.SAVED_SET,)), ("WITHIN", (False, 60)), ("WITHIN", (True, 5))]
    assert p.search_program(reader(b"a X RETURN () ALL"))[2] == ("ALL",)
    for bad in (b"a X RETURN (PARTIAL) ALL", b"a X RETURN MIN ALL", b"a X OLDER 0",
                b"a X YOUNGER"):
        with pytest.raises(p.ParseError):
            r = reader(bad)
            p.search_program(r)
            r.end()


def test_search_keys():
    cs, k = prog(b'a X CHARSET utf-8 OR FROM bob (SUBJECT "hi there" SINCE 1-Jan-2020) NOT 2:3')
    assert cs == "utf-8"
    orr, nott = k.kids
    assert orr.op == "OR" and orr.kids[0] == p.Key("ADDR", ("from", "bob"))
    assert orr.kids[1].kids[1] == p.Key("DATE", (">=", (2020, 1, 1)))
    assert nott == p.Key("NOT", kids=[p.Key("SEQ", ([(2, 3)],))])
    _, k = prog(b'a X UID 5:* LARGER 100 HEADER X-Foo "" KEYWORD $Junk UNKEYWORD \\Seen NEW')
    ops = [x.op for x in k.kids]
    assert ops == ["UID", "SIZE", "HEADER", "KEYWORD", "FLAG", "AND"]
    assert k.kids[4].args == ("\\Seen", False)


def test_search_errors():
    assert error(p.search_program, b"a X FOO") == "illegal search key"
    assert error(p.search_program, b"a X SINCE 32-Jan-2020") == "bad date format"
    assert error(p.search_program, b"a X SINCE 1-Foo-2020") == "bad date format"
    assert error(p.search_program, b"a X (ALL") == "bad syntax"
    assert error(p.search_program, b"a X OR ALL") == "bad syntax"


def test_dates_quoted_and_date_time():
    _, k = prog(b'a X ON "5-Mar-2021"')
    assert k.kids[0].args == ("=", (2021, 3, 5))
    r = reader(b'a X " 2-Jan-2006 15:04:05 -0500"')
    assert r.date_time() == 1136232245
    with pytest.raises(p.ParseError) as e:
        reader(b'a X "2-Jan-2006 25:04:05 -0500"').date_time()
    assert e.value.msg == "illegal date format"


# ------------------------------------------------------------ robustness

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_parsers(data):
    f = p.Framer(max_line=100, max_literal=50)
    f.feed(data + b"\r\n")
    for _ in range(50):
        ev = f.next_event()
        if ev is None:
            break
        if isinstance(ev, p.LiteralEvent):
            (f.accept if ev.size < 20 else f.refuse)()
            continue
        if isinstance(ev, p.CommandEvent):
            for fn in (p.fetch_atts, p.search_program, lambda r: r.flag_list(), lambda r: r.seqset()):
                r = p.Reader(ev.parts)
                try:
                    p.command_head(r)
                    r.sp()
                    fn(r)
                    r.end()
                except p.ParseError as e:
                    assert e.msg


def test_every_search_key_the_parser_builds_has_a_matcher():
    """search.KEYS is the table SEARCH evaluates keys by: each key of RFC
    3501 6.4.4 parses to an op that is in it."""
    from upas.imap4d import search
    program = (b"ALL ANSWERED BCC a BEFORE 1-Jan-2000 BODY b CC c DELETED DRAFT "
               b"FLAGGED FROM f HEADER h v KEYWORD k LARGER 1 NEW NOT SEEN OLD "
               b"ON 1-Jan-2000 OR SEEN RECENT SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 "
               b"SENTSINCE 1-Jan-2000 SINCE 1-Jan-2000 SMALLER 9 SUBJECT s TEXT t TO t "
               b"UID 1:* UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD k UNSEEN 1,2 (SEEN) "
               b"OLDER 5 YOUNGER 5 $")
    _, key, _ = p.search_program(p.Reader([program]))
    ops, todo = set(), [key]
    while todo:
        k = todo.pop()
        ops.add(k.op)
        todo += k.kids
    assert ops <= set(search.KEYS)
    assert {"ADDR", "DATE", "SENTDATE", "SIZE", "SEQ", "UID", "KEYWORD", "TEXT"} <= ops
