"""A message parsed in the session from its `raw` (imap4d/parsedview.py)
gives the very files upasfs serves for it: every part's rawheader,
rawbody, mimeheader and body and every part list, compared with
upasfs's own on the test mailbox, the MIME shapes (nesting, digests,
encodings, charsets, CRLF) and generated bench messages (attachments,
latin-1, forwarded messages).  SEARCH's first TEXT search of a message
takes its texts from there (tests/test_imap_cache_search.py compares its
answers with the direct evaluation).  Likewise a message's `unixheader`
made from its From line alone (summary.unix_header), which SORT and
THREAD read."""
from __future__ import annotations

from tests.test_imap_prefetch import mbox, views  # noqa: F401 -- fixtures
from upas import ns as nsmod
from upas.imap4d import prefetch, summary
from upas.imap4d.parsedview import ParsedView
from upas.mail import mime

NAMES = ("rawheader", "rawbody", "mimeheader", "body")


def _rels(view, n: int, rel: str = ""):
    yield rel
    for k in view.parts(n, rel):
        yield from _rels(view, n, f"{rel}/{k}" if rel else str(k))


def test_every_file_is_upasfs_own(views):  # noqa: F811 -- fixture
    box = views[0]
    files = prefetch.Files(box.view)
    compared = parts = 0
    for m in box.msgs:
        raw = files.read(m, "raw")
        pv = ParsedView(raw)
        assert pv.read(0, "raw") == raw
        for rel in _rels(box.view, m.fsnum):
            assert pv.parts(0, rel) == box.view.parts(m.fsnum, rel), (m.fsnum, rel)
            for name in NAMES:
                if not rel and name == "mimeheader":
                    continue            # a top-level message's: read from rawheader
                path = f"{rel}/{name}" if rel else name
                try:
                    want = box.view.read(m.fsnum, path)
                except nsmod.Error:
                    continue
                assert pv.read(0, path) == want, (m.fsnum, path)
                compared += 1
            parts += bool(rel)
    assert len(box.msgs) > 60 and parts > 40 and compared > 400


def test_a_from_line_makes_upasfs_unixheader(views):  # noqa: F811 -- fixture
    """summary.unix_header, from the start of `rawunix`, is upasfs's
    `unixheader` wherever it gives one (on the test, MIME-shape and
    bench messages, and From lines cut or odd)."""
    box = views[0]
    made = 0
    for m in box.msgs:
        start = box.view.read_many([(m.fsnum, "rawunix")], summary.FROM_LINE)[0]
        head = summary.unix_header(start)
        if head is not None:
            assert head == box.view.read(m.fsnum, "unixheader"), m.fsnum
            made += 1
    assert made > 60
    assert summary.unix_header(b"From ??? Thu Jan 1 00:00:00 GMT 1970\n") is None
    assert summary.unix_header(b"From a@b.org " + b"x" * summary.FROM_LINE) is None
    assert summary.unix_header(b"From a@b.org\n") == b"From a@b.org " + mime.EPOCH_DATE + b"\n"
    assert summary.unix_header(b"Subject: no From line\n") is None
