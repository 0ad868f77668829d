"""Interop (issue 2 §4): python-9p's Client (plan9port's C codec) stands in
for plan9port's `9p` command: msize 8192, Tauth first, then ls, read and
write ctl the way 9p does them."""
from __future__ import annotations

import os
import struct

import pytest

py9p = pytest.importorskip("py9p")


def _connect(fs):
    c = py9p.Client.connect_unix(os.path.join(fs.namespace, fs.service), msize=8192)
    rv = c.negotiate()
    assert rv.msize <= 8192 and rv.version == "9P2000"
    with pytest.raises(py9p.RemoteError, match="^upas/fs: authentication not required$"):
        c.rpc(py9p.Tauth(afid=1, uname="glenda", aname=""))
    c.attach(0, uname="glenda")
    return c


def _readall(c, fid: int) -> bytes:
    out, off = [], 0
    while True:
        b = c.read(fid, 8192 - 24, off)
        if not b:
            return b"".join(out)
        out.append(b)
        off += len(b)


def ls(c, path: str) -> list[str]:
    c.walk(0, 1, [p for p in path.split("/") if p])
    try:
        c.open(1, py9p.OREAD)
        data = _readall(c, 1)
    finally:
        c.clunk(1)
    names, i = [], 0
    while i < len(data):
        n = struct.unpack_from("<H", data, i)[0] + 2
        names.append(py9p.decode_dir(data[i:i + n]).name)
        i += n
    return names


def read(c, path: str) -> bytes:
    c.walk(0, 2, path.split("/"))
    try:
        c.open(2, py9p.OREAD)
        return _readall(c, 2)
    finally:
        c.clunk(2)


def write(c, path: str, data: bytes) -> int:
    c.walk(0, 3, path.split("/"))
    try:
        c.open(3, py9p.OWRITE)
        return c.write(3, data, 0)
    finally:
        c.clunk(3)


def test_9p_ls_read_write_ctl(upasfs):
    from tests.fixtures.upasfs import GOLDEN
    c = _connect(upasfs)
    try:
        assert ls(c, "") == ["ctl", "mbox"]
        assert ls(c, "mbox") == ["1", "2", "3", "4", "5"]
        assert len(ls(c, "mbox/2")) == 25 + 3
        assert read(c, "mbox/2/2/raw") == \
            (GOLDEN / "fs" / "mbox" / "2" / "2" / "raw").read_bytes()
        assert read(c, "mbox/1/subject") == b"first message: plain text"
        body = b"".join(b"line %05d of a long message\n" % i for i in range(3000))
        with open(upasfs.mbox, "ab") as f:
            f.write(b"From big Thu Nov 26 12:00:00 EST 2026\nSubject: big\n\n" + body + b"\n")
        assert ls(c, "mbox") == ["1", "2", "3", "4", "5", "6"]
        assert read(c, "mbox/6/body") == body             # many 8 KiB reads
        assert write(c, "ctl", b"delete mbox 1\n") == 14
        assert ls(c, "mbox") == ["2", "3", "4", "5", "6"]
        with pytest.raises(py9p.RemoteError, match="^unknown control message$"):
            write(c, "ctl", b"bogus command\n")
    finally:
        c.close()
