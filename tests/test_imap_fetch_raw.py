"""FETCH of whole messages (BODY[], RFC822, RFC822.SIZE) reads each
message's `raw` once and cuts it where upasfs's summary says its
rawheader and rawbody lie (fetch._cuts, fsview.split_raw): the answers
are those of reading rawheader and rawbody themselves, for every shape of
message a mailbox holds -- CRLF lines, a header only, a header not ended
by a newline, no empty line before the body, an empty header -- and no
rawheader or rawbody is read."""
from __future__ import annotations

import pytest

# views: the prefetch tests' two Mailboxes, here over this module's mbox
from tests.test_imap_prefetch import SITE, _fetch_direct, mixed_mbox, views  # noqa: F401
from upas.imap4d import fetch, prefetch
from upas.imap4d import parser as p
from upas.mail.fsview import split_raw

FROM = b"From glenda Mon Nov 23 09:00:00 2026\n"
EDGES = [
    b"From: a@b\r\nSubject: crlf\r\n\r\nline one\r\nline two\r\n",
    b"From: a@b\nSubject: header only\n",
    b"From: a@b\nSubject: no newline at the end",
    b"From: a@b\nSubject: no empty line\nthe body starts at once\n",
    b"\nbody of a message with an empty header\n",
    b"From: a@b\nSubject: dots\n\n.\n..\nFrom the body\n",
]
FETCHES = [b"BODY.PEEK[]", b"(UID RFC822.SIZE RFC822)", b"(BODY.PEEK[]<3.40> FLAGS)"]


@pytest.fixture(scope="module")
def mbox(tmp_path_factory) -> bytes:
    edges = b"".join(FROM + e + (b"\n" if e.endswith(b"\n") else b"\n\n") for e in EDGES)
    return edges + mixed_mbox(tmp_path_factory, 40, 5)


def _fetch_cut(box, atts, read: list[str]) -> list[bytes]:
    files = prefetch.Files(box.view)
    files.cuts = fetch._cuts(box, box.msgs, fetch.first_files(atts))
    assert len(files.cuts) >= len(box.msgs) - 1
    real = box.view.read_many_begin

    def read_many_begin(wanted, count):
        read.extend(rel for _, rel in wanted)
        return real(wanted, count)
    box.view.read_many_begin = read_many_begin

    def one(m):
        return b" ".join(files.gather(lambda a: fetch.item(files, m, a, SITE), atts, b""))
    return [r for _, r in prefetch.evaluate(files, box.msgs, one, fetch.first_files(atts))]


@pytest.mark.parametrize("what", FETCHES)
def test_whole_messages_from_raw_equal_the_two_files(views, what):
    direct, cut = views
    atts = p.fetch_atts(p.Reader([what]))
    want = _fetch_direct(direct, atts)
    assert any(b"crlf" in w for w in want) and len(want) > 50
    read: list[str] = []
    assert _fetch_cut(cut, atts, read) == want
    assert read and not {"rawheader", "rawbody"} & set(read)


def test_split_raw_refuses_a_cut_the_lengths_do_not_prove():
    """(upasfs takes no mbox that does not start with a From line, but a
    message stored without one would have it as raw's first line)"""
    assert split_raw(b"A: b\n\nbody\n", 5, 5) == (b"A: b\n", b"body\n")
    assert split_raw(b"A: b\nbody\n", 5, 5) == (b"A: b\n", b"body\n")
    # a raw with a first line of its own, empty: as long as a header,
    # a newline and the body, but it starts with the newline
    assert split_raw(b"\nA: b\nbody\n", 5, 5) is None
    assert split_raw(b"\nbody\n", 0, 5) == (b"", b"body\n")
    assert split_raw(b"A: b\nXbody\n", 5, 5) is None      # no newline where the cut is
    assert split_raw(b"From x\nA: b\n\nbody\n", 5, 5) is None


WHOLE = [b"BODY.PEEK[]", b"(UID RFC822)", b"(BODY[] UID RFC822)"]


@pytest.mark.parametrize("what", WHOLE)
def test_whole_message_fetch_answers_as_each_item_does(views, what, monkeypatch):
    """FETCH of nothing but whole messages (and UIDs) answers each message
    from its cut raw without evaluating items (fetch._whole_answers), in
    windows smaller than the mailbox so that they have edges: the answers
    are item()'s over the two files, for every shape of message; a
    message without a cut is answered the usual way."""
    monkeypatch.setattr(prefetch, "WINDOW", 5)
    monkeypatch.setattr(prefetch, "AHEAD", 2)
    direct, cut = views
    atts = p.fetch_atts(p.Reader([what]))
    assert all(fetch._whole_item(a) for a in atts)
    want = _fetch_direct(direct, atts)
    files = prefetch.Files(cut.view)
    files.cuts = fetch._cuts(cut, cut.msgs, fetch.first_files(atts))
    del files.cuts[cut.msgs[3].fsnum]       # answered by evaluate

    def one(m):
        return b" ".join(files.gather(lambda a: fetch.item(files, m, a, SITE), atts, b""))
    got = list(fetch._whole_answers(None, files, cut.msgs, atts, one))
    assert [m for m, _ in got] == cut.msgs
    assert [b"".join(d) if isinstance(d, list) else d for _, d in got] == want
    assert isinstance(got[0][1], list) and not isinstance(got[3][1], list)
    assert files.held == {} and not files.speculating


def test_partial_and_other_sections_are_not_whole():
    for what in (b"BODY.PEEK[]<0.10>", b"BODY[TEXT]", b"BODY[1]", b"RFC822.SIZE", b"BINARY[]"):
        assert not all(fetch._whole_item(a) for a in p.fetch_atts(p.Reader([what]))), what


@pytest.mark.parametrize("text", EDGES + [b"From: a@b\r\nSubject: cr\r\n\n\rbody\n"])
def test_whole_text_is_the_header_block_and_the_body(text):
    """BODY[] made from raw in one pass where the layout allows it equals
    message_section's: header_block(rawheader) + the body with CRLF ends."""
    from upas.imap4d import envelope as env
    raw = text
    header, body = _lengths(raw)
    h, b = split_raw(raw, header, body)
    assert fetch.whole_text(raw, header, body) == env.header_block(h) + env.crlf(b)
    assert fetch.whole_text(raw + b"x", header, body) is None


def _lengths(raw: bytes) -> tuple[int, int]:
    """rawheader and rawbody lengths as upasfs cuts raw: the header to its
    empty line (or to a line without a colon), the body after it."""
    i = 0
    while i < len(raw):
        nl = raw.find(b"\n", i)
        line = raw[i:len(raw) if nl < 0 else nl]
        if line in (b"", b"\r") or b":" not in line:
            break
        i = len(raw) if nl < 0 else nl + 1
    if raw[i:i + 1] == b"\n":
        return i, len(raw) - i - 1
    return i, len(raw) - i
