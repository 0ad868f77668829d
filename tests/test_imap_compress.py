"""COMPRESS=DEFLATE (RFC 4978) over a real socket: imaplib with the
deflating done here by zlib (raw deflate, window bits -15, as the RFC
says), in the clear and under STARTTLS, and mbsync, which compresses
when offered.

RFC 4978's examples (section 3), read in its text as vendored by MailKit
(github.com/jstedfast/MailKit, rfc/rfc4978.txt):
  1. STARTTLS, LOGIN, COMPRESS DEFLATE -> `OK DEFLATE active`:
     test_compress_under_starttls (our user; the RFC answers tag `c` with
     `d OK`, a slip; imaplib checks the tag).
  2. `c NO [COMPRESSIONACTIVE] DEFLATE active via TLS`: not a test; we
     never negotiate TLS-level compression (Python's ssl turns it off).
     The same code for a second COMPRESS: test_compress_replies_exact.
"""
from __future__ import annotations

import imaplib
import io
import re
import ssl
import zlib

import pytest
import trustme

from tests import test_clients_mbsync as mbsync
from tests.fixtures.imap import TIMEOUT, without_capability_code


class _Inflating(io.RawIOBase):
    """The server's bytes from a socket, inflated; counts the raw bytes."""

    def __init__(self, sock):
        self.sock, self.z, self.raw = sock, zlib.decompressobj(-15), 0
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                return 0
            self.raw += len(data)
            self.pending = self.z.decompress(data)
        n = min(len(b), len(self.pending))
        b[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


class DeflateIMAP4(imaplib.IMAP4):
    """imaplib with RFC 4978's COMPRESS: after the tagged OK each command
    goes out deflated with a sync flush, and replies are inflated."""

    deflater = None

    def compress(self):
        imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ == "OK":
            # (nothing was read past the OK: the server says no more
            # until it hears from us)
            self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
            self.inflating = _Inflating(self.sock)
            self.file = io.BufferedReader(self.inflating)
        return typ, data

    def send(self, data: bytes) -> None:
        if self.deflater is not None:
            data = self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)


def deflate_client(srv) -> DeflateIMAP4:
    return DeflateIMAP4(*srv.addr, timeout=TIMEOUT)


def test_compress_offered_only_after_login(imap_factory):
    srv = imap_factory(flags=("-p",), posted_upasfs=False)
    c = srv.connect()
    assert b"COMPRESS=DEFLATE" not in c.cmd(b"a CAPABILITY")[0].split()
    # RFC 4978 5: compress is a command-auth
    assert c.cmd(b"b COMPRESS DEFLATE") == [b"b BAD COMPRESS illegal command\r\n"]
    login = c.cmd(b"c LOGIN glenda glenda-apop")[-1]
    assert without_capability_code(login) == b"c OK LOGIN succeeded\r\n"
    assert b"COMPRESS=DEFLATE" in login.split(b"]")[0].split()   # the list after login
    assert b"COMPRESS=DEFLATE" in c.cmd(b"d CAPABILITY")[0].split()
    c.close()


def test_compress_whole_session(imap_preauth):
    srv = imap_preauth
    m = deflate_client(srv)
    assert m.compress() == ("OK", [b"DEFLATE active"])
    stored = srv.box().read_bytes()
    n = stored.count(b"\nFrom ") + 1
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"%d" % n]
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK"
    bodies = [d[1] for d in data if isinstance(d, tuple)]
    assert len(bodies) == n
    for body in bodies:                 # each as stored, in CRLF form
        assert body.replace(b"\r\n", b"\n") in stored
    plain = sum(map(len, bodies))
    assert m.inflating.raw < plain / 2, (m.inflating.raw, plain)    # it is deflated
    # RFC 4978 3: NO with COMPRESSIONACTIVE when the mechanism is active already
    typ, data = m._simple_command("COMPRESS", "DEFLATE")
    assert typ == "NO"
    assert data == [b"[COMPRESSIONACTIVE] DEFLATE active via COMPRESS"]
    assert m.noop()[0] == "OK"          # and the session goes on, deflated
    assert m.logout()[0] == "BYE"


def test_compress_replies_exact(imap_preauth):
    """The tagged replies, byte for byte, from a raw client that inflates."""
    c = imap_preauth.connect()
    assert c.cmd(b"a COMPRESS LZW") == [b"a BAD COMPRESS unknown compression mechanism LZW\r\n"]
    # a command pipelined after COMPRESS came uncompressed: COMPRESS is
    # refused and the other runs in the clear (RFC 4978 3: the client waits)
    c.send(b"b COMPRESS DEFLATE\r\nc NOOP\r\n")
    assert c.until(b"b") == [b"b BAD COMPRESS command sent before the reply to COMPRESS\r\n"]
    assert c.until(b"c") == [b"c OK NOOP completed\r\n"]
    assert c.cmd(b"d compress deflate") == [b"d OK DEFLATE active\r\n"]
    z, unz = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)

    def cmd(line: bytes, tag: bytes) -> list[bytes]:
        c.sock.sendall(z.compress(line + b"\r\n") + z.flush(zlib.Z_SYNC_FLUSH))
        text = b""
        while not any(l.startswith(tag + b" ") for l in text.split(b"\r\n")):
            data = c.sock.recv(65536)
            assert data, text
            text += unz.decompress(data)
        return text.split(b"\r\n")[:-1]

    assert cmd(b"e COMPRESS DEFLATE", b"e") == [
        b"e NO [COMPRESSIONACTIVE] DEFLATE active via COMPRESS"]
    assert cmd(b"f NOOP", b"f") == [b"f OK NOOP completed"]
    assert cmd(b"g LOGOUT", b"g") == [b"* BYE logging out", b"g OK LOGOUT completed"]
    c.close()


def test_compress_garbage_ends_session(imap_preauth):
    """Bytes that are not deflate end the session; the mailbox is as it was."""
    srv = imap_preauth
    before = srv.box().read_bytes()
    c = srv.connect()
    c.cmd(b"a SELECT INBOX")
    assert c.cmd(b"b COMPRESS DEFLATE") == [b"b OK DEFLATE active\r\n"]
    c.sock.sendall(b"c NOOP plainly\r\n" * 3)
    c.sock.settimeout(TIMEOUT)
    unz, out = zlib.decompressobj(-15), b""
    while data := c.sock.recv(65536):
        out += unz.decompress(data)
    assert out.endswith(b"* BYE end of input\r\n"), out
    assert srv.box().read_bytes() == before
    c.close()


def test_compress_bomb_is_bounded(imap_preauth):
    """A few kilobytes that inflate to 64 MiB of one line: the line is
    refused as too long, in bounded pieces, and the session goes on."""
    c = imap_preauth.connect()
    assert c.cmd(b"a COMPRESS DEFLATE") == [b"a OK DEFLATE active\r\n"]
    z, unz = zlib.compressobj(9, zlib.DEFLATED, -15), zlib.decompressobj(-15)
    bomb = b"b NOOP " + b"x" * (64 << 20) + b"\r\nc NOOP\r\n"
    c.sock.sendall(z.compress(bomb) + z.flush(zlib.Z_SYNC_FLUSH))
    text = b""
    while b"c OK" not in text:
        data = c.sock.recv(65536)
        assert data, text
        text += unz.decompress(data)
    assert text == b"b BAD line too long\r\nc OK NOOP completed\r\n"
    c.close()


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def test_compress_under_starttls(imap_factory, ca, tmp_path):
    """RFC 4978 3's example: STARTTLS, then COMPRESS; from then on
    everything is compressed before being encrypted."""
    cert = tmp_path / "cert.pem"
    ca.issue_cert("imap.test", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert))
    srv = imap_factory(flags=("-t", str(cert)), posted_upasfs=False)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    m = deflate_client(srv)
    assert m.starttls(ctx)[0] == "OK"
    assert m.login("glenda", "glenda-apop")[0] == "OK"
    assert "COMPRESS=DEFLATE" in m.capability()[1][0].decode().split()
    assert m.compress() == ("OK", [b"DEFLATE active"])
    assert isinstance(m.sock, ssl.SSLSocket)
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) > 2
    typ, data = m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and data[0][1].startswith(b"Subject: ")
    assert m.logout()[0] == "BYE"


@pytest.mark.skipif(mbsync.MBSYNC is None, reason="mbsync (apt package isync) is not installed")
def test_mbsync_compresses(imap_factory, tmp_path):
    """isync's mbsync sends COMPRESS DEFLATE when it is offered, and syncs
    the whole tree over the deflated connection (its -D log shows both)."""
    import subprocess
    import sys
    srv = imap_factory(flags=("-a",), auth=False)
    near = tmp_path / "near"
    near.mkdir()
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(mbsync.PREAUTH.format(python=sys.executable) + mbsync.CONFIG.format(near=near))
    p = subprocess.run([mbsync.MBSYNC, "-D", "-c", str(cfg), "-a"], capture_output=True,
                       env=dict(srv.env, HOME=str(tmp_path)), timeout=120)
    log = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, log[-3000:]
    assert re.search(r">>> (\d+) COMPRESS DEFLATE\r?\nF: \1 OK DEFLATE active\r?\n", log), log[:3000]
    inbox = mbsync.maildir_msgs(near / "INBOX")
    assert len(inbox) == srv.box().read_bytes().count(b"\nFrom ") + 1
    assert "slides and notes" in inbox
