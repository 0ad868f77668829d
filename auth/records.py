"""Plan 9 auth records (docs/spec/fs-auth.md §3.1, §3.2, §3.5, §2.4).

Ticketreq, Ticket, Authenticator and Passwordreq in the classic (form 0)
layouts, the AuthInfo that factotum hands back, and the AS reply framing
(AuthOK / AuthErr / AuthOKvar). Names are str (UTF-8 on the wire), binary
fields bytes. pack(key)/unpack(buf, key) encrypt/decrypt with Plan 9's
overlapping-block DES when a 7-byte key is given.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import BinaryIO

from auth import crypt

ANAMELEN = 28
AERRLEN = 64
DOMLEN = 48
DESKEYLEN = 7
CHALLEN = 8
NETCHLEN = 16
SECRETLEN = 32
TICKREQLEN = 1 + ANAMELEN + DOMLEN + CHALLEN + ANAMELEN + ANAMELEN   # 141
TICKETLEN = 1 + CHALLEN + 2 * ANAMELEN + DESKEYLEN                    # 72
AUTHENTLEN = 1 + CHALLEN + 4                                          # 13
PASSREQLEN = 1 + 2 * ANAMELEN + 1 + SECRETLEN                         # 90
OKVARLEN = 5                     # the "%-5d" length of an AuthOKvar reply


class AuthType(IntEnum):
    """First byte of a Ticketreq or of an AS reply."""
    AuthTreq = 1
    AuthChal = 2
    AuthPass = 3
    AuthOK = 4
    AuthErr = 5
    AuthMod = 6
    AuthApop = 7
    AuthOKvar = 9
    AuthChap = 10
    AuthMSchap = 11
    AuthCram = 12
    AuthHttp = 13
    AuthVNC = 14


class RecordNum(IntEnum):
    """The num byte of an encrypted record."""
    AuthTs = 64
    AuthTc = 65
    AuthAs = 66
    AuthAc = 67
    AuthTp = 68
    AuthHr = 69


class ASError(Exception):
    """An AS exchange failed; the text is Plan 9's (`remote: ...`, `AS protocol botch`)."""


PBMSG = "AS protocol botch"


def put_str(s: str, width: int) -> bytes:
    """A NUL-padded fixed-width field; at most width-1 bytes survive (the C decoders force a NUL)."""
    raw = s.encode("utf-8")[: width - 1]
    return raw.ljust(width, b"\0")


def get_str(raw: bytes) -> str:
    """Decode a fixed-width field: everything up to the first NUL, last byte forced to NUL."""
    return raw[:-1].split(b"\0", 1)[0].decode("utf-8", "replace")


def _fixed(b: bytes, width: int, what: str) -> bytes:
    b = bytes(b)
    if len(b) != width:
        raise ValueError(f"{what} must be {width} bytes")
    return b


def _seal(plain: bytes, key: bytes | None) -> bytes:
    return crypt.encrypt(key, plain) if key is not None else plain


def _open(buf: bytes, n: int, key: bytes | None, what: str) -> bytes:
    if len(buf) < n:
        raise ValueError(f"short {what}")
    buf = bytes(buf[:n])
    return crypt.decrypt(key, buf) if key is not None else buf


@dataclass
class Ticketreq:
    type: int
    authid: str = ""
    authdom: str = ""
    chal: bytes = bytes(CHALLEN)
    hostid: str = ""
    uid: str = ""

    def pack(self) -> bytes:
        return (bytes([self.type]) + put_str(self.authid, ANAMELEN) + put_str(self.authdom, DOMLEN)
                + _fixed(self.chal, CHALLEN, "chal") + put_str(self.hostid, ANAMELEN)
                + put_str(self.uid, ANAMELEN))

    @classmethod
    def unpack(cls, buf: bytes) -> "Ticketreq":
        b = _open(buf, TICKREQLEN, None, "ticket request")
        return cls(b[0], get_str(b[1:29]), get_str(b[29:77]), b[77:85],
                   get_str(b[85:113]), get_str(b[113:141]))


@dataclass
class Ticket:
    num: int
    chal: bytes
    cuid: str
    suid: str
    key: bytes                     # the nonce key Kn, 7 bytes

    def pack(self, key: bytes | None = None) -> bytes:
        plain = (bytes([self.num]) + _fixed(self.chal, CHALLEN, "chal") + put_str(self.cuid, ANAMELEN)
                 + put_str(self.suid, ANAMELEN) + _fixed(self.key, DESKEYLEN, "key"))
        return _seal(plain, key)

    @classmethod
    def unpack(cls, buf: bytes, key: bytes | None = None) -> "Ticket":
        b = _open(buf, TICKETLEN, key, "ticket")
        return cls(b[0], b[1:9], get_str(b[9:37]), get_str(b[37:65]), b[65:72])


@dataclass
class Authenticator:
    num: int
    chal: bytes
    id: int = 0

    def pack(self, key: bytes | None = None) -> bytes:
        plain = bytes([self.num]) + _fixed(self.chal, CHALLEN, "chal") + struct.pack("<I", self.id)
        return _seal(plain, key)

    @classmethod
    def unpack(cls, buf: bytes, key: bytes | None = None) -> "Authenticator":
        b = _open(buf, AUTHENTLEN, key, "authenticator")
        return cls(b[0], b[1:9], struct.unpack("<I", b[9:13])[0])


@dataclass
class Passwordreq:
    num: int
    old: str
    new: str
    changesecret: int = 0
    secret: str = ""

    def pack(self, key: bytes | None = None) -> bytes:
        plain = (bytes([self.num]) + put_str(self.old, ANAMELEN) + put_str(self.new, ANAMELEN)
                 + bytes([self.changesecret]) + put_str(self.secret, SECRETLEN))
        return _seal(plain, key)

    @classmethod
    def unpack(cls, buf: bytes, key: bytes | None = None) -> "Passwordreq":
        b = _open(buf, PASSREQLEN, key, "password request")
        return cls(b[0], get_str(b[1:29]), get_str(b[29:57]), b[57], get_str(b[58:90]))


@dataclass
class AuthInfo:
    """factotum's authinfo record: cuid, suid, cap (2-byte LE length + bytes each), secret."""
    cuid: str
    suid: str
    cap: str = ""
    secret: bytes = b""

    def pack(self) -> bytes:
        out = b""
        for field in (self.cuid.encode(), self.suid.encode(), self.cap.encode(), bytes(self.secret)):
            if len(field) > 0xFFFF:
                raise ValueError("AuthInfo field too long")
            out += struct.pack("<H", len(field)) + field
        return out

    @classmethod
    def unpack(cls, buf: bytes) -> "AuthInfo":
        fields, off = [], 0
        for _ in range(4):
            if off + 2 > len(buf):
                raise ValueError("bad AuthInfo")
            (n,) = struct.unpack_from("<H", buf, off)
            off += 2
            if off + n > len(buf):
                raise ValueError("bad AuthInfo")
            fields.append(bytes(buf[off:off + n]))
            off += n
        cuid, suid, cap, secret = fields
        return cls(cuid.decode("utf-8", "replace"), suid.decode("utf-8", "replace"),
                   cap.decode("utf-8", "replace"), secret)


# --- AS reply framing (_asrdresp) ---

def ok_reply(data: bytes = b"") -> bytes:
    return bytes([AuthType.AuthOK]) + data


def err_reply(msg: str) -> bytes:
    """AuthErr + a 64-byte NUL-padded message (65 bytes)."""
    return bytes([AuthType.AuthErr]) + put_str(msg, AERRLEN)


def okvar_reply(data: bytes) -> bytes:
    """AuthOKvar + `%-5d` length + data."""
    if not 0 < len(data) < 100000:
        raise ValueError("AuthOKvar data length out of range")
    return bytes([AuthType.AuthOKvar]) + b"%-5d" % len(data) + data


def _readn(f: BinaryIO, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            raise ASError(PBMSG)
        buf += chunk
    return buf


def read_reply(f: BinaryIO, n: int) -> bytes:
    """Read one AS reply from a byte stream, as _asrdresp does.

    AuthOK: exactly n bytes follow. AuthOKvar: up to n bytes (its own length).
    AuthErr raises ASError('remote: <msg>'); anything else 'AS protocol botch'.
    """
    kind = _readn(f, 1)[0]
    if kind == AuthType.AuthOK:
        return _readn(f, n)
    if kind == AuthType.AuthErr:
        raise ASError("remote: " + get_str(_readn(f, AERRLEN)))
    if kind == AuthType.AuthOKvar:
        text = _readn(f, OKVARLEN)
        try:
            m = int(text.decode("ascii").strip())
        except ValueError:
            raise ASError(PBMSG) from None
        if not 0 < m <= n:
            raise ASError(PBMSG)
        return _readn(f, m)
    raise ASError(PBMSG)
