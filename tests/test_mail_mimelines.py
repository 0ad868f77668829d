"""The MIME-only header scan (mime._mime_lines, used when a message's
structure is all that is needed: mailbox open, rawheader/lines) reads the
header block exactly as header.header_lines does."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from upas.mail import header as H
from upas.mail import mime

PIECES = [b"Content-Type: multipart/mixed;", b" boundary=\"b\"", b"content-TYPE:text/plain",
          b"Content-Transfer-Encoding: base64", b"content-disposition: attachment; filename=x",
          b"Subject: hi", b"X-Content-Type: no", b"Content-Type : spaced", b"no colon here",
          b"\tcontinued", b" ", b"", b"a:b:c", b"\r", b":", b"Content-Type:"]


def mime_fields(buf: bytes, start: int, end: int) -> tuple[list[bytes], int]:
    """The lines header_lines yields that name a MIME field, and its end."""
    p, out = start, []
    for line, p in H.header_lines(buf, start, end):
        colon = line.find(b":", 0, 26)
        if colon >= 0 and line[:colon + 1].lower() in mime._MIME_HEADMAP:
            out.append(line)
    return out, p


def fast_fields(buf: bytes, start: int, end: int) -> tuple[list[bytes], int]:
    got = list(mime._mime_lines(buf, start, end))
    assert got[-1][0] == b""
    return [line for line, _ in got[:-1]], got[-1][1]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12),
       st.sampled_from([b"\n", b"\n\n", b"", b"\n\t"]),
       st.integers(0, 3), st.integers(0, 3))
def test_same_lines_and_end_as_header_lines(pieces, tail, cut_start, cut_end):
    buf = b"\n".join(pieces) + tail + b"body\n"
    start = min(cut_start, len(buf))
    end = max(start, len(buf) - cut_end)
    assert fast_fields(buf, start, end) == mime_fields(buf, start, end)


def test_a_message_mid_buffer():
    head = b"From x\nSubject: a\nContent-Type: multipart/mixed;\n boundary=zz\nX: y\n\nbody\n"
    buf = b"junk" + head
    start = buf.index(b"Subject")
    lines, end = fast_fields(buf, start, len(buf))
    assert lines == [b"Content-Type: multipart/mixed; boundary=zz"]
    assert buf[end:end + 5] == b"\nbody"
    assert (lines, end) == mime_fields(buf, start, len(buf))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=10), st.sampled_from([b"\n", b"\n\n", b""]))
def test_offsets_are_where_the_full_parse_puts_them(pieces, tail):
    """rawheader/rawbody/lines are served from parse_offsets: the header
    end and body start must be the full parse's."""
    buf = b"From a Thu Nov 26 12:00:00 EST 2026\n" + b"\n".join(pieces) + tail + b"text\n"
    full = mime.parse_message(buf, 0, len(buf), mime.Ids())
    quick = mime.parse_offsets(buf, 0, len(buf), 1)
    assert (quick.header, quick.hend, quick.body, quick.bend) == \
        (full.header, full.hend, full.body, full.bend)
    for f in ("rawheader", "rawbody", "lines"):
        assert quick.file(f) == full.file(f)
