"""A message parsed in the session from its `raw` (imap4d/parsedview.py)
gives the very files upasfs serves for it: every part's rawheader,
rawbody, mimeheader and body and every part list, compared with
upasfs's own on the test mailbox, the MIME shapes (nesting, digests,
encodings, charsets, CRLF) and generated bench messages (attachments,
latin-1, forwarded messages).  SEARCH's first TEXT search of a message
takes its texts from there (tests/test_imap_cache_search.py compares its
answers with the direct evaluation)."""
from __future__ import annotations

from tests.test_imap_prefetch import mbox, views  # noqa: F401 -- fixtures
from upas import ns as nsmod
from upas.imap4d import prefetch
from upas.imap4d.parsedview import ParsedView

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
