"""Hostile shapes made from a few bytes: deeply nested MIME messages and
IMAP search programs, and messages with huge part counts (issue 17).

A fuzzer's inputs are short (`make fuzz`: at most 4096 bytes); these
generators turn a short input into what no short input can be: a
thousand nesting levels, tens of thousands of parts.  The attack tests
and the reliability rig's hostile client use the same generators with
fixed arguments.
"""
from __future__ import annotations

KINDS = ("multipart", "rfc822", "mixed")
SEARCH_NESTING = ("(", "NOT", "OR")


def mime_bomb(depth: int, kind: str = "multipart", leaf: bytes = b"deep\n",
              subject: bytes = b"bomb", headers: bytes = b"") -> bytes:
    """A message `depth` levels deep: each level a multipart/mixed with one
    part, or a message/rfc822, or both in turn ("mixed").  `headers`: more
    header lines (each ending in a newline)."""
    head = [b"From: bomb@example.org\nSubject: " + subject + b"\n" + headers +
            b"MIME-Version: 1.0\n"]
    tail = []
    for i in range(depth):
        multi = kind == "multipart" or (kind == "mixed" and i % 2 == 0)
        if multi:
            head.append(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i))
            tail.append(b"\n--b%d--\n" % i)
        else:
            head.append(b"Content-Type: message/rfc822\n\nSubject: level %d\n" % i)
    head.append(b"Content-Type: text/plain\n\n" + leaf)
    return b"".join(head) + b"".join(reversed(tail))


def mime_flood(parts: int, subject: bytes = b"flood", headers: bytes = b"") -> bytes:
    """One multipart with `parts` empty parts."""
    return (b"From: flood@example.org\nSubject: " + subject + b"\n" + headers +
            b"MIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=x\n\n" + b"--x\n\n" * parts + b"--x--\n")


def search_bomb(depth: int, how: str = "(") -> bytes:
    """A SEARCH program nested `depth` deep by `(`, NOT or OR."""
    if how == "(":
        return b"(" * depth + b"ALL" + b")" * depth
    if how == "NOT":
        return b"NOT " * depth + b"ALL"
    return b"OR " * depth + b"ALL" + b" ALL" * depth


def _number(data: bytes, i: int, limit: int) -> int:
    return int.from_bytes(data[i:i + 2].ljust(2, b"\0"), "big") % (limit + 1)


def message_from(data: bytes) -> bytes:
    """A message from fuzzer bytes: byte 0 picks the shape, bytes 1-2 its
    size (up to 3000 levels or 30000 parts), the rest is the innermost
    part's text (or, for shape 3, the whole message, as it is)."""
    if not data:
        return b""
    shape, rest = data[0] % 4, data[3:]
    if shape == 3:
        return rest
    if shape == 2:
        return mime_flood(_number(data, 1, 30000)) + rest
    return mime_bomb(_number(data, 1, 3000), KINDS[data[0] % 3], leaf=rest)


def search_from(data: bytes) -> bytes:
    """A SEARCH command line from fuzzer bytes: byte 0 picks the nesting,
    bytes 1-2 its depth (up to 3000), the rest is appended as it is."""
    if not data:
        return b"a SEARCH ALL\r\n"
    depth = _number(data, 1, 3000)
    how = SEARCH_NESTING[data[0] % 3]
    return b"a SEARCH " + search_bomb(depth, how) + data[3:] + b"\r\n"
