"""Modified UTF-7 (RFC 3501 section 5.1.3), the encoding of IMAP mailbox names.

Printable ASCII (0x20-0x7e) stands for itself, except `&`, written `&-`.
Everything else is `&` + base64 (alphabet A-Z a-z 0-9 + ,, no padding) of
the UTF-16BE code units, then `-`.  The decoder is strict (docs/spec/servers.md §3.6):
raw bytes outside 0x20-0x7e, a bad base64 character, left-over non-zero
bits, a missing `-`, or a shifted run that encodes printable ASCII (a
second spelling of the same name) are all errors.
"""
from __future__ import annotations

import base64
import binascii

__all__ = ["DecodeError", "encode", "decode"]


class DecodeError(ValueError):
    """The name is not valid modified UTF-7."""


def _printable(ch: str) -> bool:
    return 0x20 <= ord(ch) <= 0x7E


def _shift(run: str) -> str:
    """One shifted run: `&` + modified base64 of UTF-16BE + `-`."""
    b64 = base64.b64encode(run.encode("utf-16-be")).decode("ascii")
    return "&" + b64.rstrip("=").replace("/", ",") + "-"


def encode(name: str) -> str:
    """Encode a Unicode mailbox name for the wire."""
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if _printable(ch):
            if run:
                out.append(_shift("".join(run)))
                run = []
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append(_shift("".join(run)))
    return "".join(out)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
_B64 = frozenset(_ALPHABET)


def _unshift(b64: str) -> str:
    """Decode the base64 between `&` and `-`, checking every bit."""
    if not b64 or any(c not in _B64 for c in b64):
        raise DecodeError("bad base64 in shifted run")
    nbits = len(b64) * 6
    if nbits % 16 >= 6:  # a whole base64 digit left over
        raise DecodeError("truncated shifted run")
    padded = b64.replace(",", "/") + "=" * (-len(b64) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error as e:
        raise DecodeError(str(e)) from None
    # b64decode ignores the low bits of the last digit; they must be zero.
    spare = nbits % 8
    if spare and (_ALPHABET.index(b64[-1]) & ((1 << spare) - 1)):
        raise DecodeError("non-zero left-over bits")
    if len(raw) % 2:
        raise DecodeError("odd number of bytes in shifted run")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        raise DecodeError("bad UTF-16 in shifted run") from None
    if any(_printable(c) for c in text):
        raise DecodeError("printable ASCII in shifted run")
    return text


def decode(wire: str | bytes) -> str:
    """Decode a mailbox name from the wire; raises DecodeError."""
    if isinstance(wire, bytes):
        try:
            wire = wire.decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError("8-bit byte in mailbox name") from None
    out: list[str] = []
    i, n = 0, len(wire)
    while i < n:
        ch = wire[i]
        if not _printable(ch):
            raise DecodeError("byte outside 0x20-0x7e")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = wire.find("-", i + 1)
        if end < 0:
            raise DecodeError("unterminated shifted run")
        if end == i + 1:
            out.append("&")
        else:
            out.append(_unshift(wire[i + 1:end]))
        i = end + 1
    return "".join(out)
