"""FETCH and SEARCH answers computed from batched, speculative reads
(prefetch.py) are the answers of the direct, file-by-file reads: the same
code on two Mailbox views of one real upasfs, over the testdata messages,
generated bench messages and MIME shapes that take several probe rounds
(more parts than one round probes, multiparts nested in multiparts and in
a message/rfc822 part, parts larger than one 9P read).  A message deleted between two rounds is
answered with an error, never with a structure guessed from missing parts."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus import make_corpus
from upas import ns as nsmod
from upas.imap4d import fetch, prefetch, search
from upas.imap4d import parser as p
from upas.mail.fsview import CTL
from upas.imap4d.mailbox import Mailbox

REPO = Path(__file__).resolve().parents[1]
SITE = "imap.test"


def _part(ctype: str, body: str) -> str:
    return f"Content-Type: {ctype}\n\n{body}\n"


def _multipart(sub: str, boundary: str, parts: list[str]) -> str:
    out = f"Content-Type: multipart/{sub}; boundary={boundary}\n\n"
    for part in parts:
        out += f"--{boundary}\n{part}"
    return out + f"--{boundary}--\n"


def _shapes() -> bytes:
    """Messages whose part counts and nesting need several probe rounds."""
    many = _multipart("mixed", "b5", [_part("text/plain", f"part {i} factotum") for i in range(1, 7)])
    inner = _multipart("alternative", "in", [_part("text/plain", "plain"), _part("text/html", "<p>x</p>")])
    nested = _multipart("mixed", "out", [_part("text/plain", "first"), inner + "\n",
                                         _part("text/plain", "last factotum")])
    embedded = ("From: x@y\nSubject: inside\n" + _multipart(
        "mixed", "emb", [_part("text/plain", "embedded factotum"), _part("image/png", "AAAA")]))
    with_rfc822 = _multipart("mixed", "r8", [_part("text/plain", "see attached"),
                                             _part("message/rfc822", embedded)])
    headless = _multipart("mixed", "hl", ["\nno header at all\n", _part("text/plain", "two")])
    line = "many bytes beyond one 9P read factotum\n"
    big = _multipart("mixed", "bg", [_part("text/plain", line * 6000),
                                     _part("application/octet-stream", "QUJD" * 30000)])
    msgs = [many, nested, with_rfc822, headless, big]
    return b"".join(
        (f"From glenda Mon Nov 23 09:{i:02d}:00 2026\nFrom: glenda@example.org\n"
         f"Subject: shape {i}\nMIME-Version: 1.0\n{m}\n").encode()
        for i, m in enumerate(msgs))


def mixed_mbox(tmp_path_factory, n: int, seed: int) -> bytes:
    """The testdata messages, the MIME shapes and n generated messages."""
    gen = tmp_path_factory.mktemp("corpus") / "mbox"
    make_corpus(gen, n, seed=seed)
    plain = (REPO / "testdata" / "mail" / "box" / "glenda" / "mbox").read_bytes()
    return plain.rstrip(b"\n") + b"\n\n" + _shapes() + gen.read_bytes()


@pytest.fixture(scope="module")
def mbox(tmp_path_factory) -> bytes:
    return mixed_mbox(tmp_path_factory, 60, 3)


@pytest.fixture
def views(upasfs_factory, mbox, monkeypatch):
    """Two views of one upasfs mailbox: one read directly, one batched (in
    batches of 7 messages, so that batches have edges)."""
    monkeypatch.setattr(prefetch, "BATCH", 7)
    fs = upasfs_factory(mbox)
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box", str(Path(fs.mailroot) / "box"))
    ns.bind_9p("/mail/fs", fs.client())
    boxes = []
    for _ in range(2):
        b = Mailbox(ns, "/mail/box/glenda/mbox", readonly=True)
        b.open()
        boxes.append(b)
    yield boxes
    ns.close()


def _fetch_direct(box, atts):
    files = prefetch.Files(box.view)
    return [b" ".join(fetch.item(files, m, a, SITE) for a in atts) for m in box.msgs]


def _fetch_batched(box, atts, guard=lambda fn: fn):
    files = prefetch.Files(box.view)

    def one(m):
        return b" ".join(files.gather(lambda a: fetch.item(files, m, a, SITE), atts, b""))
    got = [r for _, r in prefetch.evaluate(files, box.msgs, guard(one), fetch.first_files(atts))]
    assert files.held == {} and not files.speculating      # nothing left for the next command
    return got


FETCHES = [b"(UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)", b"(BODY INTERNALDATE)",
           b"BODY.PEEK[]", b"(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[2.1] BODY.PEEK[3.TEXT]"
           b" BODY.PEEK[2.2.HEADER] BODY.PEEK[HEADER.FIELDS (From Subject)])",
           b"(RFC822.HEADER RFC822.TEXT BODY.PEEK[TEXT]<5.20>)"]


@pytest.mark.parametrize("what", FETCHES)
def test_fetch_batched_equals_direct(views, what):
    direct, batched = views
    atts = p.fetch_atts(p.Reader([what]))
    want = _fetch_direct(direct, atts)
    assert len(want) > 70
    assert _fetch_batched(batched, atts) == want


@pytest.mark.parametrize("query", [b"TEXT factotum", b"BODY embedded", b"OR FROM ken SUBJECT shape",
                                   b"LARGER 2000 NOT BODY zzz", b"HEADER Content-Type mixed"])
def test_search_batched_equals_direct(views, query):
    direct, batched = views
    key = p.search_program(p.Reader([query]))[1]
    n, top = len(direct.msgs), direct.msgs[-1].uid
    dfiles, bfiles = prefetch.Files(direct.view), prefetch.Files(batched.view)
    want = [search.Matcher(dfiles, m, i + 1, n, top).match(key) for i, m in enumerate(direct.msgs)]
    assert any(want) and not all(want)
    first = search.first_files(key)
    got = [r for _, r in prefetch.evaluate(bfiles, batched.msgs,
                                           lambda m: search.Matcher(bfiles, m, 0, n, top).match(key),
                                           lambda m: first)]
    assert got == want


def test_message_deleted_between_rounds_is_an_error(views, monkeypatch):
    direct, batched = views
    atts = p.fetch_atts(p.Reader([b"(RFC822.SIZE BODYSTRUCTURE)"]))
    want = _fetch_direct(direct, atts)
    peek = prefetch.Files(batched.view)
    victim = next(m for m in batched.msgs if peek.read(m, "rawheader").find(b"shape 0") >= 0)
    deleted = []
    real = prefetch.load_begin

    def load_begin(files, wanted):    # the first round that read the victim's files
        collect = real(files, wanted)

        def then():
            collect()
            if not deleted and any(m is victim for m, _ in wanted):
                files.view.ns.write(CTL, f"delete {files.view.name} {victim.fsnum}".encode())
                deleted.append(victim)
        return then
    monkeypatch.setattr(prefetch, "load_begin", load_begin)

    def guard(fn):
        def safe(m):
            try:
                return fn(m)
            except nsmod.Error:
                return None
        return safe
    got = _fetch_batched(batched, atts, guard)
    assert deleted
    i = batched.msgs.index(victim)
    assert got[i] is None
    assert got[:i] + got[i + 1:] == want[:i] + want[i + 1:]
