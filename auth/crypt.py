"""Plan 9's DES layer (docs/spec/fs-auth.md §3.3, §3.4) over pycryptodome.

Keys are the 7-byte DES keys Plan 9 stores (DESKEYLEN); des56to64 widens
them to the 8-byte FIPS form. Everything here is pure and works on bytes.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

from Crypto.Cipher import DES

DESKEYLEN = 7
BLOCK = 8


def des56to64(key7: bytes) -> bytes:
    """Spread 56 key bits over 8 bytes, 7 bits each, with odd parity in bit 0."""
    if len(key7) != DESKEYLEN:
        raise ValueError("DES key must be 7 bytes")
    bits = int.from_bytes(key7, "big")
    out = bytearray()
    for shift in range(49, -1, -7):
        g = (bits >> shift) & 0x7F
        out.append((g << 1) | (bin(g).count("1") % 2 == 0))
    return bytes(out)


@lru_cache(maxsize=256)
def _ecb(key7: bytes):
    # pycryptodome accepts the weak and semi-weak keys Plan 9 can produce.
    return DES.new(des56to64(key7), DES.MODE_ECB)


def _block_starts(n: int) -> list[int]:
    """Offsets of Plan 9's overlapping 8-byte blocks over an n-byte buffer."""
    if n < BLOCK:
        raise ValueError("encrypt needs at least 8 bytes")
    full, rest = divmod(n - 1, 7)
    starts = [7 * i for i in range(full)]
    if rest:
        starts.append(n - 8)
    return starts


def encrypt(key7: bytes, data: bytes) -> bytes:
    """Plan 9 encrypt(): DES over blocks at 0, 7, 14, ... and a last at n-8."""
    c, buf = _ecb(bytes(key7)), bytearray(data)
    for off in _block_starts(len(buf)):
        buf[off:off + 8] = c.encrypt(bytes(buf[off:off + 8]))
    return bytes(buf)


def decrypt(key7: bytes, data: bytes) -> bytes:
    """Plan 9 decrypt(): the blocks of encrypt() undone in reverse order."""
    c, buf = _ecb(bytes(key7)), bytearray(data)
    for off in reversed(_block_starts(len(buf))):
        buf[off:off + 8] = c.decrypt(bytes(buf[off:off + 8]))
    return bytes(buf)


def _fold(b: bytearray, w: int) -> bytes:
    # An addition, not an OR: it differs from OR for bytes >= 0x80.
    return bytes(((b[w + i] >> i) + (b[w + i + 1] << (7 - i))) & 0xFF for i in range(7))


def passtokey(password: str | bytes) -> bytes:
    """The 7-byte DES key of a password (libauthsrv passtokey)."""
    pw = password.encode() if isinstance(password, str) else bytes(password)
    b = bytearray(b" " * 8 + bytes(20))
    n = min(len(pw), 27)
    b[:n] = pw[:n]
    b[n] = 0
    w = 0
    key = _fold(b, w)
    while n > 8:
        n -= 8
        w += 8
        if n < 8:
            w -= 8 - n
            n = 8
        b[w:w + 8] = encrypt(key, bytes(b[w:w + 8]))
        key = _fold(b, w)
    return key


def netcrypt(key7: bytes, chal: str | bytes) -> str:
    """The p9cr/netkey response: 8 lower-case hex digits (libc netcrypt)."""
    raw = chal.encode() if isinstance(chal, str) else bytes(chal)
    raw = raw[:7].split(b"\0", 1)[0].split(b"\n", 1)[0]
    block = encrypt(key7, raw.ljust(8, b"\0"))
    return block[:4].hex()


def netkey_response(key7: bytes, chal: bytes | str) -> str:
    """The answer to a p9cr (netkey) decimal challenge: atoi, re-printed,
    netcrypt'ed, as factotum's p9cr client and libauth's auth_userpasswd
    compute it."""
    text = chal.decode("ascii", "replace") if isinstance(chal, bytes) else chal
    m = re.match(r"\s*([+-]?\d+)", text)
    return netcrypt(key7, str(int(m.group(1)) if m else 0))


def _cbc(key8: bytes, data: bytes, iv: bytes, enc: bool) -> bytes:
    """libsec desCBCencrypt/desCBCdecrypt, including the tail rule.

    The len % 8 trailing bytes are XORed with DES(last ciphertext block),
    the same operation in both directions.
    """
    ecb = DES.new(key8, DES.MODE_ECB)
    whole = len(data) - len(data) % BLOCK
    out = bytearray()
    prev = iv
    for off in range(0, whole, BLOCK):
        blk = data[off:off + BLOCK]
        if enc:
            prev = ecb.encrypt(bytes(x ^ y for x, y in zip(blk, prev)))
            out += prev
        else:
            out += bytes(x ^ y for x, y in zip(ecb.decrypt(blk), prev))
            prev = blk
    pad = ecb.encrypt(prev)
    out += bytes(x ^ y for x, y in zip(data[whole:], pad))
    return bytes(out)


def des_cbc_encrypt(key8: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    return _cbc(key8, bytes(data), iv, True)


def des_cbc_decrypt(key8: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    return _cbc(key8, bytes(data), iv, False)


def apop_digest(challenge: bytes, secret: bytes) -> str:
    """RFC 1939 APOP: MD5(challenge || secret), lower-case hex."""
    return hashlib.md5(challenge + secret).hexdigest()


def cram_digest(challenge: bytes, secret: bytes) -> str:
    """RFC 2195 CRAM-MD5: HMAC-MD5(key=secret, challenge), lower-case hex."""
    return hmac.new(secret, challenge, hashlib.md5).hexdigest()


def hex_matches(expected: str, response: str | bytes) -> bool:
    """Constant-time, case-insensitive comparison of hex digests."""
    if isinstance(response, bytes):
        response = response.decode("ascii", "replace")
    return hmac.compare_digest(expected.lower().encode(), response.lower().encode("ascii", "replace"))
