"""envelope._split_top (the address-list split of ENVELOPE) visits only the
bytes that matter; it must split exactly as a byte-by-byte scan does:
at commas outside quoted strings, comments and angle brackets, a
backslash escaping the next byte, an unmatched ')' or '>' taken as text."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from upas.imap4d import envelope as env


def _scan(v: bytes) -> list[bytes]:
    """The byte-by-byte reference."""
    out, cur, depth, angle, quote, esc = [], bytearray(), 0, False, False, False
    for c in v:
        if esc:
            esc = False
        elif c == 0x5C:
            esc = True
        elif quote:
            quote = c != 0x22
        elif c == 0x22:
            quote = True
        elif c == 0x28:
            depth += 1
        elif c == 0x29 and depth:
            depth -= 1
        elif c == 0x3C and not depth:
            angle = True
        elif c == 0x3E and not depth:
            angle = False
        elif c == 0x2C and not depth and not angle:
            out.append(bytes(cur))
            cur = bytearray()
            continue
        cur.append(c)
    out.append(bytes(cur))
    return out


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from([b"\\", b'"', b"(", b")", b"<", b">", b",", b" ", b"a", b"@b"]),
                max_size=24).map(b"".join))
def test_split_equals_byte_scan(v):
    assert env._split_top(v, 0x2C) == _scan(v)


def test_split_examples():
    v = b'"Pike, Rob" <rob@x>, ken@y (Ken, T), <a,b@c>, x\\,y'
    assert env._split_top(v, 0x2C) == [b'"Pike, Rob" <rob@x>', b" ken@y (Ken, T)",
                                        b" <a,b@c>", b" x\\,y"]
