"""9P2000 codec: round trips, strict decoding, agreement with plan9port's C
codec (python-9p, `py9p`) byte for byte."""
from __future__ import annotations

import io
import struct

import py9p
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upas.ninep import codec
from upas.ninep.codec import (MAXWELEM, MESSAGES, NOFID, NOTAG, ProtocolError,
                              Qid, Stat, pack, read_msg, unpack)

Q = Qid(0x80, 7, 0x1122334455667788)
ST = Stat(type=1, dev=2, qid=Q, mode=codec.DMDIR | 0o755, atime=3, mtime=4,
          length=5, name="ünïcødé", uid="glenda", gid="sys", muid="bob")

# One example of every message type (docs/spec/fs-auth.md §5.1).
EXAMPLES = [
    codec.Tversion(NOTAG, 8192, "9P2000"),
    codec.Rversion(NOTAG, 8192, "9P2000"),
    codec.Tauth(1, 5, "glenda", "mbox"),
    codec.Rauth(1, Qid(codec.QTAUTH, 0, 9)),
    codec.Tattach(2, 0, NOFID, "glenda", ""),
    codec.Rattach(2, Q),
    codec.Rerror(3, "permission denied"),
    codec.Tflush(4, 3),
    codec.Rflush(4),
    codec.Twalk(5, 0, 1, ["mbox", "1", "body"]),
    codec.Rwalk(5, [Q, Qid(0, 1, 2)]),
    codec.Topen(6, 1, codec.ORDWR | codec.OTRUNC),
    codec.Ropen(6, Q, 8168),
    codec.Tcreate(7, 1, "grüße", codec.DMDIR | 0o777, codec.OREAD),
    codec.Rcreate(7, Q, 8168),
    codec.Tread(8, 1, 1 << 40, 8168),
    codec.Rread(8, b"\x00\xffdata"),
    codec.Twrite(9, 1, 12, b"delete mbox 1"),
    codec.Rwrite(9, 13),
    codec.Tclunk(10, 1),
    codec.Rclunk(10),
    codec.Tremove(11, 1),
    codec.Rremove(11),
    codec.Tstat(12, 1),
    codec.Rstat(12, ST),
    codec.Twstat(13, 1, Stat.sync()),
    codec.Rwstat(13),
]


def test_examples_cover_every_message_type():
    assert {type(m) for m in EXAMPLES} == set(MESSAGES.values())
    assert sorted(MESSAGES) == [100, 101, 102, 103, 104, 105, 107] + list(range(108, 128))


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    b = pack(msg)
    size, typ, tag = struct.unpack_from("<IBH", b)
    assert size == len(b) and typ == msg.TYPE and tag == msg.tag
    assert unpack(b) == msg
    assert read_msg(io.BytesIO(b + pack(msg)), 8192) == msg


def test_known_bytes():
    # Tversion as every plan9port client sends it first.
    assert pack(codec.Tversion(NOTAG, 8192, "9P2000")) == bytes.fromhex(
        "13000000" "64" "ffff" "00200000" "0600" "395032303030")
    # Strings are counted in bytes of UTF-8, not characters.
    assert pack(codec.Twalk(0, 1, 2, ["ü"]))[-4:] == b"\x02\x00\xc3\xbc"
    # Rstat: n[2] then the stat entry, which has its own size[2].
    b = pack(codec.Rstat(0, ST))
    n, size = struct.unpack_from("<HH", b, 7)
    assert n == size + 2 == len(b) - 9


def test_stat_layout():
    b = ST.pack()
    assert struct.unpack_from("<H", b)[0] == len(b) - 2
    assert len(b) == 2 + 2 + 4 + 13 + 4 + 4 + 4 + 8 + 4 * 2 + len(
        "ünïcødé".encode()) + 6 + 3 + 3
    assert Stat.unpack(b) == ST
    assert Stat.unpack_many(b + Stat(name="x").pack()) == [ST, Stat(name="x")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=5)), max_size=8))
def test_names_of_a_listing_are_unpack_manys(entries):
    b = b"".join(Stat(name=n, uid=u, gid="g", muid=u).pack() for n, u in entries)
    assert Stat.names_of(b) == [s.name for s in Stat.unpack_many(b)]
    for k in range(1, len(b)):            # a cut entry is refused, as unpack_many does
        if not _whole_entries(b, k):
            with pytest.raises(ProtocolError):
                Stat.names_of(b[:k])


def _whole_entries(b: bytes, k: int) -> bool:
    """Whether b[:k] ends at an entry boundary."""
    pos = 0
    while pos < k:
        pos += struct.unpack_from("<H", b, pos)[0] + 2
    return pos == k


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_truncation_is_refused(msg):
    b = pack(msg)
    for k in range(7, len(b)):
        cut = struct.pack("<I", k) + b[4:k]
        with pytest.raises(ProtocolError):
            unpack(cut)


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_trailing_bytes_are_refused(msg):
    b = pack(msg) + b"x"
    with pytest.raises(ProtocolError, match="trailing bytes") as e:
        unpack(struct.pack("<I", len(b)) + b[4:])
    assert e.value.tag == msg.tag


def test_size_field_must_match():
    b = pack(codec.Tclunk(1, 2))
    with pytest.raises(ProtocolError, match="size"):
        unpack(b + b"\0")
    with pytest.raises(ProtocolError, match="short"):
        unpack(b[:6])


@pytest.mark.parametrize("typ", [0, 99, 106, 128, 255])
def test_unknown_type_keeps_the_tag(typ):
    with pytest.raises(ProtocolError, match=f"unknown message type {typ}") as e:
        unpack(struct.pack("<IBH", 7, typ, 42))
    assert e.value.tag == 42


def test_bad_string_length():
    # Tattach whose uname claims 100 bytes but carries 3.
    body = struct.pack("<II", 0, NOFID) + struct.pack("<H", 100) + b"abc"
    b = struct.pack("<IBH", 7 + len(body), 104, 1) + body
    with pytest.raises(ProtocolError, match="short") as e:
        unpack(b)
    assert e.value.tag == 1


def test_invalid_utf8_name():
    body = struct.pack("<IIH", 0, 1, 1) + struct.pack("<H", 2) + b"\xc3\x28"
    b = struct.pack("<IBH", 7 + len(body), 110, 3) + body
    with pytest.raises(ProtocolError, match="UTF-8"):
        unpack(b)


def test_maxwelem():
    names = ["a"] * (MAXWELEM + 1)
    with pytest.raises(ValueError):
        pack(codec.Twalk(0, 0, 1, names))
    body = struct.pack("<IIH", 0, 1, MAXWELEM + 1) + b"\x01\x00a" * (MAXWELEM + 1)
    with pytest.raises(ProtocolError, match="walk elements"):
        unpack(struct.pack("<IBH", 7 + len(body), 110, 3) + body)
    assert unpack(pack(codec.Twalk(0, 0, 1, names[:MAXWELEM]))).wname == names[:16]


def test_stat_inner_size_must_agree():
    b = bytearray(pack(codec.Rstat(5, ST)))
    struct.pack_into("<H", b, 9, struct.unpack_from("<H", b, 9)[0] - 1)
    with pytest.raises(ProtocolError):
        unpack(bytes(b))


class _CountingReader(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.requested: list[int] = []

    def read(self, n: int = -1) -> bytes:
        self.requested.append(n)
        return super().read(n)


def test_read_msg_checks_size_before_reading_the_body():
    f = _CountingReader(struct.pack("<IBH", 0xFFFFFFF0, 100, NOTAG))
    with pytest.raises(ProtocolError, match="larger than msize"):
        read_msg(f, 8192)
    assert f.requested == [4]         # nothing was read (or allocated) past the size


def test_read_msg_eof_and_short():
    assert read_msg(io.BytesIO(b""), 8192) is None
    with pytest.raises(ProtocolError):
        read_msg(io.BytesIO(pack(codec.Tclunk(1, 2))[:9]), 8192)
    with pytest.raises(ProtocolError, match="short"):
        read_msg(io.BytesIO(struct.pack("<I", 6) + b"xx"), 8192)
    b = pack(codec.Rread(1, b"x" * 100))
    assert read_msg(io.BytesIO(b), len(b)).data == b"x" * 100
    with pytest.raises(ProtocolError):
        read_msg(io.BytesIO(b), len(b) - 1)


# ---- agreement with plan9port's C codec (py9p) ---------------------------

u8, u16 = st.integers(0, 0xFF), st.integers(0, 0xFFFF)
u32, u64 = st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFFFFFFFFFF)
# Any Unicode except surrogates (not UTF-8) and NUL (C strings end there).
names = st.text(st.characters(blacklist_categories=("Cs",),
                              blacklist_characters="\x00"), max_size=24)
# Lengths and offsets are C vlongs in plan9port: 63 bits.
v63 = st.integers(0, (1 << 63) - 1)
qids = st.builds(Qid, u8, u32, u64)
stats = st.builds(Stat, u16, u32, qids, u32, u32, u32, v63, names, names,
                  names, names)
KIND = {"1": u8, "2": u16, "4": u32, "8": v63, "s": names, "q": qids,
        "D": st.binary(max_size=300), "T": stats,
        "S*": st.lists(names, max_size=MAXWELEM),
        "Q*": st.lists(qids, max_size=MAXWELEM)}


def _strategy(cls):
    fields = {n: KIND[k] for n, k in cls.SCHEMA}
    return st.builds(cls, tag=u16, **fields)


messages = st.one_of([_strategy(c) for c in MESSAGES.values()])


def _to_py9p(v):
    if isinstance(v, Qid):
        return py9p.Qid(*v)
    if isinstance(v, Stat):
        return py9p.Dir(type=v.type, dev=v.dev, qid=py9p.Qid(*v.qid),
                        mode=v.mode, atime=v.atime, mtime=v.mtime,
                        length=v.length, name=v.name, uid=v.uid, gid=v.gid,
                        muid=v.muid)
    if isinstance(v, list):
        return tuple(_to_py9p(x) for x in v)
    return v


def py9p_message(m: codec.Msg):
    cls = getattr(py9p, type(m).__name__)
    kw = {n: _to_py9p(getattr(m, n)) for n, _ in m.SCHEMA}
    return cls(tag=m.tag, **kw)


@settings(max_examples=600, deadline=None)
@given(messages)
def test_agrees_with_plan9port_codec(m):
    ours = pack(m)
    theirs = py9p.encode_message(py9p_message(m))
    assert ours == theirs
    assert unpack(theirs) == m
    assert py9p.decode_message(ours) == py9p_message(m)


@settings(max_examples=200, deadline=None)
@given(stats)
def test_stat_agrees_with_plan9port_codec(s):
    assert s.pack() == py9p.encode_dir(_to_py9p(s))
    assert Stat.unpack(py9p.encode_dir(_to_py9p(s))) == s


def test_non_ascii_names_agree_with_plan9port_codec():
    for name in ["grüße", "日本語", "emoji \U0001f4e8", "ü" * 300]:
        m = codec.Twalk(1, 0, 1, [name, "x"])
        assert pack(m) == py9p.encode_message(py9p_message(m))
        s = Stat(name=name, uid="glenda")
        assert s.pack() == py9p.encode_dir(_to_py9p(s))


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(MESSAGES)), u16, st.binary(max_size=120))
def test_random_bodies_decode_or_raise_protocol_error(typ, tag, body):
    b = struct.pack("<IBH", 7 + len(body), typ, tag) + body
    try:
        m = unpack(b)
    except ProtocolError as e:
        assert e.tag == tag            # a framed message can always be answered
    else:
        assert pack(m) == b            # whatever decodes re-encodes exactly


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_stat_bytes(b):
    try:
        s = Stat.unpack(b)
    except ProtocolError:
        return
    assert s.pack() == b


# ---- a whole file's read as one record (the client's batches) ------------------

def _file_read_replies(nwalk: int, data: bytes, tags=(4, 5, 6, 7)) -> list[bytes]:
    qids = [codec.Qid(0, 1, i) for i in range(nwalk)]
    return [codec.pack(m) for m in (codec.Rwalk(tags[0], qids),
                                    codec.Ropen(tags[1], codec.Qid(0, 1, 9), 0),
                                    codec.Rread(tags[2], data), codec.Rclunk(tags[3]))]


@pytest.mark.parametrize("names", [["raw"], ["mbox", "12", "raw"], ["ünï", "x" * 300]])
def test_pack_file_read_is_the_four_requests(names):
    """One struct call gives exactly the bytes of the four messages the
    general packer (held to py9p above) gives."""
    got = codec.pack_file_read((1, 2, 3, 65534), 0, 77, len(names),
                               codec.walk_names(names), 8192)
    assert got == b"".join(codec.pack(m) for m in (
        codec.Twalk(1, 0, 77, names), codec.Topen(2, 77, codec.OREAD),
        codec.Tread(3, 77, 0, 8192), codec.Tclunk(65534, 77)))


def test_file_read_replies_found_in_place():
    data = bytes(range(256)) * 3
    stream = b"".join(_file_read_replies(3, data)) + b"\x07\x00\x00\x00" + b"junk"
    end, start, stop = codec.file_read_replies(stream, 0, len(stream), (4, 5, 6, 7), 3, 8192)
    assert stream[start:stop] == data and end == len(stream) - 8
    # at an offset, as in the mux's buffer
    moved = b"pad" + stream
    assert codec.file_read_replies(moved, 3, len(moved), (4, 5, 6, 7), 3, 8192) == \
        (end + 3, start + 3, stop + 3)


def test_file_read_replies_waits_only_for_what_is_owed():
    """For every prefix of the replies it asks for more bytes, never for
    more than the whole four hold; with all of them it finds them."""
    whole = b"".join(_file_read_replies(2, b"x" * 5000))
    for k in range(7, len(whole)):
        n, _, _ = codec.file_read_replies(whole, 0, k, (4, 5, 6, 7), 2, 8192)
        assert k < -n <= len(whole), k
    assert codec.file_read_replies(whole, 0, len(whole), (4, 5, 6, 7), 2, 8192)[0] == len(whole)


@pytest.mark.parametrize("case", ["rerror-walk", "rerror-open", "rerror-read", "short-walk",
                                  "wrong-tag", "other-between", "too-big", "rerror-clunk"])
def test_file_read_replies_refuses_the_unexpected(case):
    """Anything but the four expected replies is left to the general
    decoder (0), never misread -- also on every prefix of the stream: no
    prefix makes it wait for bytes the server does not owe."""
    tags = (4, 5, 6, 7)
    rs = _file_read_replies(2, b"data")
    err = lambda tag: codec.pack(codec.Rerror(tag, "x"))
    if case == "rerror-walk":
        rs = [err(4), err(5), err(6), err(7)]
    elif case == "rerror-open":
        rs[1:] = [err(5), err(6), codec.pack(codec.Rclunk(7))]
    elif case == "rerror-read":
        rs[2] = err(6)
    elif case == "short-walk":
        rs = _file_read_replies(1, b"data")
    elif case == "wrong-tag":
        rs = _file_read_replies(2, b"data", (4, 5, 9, 7))
    elif case == "other-between":
        rs.insert(2, codec.pack(codec.Rclunk(100)))
    elif case == "too-big":
        rs = _file_read_replies(2, b"d" * 9000)
    else:
        rs[3] = err(7)
    stream = b"".join(rs)
    assert codec.file_read_replies(stream, 0, len(stream), tags, 2, 8192) == (0, 0, 0)
    for k in range(7, len(stream)):
        n, _, _ = codec.file_read_replies(stream, 0, k, tags, 2, 8192)
        assert n == 0 or k < -n <= len(stream), (k, n)
