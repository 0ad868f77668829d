"""SEARCH with the digest cache's TEXTS records (search.py): where a
message's header and texts lie -- spans of `raw` checked byte-equal to
the texts when first found, or the files -- so that a warm TEXT/BODY
search reads one or two files per message instead of walking its parts.

Answers are compared with the direct, uncached evaluation on the testdata
messages (quoted-printable, base64, latin1, encoded words, nested parts),
generated bench messages and MIME shapes: needles only in the raw
encoding (never matched), only in the decoded text (matched), in part
headers and boundaries, non-ASCII; cold, warm, and through real sessions."""
from __future__ import annotations

import random
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_imap_cache_fetch import cache_file, mbox, server  # noqa: F401 -- fixtures
from tests.test_imap_prefetch import views  # noqa: F401 -- fixture
from upas.imap4d import fetchcache as dc
from upas.imap4d import parser as p
from upas.imap4d import prefetch, search

QUERIES = [b"TEXT factotum", b"TEXT \"soft line\"", b"TEXT \"soft =\"", b"TEXT =3D",
           b"TEXT AAECAwQF", b"TEXT QUJD", b"TEXT boundary_42", b"TEXT \"--inner\"",
           b"TEXT \"Content-Type: text/html\"", b"BODY embedded", b"TEXT Caf\xc3\xa9",
           b"TEXT Voil\xc3\xa0", b"TEXT caf\xc3\xa9", b"TEXT glenda", b"BODY \"Equals sign: =\"",
           b"OR FROM ken SUBJECT shape", b"LARGER 2000 NOT BODY zzz", b"TEXT inside",
           b"SUBJECT message TEXT kernel", b"NOT TEXT the",
           # the base64 attachments hold bytes 0-255: runs of 26 letters,
           # 10 digits; the word's length at the run's and one more
           b"TEXT abcdefghijklmnopqrstuvwxyz", b"TEXT ABCDEFGHIJKLMNOPQRSTUVWXYZa",
           b"TEXT 0123456789", b"TEXT 0123456789a", b"BODY alternative", b"TEXT \"a dash\""]


def _direct(box, key) -> list[bool]:
    n, files = len(box.msgs), prefetch.Files(box.view)
    return [search.Matcher(files, m, i + 1, n, box.msgs[-1].uid).match(key)
            for i, m in enumerate(box.msgs)]


def _kept(box, key, kept) -> list[bool]:
    n, files = len(box.msgs), prefetch.Files(box.view)
    got = [r for _, r in prefetch.evaluate(
        files, box.msgs, lambda m: search.Matcher(files, m, 0, n, box.msgs[-1].uid, kept).match(key),
        search.first_files_cached(key, kept))]
    assert files.held == {} and not files.speculating
    kept.flush({m.digest for m in box.msgs})
    return got


def test_cold_and_warm_equal_direct(views):
    direct, batched = views
    hits = made = 0
    for q in QUERIES:
        key = p.search_program(p.Reader([q]))[1]
        want = _direct(direct, key)
        hits += any(want) and not all(want)
        real = Path(batched.ns.local_path(dc.path_for(batched.path)))
        real.unlink(missing_ok=True)
        kept = None
        for run in ("cold", "warm", "reloaded"):
            if run != "warm":
                kept = dc.FetchCache(batched.ns, batched.path, "imap.test")
            kept.refresh()
            assert _kept(batched, key, kept) == want, (q, run)
        made += real.exists()
    assert hits >= 12 and made >= 10
    _kept(batched, p.search_program(p.Reader([b"TEXT zzzq"]))[1], kept)   # reads every text
    recipes = [search.parse_recipe(kept.get(m.digest, search.TEXTS)) for m in batched.msgs]
    assert all(recipes)
    spans = sum(isinstance(x, tuple) and not isinstance(x, search.Decoded) for r in recipes for x in r)
    decoded = sum(isinstance(x, search.Decoded) for r in recipes for x in r)
    assert spans > 60 and decoded > 10        # both kinds: plain texts, decoded ones


def test_recipe_spans_are_the_texts(views):
    _, box = views
    kept = dc.FetchCache(box.ns, box.path, "imap.test")
    kept.refresh()
    _kept(box, p.search_program(p.Reader([b"TEXT zzz"]))[1], kept)
    files = prefetch.Files(box.view)
    for m in box.msgs:
        r = search.parse_recipe(kept.get(m.digest, search.TEXTS))
        raw = files.read(m, "raw")
        got = [files.read(m, x) if isinstance(x, str) else search.source_text(raw, x) for x in r]
        mt = search.Matcher(files, m, 0, 0, 0)
        assert got == [files.read(m, "rawheader")] + [files.read(m, f) for f in mt.text_files()]


def test_make_recipe_prefers_files_when_spans_are_small():
    raw = b"Subject: x\n\n" + b"A" * 1000
    assert search.make_recipe(raw, ["rawheader", "body"], [b"Subject: x\n", b"A" * 1000]) \
        == b"r0-11 r12-1012"
    assert search.make_recipe(raw, ["rawheader", "1/body"], [b"Subject: x\n", b"\x00\x01"]) \
        == b"frawheader f1/body"


def _search(server, query: bytes) -> list[bytes]:
    c = server.connect()
    try:
        c.cmd(b"s EXAMINE INBOX")
        r = c.cmd(b"q SEARCH " + query)
        assert r[-1] == b"q OK SEARCH completed\r\n", r
        c.cmd(b"l LOGOUT")
    finally:
        c.close()
    return r


def test_sessions_cold_warm_uncached(server):  # noqa: F811 -- fixture
    qs = [b"TEXT factotum", b"TEXT \"soft line\"", b"TEXT AAECAwQF", b"BODY embedded",
          b"TEXT =3D", b"TEXT kernel"]
    cold = [_search(server, q) for q in qs]
    assert sum(r[0] != b"* SEARCH\r\n" for r in cold) >= 4
    data = cache_file(server).read_bytes()
    assert b" TEXTS r" in data and b" TEXTS f" in data
    assert [_search(server, q) for q in qs] == cold
    cache_file(server).write_bytes(b"foreign\n")
    assert [_search(server, q) for q in qs] == cold
    assert cache_file(server).read_bytes() == b"foreign\n"


def test_a_record_is_what_a_warm_search_reads(server):  # noqa: F811 -- fixture
    assert _search(server, b"TEXT \"--=_boundary_42\"") == \
        [b"* SEARCH\r\n", b"q OK SEARCH completed\r\n"]     # a boundary: in no text
    path = cache_file(server)
    data = path.read_bytes()
    digests = list(dc.parse(data, data[:data.index(b"\n") + 1])[1])
    assert digests
    # every message's texts said to be its whole raw: boundaries become text
    path.write_bytes(data + b"".join(dc.record(d, search.TEXTS, b"frawheader fraw")
                                     for d in digests))
    r = _search(server, b"TEXT \"--=_boundary_42\"")
    assert r == [b"* SEARCH 2\r\n", b"q OK SEARCH completed\r\n"]


@settings(max_examples=400, deadline=None)
@given(hay=st.binary(max_size=40) | st.text(max_size=30).map(lambda t: t.encode()),
       needle=st.text(alphabet=st.characters(max_codepoint=0x24F) | st.sampled_from("Kſß\u212a"),
                      max_size=4))
def test_bytes_search_is_the_decoded_search(hay, needle):
    assert search.contains_bytes(hay, needle) == \
        search.contains(hay.decode("utf-8", "replace"), needle)
    up = hay.upper()
    assert search.contains_bytes(up, needle) == \
        search.contains(up.decode("utf-8", "replace"), needle)


def test_a_decoded_span_is_kept_only_as_the_body_it_gives():
    """decoding() finds how a part's body is its raw body decoded, tried
    against the body upasfs served; parse_recipe reads the entry back."""
    import base64
    blob = bytes(range(256)) * 3
    b64 = base64.encodebytes(blob)
    mime = b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
    raw = b"Subject: x\n\n--b\n" + mime + b"\n" + b64 + b"--b--\n"
    d = search.decoding(raw, b64, mime, blob)
    assert d is not None and d.encoding == b"b" and d.text(raw) == blob
    assert search.parse_recipe(b"r0-10 " + d.entry())[1] == d
    latin = b"caf\xe9\n"
    lraw = b"Subject: y\n\n" + latin
    d = search.decoding(lraw, latin, b"Content-Type: text/plain; charset=iso-8859-1\n",
                        "café\n".encode())
    assert d is not None and d.charset == b"iso-8859-1" and d.text(lraw) == "café\n".encode()
    # a body no known decoding gives, or a raw body not in raw: no entry
    assert search.decoding(raw, b64, mime, blob + b"!") is None
    assert search.decoding(raw, b"not there", mime, blob) is None
    assert search.parse_recipe(b"r0-10 d1-2:x:-:0") is None
    assert search.parse_recipe(b"r0-10 d1-2:b:utf-8") is None


def _folded_longest(text: bytes) -> int:
    """The longest run of ASCII letters and digits in the case folding of
    text decoded (what contains() matches in)."""
    folded = text.decode("utf-8", "replace").casefold()
    return max(map(len, re.findall(r"[a-z0-9]+", folded, re.ASCII)), default=0)


def test_longest_word_counts_folded_letters_and_digits():
    assert search.longest_word(bytes(range(256))) == 26          # A-Z, a-z; 0-9 is 10
    assert search.longest_word(b"") == search.longest_word(b"-+-") == 0
    assert search.longest_word(b"a kernel, 2024") == 6
    assert search.longest_word("\ufb01le-x".encode()) >= 4       # the ligature folds to fi
    assert search.longest_word("\u212aernel\xff".encode()) >= 6
    rng = random.Random(7)
    chars = ["a", "Z", "9", " ", "-", "\xe9", "\u0130", "\u212a", "\ufb03", "\u00df", "\u1e9a"]
    for _ in range(3000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 30))).encode()
        text += rng.randbytes(rng.randint(0, 8))
        assert search.longest_word(text) >= _folded_longest(text), text
        if text.isascii():
            assert search.longest_word(text) == _folded_longest(text), text
    d = search.Decoded(0, 1, b"b", b"", False, 26)
    assert not d.cannot_hold("a" * 26) and d.cannot_hold("A" * 27)
    assert not d.cannot_hold("a " * 20) and not d.cannot_hold("é" * 30)   # not a word: read
    assert not d._replace(run=-1).cannot_hold("a" * 99)                  # not known: read
    assert search.parse_recipe(b"r0-10 " + d.entry())[1] == d
    assert search.parse_recipe(b"r0-10 d1-2:b:-:0:3:4") is None


def test_a_word_as_long_as_an_attachments_longest_is_found_warm(views):
    """Bytes 0-255 base64-encoded (testdata's attachments) decode to a run
    of 26 letters: 26 are looked for in it, 27 are not there to find."""
    direct, batched = views
    kept = dc.FetchCache(batched.ns, batched.path, "imap.test")
    kept.refresh()
    for q, found in ((b"TEXT abcdefghijklmnopqrstuvwxyz", True),
                     (b"TEXT ABCDEFGHIJKLMNOPQRSTUVWXYZa", False)):
        key = p.search_program(p.Reader([q]))[1]
        want = _direct(direct, key)
        assert any(want) == found
        for _ in ("cold", "warm"):
            assert _kept(batched, key, kept) == want
    recipes = [search.parse_recipe(kept.get(m.digest, search.TEXTS)) for m in batched.msgs]
    assert 26 in {x.run for r in recipes for x in r if isinstance(x, search.Decoded)}
