"""imap4d over a real socket against a real upasfs: docs/spec/servers.md §4
facts 23-65, as exact strings (adjusted where docs/decisions.md
fixes a bug; each such test says so)."""
import base64
import re

import pytest

from tests.fixtures.imap import without_capability_code as nocap

N = 8          # messages in testdata glenda/mbox
FLAGS_LINE = b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n"
# docs/decisions.md: keywords are stored, so PERMANENTFLAGS also offers \* (RFC 3501)
PERMANENT = b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Draft \\Deleted \\*)] Limited\r\n"


@pytest.fixture
def plain(imap_factory):
    """imap4d without -a, -p or an auth stack (the pre-login facts)."""
    return imap_factory(auth=False)


@pytest.fixture
def c(imap_client):
    return imap_client


@pytest.fixture
def sel(c):
    c.cmd(b"s SELECT INBOX")
    return c


# ------------------------------------------------------------ 23-30

def test_23_greetings(plain, imap_preauth):
    cl = plain.connect()
    assert nocap(cl.greeting) == b"* OK imap.test IMAP4rev1 server ready\r\n"
    cl = imap_preauth.connect()
    assert nocap(cl.greeting) == b"* PREAUTH imap.test IMAP4rev1 server ready user glenda authenticated\r\n"


def test_24_25_capability_without_p(plain):
    cl = plain.connect()
    r = cl.cmd(b"a CAPABILITY")
    assert r[-1] == b"a OK CAPABILITY\r\n"
    assert r[0].startswith(b"* CAPABILITY IMAP4REV1 IDLE NAMESPACE ")
    assert r[0].endswith(b" UIDPLUS CONDSTORE QRESYNC LITERAL+ SASL-IR LOGINDISABLED AUTH=CRAM-MD5\r\n")
    assert b"AUTH=PLAIN" not in r[0]


def test_25_capability_with_p(imap_factory):
    cl = imap_factory(flags=("-p",), auth=False).connect()
    r = cl.cmd(b"a capability")
    assert r[0].endswith(b" UIDPLUS CONDSTORE QRESYNC LITERAL+ SASL-IR AUTH=CRAM-MD5 AUTH=PLAIN\r\n")
    assert b"LOGINDISABLED" not in r[0]
    assert r[-1] == b"a OK capability\r\n"


def test_26_login_without_p(plain):
    cl = plain.connect()
    assert cl.cmd(b"a LOGIN glenda glenda-apop") == [b"a NO LOGIN plaintext passwords disallowed\r\n"]


def test_27_28_illegal_commands_and_empty_lines(plain):
    cl = plain.connect()
    assert cl.cmd(b"a SELECT INBOX") == [b"a BAD SELECT illegal command\r\n"]
    assert cl.cmd(b"a FOO") == [b"a BAD FOO illegal command\r\n"]
    cl.send(b"\r\n")
    assert cl.line() == b"* BAD empty command line: bad syntax\r\n"
    assert cl.cmd(b"a") == [b"a BAD no command: bad syntax\r\n"]
    assert cl.cmd(b"a uid FETCH 1 FLAGS") == [b"a BAD uid illegal command\r\n"]
    assert cl.cmd(b"a NOOP") == [b"a OK NOOP completed\r\n"]


def test_30_unsupported_mechanism(plain):
    cl = plain.connect()
    assert cl.cmd(b"a AUTHENTICATE GSSAPI") == [b"a NO AUTHENTICATE unsupported authentication protocol\r\n"]


# ------------------------------------------------------------ 31-35 SELECT, .imp

def test_31_32_34_select_response(c, imap_preauth):
    r = c.cmd(b"a SELECT INBOX")
    assert r[0] == FLAGS_LINE
    assert r[1] == b"* %d EXISTS\r\n" % N
    assert r[2] == b"* %d RECENT\r\n" % N
    assert r[3] == b"* OK [UNSEEN 1] Message 1 is first unseen\r\n"
    assert r[4] == PERMANENT
    assert r[5] == b"* OK [UIDNEXT %d] Predicted next UID\r\n" % (N + 1)
    m = re.fullmatch(rb"\* OK \[UIDVALIDITY (\d+)\] UIDs valid\r\n", r[6])
    assert m
    assert r[7] == b"a OK [READ-WRITE] SELECT INBOX completed\r\n"
    assert len(r) == 8
    r = c.cmd(b"b EXAMINE inbox")
    assert r[-1] == b"b OK [READ-ONLY] EXAMINE INBOX completed\r\n"
    assert r[2] == b"* 0 RECENT\r\n"                     # consumed by the first SELECT
    assert r[6] == m.group(0)                             # same UIDVALIDITY
    assert c.cmd(b"c UID FETCH 1:* UID")[:-1] == [b"* %d FETCH (UID %d)\r\n" % (i, i) for i in range(1, N + 1)]


def test_33_imp_file_format(sel, imap_preauth):
    lines = imap_preauth.box(name="mbox.imp").read_bytes().split(b"\n")
    assert lines[0] == b"imap internal mailbox description"
    assert re.fullmatch(rb"\d{10} \d{10}", lines[1])
    assert lines[1].endswith(b" %010d" % (N + 1))
    assert lines[-1] == b""
    for i, line in enumerate(lines[2:-1]):
        assert re.fullmatch(rb"[0-9a-f]{40} \d{10} [s-][a-][f-][D-][d-][r-]--", line)
        assert line[41:51] == b"%010d" % (i + 1)
    assert len(lines) == N + 3


def test_35_recent_only_in_first_session(imap_preauth):
    a = imap_preauth.connect()
    assert a.cmd(b"a SELECT INBOX")[2] == b"* %d RECENT\r\n" % N
    assert a.cmd(b"b FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Recent))\r\n"
    b = imap_preauth.connect()
    assert b.cmd(b"a SELECT INBOX")[2] == b"* 0 RECENT\r\n"
    assert b.cmd(b"b FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ())\r\n"


def test_plan9_imp_is_honoured(imap_preauth):
    """A .imp written in Plan 9's exact format keeps its UIDs and flags."""
    c = imap_preauth.connect()
    c.cmd(b"a SELECT INBOX")                      # learn the digests
    c.cmd(b"z LOGOUT")
    path = imap_preauth.box(name="mbox.imp")
    digests = [l.split(b" ")[0] for l in path.read_bytes().split(b"\n")[2:-1]]
    flags = [b"s-------", b"-a------", b"--f-----", b"---D----", b"----d---", b"-----r--", b"s-f-----", b"--------"]
    path.write_bytes(b"imap internal mailbox description\n0000004242 0000000100\n" +
                     b"".join(b"%s %010d %s\n" % (d, 10 * (i + 1), f)
                              for i, (d, f) in enumerate(zip(digests, flags))))
    c = imap_preauth.connect()
    r = c.cmd(b"a SELECT INBOX")
    assert b"* 1 RECENT\r\n" in r
    assert b"* OK [UIDVALIDITY 4242] UIDs valid\r\n" in r and b"* OK [UIDNEXT 100] Predicted next UID\r\n" in r
    assert b"* OK [UNSEEN 2] Message 2 is first unseen\r\n" in r
    r = c.cmd(b"b FETCH 1:* (UID FLAGS)")
    assert r[:-1] == [
        b"* 1 FETCH (UID 10 FLAGS (\\Seen))\r\n",
        b"* 2 FETCH (UID 20 FLAGS (\\Answered))\r\n",
        b"* 3 FETCH (UID 30 FLAGS (\\Flagged))\r\n",
        b"* 4 FETCH (UID 40 FLAGS (\\Deleted))\r\n",
        b"* 5 FETCH (UID 50 FLAGS (\\Draft))\r\n",
        b"* 6 FETCH (UID 60 FLAGS (\\Recent))\r\n",
        b"* 7 FETCH (UID 70 FLAGS (\\Seen \\Flagged))\r\n",
        b"* 8 FETCH (UID 80 FLAGS ())\r\n"]
    c.cmd(b"z LOGOUT")
    out = path.read_bytes().split(b"\n")
    assert out[1] == b"0000004242 0000000100"
    assert out[7] == digests[5] + b" 0000000060 --------"     # r consumed by SELECT
    assert out[8] == digests[6] + b" 0000000070 s-f-----"


# ------------------------------------------------------------ 40-47 STORE, EXPUNGE, FETCH

def test_40_store_and_silent(sel):
    assert sel.cmd(b"a STORE 1 +FLAGS (\\Deleted)") == [
        b"* 1 FETCH (FLAGS (\\Deleted \\Recent))\r\n", b"a OK STORE completed\r\n"]
    assert sel.cmd(b"b STORE 2 +FLAGS.SILENT (\\Deleted)") == [b"b OK STORE completed\r\n"]
    assert sel.cmd(b"c STORE 2 -FLAGS (\\Deleted \\Recent)") == [
        b"* 2 FETCH (FLAGS (\\Recent))\r\n", b"c OK STORE completed\r\n"]
    assert sel.cmd(b"d STORE 3 FLAGS (\\Seen \\Flagged)") == [
        b"* 3 FETCH (FLAGS (\\Seen \\Flagged \\Recent))\r\n", b"d OK STORE completed\r\n"]


def test_41_uid_store_lower_case_uid(sel):
    assert sel.cmd(b"a UID STORE 2 +FLAGS (\\Seen)") == [
        b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))\r\n", b"a OK uid STORE completed\r\n"]


def test_41_store_reports_each_message_of_a_set(sel):
    """One FETCH a message, in sequence order, for a set that is not a run
    and messages with a keyword among them (RFC 3501 6.4.6: the flags as
    they are after the STORE; issue 16 formats them as columns)."""
    sel.cmd(b"a STORE 4 +FLAGS.SILENT ($Junk)")
    assert sel.cmd(b"b STORE 5,2,4 +FLAGS (\\Answered)") == [
        b"* 2 FETCH (FLAGS (\\Answered \\Recent))\r\n",
        b"* 4 FETCH (FLAGS (\\Answered \\Recent $Junk))\r\n",
        b"* 5 FETCH (FLAGS (\\Answered \\Recent))\r\n", b"b OK STORE completed\r\n"]
    assert sel.cmd(b"c UID STORE 1:* -FLAGS (\\Answered)")[:5] == [
        b"* 1 FETCH (UID 1 FLAGS (\\Recent))\r\n", b"* 2 FETCH (UID 2 FLAGS (\\Recent))\r\n",
        b"* 3 FETCH (UID 3 FLAGS (\\Recent))\r\n", b"* 4 FETCH (UID 4 FLAGS (\\Recent $Junk))\r\n",
        b"* 5 FETCH (UID 5 FLAGS (\\Recent))\r\n"]


def test_42_expunge(sel, imap_preauth):
    before = imap_preauth.box().read_bytes()
    sel.cmd(b"a STORE 2,3,5 +FLAGS.SILENT (\\Deleted)")
    assert sel.cmd(b"b EXPUNGE") == [b"* 2 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n",
                                     b"* 5 EXISTS\r\n", b"* 5 RECENT\r\n",
                                     b"b OK EXPUNGE messages erased\r\n"]
    after = imap_preauth.box().read_bytes()
    assert len(after) < len(before)
    assert b"multipart with attachments" not in after and b"first message" in after
    assert sel.cmd(b"c UID SEARCH ALL") == [b"* SEARCH 1 4 6 7 8\r\n", b"c OK uid SEARCH completed\r\n"]


def test_43_body_sets_seen_peek_does_not(sel):
    r = sel.cmd(b"a FETCH 1 BODY.PEEK[]")
    assert r[-1] == b"a OK FETCH completed\r\n" and len(r) == 2
    r = sel.cmd(b"b FETCH 1 BODY[]")
    assert r[0].startswith(b"* 1 FETCH (BODY[] {")
    assert r[1:] == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n", b"b OK FETCH completed\r\n"]
    assert sel.cmd(b"c FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n"


def test_44_rfc822_size_is_body_length(sel):
    for i in range(1, N + 1):
        size = int(re.search(rb"RFC822.SIZE (\d+)", sel.cmd(b"a FETCH %d RFC822.SIZE" % i)[0]).group(1))
        body = sel.cmd(b"b FETCH %d BODY.PEEK[]" % i)[0]
        n = int(re.search(rb"\{(\d+)\}", body).group(1))
        assert n == size
        data = body.split(b"}\r\n", 1)[1][:-3]
        assert len(data) == size and b"\n" not in data.replace(b"\r\n", b"")


def test_45_header_fields(sel):
    assert sel.cmd(b"a FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])") == [
        b'* 1 FETCH (BODY[HEADER.FIELDS ("Subject")] {38}\r\nSubject: first message: plain text\r\n\r\n)\r\n',
        b"a OK FETCH completed\r\n"]


def test_46_fetch_sets(sel):
    r = sel.cmd(b"a FETCH 1:* FLAGS")
    assert len(r) == N + 1 and r[-1] == b"a OK FETCH completed\r\n"
    # docs/decisions.md: `*` is the highest number (Plan 9 answered NO)
    assert sel.cmd(b"b FETCH * FLAGS") == [b"* %d FETCH (FLAGS (\\Recent))\r\n" % N, b"b OK FETCH completed\r\n"]
    assert sel.cmd(b"c FETCH 99 FLAGS") == [b"c NO FETCH failed\r\n"]
    r = sel.cmd(b"d FETCH 7:99 FLAGS")
    assert len(r) == 3 and r[-1] == b"d NO FETCH failed\r\n"


def test_47_uid_fetch(sel):
    r = sel.cmd(b"a UID FETCH 1:* (FLAGS)")
    assert r[:-1] == [b"* %d FETCH (UID %d FLAGS (\\Recent))\r\n" % (i, i) for i in range(1, N + 1)]
    assert r[-1] == b"a OK uid FETCH completed\r\n"
    assert sel.cmd(b"b UID FETCH 999 FLAGS") == [b"b OK uid FETCH completed\r\n"]


# ------------------------------------------------------------ 48-49 SEARCH

def test_48_search_all(sel):
    # docs/decisions.md: upper-case `* SEARCH` (9front)
    assert sel.cmd(b"a SEARCH ALL") == [b"* SEARCH 1 2 3 4 5 6 7 8\r\n", b"a OK SEARCH completed\r\n"]


def test_49_badcharset(sel):
    assert sel.cmd(b"a SEARCH CHARSET KOI8-R ALL") == [
        b'a NO [BADCHARSET] ("US-ASCII" "UTF-8") SEARCH failed\r\n']


# ------------------------------------------------------------ 55-65

def test_55_copy_to_missing_box(sel):
    assert sel.cmd(b"a COPY 1 nosuch") == [b"a NO [TRYCREATE] COPY mailbox does not exist\r\n"]


def test_57_logout_does_not_expunge(sel, imap_preauth):
    before = imap_preauth.box().read_bytes()
    sel.cmd(b"a STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert sel.cmd(b"b LOGOUT") == [b"* BYE logging out\r\n", b"b OK LOGOUT completed\r\n"]
    assert sel.closed()
    # docs/decisions.md: only CLOSE and EXPUNGE remove mail
    assert imap_preauth.box().read_bytes() == before


def test_58_x_exit(sel):
    assert sel.cmd(b"a x-exit") == [b"* BYE logging out\r\n", b"a OK x-exit completed\r\n"]
    assert sel.closed()


def test_59_close_expunges_silently(sel, imap_preauth):
    sel.cmd(b"a STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert sel.cmd(b"b CLOSE") == [b"b OK CLOSE mailbox closed, now in authenticated state\r\n"]
    assert b"first message" not in imap_preauth.box().read_bytes()
    assert sel.cmd(b"c FETCH 1 FLAGS") == [b"c BAD FETCH illegal command\r\n"]


def test_60_keywords(sel, imap_preauth):
    assert sel.cmd(b"a FETCH 1 (FLAGS $Junk)") == [b"a BAD FETCH illegal fetch attribute\r\n"]
    # docs/decisions.md: keywords are stored and returned (Plan 9: BAD no flags given)
    # announced by FLAGS and PERMANENTFLAGS before a FETCH shows it (RFC 3501 7.2.6)
    assert sel.cmd(b"b STORE 1 +FLAGS ($Junk)") == [
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Junk)\r\n",
        b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Draft \\Deleted $Junk \\*)] Limited\r\n",
        b"* 1 FETCH (FLAGS (\\Recent $Junk))\r\n", b"b OK STORE completed\r\n"]
    assert sel.cmd(b"c SEARCH KEYWORD $junk") == [b"* SEARCH 1\r\n", b"c OK SEARCH completed\r\n"]
    kw = imap_preauth.box(name="mbox.kw.imp").read_bytes().split(b"\n")
    assert kw[0] == b"imap keywords" and kw[1].endswith(b" 0000000001 $Junk")
    imp = imap_preauth.box(name="mbox.imp").read_bytes()
    assert b"$Junk" not in imp                            # the .imp format is unchanged
    other = imap_preauth.connect()
    assert b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Junk)\r\n" in \
        other.cmd(b"a SELECT INBOX")
    assert other.cmd(b"b FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ($Junk))\r\n"


def test_61_literal_continuation(c):
    c.send(b"a SELECT {5}")
    assert c.line() == b"+ Ready for literal data\r\n"
    c.send(b"INBOX")
    r = c.until(b"a")
    assert r[-1] == b"a OK [READ-WRITE] SELECT INBOX completed\r\n"


def test_62_partial_label(sel):
    assert sel.cmd(b"a FETCH 1 BODY.PEEK[TEXT]<0.10>") == [
        b"* 1 FETCH (BODY[TEXT]<0> {10}\r\nHello glen)\r\n", b"a OK FETCH completed\r\n"]
    r = sel.cmd(b"b FETCH 1 BODY.PEEK[TEXT]<100000.10>")
    assert re.fullmatch(rb"\* 1 FETCH \(BODY\[TEXT\]<\d+> \{0\}\r\n\)\r\n", r[0])


def test_63_number_out_of_range(sel):
    sel.send(b"a FETCH 4294967296 FLAGS")
    assert sel.line() == b"a BAD FETCH number out of range\r\n"
    # Plan 9 then sent an empty line (docs/spec/servers.md fact 63), which no IMAP grammar allows
    assert sel.cmd(b"b NOOP") == [b"b OK NOOP completed\r\n"]


def test_64_internaldate_two_digit_day(sel):
    # docs/decisions.md: two-digit day (9front form)
    assert sel.cmd(b"a FETCH 1 INTERNALDATE") == [
        b'* 1 FETCH (INTERNALDATE "23-Nov-2026 09:15:02 -0500")\r\n', b"a OK FETCH completed\r\n"]
    r = sel.cmd(b"b FETCH 6 INTERNALDATE")
    assert r[0] == b'* 6 FETCH (INTERNALDATE "25-Nov-2026 08:30:00 +0000")\r\n'


def test_65_uid_unknown_subcommand(sel):
    assert sel.cmd(b"a UID FOO") == [b"a BAD UID illegal uid command FOO\r\n"]


def test_eof_message(c):
    c.sock.shutdown(1)
    assert c.line() == b"* BAD empty command line: bad syntax\r\n"
    assert c.line() == b"* BYE end of input\r\n"
    assert c.closed()


def test_ratify_with_r(imap_factory):
    import os
    srv = imap_factory(flags=("-a", "-r", "127.0.0.9!4321"), auth=False)
    trusted = os.path.join(srv.mailroot, "ratify", "trusted")
    os.makedirs(trusted, exist_ok=True)
    cl = srv.connect()
    assert cl.cmd(b"a NOOP") == [b"a OK NOOP completed\r\n"]
    assert os.listdir(trusted) == ["127.0.0.9#32"]


def test_d_site_for_bare_addresses(imap_factory):
    cl = imap_factory(flags=("-a", "-d", "example.com"), auth=False).connect()
    cl.cmd(b"a EXAMINE INBOX")
    assert cl.cmd(b"b FETCH 5 ENVELOPE")[0] == (
        b'* 5 FETCH (ENVELOPE (NIL NIL NIL NIL NIL ((NIL NIL "glenda" "example.com")) NIL NIL NIL NIL))\r\n')


def test_unknown_flag_gives_usage(imap_factory):
    srv = imap_factory(flags=("-Z",), auth=False, posted_upasfs=False)
    assert srv.connect().greeting == b"* BYE usage\r\n"
    srv.wait_idle()
    assert "usage: imap4d [-acpvT]" in srv.syslog()


def test_posted_upasfs_without_the_mailbox_says_where(imap_factory, tmp_path):
    """The mailbox is here but not where the running upas/fs looks (a
    plan9port upas/fs opens /mail/box/USER on its host whatever $MAILROOT
    says here): SELECT's NO names the path and where it must be, not the
    bare system text (issue 14)."""
    import os
    import shutil
    import tempfile
    from tests.fixtures.acceptor import start_posted_upasfs, stop_all
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "box" / "glenda").mkdir(parents=True)
    ns = tempfile.mkdtemp(prefix="ns.", dir="/tmp")
    fs = start_posted_upasfs(dict(os.environ, MAILROOT=str(elsewhere), NAMESPACE=ns), "glenda")
    try:
        srv = imap_factory(flags=("-a",), auth=False, posted_upasfs=False,
                           env={"upasfs": f"unix!{ns}/upasfs"})
        cl = srv.connect()
        reply = cl.cmd(b"s SELECT INBOX")[-1]
        assert reply.startswith(b"s NO SELECT can't open mailbox INBOX: upas/fs cannot open "
                                b"/mail/box/glenda/mbox: "), reply
        assert reply.endswith(b" (it must exist on the host upas/fs runs on)\r\n"), reply
        cl.close()
    finally:
        stop_all([fs])
        shutil.rmtree(ns, ignore_errors=True)
