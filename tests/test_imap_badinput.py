"""Bad input over a real socket: the spec's BAD/NO texts, the session
carries on, and no mailbox file is touched."""
import pytest


@pytest.fixture
def sel(imap_preauth):
    c = imap_preauth.connect()
    c.cmd(b"s SELECT INBOX")
    before = {p.name: p.read_bytes() for p in imap_preauth.box(name="").iterdir() if p.is_file()}
    yield c
    after = {p.name: p.read_bytes() for p in imap_preauth.box(name="").iterdir() if p.is_file()}
    assert after == before, "bad input changed a mailbox file"


def alive(c):
    assert c.cmd(b"z NOOP")[-1] == b"z OK NOOP completed\r\n"


SYNTAX_ERRORS = [
    (b"a FETCH 1 (FLAGS", b"a BAD FETCH bad syntax"),
    (b"a FETCH 1 FLAGS)", b"a BAD FETCH bad syntax"),
    (b"a FETCH 1 (FLAGS BOGUS)", b"a BAD FETCH illegal fetch attribute"),
    (b"a FETCH 1 BODY[4.XYZ]", b"a BAD FETCH illegal fetch section text"),
    (b"a FETCH 0 FLAGS", b"a BAD FETCH bad syntax"),
    (b"a FETCH 1:0 FLAGS", b"a BAD FETCH bad syntax"),
    (b"a FETCH  1 FLAGS", b"a BAD FETCH bad syntax"),
    (b"a FETCH 1 FLAGS ", b"a BAD FETCH bad syntax"),
    (b"a SELECT {1x}", b"a BAD SELECT bad syntax"),
    (b'a SELECT "caf\xe9"', b"a BAD SELECT bad syntax"),
    (b'a SELECT "a\\b"', b"a BAD SELECT bad syntax"),
    (b"a STORE 1 +FLAGS (\\Bogus)", b"a BAD STORE flag not supported"),
    (b"a STORE 1 FOO (\\Seen)", b"a BAD STORE illegal store attribute"),
    (b"a STORE 1 +FLAGS", b"a BAD STORE no flags given"),
    (b"a SEARCH FOO", b"a BAD SEARCH illegal search key"),
    (b"a SEARCH SINCE 1-Foo-2020", b"a BAD SEARCH bad date format"),
    (b"a SEARCH (ALL", b"a BAD SEARCH bad syntax"),
    (b"a LOGIN glenda x", b"a BAD LOGIN illegal command"),
    (b"a AUTHENTICATE CRAM-MD5", b"a BAD AUTHENTICATE illegal command"),
    (b"a COPY 1", b"a BAD COPY bad syntax"),
    (b"a EXPUNGE 1", b"a BAD EXPUNGE bad syntax"),
    (b"a UID", b"a BAD UID bad syntax"),
]


def test_syntax_errors(sel):
    """One session for all: each error leaves it usable."""
    for line, reply in SYNTAX_ERRORS:
        assert sel.cmd(line) == [reply + b"\r\n"], line
        alive(sel)


def test_number_out_of_range_in_literal(sel):
    sel.send(b"a SELECT {99999999999}")
    assert sel.line() == b"a BAD SELECT number out of range\r\n"     # (Plan 9: and an empty line)
    alive(sel)


def test_literal_over_the_limit_is_refused_unread(sel):
    sel.send(b"a SELECT {999999999}")
    assert sel.line() == b"a NO [TOOBIG] SELECT literal too large\r\n"
    alive(sel)


def test_literal_plus_for_an_illegal_command_is_skipped(sel):
    sel.send(b"a LOGIN {5+}\r\nhello {3+}\r\nabc")
    assert sel.line() == b"a BAD LOGIN illegal command\r\n"
    alive(sel)


def test_wrong_state(imap_preauth):
    c = imap_preauth.connect()
    assert c.cmd(b"a FETCH 1 FLAGS") == [b"a BAD FETCH illegal command\r\n"]
    assert c.cmd(b"b CLOSE") == [b"b BAD CLOSE illegal command\r\n"]
    assert c.cmd(b"c UID FETCH 1 FLAGS") == [b"c BAD UID illegal command\r\n"]
    assert c.cmd(b"d SELECT nosuch")[0].startswith(b"d NO SELECT can't open mailbox nosuch: ")
    assert c.cmd(b"e SELECT ../bob/mbox") == [b"e NO SELECT bad mailbox\r\n"]
    assert c.cmd(b"f FETCH 1 FLAGS") == [b"f BAD FETCH illegal command\r\n"]


def test_huge_sets(sel):
    r = sel.cmd(b"a FETCH 1:4294967295 UID")
    assert len(r) == 9 and r[-1] == b"a NO FETCH failed\r\n"
    many = b",".join(b"%d" % i for i in range(1, 9000))
    r = sel.cmd(b"b FETCH " + many + b" UID")
    assert len(r) == 9 and r[-1] == b"b NO FETCH failed\r\n"
    r = sel.cmd(b"c UID FETCH " + many + b" UID")
    assert len(r) == 9 and r[-1] == b"c OK uid FETCH completed\r\n"
    alive(sel)


def test_overlong_line(sel):
    assert sel.cmd(b"a FETCH " + b"1," * 40000 + b"1 UID") == [b"a BAD line too long\r\n"]
    alive(sel)


def test_client_vanishes_mid_literal(imap_preauth):
    box = imap_preauth.box()
    before = box.read_bytes()
    lists = imap_preauth.box(name="lists/mbox").read_bytes()
    c = imap_preauth.connect()
    c.cmd(b"a SELECT INBOX")
    c.send(b"b COPY 1 {10}")            # the target name never arrives
    assert c.line() == b"+ Ready for literal data\r\n"
    c.sock.sendall(b"lis")
    c.sock.shutdown(1)
    assert c.line() == b"* BAD empty command line: bad syntax\r\n"
    assert c.line() == b"* BYE end of input\r\n"
    assert c.closed()
    imap_preauth.wait_idle()
    assert box.read_bytes() == before
    assert imap_preauth.box(name="lists/mbox").read_bytes() == lists
