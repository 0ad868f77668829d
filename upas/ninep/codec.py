"""9P2000 wire codec: constants, Qid, Stat, one dataclass per message.

Sans-I/O: `pack` turns a message into bytes, `unpack` turns one complete
message back, and `read_msg` is the only function that touches a transport.
Decoding is strict: every length is checked against the bytes present, names
must be valid UTF-8, and a message must be consumed exactly.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

# Message header: size[4] type[1] tag[2].
HEADER = struct.Struct("<IBH")
IOHDRSZ = 24          # room for a Tread/Rwrite header inside msize
MAXWELEM = 16         # walk elements per Twalk
NOTAG = 0xFFFF
NOFID = 0xFFFFFFFF
VERSION = "9P2000"
MIN_MSIZE = 256       # smaller client msize is refused

# Open modes.
OREAD, OWRITE, ORDWR, OEXEC = 0, 1, 2, 3
OTRUNC, OCEXEC, ORCLOSE = 0x10, 0x20, 0x40

# Qid types and the matching Stat mode bits.
QTDIR, QTAPPEND, QTEXCL, QTMOUNT, QTAUTH, QTTMP, QTFILE = (
    0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x00)
DMDIR, DMAPPEND, DMEXCL, DMMOUNT, DMAUTH, DMTMP = (
    0x80000000, 0x40000000, 0x20000000, 0x10000000, 0x08000000, 0x04000000)
DMREAD, DMWRITE, DMEXEC = 0x4, 0x2, 0x1


class ProtocolError(Exception):
    """Malformed 9P data. `tag` is set when the header could be read, so a
    server can still answer the request with an Rerror."""

    def __init__(self, text: str, tag: int | None = None):
        super().__init__(text)
        self.tag = tag


class Qid(NamedTuple):
    type: int = 0
    vers: int = 0
    path: int = 0


_QID = struct.Struct("<BIQ")
_STAT_FIXED = struct.Struct("<HHI" + "BIQ" + "IIIQ")   # size .. length


class _Reader:
    """Cursor over a received buffer; every read is bounds-checked."""

    __slots__ = ("buf", "pos", "end", "tag")

    def __init__(self, buf: bytes | memoryview, pos: int = 0,
                 end: int | None = None, tag: int | None = None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.tag = tag

    def need(self, n: int) -> int:
        p = self.pos
        if n < 0 or p + n > self.end:
            raise ProtocolError("short message", self.tag)
        self.pos = p + n
        return p

    def unpack(self, st: struct.Struct) -> tuple:
        return st.unpack_from(self.buf, self.need(st.size))

    def bytes(self, n: int) -> bytes:
        p = self.need(n)
        return bytes(self.buf[p:p + n])

    def string(self) -> str:
        (n,) = self.unpack(_U16)
        raw = self.bytes(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in string", self.tag) from None

    def done(self) -> None:
        if self.pos != self.end:
            raise ProtocolError("trailing bytes in message", self.tag)


_U8, _U16, _U32, _U64 = (struct.Struct(f) for f in ("<B", "<H", "<I", "<Q"))


def names_of(path: str) -> list[str]:
    """A `/`-separated path's elements, as a Twalk takes them (empty and
    `.` elements dropped)."""
    return [p for p in path.split("/") if p not in ("", ".")]


def _pstr(s: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) > 0xFFFF:
        raise ValueError("9P string longer than 65535 bytes")
    return _U16.pack(len(b)) + b


@dataclass
class Stat:
    """A directory entry (stat(5)). ~0 fields mean "don't touch" in Twstat."""

    type: int = 0
    dev: int = 0
    qid: Qid = Qid()
    mode: int = 0
    atime: int = 0
    mtime: int = 0
    length: int = 0
    name: str = ""
    uid: str = ""
    gid: str = ""
    muid: str = ""

    def pack(self) -> bytes:
        u = _pstr(self.uid)
        g = u if self.gid == self.uid else _pstr(self.gid)
        m = u if self.muid == self.uid else _pstr(self.muid)
        n = _pstr(self.name)
        size = _STAT_FIXED.size - 2 + len(n) + len(u) + len(g) + len(m)
        q = self.qid
        return b"".join((_STAT_FIXED.pack(size, self.type, self.dev, q[0], q[1], q[2],
                                          self.mode, self.atime, self.mtime,
                                          self.length), n, u, g, m))

    @classmethod
    def unpack(cls, b: bytes | memoryview) -> "Stat":
        st, n = cls._read(_Reader(b))
        if n != len(b):
            raise ProtocolError("trailing bytes after stat")
        return st

    @classmethod
    def unpack_many(cls, b: bytes | memoryview) -> list["Stat"]:
        """Decode the concatenated entries of a directory read."""
        r, out = _Reader(b), []
        while r.pos < r.end:
            out.append(cls._read(r)[0])
        return out

    @staticmethod
    def names_of(b: bytes | memoryview) -> list[str]:
        """Only the names of a directory read's entries: a listing of a big
        mailbox is 10,000 entries whose other fields nobody may look at."""
        out, pos, end = [], 0, len(b)
        name_at = _STAT_FIXED.size        # the name's length follows the fixed part
        while pos < end:
            if end - pos < name_at + 2:
                raise ProtocolError("short stat entry")
            size = b[pos] | b[pos + 1] << 8
            n = b[pos + name_at] | b[pos + name_at + 1] << 8
            if size + 2 > end - pos or name_at + 2 + n > size + 2:
                raise ProtocolError("stat entry overruns the data")
            out.append(bytes(b[pos + name_at + 2:pos + name_at + 2 + n]).decode("utf-8", "replace"))
            pos += size + 2
        return out

    @classmethod
    def _read(cls, r: _Reader) -> tuple["Stat", int]:
        start = r.pos
        (size,) = r.unpack(_U16)
        r.need(size)                  # the whole entry must be present
        sub = _Reader(r.buf, start, r.pos, r.tag)
        (_, typ, dev, qt, qv, qp, mode, atime, mtime,
         length) = sub.unpack(_STAT_FIXED)
        name, uid, gid, muid = [sub.string() for _ in range(4)]
        sub.done()
        return (cls(typ, dev, Qid(qt, qv, qp), mode, atime, mtime, length,
                    name, uid, gid, muid), r.pos - start)

    @classmethod
    def sync(cls) -> "Stat":
        """A Twstat entry that changes nothing (all fields "don't touch")."""
        return cls(0xFFFF, 0xFFFFFFFF, Qid(0xFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF),
                   0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)


# Field kinds of the message schemas.
_INT = {"1": _U8, "2": _U16, "4": _U32, "8": _U64}


class Msg:
    """Base of all messages. Subclasses list their wire fields in SCHEMA."""

    TYPE: ClassVar[int]
    SCHEMA: ClassVar[tuple[tuple[str, str], ...]]
    tag: int


def _msg(type_: int, *schema: tuple[str, str]):
    def deco(cls):
        cls.TYPE = type_
        cls.SCHEMA = schema
        return cls
    return deco


@_msg(100, ("msize", "4"), ("version", "s"))
@dataclass
class Tversion(Msg):
    tag: int = NOTAG
    msize: int = 8192
    version: str = VERSION


@_msg(101, ("msize", "4"), ("version", "s"))
@dataclass
class Rversion(Msg):
    tag: int = NOTAG
    msize: int = 8192
    version: str = VERSION


@_msg(102, ("afid", "4"), ("uname", "s"), ("aname", "s"))
@dataclass
class Tauth(Msg):
    tag: int = 0
    afid: int = NOFID
    uname: str = ""
    aname: str = ""


@_msg(103, ("aqid", "q"))
@dataclass
class Rauth(Msg):
    tag: int = 0
    aqid: Qid = Qid()


@_msg(104, ("fid", "4"), ("afid", "4"), ("uname", "s"), ("aname", "s"))
@dataclass
class Tattach(Msg):
    tag: int = 0
    fid: int = 0
    afid: int = NOFID
    uname: str = ""
    aname: str = ""


@_msg(105, ("qid", "q"))
@dataclass
class Rattach(Msg):
    tag: int = 0
    qid: Qid = Qid()


@_msg(107, ("ename", "s"))
@dataclass
class Rerror(Msg):
    tag: int = 0
    ename: str = ""


@_msg(108, ("oldtag", "2"))
@dataclass
class Tflush(Msg):
    tag: int = 0
    oldtag: int = 0


@_msg(109)
@dataclass
class Rflush(Msg):
    tag: int = 0


@_msg(110, ("fid", "4"), ("newfid", "4"), ("wname", "S*"))
@dataclass
class Twalk(Msg):
    tag: int = 0
    fid: int = 0
    newfid: int = 0
    wname: list[str] = field(default_factory=list)


@_msg(111, ("wqid", "Q*"))
@dataclass
class Rwalk(Msg):
    tag: int = 0
    wqid: list[Qid] = field(default_factory=list)


@_msg(112, ("fid", "4"), ("mode", "1"))
@dataclass
class Topen(Msg):
    tag: int = 0
    fid: int = 0
    mode: int = OREAD


@_msg(113, ("qid", "q"), ("iounit", "4"))
@dataclass
class Ropen(Msg):
    tag: int = 0
    qid: Qid = Qid()
    iounit: int = 0


@_msg(114, ("fid", "4"), ("name", "s"), ("perm", "4"), ("mode", "1"))
@dataclass
class Tcreate(Msg):
    tag: int = 0
    fid: int = 0
    name: str = ""
    perm: int = 0
    mode: int = OREAD


@_msg(115, ("qid", "q"), ("iounit", "4"))
@dataclass
class Rcreate(Msg):
    tag: int = 0
    qid: Qid = Qid()
    iounit: int = 0


@_msg(116, ("fid", "4"), ("offset", "8"), ("count", "4"))
@dataclass
class Tread(Msg):
    tag: int = 0
    fid: int = 0
    offset: int = 0
    count: int = 0


@_msg(117, ("data", "D"))
@dataclass
class Rread(Msg):
    tag: int = 0
    data: bytes = b""


@_msg(118, ("fid", "4"), ("offset", "8"), ("data", "D"))
@dataclass
class Twrite(Msg):
    tag: int = 0
    fid: int = 0
    offset: int = 0
    data: bytes = b""


@_msg(119, ("count", "4"))
@dataclass
class Rwrite(Msg):
    tag: int = 0
    count: int = 0


@_msg(120, ("fid", "4"))
@dataclass
class Tclunk(Msg):
    tag: int = 0
    fid: int = 0


@_msg(121)
@dataclass
class Rclunk(Msg):
    tag: int = 0


@_msg(122, ("fid", "4"))
@dataclass
class Tremove(Msg):
    tag: int = 0
    fid: int = 0


@_msg(123)
@dataclass
class Rremove(Msg):
    tag: int = 0


@_msg(124, ("fid", "4"))
@dataclass
class Tstat(Msg):
    tag: int = 0
    fid: int = 0


@_msg(125, ("stat", "T"))
@dataclass
class Rstat(Msg):
    tag: int = 0
    stat: Stat = field(default_factory=Stat)


@_msg(126, ("fid", "4"), ("stat", "T"))
@dataclass
class Twstat(Msg):
    tag: int = 0
    fid: int = 0
    stat: Stat = field(default_factory=Stat)


@_msg(127)
@dataclass
class Rwstat(Msg):
    tag: int = 0


MESSAGES: dict[int, type[Msg]] = {c.TYPE: c for c in (
    Tversion, Rversion, Tauth, Rauth, Tattach, Rattach, Rerror, Tflush,
    Rflush, Twalk, Rwalk, Topen, Ropen, Tcreate, Rcreate, Tread, Rread,
    Twrite, Rwrite, Tclunk, Rclunk, Tremove, Rremove, Tstat, Rstat, Twstat,
    Rwstat)}


def _pack_field(kind: str, v: Any) -> bytes:
    if kind in _INT:
        return _INT[kind].pack(v)
    if kind == "s":
        return _pstr(v)
    if kind == "q":
        return _QID.pack(*v)
    if kind == "D":
        return _U32.pack(len(v)) + bytes(v)
    if kind == "S*":
        if len(v) > MAXWELEM:
            raise ValueError(f"more than {MAXWELEM} walk elements")
        return _U16.pack(len(v)) + b"".join(_pstr(s) for s in v)
    if kind == "Q*":
        if len(v) > MAXWELEM:
            raise ValueError(f"more than {MAXWELEM} qids")
        return _U16.pack(len(v)) + b"".join(_QID.pack(*q) for q in v)
    if kind == "T":
        st = v.pack()
        return _U16.pack(len(st)) + st
    raise AssertionError(kind)


def pack(msg: Msg) -> bytes:
    """Encode one message, header included."""
    fast = _FAST_PACK.get(msg.TYPE)
    if fast is not None:
        return fast(msg)
    body = b"".join(_pack_field(k, getattr(msg, n)) for n, k in msg.SCHEMA)
    return HEADER.pack(HEADER.size + len(body), msg.TYPE, msg.tag) + body


def _read_field(r: _Reader, kind: str) -> Any:
    if kind in _INT:
        return r.unpack(_INT[kind])[0]
    if kind == "s":
        return r.string()
    if kind == "q":
        return Qid(*r.unpack(_QID))
    if kind == "D":
        (n,) = r.unpack(_U32)
        return r.bytes(n)
    if kind in ("S*", "Q*"):
        (n,) = r.unpack(_U16)
        if n > MAXWELEM:
            raise ProtocolError(f"more than {MAXWELEM} walk elements", r.tag)
        if kind == "S*":
            return [r.string() for _ in range(n)]
        return [Qid(*r.unpack(_QID)) for _ in range(n)]
    if kind == "T":
        (n,) = r.unpack(_U16)
        sub = _Reader(r.buf, r.pos, r.pos + n, r.tag)
        r.need(n)
        st = Stat._read(sub)[0]
        sub.done()
        return st
    raise AssertionError(kind)


def unpack(buf: bytes | bytearray | memoryview) -> Msg:
    """Decode exactly one message; raise ProtocolError if it is malformed."""
    if len(buf) < HEADER.size:
        raise ProtocolError("short message")
    size, type_, tag = HEADER.unpack_from(buf)
    if size != len(buf):
        raise ProtocolError("message size mismatch", tag)
    return unpack_from(buf, 0, size)


def unpack_from(buf: bytes | bytearray | memoryview, pos: int, size: int) -> Msg:
    """Decode the message of `size` bytes (its size field, already checked
    by the caller) at buf[pos:]: a stream reader decodes in place, with no
    copy of the frame."""
    _, type_, tag = HEADER.unpack_from(buf, pos)
    fast = _FAST_UNPACK.get(type_)
    if fast is not None:
        return fast(buf, pos, size, tag)
    cls = MESSAGES.get(type_)
    if cls is None:
        raise ProtocolError(f"unknown message type {type_}", tag)
    r = _Reader(buf, pos + HEADER.size, pos + size, tag)
    values = {n: _read_field(r, k) for n, k in cls.SCHEMA}
    r.done()
    return cls(tag=tag, **values)


# -- fast paths ---------------------------------------------------------------
# The messages of every file access (walk, open, read, write, clunk, stat and
# their replies) are packed and decoded by one struct call each instead of
# field by field; the results are byte for byte those of the generic code
# (the plan9port codec agreement tests cover both).

def _fixed(cls: type[Msg], fmt: str, qid_at: int | None = None):
    """Packer and decoder of a message whose fields all have fixed sizes;
    a qid (at field index qid_at) travels as its three integers."""
    st = struct.Struct("<IBH" + fmt)
    size, type_ = st.size, cls.TYPE
    names = [n for n, _ in cls.SCHEMA]

    def pack_fixed(m: Msg) -> bytes:
        vals = [getattr(m, n) for n in names]
        if qid_at is not None:
            vals[qid_at:qid_at + 1] = vals[qid_at]
        return st.pack(size, type_, m.tag, *vals)

    def unpack_fixed(buf, pos: int, n: int, tag: int) -> Msg:
        if n != size:
            raise ProtocolError("short message" if n < size
                                else "trailing bytes in message", tag)
        vals = list(st.unpack_from(buf, pos))[3:]
        if qid_at is not None:
            vals[qid_at:qid_at + 3] = [Qid(*vals[qid_at:qid_at + 3])]
        return cls(tag, *vals)
    return pack_fixed, unpack_fixed


_DATA_HDR = {t: struct.Struct(f) for t, f in ((117, "<IBHI"), (118, "<IBHIQI"))}


def _pack_rread(m: Rread) -> bytes:
    d = m.data
    return _DATA_HDR[117].pack(11 + len(d), 117, m.tag, len(d)) + d


def _unpack_rread(buf, pos: int, size: int, tag: int) -> Rread:
    if size < 11:
        raise ProtocolError("short message", tag)
    n = _U32.unpack_from(buf, pos + 7)[0]
    _data_fits(n, size - 11, tag)
    return Rread(tag, _copy(buf, pos + 11, pos + size))


def _pack_twrite(m: Twrite) -> bytes:
    d = m.data
    return _DATA_HDR[118].pack(23 + len(d), 118, m.tag, m.fid, m.offset,
                               len(d)) + d


def _unpack_twrite(buf, pos: int, size: int, tag: int) -> Twrite:
    if size < 23:
        raise ProtocolError("short message", tag)
    _, _, _, fid, offset, n = _DATA_HDR[118].unpack_from(buf, pos)
    _data_fits(n, size - 23, tag)
    return Twrite(tag, fid, offset, _copy(buf, pos + 23, pos + size))


def _copy(buf, start: int, end: int) -> bytes:
    """buf[start:end] as bytes, copied once (a slice of a stream reader's
    bytearray is a bytearray: bytes() of it would copy the data twice)."""
    if isinstance(buf, bytes):
        return buf[start:end]
    with memoryview(buf) as view:
        return bytes(view[start:end])


def _data_fits(n: int, room: int, tag: int) -> None:
    if n != room:
        raise ProtocolError("short message" if n > room
                            else "trailing bytes in message", tag)


_TWALK = struct.Struct("<IBHIIH")


def walk_names(names: list[str]) -> bytes:
    """A Twalk's names as they travel."""
    if len(names) > MAXWELEM:
        raise ValueError(f"more than {MAXWELEM} walk elements")
    return b"".join([_pstr(s) for s in names])


def _pack_twalk(m: Twalk) -> bytes:
    w = m.wname
    body = walk_names(w)
    return _TWALK.pack(17 + len(body), 110, m.tag, m.fid, m.newfid, len(w)) + body


def _unpack_twalk(buf, pos: int, size: int, tag: int) -> Twalk:
    if size < 17:
        raise ProtocolError("short message", tag)
    _, _, _, fid, newfid, n = _TWALK.unpack_from(buf, pos)
    if n > MAXWELEM:
        raise ProtocolError(f"more than {MAXWELEM} walk elements", tag)
    p, end = pos + 17, pos + size
    names = []
    for _ in range(n):
        if p + 2 > end:
            raise ProtocolError("short message", tag)
        k = buf[p] | buf[p + 1] << 8
        p += 2
        if p + k > end:
            raise ProtocolError("short message", tag)
        try:
            names.append(str(buf[p:p + k], "utf-8"))
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in string", tag) from None
        p += k
    if p != end:
        raise ProtocolError("trailing bytes in message", tag)
    return Twalk(tag, fid, newfid, names)


_RWALK = struct.Struct("<IBHH")


def _pack_rwalk(m: Rwalk) -> bytes:
    q = m.wqid
    if len(q) > MAXWELEM:
        raise ValueError(f"more than {MAXWELEM} qids")
    return _RWALK.pack(9 + 13 * len(q), 111, m.tag, len(q)) + b"".join(
        [_QID.pack(*x) for x in q])


def _unpack_rwalk(buf, pos: int, size: int, tag: int) -> Rwalk:
    if size < 9:
        raise ProtocolError("short message", tag)
    n = _U16.unpack_from(buf, pos + 7)[0]
    if n > MAXWELEM:
        raise ProtocolError(f"more than {MAXWELEM} walk elements", tag)
    _data_fits(13 * n, size - 9, tag)
    return Rwalk(tag, [Qid(*_QID.unpack_from(buf, pos + 9 + 13 * i))
                       for i in range(n)])


# -- a whole file's read: Twalk, Topen, Tread, Tclunk and their replies ---------
# (the client's batched reads, batch.py) packed by one struct call, and the
# replies checked where they lie, with no message objects

_FILE_READ: dict[int, struct.Struct] = {}     # by the length of the walk's names
_FILE_REPLIES: dict[int, struct.Struct] = {}  # by the number of names


def pack_file_read(tags: tuple[int, ...], root: int, fid: int, nwalk: int, names: bytes,
                   count: int) -> bytes:
    """Twalk(root -> fid, names: walk_names() of nwalk names), Topen(fid,
    OREAD), Tread(fid, 0, count) and Tclunk(fid) with these four tags: the
    bytes pack() gives for the four."""
    n = len(names)
    st = _FILE_READ.get(n)
    if st is None:
        st = _FILE_READ[n] = struct.Struct(f"<IBHIIH{n}sIBHIBIBHIQIIBHI")
    t0, t1, t2, t3 = tags
    return st.pack(17 + n, 110, t0, root, fid, nwalk, names, 12, 112, t1, fid, OREAD,
                   23, 116, t2, fid, 0, count, 11, 120, t3, fid)


def file_read_replies(buf: bytes | bytearray, pos: int, end: int, tags: tuple[int, ...],
                      nwalk: int, msize: int) -> tuple[int, int, int]:
    """Whether buf[pos:end] begins with the replies to pack_file_read's
    requests as they are when all goes well: an Rwalk of nwalk qids, an
    Ropen, an Rread (each message at most msize) and an Rclunk, with their
    tags.  (end of the four, start and end of the data) if so; (0, 0, 0)
    if they are not (an Rerror, a short walk, other replies between: decode
    them one by one); (-n, 0, 0) if buf[pos:] must hold n bytes to tell,
    n never more than the server surely still sends (pos holds a message
    header)."""
    w = 9 + 13 * nwalk
    st = _FILE_REPLIES.get(nwalk)
    if st is None:
        st = _FILE_REPLIES[nwalk] = struct.Struct(f"<IBHH{13 * nwalk}xIBH17xIBHI")
    have = end - pos
    if have < st.size:              # ask only for what the replies owed must hold
        if HEADER.unpack_from(buf, pos) != (w, 111, tags[0]):
            return 0, 0, 0
        if have < w + 7:
            return -(w + 7), 0, 0
        if HEADER.unpack_from(buf, pos + w) != (24, 113, tags[1]):
            return 0, 0, 0
        return -st.size, 0, 0       # the Rread's header (two replies owed)
    s1, y1, g1, nw, s2, y2, g2, s3, y3, g3, count = st.unpack_from(buf, pos)
    if (s1, y1, g1, nw, s2, y2, g2, y3, g3) != (w, 111, tags[0], nwalk, 24, 113, tags[1],
                                                 117, tags[2]) \
            or s3 != 11 + count or s3 > msize:
        return 0, 0, 0
    data = pos + st.size
    clunk = data + count
    if end - clunk < 7:
        return -(clunk + 7 - pos), 0, 0
    if HEADER.unpack_from(buf, clunk) != (7, 121, tags[3]):
        return 0, 0, 0
    return clunk + 7, data, clunk


_FAST_PACK: dict[int, Any] = {}
_FAST_UNPACK: dict[int, Any] = {}
for _cls, _fmt, _q in ((Topen, "IB", None), (Tread, "IQI", None),
                       (Tclunk, "I", None), (Tstat, "I", None),
                       (Tremove, "I", None), (Rclunk, "", None),
                       (Rremove, "", None), (Rwstat, "", None),
                       (Rflush, "", None), (Tflush, "H", None),
                       (Rwrite, "I", None), (Ropen, "BIQI", 0),
                       (Rcreate, "BIQI", 0), (Rattach, "BIQ", 0)):
    _FAST_PACK[_cls.TYPE], _FAST_UNPACK[_cls.TYPE] = _fixed(_cls, _fmt, _q)
_FAST_PACK.update({117: _pack_rread, 118: _pack_twrite, 110: _pack_twalk,
                   111: _pack_rwalk})
_FAST_UNPACK.update({117: _unpack_rread, 118: _unpack_twrite,
                     110: _unpack_twalk, 111: _unpack_rwalk})


def _recv_exact(t: Any, n: int, first: bool = False) -> bytes | None:
    """Read n bytes from a socket or binary file; None on EOF at a message
    boundary, ProtocolError on EOF inside one."""
    chunks, got = [], 0
    recv = getattr(t, "recv", None) or t.read
    while got < n:
        b = recv(n - got)
        if not b:
            if first and got == 0:
                return None
            raise ProtocolError("connection closed inside a message")
        chunks.append(b)
        got += len(b)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_msg(t: Any, msize: int) -> Msg | None:
    """Read one message from a socket or binary file. None at EOF.

    The size field is checked against msize before the body is allocated,
    so a hostile peer cannot make us buffer gigabytes."""
    head = _recv_exact(t, 4, first=True)
    if head is None:
        return None
    (size,) = _U32.unpack(head)
    if size < HEADER.size:
        raise ProtocolError("short message")
    if size > msize:
        raise ProtocolError("message larger than msize")
    return unpack(head + _recv_exact(t, size - 4))

