"""keyfs: the keys file (docs/spec/fs-auth.md §3.8, fact 30) and the real keyfs process (docs/spec/fs-auth.md fact 29)."""
import os
import socket
import stat as pystat
import subprocess
import sys
import time

import pytest

from auth import crypt, demo, keyfile
from auth.keyfile import KeyRecord
from tests.fixtures.auth import start_keyfs, stop
from upas.ninep import codec
from upas.ninep.client import Client
from upas.ninep.codec import DMDIR, Stat
from upas.ninep.server import Error

EXAMPLE = bytes.fromhex(
    "53c404b28e3e14c8d394fdb93be90e60bb3fc8cb52dd18da78a568d3175cd9b373c6b5a66cb848c200f6f258dfd8"
    "b8f2052e7107250f8f7f85e1196513dca9e066ec1e05c3ca50fadfc7f041ae88d8d930")
AUTHKEY = crypt.passtokey("authpw")


def _glenda():
    return KeyRecord("glenda", crypt.passtokey("password"), 0, 0, 0, b"apopsecret")


# -- the file format -------------------------------------------------------

def test_one_user_keys_file_is_the_81_byte_example_fs_auth_fact30():
    data = keyfile.encode([_glenda()], AUTHKEY, prefix=bytes(8))
    assert len(data) == 81
    assert data == EXAMPLE
    (rec,) = keyfile.decode(EXAMPLE, AUTHKEY)
    assert (rec.name, rec.key, rec.status, rec.warnings, rec.expire, rec.secret) == \
        ("glenda", crypt.passtokey("password"), 0, 0, 0, b"apopsecret")


def test_wrong_authkey_records_are_skipped_fs_auth_fact30():
    assert keyfile.decode(EXAMPLE, crypt.passtokey("not-authpw")) == []


def test_last_record_secret_read_to_the_last_byte():
    # docs/decisions.md: unlike Bell's reader, the tail of the last secret is intact.
    recs = [KeyRecord("a", bytes(7)), KeyRecord("b", crypt.passtokey("x"), secret=b"s" * 31)]
    back = keyfile.decode(keyfile.encode(recs, AUTHKEY), AUTHKEY)
    assert [r.name for r in back] == ["a", "b"] and back[1].secret == b"s" * 31
    assert back[1].key == crypt.passtokey("x")
    # Bell decrypted only len - len % 73 bytes: the CBC tail then falls elsewhere
    data = keyfile.encode(recs, AUTHKEY, prefix=bytes(8))
    n = len(data) - len(data) % 73
    bell = crypt.des_cbc_decrypt(keyfile.file_key(AUTHKEY), data[:n])
    assert bell[8 + 73 + 41:n] != b"s" * (n - 8 - 73 - 41)


def test_scan_counts_skipped_and_partial_records():
    data = keyfile.encode([_glenda(), KeyRecord("bob")], AUTHKEY, prefix=bytes(8))
    assert [r.name for r in keyfile.scan(data, AUTHKEY)[0]] == ["glenda", "bob"]
    assert keyfile.scan(data, AUTHKEY)[1] == 0
    assert keyfile.scan(data, crypt.passtokey("wrong"))[1] > 0
    assert keyfile.scan(data[:-5], AUTHKEY)[1] == 1


def test_bad_names_skipped():
    good = KeyRecord("ok").pack()
    bads = [b"x" * 28, bytes(28), b"has space".ljust(28, b"\0"), b"a/b".ljust(28, b"\0"),
            b"ctl\x01".ljust(28, b"\0")]
    plain = bytes(8) + good + b"".join(n + good[28:] for n in bads)
    data = crypt.des_cbc_encrypt(keyfile.file_key(AUTHKEY), plain)
    assert [r.name for r in keyfile.decode(data, AUTHKEY)] == ["ok"]


def test_save_is_encrypted_private_and_atomic(tmp_path):
    path = str(tmp_path / "keys")
    keyfile.save(path, [_glenda()], AUTHKEY)
    raw = open(path, "rb").read()
    assert len(raw) == 81 and b"glenda" not in raw and b"apopsecret" not in raw
    assert pystat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not os.path.exists(path + ".tmp")
    assert keyfile.decode(raw, AUTHKEY)[0].secret == b"apopsecret"
    # a crash between write and rename leaves only the tmp file: it is taken back
    os.rename(path, path + ".tmp")
    assert keyfile.load(path, AUTHKEY)[0].name == "glenda"


def test_record_repr_hides_key_and_secret():
    r = repr(_glenda())
    assert "apopsecret" not in r and crypt.passtokey("password").hex() not in r


# -- the keyfs process -----------------------------------------------------

@pytest.fixture
def keys(auth_servers_module):
    with auth_servers_module.keys_client() as c:
        yield c


@pytest.fixture
def user(auth_servers_module):
    """A fresh user on the shared keyfs: key NAME-pw, secret NAME-apop."""
    return auth_servers_module.new_user()


def test_tree_listing_and_modes(keys):
    names = [s.name for s in keys.readdir("/")]
    assert names[:3] == ["upas", "glenda", "bob"]
    files = keys.readdir("glenda")
    assert [s.name for s in files] == ["key", "secret", "log", "status", "expire", "warnings"]
    assert all(s.mode == 0o666 and s.uid == "auth" for s in files)
    assert keys.stat("glenda").mode == DMDIR | 0o777


def test_fs_auth_fact29_mkdir_key_status_expire(keys):
    keys.create("carol", DMDIR | 0o777, "r").close()
    assert [s.name for s in keys.readdir("/")][-1] == "carol"
    assert len(keys.read("carol/key")) == 7
    with pytest.raises(Error, match="^garbled write data$"):
        keys.write("carol/key", b"123456")
    with pytest.raises(Error, match="^garbled write data$"):
        keys.write("carol/key", b"12345678")
    assert keys.read("carol/status") == b"ok\n"
    assert keys.read("carol/expire") == b"never\n"
    assert keys.read("carol/log") == b"0\n"
    assert keys.read("carol/warnings") == b"0\n"
    assert keys.read("carol/secret") == b""
    with pytest.raises(Error, match="^user already exists$"):
        keys.create("carol", DMDIR | 0o777, "r")


def test_demo_keys_and_secrets(keys):
    assert keys.read("glenda/key") == crypt.passtokey("glenda-pw")
    assert keys.read("glenda/secret") == b"glenda-apop"
    assert keys.read("upas/key") == crypt.passtokey(demo.HOST_PASSWORD)


def test_fs_auth_fact29_purgatory_after_ten_bad_logs(keys, user):
    for _ in range(9):
        keys.write(f"{user}/log", b"bad")
    assert keys.read(f"{user}/key") == crypt.passtokey(user + "-pw")
    keys.write(f"{user}/log", b"bad")
    assert keys.read(f"{user}/log") == b"10\n"
    with pytest.raises(Error, match="^user in purgatory$"):
        keys.read(f"{user}/key")
    with pytest.raises(Error, match="^user in purgatory$"):
        keys.read(f"{user}/secret")
    assert keys.read(f"{user}/status") == b"ok\n"
    time.sleep(10 * 0.05 + 0.2)            # 10 s scaled by KEYFS_PURGATORY_SCALE
    assert keys.read(f"{user}/key") == crypt.passtokey(user + "-pw")
    keys.write(f"{user}/log", b"good")
    assert keys.read(f"{user}/log") == b"0\n"


def test_log_only_exact_good_resets(keys, user):
    keys.write(f"{user}/log", b"bad")
    keys.write(f"{user}/log", b"good\n")
    assert keys.read(f"{user}/log") == b"2\n"
    keys.write(f"{user}/status", b"ok")
    assert keys.read(f"{user}/log") == b"0\n"


def test_disabled_and_expired(keys, user):
    keys.write(f"{user}/status", b"disabled\n")
    assert keys.read(f"{user}/status") == b"disabled\n"
    with pytest.raises(Error, match="^user disabled$"):
        keys.read(f"{user}/key")
    keys.write(f"{user}/status", b"ok")
    keys.write(f"{user}/expire", b"%d" % (time.time() - 5))
    assert keys.read(f"{user}/status") == b"expired\n"
    with pytest.raises(Error, match="^user expired$"):
        keys.read(f"{user}/secret")
    keys.write(f"{user}/expire", b"never")
    assert keys.read(f"{user}/expire") == b"never\n"
    assert keys.read(f"{user}/key") == crypt.passtokey(user + "-pw")


@pytest.mark.parametrize("file,value,err", [
    ("status", b"enabled", "unknown status"),
    ("expire", b"tomorrow", "bad expiration date"),
    ("expire", b"4294967296", "bad expiration date"),
    ("secret", b"s" * 32, "garbled write data"),
])
def test_malformed_writes_refused(keys, user, file, value, err):
    with pytest.raises(Error, match=f"^{err}$"):
        keys.write(f"{user}/{file}", value)
    assert keys.read(f"{user}/status") == b"ok\n"
    assert keys.read(f"{user}/expire") == b"never\n"
    assert keys.read(f"{user}/secret") == (user + "-apop").encode()


def test_warnings_as_strtoul_into_a_byte(keys, user):
    keys.write(f"{user}/warnings", b"300")
    assert keys.read(f"{user}/warnings") == b"44\n"
    keys.write(f"{user}/expire", b"4102444800\n")
    assert keys.read(f"{user}/expire") == b"4102444800\n"
    assert keys.read(f"{user}/warnings") == b"0\n"


@pytest.mark.parametrize("name,err", [
    ("abcdefghijklmnopqrstuvwxyz01", "file name too long"),
    ("has space", "bad user name"),
    ("tab\there", "bad user name"),
])
def test_bad_user_names(keys, name, err):
    with pytest.raises(Error, match=f"^{err}$"):
        keys.create(name, DMDIR | 0o777, "r")


def test_only_user_dirs_can_be_made_or_removed(keys):
    with pytest.raises(Error, match="^permission denied$"):
        keys.create("plain", 0o666, "w")
    with pytest.raises(Error, match="^permission denied$"):
        keys.create("glenda/extra", 0o666, "w")
    with pytest.raises(Error, match="^permission denied$"):
        keys.remove("glenda/key")


def test_rename_remove_and_walked_fid(keys, user):
    keys.wstat(user, Stat(type=0xFFFF, dev=0xFFFFFFFF, qid=codec.Qid(0xFF, 0xFFFFFFFF, 2**64 - 1),
                           mode=0xFFFFFFFF, atime=0xFFFFFFFF, mtime=0xFFFFFFFF,
                           length=2**64 - 1, name="robert"))
    names = [s.name for s in keys.readdir("/")]
    assert "robert" in names and user not in names
    assert keys.read("robert/key") == crypt.passtokey(user + "-pw")
    f = keys.open("robert/key")
    keys.remove("robert")
    with pytest.raises(Error, match="^user removed$"):
        f.read()
    f.close()
    assert "robert" not in [s.name for s in keys.readdir("/")]
    with pytest.raises(Error, match="^file does not exist$"):
        keys.read("robert/key")


def test_changes_persist_and_log_does_not(auth_servers):
    keys = auth_servers.keys_client()
    keys.create("dave", DMDIR | 0o777, "r").close()
    keys.write("dave/key", crypt.passtokey("dave-pw"))
    keys.write("dave/secret", b"dave-apop")
    keys.write("glenda/status", b"disabled")
    keys.write("bob/log", b"bad")
    raw = open(auth_servers.files.keys, "rb").read()
    assert b"dave" not in raw and b"dave-apop" not in raw
    assert (len(raw) - 8) % 73 == 0
    keys.close()
    stop(auth_servers, "keyfs")
    start_keyfs(auth_servers)
    with auth_servers.keys_client() as c:
        assert c.read("dave/key") == crypt.passtokey("dave-pw")
        assert c.read("dave/secret") == b"dave-apop"
        assert c.read("glenda/status") == b"disabled\n"
        assert c.read("bob/log") == b"0\n"


def test_tauth_declined_and_garbage_survived(auth_servers_module):
    auth_servers = auth_servers_module
    path = os.path.join(auth_servers.namespace, "keys")
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(codec.pack(codec.Tversion(msize=8192)))
    assert isinstance(codec.read_msg(s, 8192), codec.Rversion)
    s.sendall(codec.pack(codec.Tauth(tag=1, uname="glenda")))
    r = codec.read_msg(s, 8192)
    assert isinstance(r, codec.Rerror) and r.ename == "keyfs: authentication not required"
    s.sendall(b"\xff" * 64)
    s.close()
    with auth_servers.keys_client() as c:
        assert c.read("glenda/status") == b"ok\n"


def test_wrong_auth_key_refuses_to_start(auth_servers_module, tmp_path):
    auth_servers = auth_servers_module
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    env = dict(auth_servers.env, NAMESPACE=str(tmp_path))
    p = subprocess.run([sys.executable, "-m", "auth.keyfs", "-k", str(wrong), "-s", "k2",
                        auth_servers.files.keys], env=env, capture_output=True, timeout=30)
    assert p.returncode == 1
    assert b"bad records: wrong auth key or damaged file" in p.stderr
    assert b"not-the-password" not in p.stderr


def test_no_auth_key_is_an_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "auth.keyfs", str(tmp_path / "k")],
                       capture_output=True, timeout=30, env=dict(os.environ, NAMESPACE=str(tmp_path)))
    assert p.returncode == 1 and b"no auth key" in p.stderr


def test_password_from_stdin_with_p_and_local_only(tmp_path):
    files = demo.make_demo(str(tmp_path / "demo"))
    ns = tmp_path / "ns"
    env = dict(os.environ, NAMESPACE=str(ns))
    p = subprocess.Popen([sys.executable, "-m", "auth.keyfs", "-p", "-s", "kp", files.keys],
                         env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(demo.AUTHKEY_PASSWORD.encode() + b"\n")
        p.stdin.close()
        deadline = time.monotonic() + 15
        while True:
            try:
                c = Client.dial(str(ns / "kp"))
                break
            except OSError:
                assert p.poll() is None and time.monotonic() < deadline, "keyfs did not start"
                time.sleep(0.05)
        with c:
            assert c.read("bob/key") == crypt.passtokey("bob-pw")
    finally:
        p.terminate()
        p.wait(10)
        p.stderr.close()
    r = subprocess.run([sys.executable, "-m", "auth.keyfs", "-k", files.authkey, "-s", "tcp!*!0",
                        files.keys], env=env, capture_output=True, timeout=30)
    assert r.returncode == 1 and r.stderr == b"keyfs: keys are served on a local socket only\n"
