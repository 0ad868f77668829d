"""COMPRESS=DEFLATE (RFC 4978): a connection's bytes as raw DEFLATE (RFC
1951) both ways, with the standard library's zlib.

Raw deflate is zlib's negative window bits (-15: the largest window, no
zlib header or checksum, as RFC 4978 section 4 says).  Each write ends
with a sync flush, so what the server said can be inflated by the client
at once, before more comes.  Inflating is bounded: a few bytes of the
client's can stand for megabytes, so at most `limit` bytes are made at a
time and the rest of the input waits in zlib's unconsumed tail until
they are taken (a decompression bomb holds no more memory than a read).
"""
from __future__ import annotations

import zlib

WBITS = -15                  # raw deflate, 32 KiB window
LEVEL = 6                    # zlib's default: Dovecot's imap_compress_deflate_level too


class DeflateError(Exception):
    """The peer's bytes are not a deflate stream: nothing more can be read."""


class Deflater:
    """Our side: bytes in, deflated bytes out, each write flushed."""

    def __init__(self, level: int = LEVEL):
        self._z = zlib.compressobj(level, zlib.DEFLATED, WBITS)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)


class Inflater:
    """The peer's side: deflated bytes in, at most `limit` plain bytes out
    a call."""

    def __init__(self, limit: int):
        self.limit = limit
        self._z = zlib.decompressobj(WBITS)

    @property
    def ended(self) -> bool:
        """The peer closed its deflate stream (a final block): its end."""
        return self._z.eof

    def inflate(self, data: bytes = b"") -> bytes:
        """What `data` and the input held back before make, up to `limit`
        bytes; b"" when more input is needed.  DeflateError if it is not
        deflate."""
        if self._z.eof:
            return b""
        try:
            return self._z.decompress(self._z.unconsumed_tail + data, self.limit)
        except zlib.error as e:
            raise DeflateError(str(e)) from None

    def held(self) -> bool:
        """Input taken but not inflated yet (beyond the last limit)."""
        return bool(self._z.unconsumed_tail)
