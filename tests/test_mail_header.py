"""Header rules of upas/fs (docs/spec/fs-auth.md §1.4, §1.6, §1.10) on the pure layer."""
from __future__ import annotations

import random

from upas.mail import header as H
from upas.mail import mime

SPEC_EXAMPLE = b"""From alice@example.com Thu Mar 28 10:00:00 GMT 2024
From: Alice Example <alice@example.com>
To: bob@example.org, Carol <carol@example.net>
Subject: Test message
Date: Thu, 28 Mar 2024 10:00:00 +0000
Message-ID: <abc123@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XYZ"

preamble
--XYZ
Content-Type: text/plain; charset=us-ascii

Hello Bob.
--XYZ
Content-Type: application/octet-stream; name="data.bin"
Content-Disposition: attachment; filename="data.bin"
Content-Transfer-Encoding: base64

aGVsbG8K
--XYZ--
"""


def test_addr_list_extraction():
    assert H.addr822(b" Alice Example <alice@x>, bob@y (Bob)") == b"alice@x bob@y"
    assert H.addr822(b' "Ken Thompson" <ken@x>') == b"ken@x"
    assert H.addr822(b" ken@x (Ken Thompson)") == b"ken@x"
    assert H.addr822(b"   ") is None


def test_rfc2047_words():
    assert H.rfc2047(b"=?utf-8?B?R2zDqW5kYQ==?= <g@x>") == "Glénda <g@x>".encode()
    # Q words keep `_` (upas/fs does not map it to a blank)
    assert H.rfc2047(b"=?ISO-8859-1?Q?na=EFve_caf=E9?=") == "naïve_café".encode()
    assert H.rfc2047(b"=?x-unknown?Q?abc?=") == b"=?x-unknown?Q?abc?="
    assert H.rfc2047(b"plain text") == b"plain text"


def test_transfer_decodings():
    assert H.dec64(b"aGVsbG8K") == b"hello\n"
    assert H.dec64(b"aGVs\nbG8K\n") == b"hello\n"
    assert H.decquoted(b"soft =\nbreak =3D\n") == b"soft break =\n"
    assert H.decquoted(b"no newline") == b"no newline\n"


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _plan9_dec64(data: bytes) -> bytes:
    """Plan 9's dec64 (libc u64.c) as it is written: characters outside the
    alphabet (`=` too) skipped, 24 bits per four, a last group of two or
    three giving one or two bytes, one alone nothing."""
    out, b24, i = bytearray(), 0, 0
    for c in data:
        if c not in _ALPHABET:
            continue
        b24 |= _ALPHABET.index(c) << (18 - 6 * i)
        i += 1
        if i == 4:
            out += b24.to_bytes(3, "big")
            b24 = i = 0
    if i >= 2:
        out += (b24 >> 8).to_bytes(2, "big")[:i - 1]
    return bytes(out)


def test_dec64_is_plan9s():
    # RFC 4648 section 10's vectors
    for enc, dec in [(b"", b""), (b"Zg==", b"f"), (b"Zm8=", b"fo"), (b"Zm9v", b"foo"),
                     (b"Zm9vYg==", b"foob"), (b"Zm9vYmE=", b"fooba"), (b"Zm9vYmFy", b"foobar")]:
        assert H.dec64(enc) == dec == _plan9_dec64(enc)
    assert H.dec64(b"Zg==Zm8=") == b"f\x06f"          # `=` inside skipped, a lone char dropped
    assert H.dec64(b"Zm9vYg") == b"foob"              # a group of two unpadded
    assert H.dec64(b"Zm9v\r\n Y-m*E\n=") == b"fooba"   # junk skipped
    rng = random.Random(5)
    pieces = [b"QUJD", b"Zm9v", b"YQ", b"Y", b"=", b"==", b"\n", b"\r\n", b" ", b"*", b"-", b"\xff"]
    for _ in range(5000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        assert H.dec64(data) == _plan9_dec64(data), data


def test_ignore_list(tmp_path):
    p = tmp_path / "ignore"
    p.write_bytes(b"# comment\nX-\nReceived:\n")
    ign = H.Ignore.load(str(p))
    assert ign(b"x-mailer: foo\n") and ign(b"Received: from a\n")
    assert not ign(b"Subject: x\n")
    raw = b"Subject: =?utf-8?B?w6k=?=\nX-Spam: yes\n more\nTo: a\n"
    assert H.filtered_header(raw, 0, len(raw), ign) == "Subject: é\nTo: a\n".encode()


def test_spec_worked_example(tmp_path):
    """docs/spec/fs-auth.md §1.10, facts 5 and 8: the file is the example
    plus one separating newline; the stored message excludes it."""
    from upas.mail.mbox import open_mailbox
    (tmp_path / "mbox").write_bytes(SPEC_EXAMPLE + b"\n")
    mb = open_mailbox(str(tmp_path / "mbox"), "mbox", mime.Ids())
    (msg,) = mb.live()
    assert (msg.start, msg.end) == (0, 534)
    dig = msg.digest
    m = mb.parsed(msg)
    assert dig == b"7d6ee0b7b759dfc21f61c21032c966ba3ddc7080"
    assert m.file("to") == b"bob@example.org carol@example.net"
    assert m.file("from") == m.file("replyto") == b"alice@example.com"
    assert m.file("lines") == b"12"
    assert len(m.file("raw")) == 482 and len(m.file("rawunix")) == 534
    assert len(m.file("rawheader")) == 244
    assert m.file("unixheader") == b"From alice@example.com Thu Mar 28 10:00:00 GMT 2024\n"
    assert m.file("messageid") == b"<abc123@example.com>"
    info = m.file("info").split(b"\n")
    assert len(info) == 17 and info[-1] == b"" and info[9] == dig and info[15] == b"12"
    p1, p2 = m.parts
    assert p1.file("raw") == b"Content-Type: text/plain; charset=us-ascii\n\nHello Bob.\n"
    assert p1.file("digest") == b"" and p1.file("lines") == b"1"
    assert (p2.file("filename"), p2.file("disposition")) == (b"data.bin", b"file")
    assert p2.length("body") == 9
    p2.open_body()
    assert p2.file("body") == b"hello\n" and p2.length("body") == 6
    assert len(p2.file("raw")) == 153
