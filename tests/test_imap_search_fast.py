"""SEARCH's byte-level text match (imap4d/search.py, contains_bytes) is
the case-insensitive match of RFC 3501 6.4.4 on the text decoded as
UTF-8 (contains): the fast path taken without decoding gives the same
answer on every kind of text, and its list of the characters that fold
to ASCII is Python's own."""
from __future__ import annotations

import random

import pytest

from upas.imap4d.search import FOLDS_TO_ASCII, contains, contains_bytes


def test_the_characters_folding_to_ascii_are_listed():
    folding = [c for c in map(chr, range(0x80, 0x110000))
               if any(x.isascii() for x in c.casefold())]
    assert folding                                   # ß, ſ, K, ﬁ... exist
    assert sorted(c.encode() for c in folding) == sorted(FOLDS_TO_ASCII)


PIECES = ["fact", "otum", "FACTOTUM", "Factotum", "x", " ", "\n", "é", "ß", "ſ", "K", "ﬁ", "İ",
          "\u212a", "\u017f", "\ufb01", "\u0130", "日本", "\ufffd", "st", "ta", "nt"] + [
    c.decode() for c in FOLDS_TO_ASCII]     # every character folding to ASCII
BYTES = [b"\xff", b"\xc3", b"\xe2\x84", b"\xef\xac", b"\x80", b"\xc5", b"\xed\xa0\x80"]


@pytest.mark.parametrize("seed", range(4))
def test_the_fast_match_is_the_decoded_match(seed):
    rng = random.Random(seed)
    needles = ["factotum", "FaCt", "fi", "k", "ss", "s", "i", "é", "ﬁ", "otum x", "\u212a",
               "tst", "ta", "n", "fact", "ffl", "h", "wy", "j"]
    for _ in range(3000):
        hay = b"".join(rng.choice(PIECES).encode() if rng.random() < 0.8 else rng.choice(BYTES)
                       for _ in range(rng.randint(0, 12)))
        for needle in needles:
            assert contains_bytes(hay, needle) == contains(hay.decode("utf-8", "replace"), needle), \
                (hay, needle)


def test_known_cases():
    assert contains_bytes("the ﬁle".encode(), "FILE")          # the ligature folds to fi
    assert contains_bytes("\u212aernel".encode(), "kernel")     # the Kelvin sign to k
    assert contains_bytes("stra\u00dfe".encode(), "STRASSE")    # ß to ss
    assert contains_bytes(b"caf\xe9 factotum", "FACTOTUM")      # latin-1 bytes: no decoding
    assert not contains_bytes(b"fact\xffotum", "factotum")      # a bad byte splits the word
    assert contains_bytes(b"\xc3factotum", "factotum")          # a cut sequence eats no ASCII
    assert contains_bytes("ﬆa\u1e97".encode(), "STAT")          # ﬆ to st, ẗ to t + U+0308
    assert not contains_bytes("\u1e97a".encode(), "ta")         # U+0308 between t and a
    assert contains_bytes("\u0149a".encode(), "na")              # ŉ to U+02BC n
    assert not contains_bytes("ß\u212a".encode(), "fact")       # folds, none to these letters
