"""BINARY (RFC 3516) over a real socket: FETCH BINARY[part] decoded from
base64 and quoted-printable (the expected bytes are the test mailbox's
own encoded text decoded here by the standard library), BINARY.SIZE,
partial fetches, literal8 for content with a NUL, \\Seen, UNKNOWN-CTE,
and APPEND with a literal8.

RFC 3516 (read in its text as vendored by MailKit,
github.com/jstedfast/MailKit, rfc/rfc3516.txt) has no C:/S: example; the
expected replies here follow its sections 4.2-4.4 and its grammar.
"""
from __future__ import annotations

import base64
import quopri
import re

import pytest

# glenda's message 2 (testdata/mail/box/glenda/mbox): part 1 quoted-printable
# text, part 2 a base64 attachment
QP_TEXT = (b"Here is the report you asked for. This line is long enough to need a soft =\r\n"
           b"line break in quoted-printable encoding.\r\n"
           b"Equals sign: =3D and a tab:=09end")


def report_bin(srv) -> bytes:
    """The attachment's bytes, from its base64 text in the mbox."""
    raw = srv.box().read_bytes()
    b64 = raw.split(b'filename="report.bin"\n\n', 1)[1].split(b"\n--", 1)[0]
    return base64.b64decode(b64)


@pytest.fixture
def c(imap_preauth):
    cl = imap_preauth.connect()
    assert b"BINARY" in cl.cmd(b"a CAPABILITY")[0].split()
    cl.cmd(b"b SELECT INBOX")
    yield cl
    cl.close()


def test_binary_base64_part_is_literal8(c, imap_preauth):
    data = report_bin(imap_preauth)
    assert data == bytes(range(256)) + b"\x00\xffEND"       # what the text says
    lines = c.cmd(b"c FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])")
    assert lines == [b"* 2 FETCH (BINARY[2] ~{%d}\r\n%s BINARY.SIZE[2] %d)\r\n"
                     % (len(data), data, len(data)),
                     b"c OK FETCH completed\r\n"]
    # partial: bytes 250..259, the NUL among them; then none past the end
    assert c.cmd(b"d FETCH 2 (BINARY.PEEK[2]<250.10>)")[0] == \
        b"* 2 FETCH (BINARY[2]<250> ~{10}\r\n%s)\r\n" % data[250:260]
    assert c.cmd(b"e FETCH 2 (BINARY.PEEK[2]<1.3>)")[0] == \
        b"* 2 FETCH (BINARY[2]<1> {3}\r\n\x01\x02\x03)\r\n"
    assert c.cmd(b"f FETCH 2 (BINARY.PEEK[2]<999.3>)")[0] == \
        b"* 2 FETCH (BINARY[2]<261> {0}\r\n)\r\n"
    assert c.cmd(b"g FETCH 2 FLAGS")[0] == b"* 2 FETCH (FLAGS (\\Recent))\r\n"


def test_binary_quoted_printable_part_sets_seen(c):
    text = quopri.decodestring(QP_TEXT)
    assert text.endswith(b"Equals sign: = and a tab:\tend")
    lines = c.cmd(b"c FETCH 2 (BINARY[1])")
    assert lines == [b"* 2 FETCH (BINARY[1] {%d}\r\n%s)\r\n" % (len(text), text),
                     b"* 2 FETCH (FLAGS (\\Seen \\Recent))\r\n", b"c OK FETCH completed\r\n"]
    assert c.cmd(b"d FETCH 2 BINARY.SIZE[1]")[0] == \
        b"* 2 FETCH (BINARY.SIZE[1] %d)\r\n" % len(text)


def test_binary_whole_message_and_unencoded(c):
    """BINARY[] is the message as BODY[] gives it; a part in 7bit/8bit
    is its body as it is; a one-part message's part 1 is its body."""
    body = c.cmd(b"c FETCH 1 BODY.PEEK[]")[0]
    whole = c.cmd(b"d FETCH 1 BINARY.PEEK[]")[0]
    assert whole == body.replace(b"BODY[]", b"BINARY[]")
    text = c.cmd(b"e FETCH 1 BODY.PEEK[TEXT]")[0]
    assert c.cmd(b"f FETCH 1 BINARY.PEEK[1]")[0] == text.replace(b"BODY[TEXT]", b"BINARY[1]")
    n = int(re.search(rb"\{(\d+)\}", text).group(1))
    assert c.cmd(b"g FETCH 1 BINARY.SIZE[1]")[0] == b"* 1 FETCH (BINARY.SIZE[1] %d)\r\n" % n


def test_binary_syntax(c):
    assert c.cmd(b"c FETCH 2 BINARY[TEXT]") == [b"c BAD FETCH illegal fetch section text\r\n"]
    assert c.cmd(b"d FETCH 2 BINARY[1.]") == [b"d BAD FETCH illegal fetch section text\r\n"]
    assert c.cmd(b"e FETCH 2 BINARY.SIZE[1]<0.2>") == [b"e BAD FETCH bad syntax\r\n"]


def test_unknown_cte_and_binary_append(c, imap_preauth):
    """An encoding BINARY cannot undo: NO [UNKNOWN-CTE] (RFC 3516 4.3).
    APPEND with a literal8: stored when an mbox can hold it, else NO
    [UNKNOWN-CTE] and nothing stored (RFC 3516 4.4)."""
    c.cmd(b"c CREATE bin")
    msg = (b"Subject: uu\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
           b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\nend\r\n")
    assert c.cmd(b"d APPEND bin ~{%d+}\r\n%s\r\n" % (len(msg), msg))[-1].startswith(b"d OK [APPENDUID ")
    c.cmd(b"e SELECT bin")
    assert c.cmd(b"f FETCH 1 BINARY.PEEK[1]") == [b"f NO [UNKNOWN-CTE] FETCH failed\r\n"]
    assert c.cmd(b"g FETCH 1 BODY.PEEK[1]")[-1] == b"g OK FETCH completed\r\n"
    before = imap_preauth.box(name="bin").read_bytes()
    nul = b"Subject: nul\r\n\r\na\0b\r\n"
    c.send(b"h APPEND bin ~{%d}\r\n" % len(nul))
    assert c.line() == b"+ Ready for literal data\r\n"
    c.send(nul + b"\r\n")
    assert c.until(b"h") == [b"h NO [UNKNOWN-CTE] APPEND binary content cannot be stored here\r\n"]
    assert imap_preauth.box(name="bin").read_bytes() == before
