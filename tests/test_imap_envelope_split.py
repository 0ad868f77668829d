"""envelope._top_level (where ENVELOPE splits an address list into
addresses and groups) visits only the bytes that matter; it must find
exactly what a byte-by-byte scan finds: `,` `:` `;` outside quoted strings,
comments and angle brackets, a backslash escaping the next byte, a `"`
inside a comment taken as text (RFC 5322 ctext), an unmatched ')' or '>'
taken as text."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from upas.imap4d import envelope as env


def _scan(v: bytes) -> list[int]:
    """The byte-by-byte reference."""
    out, depth, angle, quote, esc = [], 0, False, False, False
    for i, c in enumerate(v):
        if esc:
            esc = False
        elif c == 0x5C:
            esc = True
        elif quote:
            quote = c != 0x22
        elif c == 0x28:
            depth += 1
        elif c == 0x29:
            depth = max(0, depth - 1)
        elif depth:
            pass
        elif c == 0x22:
            quote = True
        elif c == 0x3C:
            angle = True
        elif c == 0x3E:
            angle = False
        elif c in b",:;" and not angle:
            out.append(i)
    return out


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from([b"\\", b'"', b"(", b")", b"<", b">", b",", b":", b";",
                                 b" ", b"a", b"@b"]),
                max_size=24).map(b"".join))
def test_split_equals_byte_scan(v):
    assert list(env._top_level(v)) == _scan(v)


def test_split_examples():
    v = b'"Pike, Rob" <rob@x>, ken@y (Ken, T), <a,b@c>, x\\,y, g: a@b;'
    assert [v[i:i + 1] for i in env._top_level(v)] == [b",", b",", b",", b",", b":", b";"]
    assert list(env._top_level(v))[:4] == [19, 35, 44, 50]
