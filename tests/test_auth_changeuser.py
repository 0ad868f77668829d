"""auth/changeuser, non-interactive (password and APOP secret on stdin)."""
import socket
import subprocess
import sys

from auth import crypt, demo, keyfile
from auth.records import AuthType, Authenticator, RecordNum, Ticket, Ticketreq, read_reply


def changeuser(env, *args, stdin=b""):
    return subprocess.run([sys.executable, "-m", "auth.changeuser", *args], input=stdin, env=env,
                          capture_output=True, timeout=30)


def _apop_login(addr: str, user: str, secret: bytes) -> bytes:
    _, host, port = addr.split("!")
    with socket.create_connection((host, int(port)), timeout=10) as s, s.makefile("rb") as f:
        s.sendall(Ticketreq(AuthType.AuthApop, authdom=demo.AUTHDOM, hostid=demo.HOSTID).pack())
        chal = read_reply(f, 128)
        s.sendall(Ticketreq(AuthType.AuthApop, authdom=demo.AUTHDOM, chal=b"8bytes!!",
                            hostid=demo.HOSTID, uid=user).pack()
                  + crypt.apop_digest(chal, secret).encode())
        return f.read(86)


def test_create_user_through_keyfs_then_apop_login(auth_servers):
    p = changeuser(auth_servers.env, "carol", stdin=b"carol-pw\ncarol-apop\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"user carol installed for Plan 9\n"
    assert b"carol-pw" not in p.stdout + p.stderr and b"carol-apop" not in p.stdout + p.stderr
    with auth_servers.keys_client() as k:
        assert k.read("carol/key") == crypt.passtokey("carol-pw")
        assert k.read("carol/secret") == b"carol-apop"
        assert k.read("carol/status") == b"ok\n"
    reply = _apop_login(auth_servers.auth, "carol", b"carol-apop")
    assert len(reply) == 86 and reply[0] == AuthType.AuthOK
    t = Ticket.unpack(reply[1:73], crypt.passtokey(demo.HOST_PASSWORD))
    assert t.num == RecordNum.AuthTs and t.cuid == t.suid == "carol"
    assert Authenticator.unpack(reply[73:], t.key).num == RecordNum.AuthAc


def test_change_existing_secret_only(auth_servers):
    p = changeuser(auth_servers.env, "bob", stdin=b"\nbob-new-apop\n")
    assert p.returncode == 0 and p.stdout == b"user bob changed\n"
    with auth_servers.keys_client() as k:
        assert k.read("bob/key") == crypt.passtokey("bob-pw")
        assert k.read("bob/secret") == b"bob-new-apop"


def test_errors(auth_servers):
    p = changeuser(auth_servers.env, "dave", stdin=b"")
    assert p.returncode == 1 and p.stderr == b"changeuser: a new user needs a password\n"
    p = changeuser(auth_servers.env, "dave", stdin=b"dave-pw\n" + b"s" * 32 + b"\n")
    assert p.returncode == 1 and b"secret must be shorter than 32 bytes" in p.stderr
    assert b"s" * 32 not in p.stderr
    p = changeuser(auth_servers.env, "bad name", stdin=b"pw\n")
    assert p.returncode == 1 and p.stderr == b"changeuser: bad user name\n"


def test_edit_keys_file_directly(tmp_path):
    files = demo.make_demo(str(tmp_path))
    p = changeuser(None, "-f", files.keys, "-k", files.authkey, "erin", stdin=b"erin-pw\nerin-apop\n")
    assert p.returncode == 0, p.stderr
    recs = {r.name: r for r in keyfile.load(files.keys, crypt.passtokey(demo.AUTHKEY_PASSWORD))}
    assert list(recs) == ["upas", "glenda", "bob", "erin"]
    assert recs["erin"].key == crypt.passtokey("erin-pw") and recs["erin"].secret == b"erin-apop"
    assert b"erin" not in open(files.keys, "rb").read()
    p = changeuser(None, "-f", files.keys, "erin", stdin=b"x\n")
    assert p.returncode == 1 and p.stderr == b"changeuser: -f needs -k authkeyfile\n"
    before = open(files.keys, "rb").read()
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-pw\n")
    p = changeuser(None, "-f", files.keys, "-k", str(wrong), "frank", stdin=b"frank-pw\n")
    assert p.returncode == 1 and b"wrong auth key or damaged file" in p.stderr
    assert open(files.keys, "rb").read() == before
