"""Record layouts, AuthInfo and reply framing (docs/spec/fs-auth.md §3.2, §2.4, §3.5; facts 19, 23-25)."""
import io

import pytest

from auth import crypt
from auth.records import (AuthInfo, Authenticator, AuthType, ASError, Passwordreq, RecordNum,
                          Ticket, Ticketreq, err_reply, ok_reply, okvar_reply, read_reply,
                          TICKREQLEN, TICKETLEN, AUTHENTLEN, PASSREQLEN)

H = bytes.fromhex
TICKET_CT = H("762a70459bbb9e55993e2177771aa515d04e2a815da515d04e2a815da515d04e2a815da3ebb40a49"
              "de4e8d997f4ec0a38e009d7da69e2d5e14f292223a7bb2d7b1df9c8e8ca18237")


def test_lengths():
    assert (TICKREQLEN, TICKETLEN, AUTHENTLEN, PASSREQLEN) == (141, 72, 13, 90)


def test_ticket_vector_fs_auth_fact23():
    t = Ticket(RecordNum.AuthTs, H("0102030405060708"), "glenda", "glenda", H("11223344556677"))
    key = crypt.passtokey("password")
    assert t.pack(key) == TICKET_CT
    back = Ticket.unpack(TICKET_CT, key)
    assert back.num == 64 and back.cuid == "glenda" and back.suid == "glenda"
    assert back.key == H("11223344556677") and back.chal == H("0102030405060708")


def test_authenticator_vector():
    a = Authenticator(RecordNum.AuthAc, H("0102030405060708"), 0)
    assert a.pack(H("11223344556677")) == H("082182bc889884087a6eebe163")
    assert Authenticator.unpack(H("082182bc889884087a6eebe163"), H("11223344556677")) == a


def test_ticketreq_layout_fs_auth_fact24():
    tr = Ticketreq(AuthType.AuthApop, "auth", "upas.local", b"ABCDEFGH", "upas", "glenda")
    b = tr.pack()
    assert len(b) == 141
    assert b[0] == 7
    assert b[1:5] == b"auth" and b[5:29] == bytes(24)
    assert b[29:39] == b"upas.local" and b[39:77] == bytes(38)
    assert b[77:85] == b"ABCDEFGH"
    assert b[85:89] == b"upas" and b[113:119] == b"glenda"
    assert Ticketreq.unpack(b) == tr


def test_ticketreq_last_byte_forced_nul_and_truncation():
    b = bytearray(Ticketreq(1).pack())
    b[113:141] = b"x" * 28
    assert Ticketreq.unpack(bytes(b)).uid == "x" * 27
    assert Ticketreq(1, uid="y" * 40).pack()[113:141] == b"y" * 27 + b"\0"
    with pytest.raises(ValueError):
        Ticketreq.unpack(bytes(140))


def test_passwordreq_roundtrip():
    p = Passwordreq(AuthType.AuthPass, "old-pw", "new-pw", 1, "apop")
    kn = H("11223344556677")
    ct = p.pack(kn)
    assert len(ct) == 90 and ct != p.pack()
    assert Passwordreq.unpack(ct, kn) == p
    plain = p.pack()
    assert plain[0] == 3 and plain[1:7] == b"old-pw" and plain[29:35] == b"new-pw"
    assert plain[57] == 1 and plain[58:62] == b"apop"


def test_authinfo_fs_auth_fact19():
    ai = AuthInfo("glenda", "glenda")
    assert ai.pack() == H("0600676c656e64610600676c656e646100000000")
    # 2+6+2+6+2+2 bytes (docs/spec/fs-auth.md §2.4), as Plan 9's convAI2M writes
    assert len(ai.pack()) == 20
    assert AuthInfo.unpack(ai.pack()) == ai
    s = AuthInfo("bob", "upas", "", H("0102030405060708"))
    assert AuthInfo.unpack(s.pack()) == s
    with pytest.raises(ValueError):
        AuthInfo.unpack(ai.pack()[:-1])


def test_okvar_framing_fs_auth_fact25():
    chal = b"<1a2b.3c4d@upas.local>"
    r = okvar_reply(chal)
    assert r[0] == 9 and r[1:6] == b"%-5d" % len(chal) and r[6:] == chal
    assert okvar_reply(b"x" * 42)[1:6] == b"42   "
    assert read_reply(io.BytesIO(r), 128) == chal


def test_err_and_ok_framing():
    e = err_reply("apop-fail bad response 127.0.0.1")
    assert len(e) == 65 and e[0] == 5
    with pytest.raises(ASError, match="^remote: apop-fail bad response 127.0.0.1$"):
        read_reply(io.BytesIO(e), 86)
    assert read_reply(io.BytesIO(ok_reply(b"z" * 16) + b"extra"), 16) == b"z" * 16


@pytest.mark.parametrize("bad", [b"", b"\x04abc", b"\x07" + bytes(10), b"\x09abcde", b"\x09200  " + b"x" * 200,
                                 b"\x05short"])
def test_read_reply_botch(bad):
    with pytest.raises(ASError):
        read_reply(io.BytesIO(bad), 16)


# -- properties --------------------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402

from auth.keyfile import KeyRecord, decode, encode  # noqa: E402

names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF, blacklist_characters="/\x7f"),
                min_size=1, max_size=9)            # at most 27 UTF-8 bytes
b8 = st.binary(min_size=8, max_size=8)
b7 = st.binary(min_size=7, max_size=7)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 255), names, names, b8, names, names)
def test_prop_ticketreq_roundtrip(t, a, d, c, h, u):
    tr = Ticketreq(t, a, d, c, h, u)
    assert Ticketreq.unpack(tr.pack()) == tr


@settings(max_examples=60, deadline=None)
@given(st.integers(64, 69), b8, names, names, b7, b7)
def test_prop_ticket_roundtrip_under_key(num, chal, cuid, suid, kn, key):
    t = Ticket(num, chal, cuid, suid, kn)
    assert Ticket.unpack(t.pack(key), key) == t


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(names, b7, st.integers(0, 1), st.integers(0, 255),
                          st.integers(0, 2**32 - 1), st.binary(max_size=31).map(lambda b: b.replace(b"\0", b"x"))),
                max_size=5, unique_by=lambda r: r[0]), b7)
def test_prop_keyfile_roundtrip(rows, authkey):
    recs = [KeyRecord(*r) for r in rows]
    back = decode(encode(recs, authkey), authkey)
    assert [(r.name, r.key, r.status, r.warnings, r.expire, r.secret) for r in back] == rows
