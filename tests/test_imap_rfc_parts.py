"""Issue 13, MIME parts in FETCH: a multipart child ends before the line
break that precedes the next boundary (RFC 2046 5.1.1: "The CRLF
preceding the boundary delimiter line is conceptually attached to the
boundary"), in BODY[n] and in its BODYSTRUCTURE size and line count alike;
and the part numbers below a top-level message/rfc822 name the parts of
the message it holds (RFC 3501 6.4.5).  The expected values come from the
message text, from Python's email parser and from imapclient's reading of
BODYSTRUCTURE; the server is a real imap4d over a real posted upasfs.
upasfs's own files keep plan9port's bytes (tests/test_fs9p_golden.py)."""
from __future__ import annotations

import email
import email.policy
import itertools
import mailbox

import pytest
from imapclient import IMAPClient

from tests.fixtures.acceptor import TESTDATA

SIMPLE = (b"From glenda Mon Nov 23 09:15:00 2026\n"
          b"From: a@x.org\n"
          b"Subject: two parts\n"
          b"MIME-Version: 1.0\n"
          b'Content-Type: multipart/mixed; boundary="XX"\n'
          b"\n"
          b"preamble\n"
          b"--XX\n"
          b"Content-Type: text/plain\n"
          b"\n"
          b"one\n"
          b"two\n"
          b"--XX\n"
          b"Content-Type: text/plain\n"
          b"\n"
          b"three\n"
          b"--XX--\n"
          b"epilogue\n"
          b"\n")
INNER_HEADER = (b"From: inner@y.org\n"
                b"Subject: inner\n"
                b"MIME-Version: 1.0\n"
                b'Content-Type: multipart/mixed; boundary="b1"\n')
INNER_BODY = (b"\n"
              b"--b1\n"
              b"Content-Type: text/plain\n"
              b"\n"
              b"first part\n"
              b"--b1\n"
              b"Content-Type: text/html\n"
              b"\n"
              b"<p>second</p>\n"
              b"--b1--\n")
OUTER_HEADER = (b"From: outer@x.org\n"
                b"Subject: outer\n"
                b"MIME-Version: 1.0\n"
                b"Content-Type: message/rfc822\n")
TOP_RFC822 = (b"From glenda Mon Nov 23 09:16:00 2026\n" + OUTER_HEADER + b"\n"
              + INNER_HEADER + INNER_BODY + b"\n")
# message/rfc822 inside a multipart, holding a message/rfc822 in turn
NESTED = (b"From glenda Mon Nov 23 09:17:00 2026\n"
          b"From: a@x.org\n"
          b"Subject: nested\n"
          b'Content-Type: multipart/mixed; boundary="o"\n'
          b"\n"
          b"--o\n"
          b"Content-Type: text/plain\n"
          b"\n"
          b"cover\n"
          b"--o\n"
          b"Content-Type: message/rfc822\n"
          b"\n"
          b"Subject: middle\n"
          b"Content-Type: message/rfc822\n"
          b"\n"
          b"Subject: deepest\n"
          b"\n"
          b"deep body\n"
          b"--o--\n"
          b"\n")
N = 8                               # testdata glenda/mbox


def crlf(b: bytes) -> bytes:
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def srv(imap_preauth):
    with open(imap_preauth.box(), "ab") as f:
        f.write(SIMPLE + TOP_RFC822 + NESTED)
    return imap_preauth


@pytest.fixture
def cl(srv):
    c = IMAPClient(srv.addr[0], port=srv.addr[1], ssl=False, timeout=20)
    c.select_folder("INBOX", readonly=True)
    yield c
    c.logout()


def body(cl, n: int, sec: str) -> bytes:
    got = cl.fetch([n], [f"BODY.PEEK[{sec}]"])[n]
    (data,) = [v for k, v in got.items() if k.startswith(b"BODY[")]
    return data or b""


def structure(cl, n: int):
    return cl.fetch([n], ["BODYSTRUCTURE"])[n][b"BODYSTRUCTURE"]


def multipart(bs) -> tuple[list, bytes] | None:
    """(parts, subtype) of a multipart BODYSTRUCTURE as imapclient gives it
    (its top level groups the parts in a list, nested ones are flat)."""
    if isinstance(bs[0], list):
        return bs[0], bs[1]
    if isinstance(bs[0], tuple):
        parts = list(itertools.takewhile(lambda x: isinstance(x, tuple), bs))
        return parts, bs[len(parts)]
    return None


def leaves(bs, path: str = ""):
    """(part number, BodyData) of every non-multipart part, not descending
    into message/rfc822."""
    if multipart(bs):
        for i, p in enumerate(multipart(bs)[0], 1):
            yield from leaves(p, f"{path}.{i}" if path else str(i))
    else:
        yield path or "1", bs


# ---------------------------------------------------------------- multipart

def test_part_excludes_the_line_break_before_the_boundary(cl):
    n = N + 1
    assert body(cl, n, "1") == b"one\r\ntwo"
    assert body(cl, n, "2") == b"three"
    parts = dict(leaves(structure(cl, n)))
    # ("text" "plain" ... "7BIT" 8 1 ...): "one" CRLF "two" is 8 bytes, 1 line break
    assert (parts["1"][6], parts["1"][7]) == (8, 1)
    assert (parts["2"][6], parts["2"][7]) == (5, 0)


def test_every_part_of_the_test_mail_agrees_with_pythons_email(cl):
    """Each leaf's BODY[n] is the payload Python's email parser finds, and
    its BODYSTRUCTURE size is len(BODY[n])."""
    msgs = list(mailbox.mbox(str(TESTDATA / "box" / "glenda" / "mbox")))
    checked = 0
    for n, m in enumerate(msgs, 1):
        parsed = email.message_from_bytes(m.as_bytes(unixfrom=False), policy=email.policy.compat32)
        if not parsed.is_multipart():
            continue
        for path, bs in leaves(structure(cl, n)):
            data = body(cl, n, path)
            assert bs[6] == len(data), (n, path)
            if bs[0].lower() == b"message":
                continue
            part = parsed
            for k in path.split("."):
                part = part.get_payload()[int(k) - 1]
            assert data == crlf(part.get_payload(decode=False).encode("latin-1")), (n, path)
            checked += 1
    assert checked >= 6


# ---------------------------------------------------------------- message/rfc822

def test_top_level_message_rfc822_part_numbers(cl):
    n = N + 2
    assert body(cl, n, "HEADER") == crlf(OUTER_HEADER + b"\n")
    assert body(cl, n, "1") == crlf(INNER_HEADER + INNER_BODY)
    # 1.HEADER and 1.TEXT: the header and text of the message part 1 holds
    assert body(cl, n, "1.HEADER") == crlf(INNER_HEADER + b"\n")
    assert body(cl, n, "1.TEXT") == crlf(INNER_BODY[1:])
    # 1.1, 1.2: the parts of that message; each one's MIME header
    assert body(cl, n, "1.1") == b"first part"
    assert body(cl, n, "1.2") == b"<p>second</p>"
    assert body(cl, n, "1.1.MIME") == b"Content-Type: text/plain\r\n\r\n"
    assert body(cl, n, "1.HEADER.FIELDS (SUBJECT)") == b"Subject: inner\r\n\r\n"
    # 1.MIME: the MIME header of part 1 of a one-part message is its header
    assert body(cl, n, "1.MIME") == crlf(OUTER_HEADER + b"\n")
    assert body(cl, n, "1.3") == b""


def test_top_level_message_rfc822_bodystructure(cl):
    n = N + 2
    bs = structure(cl, n)
    assert (bs[0], bs[1]) == (b"message", b"rfc822")
    assert bs[6] == len(body(cl, n, "1"))
    assert bs[7][1] == b"inner"                      # the ENVELOPE of the message held
    inner = bs[8]
    parts, subtype = multipart(inner)
    assert subtype == b"mixed"
    assert [(p[1], p[6], p[7]) for p in parts] == [(b"plain", 10, 0), (b"html", 13, 0)]


def test_nested_message_rfc822_parts(cl):
    n = N + 3
    assert body(cl, n, "1") == b"cover"
    assert body(cl, n, "2.HEADER") == (b"Subject: middle\r\n"
                                       b"Content-Type: message/rfc822\r\n\r\n")
    assert body(cl, n, "2.1.HEADER") == b"Subject: deepest\r\n\r\n"
    assert body(cl, n, "2.1.TEXT") == b"deep body"
    assert body(cl, n, "2.1.1") == b"deep body"
    assert body(cl, n, "2.MIME") == b"Content-Type: message/rfc822\r\n\r\n"
    bs = dict(leaves(structure(cl, n)))["2"]
    assert bs[6] == len(body(cl, n, "2"))
    assert bs[8][0:2] == (b"message", b"rfc822")    # the middle holds the deepest
    assert bs[8][8][6] == len(b"deep body")
