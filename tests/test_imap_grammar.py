"""Issue 13: the kind of test that would have caught the RFC 3501 failures.

1. A strict client nobody here wrote: imap-codec (PyPI `imap-codec`, the
   Python binding of the Rust crate of the same name, a nom parser of
   IMAP4rev1's complete formal syntax).  It was chosen over imaplib and
   imapclient, which take any line they can split (both read `* OK
   [UNSEEN 3]` and `* BYE` without a word), because it refuses whatever
   the grammar does not derive.  Its one leniency, a response code with no
   text after it (its "missing text" quirk, reported as the text "..."),
   is refused here.  Its 0.1.0 build knows neither NAMESPACE nor RFC
   5258's extended LIST items: those replies are left to (2).
2. tests/imapsyntax.py, RFC 3501 section 9's grammar and the advertised
   extensions' as ABNF: here its own checks (replies from the RFCs, and
   the bad forms the issue lists), and that it really sees the replies of
   the test suite's IMAP connections (tests/fixtures/imap.py runs it on
   every reply; a violation fails the test whose connection it was).
"""
from __future__ import annotations

import socket
import time

import pytest

imap_codec = pytest.importorskip("imap_codec")

from tests.imapsyntax import ReplyChecker, violation  # noqa: E402

MSG = b"From: a@x.org\r\nTo: group: b@y.org;\r\nSubject: strict\r\n\r\nbody\r\n"


class StrictClient:
    """Commands over a socket; every reply decoded by imap-codec."""

    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=20)
        self.buf = b""
        self.greeting = self._decode(imap_codec.GreetingCodec)

    def _decode(self, codec):
        while True:
            try:
                rest, msg = codec.decode(self.buf)
            except imap_codec.DecodeIncomplete:
                data = self.sock.recv(65536)
                assert data, f"connection closed in {self.buf[:200]!r}"
                self.buf += data
                continue
            except imap_codec.DecodeFailed:
                end = self.buf.find(b"\r\n")
                pytest.fail(f"imap-codec refuses {self.buf[:end + 2][:300]!r}")
            wire, self.buf = self.buf[:len(self.buf) - len(rest)], rest
            self._no_missing_text(wire, msg.as_dict())
            return msg.as_dict()

    @staticmethod
    def _no_missing_text(wire: bytes, d: dict) -> None:
        """imap-codec reads `[CODE]` with no text as the text "..."."""
        status = d.get("Status") or d.get("kind") and d
        if isinstance(status, dict):
            body = next(iter(status.values())) if "kind" not in status else status
            body = body.get("body", body) if isinstance(body, dict) else body
            if isinstance(body, dict) and body.get("code") is not None and body.get("text") == "...":
                assert wire.rstrip(b"\r\n").endswith(b"..."), f"a code without its text: {wire!r}"

    def cmd(self, line: bytes, literal: bytes | None = None) -> list[dict]:
        tag = line.split(b" ", 1)[0].decode()
        self.sock.sendall(line + b"\r\n")
        out = []
        while True:
            r = self._decode(imap_codec.ResponseCodec)
            out.append(r)
            if "CommandContinuationRequest" in r and literal is not None:
                self.sock.sendall(literal + b"\r\n")
                literal = None
                continue
            tagged = r.get("Status", {}).get("Tagged")
            if tagged and tagged["tag"] == tag:
                assert tagged["body"]["kind"] == "Ok", (line, tagged)
                return out


def test_a_session_of_every_kind_of_reply_decodes_strictly(imap_preauth):
    c = StrictClient(imap_preauth.addr)
    assert c.greeting["kind"] == "PreAuth"
    for line in (b"a CAPABILITY", b'b ID ("name" "strict")', b"c ENABLE IDLE",
                 b'd LIST "" *', b'e LSUB "" *', b'f LIST "" %', b"g CREATE strict/box",
                 b"h SUBSCRIBE strict/box", b"i STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)",
                 b"j EXAMINE INBOX", b"k SELECT INBOX", b"l NOOP", b"m CHECK"):
        c.cmd(line)
    c.cmd(b"n APPEND INBOX (\\Seen $Strict) {%d}" % len(MSG), MSG)
    for line in (b"o FETCH 1:* (FLAGS UID INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)",
                 b"p FETCH 1:* BODY", b"q FETCH 2,4 (BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.40>)",
                 b"r FETCH 4 (BODY.PEEK[1.1.MIME] BODY.PEEK[2.HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[2.1])",
                 b"s UID FETCH 1:* (FLAGS)", b"t FETCH 1 (RFC822.HEADER RFC822.TEXT)",
                 b"u SEARCH FROM rob", b"v UID SEARCH ALL", b"w SEARCH CHARSET UTF-8 TEXT body",
                 b"x STORE 1:3 +FLAGS (\\Flagged $Label)", b"y UID STORE 1 -FLAGS.SILENT (\\Flagged)",
                 b"z COPY 1:2 strict/box", b"A UID COPY 3 strict/box", b"B MOVE 1 strict/box",
                 b"C STORE 1 +FLAGS (\\Deleted)", b"D EXPUNGE", b"E UID EXPUNGE 1:*",
                 b"F RENAME strict/box strict/other", b"G UNSELECT", b"H DELETE strict/other",
                 b"I LOGOUT"):
        c.cmd(line)


def test_idle_and_literals_decode_strictly(imap_preauth):
    c = StrictClient(imap_preauth.addr)
    c.cmd(b"a SELECT INBOX")
    c.sock.sendall(b"b IDLE\r\n")
    assert "CommandContinuationRequest" in c._decode(imap_codec.ResponseCodec)
    c.sock.sendall(b"DONE\r\n")
    assert c._decode(imap_codec.ResponseCodec)["Status"]["Tagged"]["tag"] == "b"
    c.cmd(b"c FETCH 1:* BODY.PEEK[]")


# ---------------------------------------------------------------- the ABNF checker

GOOD = [
    # RFC 3501 8's sample session and 7's examples, as servers send them
    b"* OK IMAP4rev1 Service Ready\r\n",
    b"* 172 EXISTS\r\n", b"* 1 RECENT\r\n",
    b"* OK [UNSEEN 12] Message 12 is first unseen\r\n",
    b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
    b"* OK [UIDNEXT 4392] Predicted next UID\r\n",
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
    b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
    b"A142 OK [READ-WRITE] SELECT completed\r\n",
    b'* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" RFC822.SIZE 4286 '
    b'ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) '
    b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL '
    b'"<B27397-0100000@cac.washington.edu>") BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92))\r\n',
    b"* 12 FETCH (BODY[HEADER] {342}\r\n" + b"x" * 340 + b"\r\n)\r\n",
    b'* LIST (\\Noselect) "/" ""\r\n', b'* LIST () "." #news.comp.mail.misc\r\n',
    b"* SEARCH 2 84 882\r\n", b"* SEARCH\r\n", b"* 44 EXPUNGE\r\n",
    b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
    b"* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n",
    b"* BYE IMAP4rev1 Server logging out\r\n", b"+ Ready for additional command text\r\n",
    b"+ YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzBeBiVHeceP2CWY0SR0fAQAgAAQEBAQ=\r\n",
    # the extensions imap4d advertises
    b'* NAMESPACE (("" "/")) NIL NIL\r\n', b'* ID ("name" "Cyrus" "version" "1.5")\r\n', b"* ID NIL\r\n",
    b"* ENABLED CONDSTORE\r\n", b"A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
    b"A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
    b'* LIST (\\Subscribed \\NonExistent) "/" "Fruit/Peach"\r\n',
    b'* LIST () "/" "foo2" ("CHILDINFO" ("SUBSCRIBED"))\r\n',
    b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n',
]
BAD = [
    b"* OK [UNSEEN 12]\r\n",                                   # a code without its text
    b"* OK [UIDVALIDITY 3857529045]\r\n", b"* BYE\r\n", b"A1 OK\r\n",
    b"\r\n",                                                   # Plan 9's stray CRLF
    b"* 0 EXPUNGE\r\n", b"* 1 FETCH (UID 0)\r\n",
    b"* 1 FETCH (BODY[] {5}\r\nabc)\r\n",                      # a literal shorter than its count
    b'* 1 FETCH (ENVELOPE (NIL "caf\xc3\xa9" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n',  # 8-bit quoted
    b'* LIST (\\Noselect) "/" "a"\n',                      # LF alone
]


@pytest.mark.parametrize("reply", GOOD)
def test_rfc_examples_pass(reply):
    assert violation(reply) is None


@pytest.mark.parametrize("reply", BAD)
def test_bad_forms_fail(reply):
    assert violation(reply) is not None


def test_checker_cuts_a_stream_at_literals_and_stops_at_starttls():
    chk = ReplyChecker()
    chk.client(b"a STARTTLS\r\n")
    stream = (b"* OK [UNSEEN 1]\r\n* 1 FETCH (BODY[] {7}\r\n* BAD\r\n)\r\n"
              b"a OK Begin TLS negotiation now\r\n\x16\x03\x01garbage")
    for i in range(len(stream)):                      # byte by byte: no boundary assumed
        chk.feed(stream[i:i + 1])
    assert chk.checked == 3 and chk.stopped
    assert [r for r, _ in chk.violations] == [b"* OK [UNSEEN 1]\r\n"]


def test_the_suites_connections_are_checked(imap_factory):
    srv = imap_factory(flags=("-a",), auth=False)
    c = srv.connect()
    c.cmd(b"a SELECT INBOX")
    c.cmd(b"b FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY.PEEK[])")
    c.cmd(b"c LOGOUT")
    c.close()
    srv.wait_idle()
    (chk,) = srv.checkers
    for _ in range(100):                 # the relay may still be passing the last bytes
        if chk.checked >= 20:
            break
        time.sleep(0.05)
    assert chk.checked >= 20 and chk.violations == []


def test_utf8_only_once_imap4rev2_is_enabled():
    """RFC 9051 9: quoted strings and texts may hold UTF-8 under IMAP4rev2;
    RFC 3501's may not; malformed UTF-8 is refused either way."""
    ok = '* LIST () "/" "Entwürfe"\r\n'.encode()
    assert violation(ok) is not None and violation(ok, True) is None
    assert violation(b'* LIST () "/" "Entw\xfcrfe"\r\n', True) is not None
