"""The DES and passtokey vectors and the digests of docs/spec/fs-auth.md §3.3, §3.4, facts 20-22, 26, 28."""
import pytest

from auth import crypt

H = bytes.fromhex


@pytest.mark.parametrize("pw,key", [
    ("password", "f0f07c7e7fcbc9"),
    ("glenda", "6776d94d0e0340"),
    ("0123456789", "9cfd884d8bc048"),
    ("abcdefghijklmnopqrstuvwxyz0", "a18a9bb7091172"),
    ("abcdefghijklmnopqrstuvwxyz01", "a18a9bb7091172"),   # truncated at 27 bytes
    ("pässwörd", "1b42853481c5fb"),
])
def test_passtokey_vectors(pw, key):
    assert crypt.passtokey(pw) == H(key)
    assert crypt.passtokey(pw.encode()) == H(key)


def test_des56to64_vector_and_parity():
    out = crypt.des56to64(H("f0f07c7e7fcbc9"))
    assert out == H("f1791f8fe6fe2f92")
    for k in (H("f0f07c7e7fcbc9"), bytes(7), b"\xff" * 7, H("11223344556677")):
        assert all(bin(b).count("1") % 2 == 1 for b in crypt.des56to64(k))


def test_des56to64_rejects_wrong_length():
    with pytest.raises(ValueError):
        crypt.des56to64(bytes(8))


def test_encrypt_13_bytes_vector_and_inverse():
    key = crypt.passtokey("password")
    ct = crypt.encrypt(key, bytes(range(13)))
    assert ct == H("467bcbf31c4952cb8324b45266")
    assert crypt.decrypt(key, ct) == bytes(range(13))


def test_block_layout():
    assert crypt._block_starts(72) == [0, 7, 14, 21, 28, 35, 42, 49, 56, 63, 64]
    assert crypt._block_starts(13) == [0, 5]
    assert crypt._block_starts(8) == [0]
    with pytest.raises(ValueError):
        crypt.encrypt(bytes(7), bytes(7))


@pytest.mark.parametrize("n", [8, 9, 14, 15, 41, 72, 73, 90, 141])
def test_encrypt_roundtrip_lengths(n):
    key = crypt.passtokey("glenda")
    data = bytes((i * 37) & 0xFF for i in range(n))
    ct = crypt.encrypt(key, data)
    assert ct != data and len(ct) == n
    assert crypt.decrypt(key, ct) == data


def test_netcrypt_p9cr_vector():
    assert crypt.netcrypt(crypt.passtokey("password"), "12345") == "7d682065"
    assert crypt.netcrypt(crypt.passtokey("password"), b"12345\n") == "7d682065"


def test_cbc_tail_rule_roundtrip_and_first_block():
    from Crypto.Cipher import DES
    key8 = crypt.des56to64(crypt.passtokey("authpw"))
    data = bytes(range(81))
    ct = crypt.des_cbc_encrypt(key8, data)
    assert len(ct) == 81
    # whole blocks are plain CBC with a zero IV
    assert ct[:80] == DES.new(key8, DES.MODE_CBC, iv=bytes(8)).encrypt(data[:80])
    # the tail byte is XORed with DES(last ciphertext block)
    assert ct[80] == data[80] ^ DES.new(key8, DES.MODE_ECB).encrypt(ct[72:80])[0]
    assert crypt.des_cbc_decrypt(key8, ct) == data
    # shorter than a block: XOR with DES(IV)
    assert crypt.des_cbc_decrypt(key8, crypt.des_cbc_encrypt(key8, b"abc")) == b"abc"


def test_rfc1939_apop_and_rfc2195_cram():
    assert crypt.apop_digest(b"<1896.697170952@dbc.mtview.ca.us>", b"tanstaaf") == \
        "c4c9334bac560ecc979e58001b3e22fb"
    assert crypt.cram_digest(b"<1896.697170952@postoffice.reston.mci.net>", b"tanstaaftanstaaf") == \
        "b913a602c7eda7a495b4e6e7334d3890"


def test_hex_matches_either_case_and_rejects_wrong():
    d = "b913a602c7eda7a495b4e6e7334d3890"
    assert crypt.hex_matches(d, d.upper())
    assert crypt.hex_matches(d, d.encode())
    assert not crypt.hex_matches(d, "b913a602c7eda7a495b4e6e7334d3891")
    assert not crypt.hex_matches(d, d[:-1])


# -- properties --------------------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402

keys7 = st.binary(min_size=7, max_size=7)


@settings(max_examples=60, deadline=None)
@given(keys7, st.binary(min_size=8, max_size=200))
def test_prop_encrypt_decrypt_inverse(key, data):
    assert crypt.decrypt(key, crypt.encrypt(key, data)) == data


@settings(max_examples=60, deadline=None)
@given(keys7, st.binary(max_size=200))
def test_prop_cbc_inverse_and_length(key, data):
    k8 = crypt.des56to64(key)
    ct = crypt.des_cbc_encrypt(k8, data)
    assert len(ct) == len(data) and crypt.des_cbc_decrypt(k8, ct) == data


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_prop_passtokey_is_7_bytes_and_truncates_at_27(pw):
    raw = pw.encode()
    assert len(crypt.passtokey(pw)) == 7
    assert crypt.passtokey(raw) == crypt.passtokey(raw[:27])


def test_netkey_response_reads_the_challenge_as_atoi():
    # p9cr's challenge is a decimal number: leading blanks and zeros and
    # what follows the digits do not change the answer to 12345
    key = crypt.passtokey("password")
    for chal in ("12345", " 012345", b"12345\0\0\0", "+12345x"):
        assert crypt.netkey_response(key, chal) == "7d682065"
