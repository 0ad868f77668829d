"""The Bell/plan9port keys file (docs/spec/fs-auth.md §3.8).

8 random bytes, then one 73-byte record per user, the whole DES-CBC encrypted
(zero IV, libsec's tail rule) under des56to64(authkey). Unlike Bell's reader
we decrypt the whole file, so the last record's secret survives intact
(docs/decisions.md). The file is only ever written encrypted, via tmp + fsync +
rename.
"""
from __future__ import annotations

import os
import secrets
import struct
from dataclasses import dataclass

from auth import crypt
from auth.records import ANAMELEN, DESKEYLEN, SECRETLEN, get_str, put_str

KEYDBOFF = 8
OKEYDBLEN = ANAMELEN + DESKEYLEN + 4 + 2     # 41: the record without the secret
KEYDBLEN = OKEYDBLEN + SECRETLEN             # 73

STATUS_OK = 0
STATUS_DISABLED = 1


@dataclass
class KeyRecord:
    name: str
    key: bytes = bytes(DESKEYLEN)
    status: int = STATUS_OK
    warnings: int = 0
    expire: int = 0                # epoch seconds, 0 = never
    secret: bytes = b""

    def pack(self) -> bytes:
        return (put_str(self.name, ANAMELEN) + bytes(self.key)
                + bytes([self.status & 0xFF, self.warnings & 0xFF])
                + struct.pack("<I", self.expire & 0xFFFFFFFF)
                + bytes(self.secret)[: SECRETLEN - 1].ljust(SECRETLEN, b"\0"))

    def __repr__(self) -> str:   # never show key or secret
        return f"KeyRecord(name={self.name!r}, status={self.status}, expire={self.expire})"


def valid_name(raw: bytes) -> bool:
    """A stored name must be NUL-terminated, non-empty, no control, space or '/'."""
    if b"\0" not in raw:
        return False
    name = raw.split(b"\0", 1)[0]
    return bool(name) and not any(c <= 0x20 or c == 0x7F or c == ord("/") for c in name)


def _unpack(rec: bytes) -> KeyRecord | None:
    if not valid_name(rec[:ANAMELEN]):
        return None
    secret = rec[OKEYDBLEN:KEYDBLEN].split(b"\0", 1)[0]
    return KeyRecord(get_str(rec[:ANAMELEN]), rec[28:35], rec[35], rec[36],
                     struct.unpack("<I", rec[37:41])[0], secret)


def file_key(authkey: bytes) -> bytes:
    return crypt.des56to64(authkey)


def scan(data: bytes, authkey: bytes) -> tuple[list[KeyRecord], int]:
    """Decrypt a whole keys file: (valid records, number skipped).

    Invalid records and a trailing partial record count as skipped; a file
    written by keyfs has none, so any means a wrong auth key or damage.
    """
    plain = crypt.des_cbc_decrypt(file_key(authkey), data)
    body = plain[KEYDBOFF:]
    recs = [_unpack(body[i:i + KEYDBLEN]) for i in range(0, len(body) - KEYDBLEN + 1, KEYDBLEN)]
    good = [r for r in recs if r is not None]
    return good, len(recs) - len(good) + (1 if len(body) % KEYDBLEN else 0)


def decode(data: bytes, authkey: bytes) -> list[KeyRecord]:
    """The valid records of a keys file (invalid ones are skipped, as keyfs does)."""
    return scan(data, authkey)[0]


def encode(records: list[KeyRecord], authkey: bytes, prefix: bytes | None = None) -> bytes:
    """Encrypt records into keys-file bytes; the 8-byte prefix is random unless given."""
    prefix = secrets.token_bytes(KEYDBOFF) if prefix is None else prefix
    if len(prefix) != KEYDBOFF:
        raise ValueError("prefix must be 8 bytes")
    plain = prefix + b"".join(r.pack() for r in records)
    return crypt.des_cbc_encrypt(file_key(authkey), plain)


def recover(path: str) -> None:
    """If a crash left only <path>.tmp, take it back (as the design's crash-safe rule)."""
    tmp = path + ".tmp"
    if not os.path.exists(path) and os.path.exists(tmp):
        os.rename(tmp, path)


def load_scan(path: str, authkey: bytes) -> tuple[list[KeyRecord], int]:
    """scan() of the file at path; a missing file is empty."""
    recover(path)
    if not os.path.exists(path):
        return [], 0
    with open(path, "rb") as f:
        return scan(f.read(), authkey)


def load(path: str, authkey: bytes) -> list[KeyRecord]:
    return load_scan(path, authkey)[0]


def save(path: str, records: list[KeyRecord], authkey: bytes) -> None:
    """Write the encrypted file via <path>.tmp, fsync, rename, fsync the directory."""
    data = encode(records, authkey)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp) and os.path.exists(path):
            os.unlink(tmp)
        raise
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_authkey(source: str) -> bytes:
    """The auth key from a file (keyfs/changeuser -k): its first line is the password.

    Stands in for Plan 9's NVRAM; the password never appears on a command line.
    """
    with open(source, "rb") as f:
        line = f.readline().rstrip(b"\r\n")
    if not line:
        raise ValueError(f"{source}: empty auth key file")
    return crypt.passtokey(line)
