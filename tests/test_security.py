"""Security review (issue 9, DEVELOPERS.md promises), against the real
servers: confinement to /mail/box/USER (symlinks included), no cleartext
login without -p/TLS, no secret in logs or debug files, constant-time
digest comparisons, the pop3 failure delays, TLS 1.2 as the floor.
"""
import ast
import hmac
import inspect
import os
import socket
import ssl
import threading
import time
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECRETS = ("glenda-pw", "glenda-apop", "bob-pw", "bob-apop", "upas-host-pw")
BOB_SUBJECT = b"lunch?"          # in bob's mbox only (testdata/mail/box/bob/mbox)


def _no_secret(text: str, where: str) -> None:
    for s in SECRETS:
        assert s not in text, f"{s!r} written to {where}"


# ------------------------------------------------------------ confinement
def test_imap_confined_to_own_box(imap_factory):
    srv = imap_factory(flags=("-p", "-v"))
    glenda = srv.box("glenda", "mbox").parent
    os.symlink("../bob/mbox", glenda / "bobs")             # a link out of the box
    os.symlink(str(srv.box("bob", "mbox").parent), glenda / "bobdir")
    c = srv.connect()
    assert c.cmd(b"a LOGIN glenda glenda-apop")[-1].startswith(b"a OK")
    seen = b""
    for name in (b"bobs", b"bobdir/mbox", b"../bob/mbox", b"/mail/box/bob/mbox",
                 b"~bob/mbox", b"bobdir"):
        r = c.cmd(b"s SELECT " + name)
        seen += b"".join(r)
        if r[-1].startswith(b"s OK"):
            seen += b"".join(c.cmd(b"f FETCH 1:* BODY.PEEK[]"))
        else:
            assert r[-1].startswith((b"s NO", b"s BAD")), r
    seen += b"".join(c.cmd(b"l LIST \"\" *"))
    seen += b"".join(c.cmd(b"t STATUS \"../bob/mbox\" (MESSAGES)"))
    assert BOB_SUBJECT not in seen and b"bob@example.org" not in seen
    c.cmd(b"z LOGOUT")
    srv.wait_idle()
    _no_secret(srv.syslog(), "imap4d -v log")


def test_pop3_confined_to_own_box(pop3_factory, tmp_path):
    debug = tmp_path / "pop3.debug"
    srv = pop3_factory(["-p", "-d", str(debug)])
    inbox = srv.box("glenda")
    inbox.unlink()
    os.symlink("../bob/mbox", inbox)               # glenda's inbox points at bob's
    c = srv.connect()
    assert c.cmd(b"USER glenda") == b"+OK\r\n"
    # Plan 9: PASS checks the APOP secret; the link out of the box is refused
    assert c.cmd(b"PASS glenda-apop") == b"-ERR can't initialize upas/fs: permission denied\r\n"
    assert c.closed()
    srv.wait_idle()
    _no_secret(debug.read_text(errors="replace"), "pop3 -d debug file")
    _no_secret(srv.syslog(), "pop3 log")


# ------------------------------------------------------ cleartext logins
def test_imap_no_cleartext_login_without_p(imap_factory):
    c = imap_factory(auth=False).connect()
    assert c.cmd(b"a LOGIN glenda glenda-apop") == [b"a NO LOGIN plaintext passwords disallowed\r\n"]
    caps = b"".join(c.cmd(b"b CAPABILITY"))
    assert b"LOGINDISABLED" in caps and b"AUTH=PLAIN" not in caps


def test_pop3_no_cleartext_login_without_p(pop3_factory):
    p = pop3_factory().connect()
    assert p.cmd(b"USER glenda") == b"+OK\r\n"          # Plan 9 takes USER, refuses PASS
    assert p.cmd(b"PASS glenda-apop") == b"-ERR password in the clear disallowed\r\n"
    assert p.cmd(b"STAT").startswith(b"-ERR")
    p.send(b"CAPA")
    assert b"USER" not in p.multi()


# -------------------------------------------------------- secrets in logs
def test_auth_servers_log_no_secrets(auth_stack, pop3_factory):
    """A real APOP login and a failed one through factotum -> authsrv ->
    keyfs; none of their logs holds a password or APOP secret."""
    import hashlib
    srv = pop3_factory()
    for secret in ("glenda-apop", "wrong-secret"):
        c = srv.connect()
        digest = hashlib.md5(c.chal.encode() + secret.encode()).hexdigest()
        c.cmd(f"APOP glenda {digest}".encode())
        c.send(b"QUIT")
        c.close()
    srv.wait_idle()
    logs = [p for p in Path(auth_stack.servers.dir).glob("*.log")]
    assert logs, "the auth servers keep logs"
    for p in logs:
        _no_secret(p.read_text(errors="replace"), p.name)


# ---------------------------------------------------- constant-time checks
def test_hex_matches_uses_compare_digest(monkeypatch):
    from auth import crypt
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert crypt.hex_matches("ab" * 16, "AB" * 16)
    assert not crypt.hex_matches("ab" * 16, "ac" * 16)
    assert len(calls) == 2


@pytest.mark.parametrize("func", ["_apop", "_chal", "_passwd"])
def test_authsrv_compares_secrets_in_constant_time(func):
    """The AS checks of APOP/CRAM digests, p9cr answers and old passwords
    go through hex_matches/compare_digest, never through == or !=."""
    from auth import authsrv
    src = inspect.getsource(getattr(authsrv.AuthServer if hasattr(authsrv, "AuthServer")
                                    else _owner(authsrv, func), func))
    tree = ast.parse(src.replace("\n    ", "\n")[src.index("def"):] if src.startswith(" ") else src)
    called = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
              for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert called & {"hex_matches", "compare_digest"}, f"{func} compares without compare_digest"
    for n in ast.walk(tree):
        if isinstance(n, ast.Compare) and any(isinstance(o, (ast.Eq, ast.NotEq)) for o in n.ops):
            names = {x.id for x in ast.walk(n) if isinstance(x, ast.Name)}
            assert not names & {"resp", "ukey", "secret", "digest"}, ast.unparse(n)


def _owner(mod, func):
    for obj in vars(mod).values():
        if inspect.isclass(obj) and func in vars(obj):
            return obj
    raise AssertionError(f"no {func} in {mod.__name__}")


# ----------------------------------------------------------- pop3 delays
def test_pop3_failure_delays_grow_and_21st_failure_exits():
    from upas.pop3 import protocol as P
    from tests.test_pop3_protocol import Auth, Host
    s = P.Session(Auth(), Host(), allow_clear=True, delay_scale=1)
    list(s.start())
    sleeps, closed = [], False
    for i in range(21):
        evs = list(s.handle(b"APOP glenda 0123456789abcdef0123456789abcdef"))
        sleeps += [e.seconds for e in evs if isinstance(e, P.Sleep)]
        closed = any(isinstance(e, P.Close) for e in evs)
        if closed:
            break
    assert closed and i == 20, "the 21st failure ends the session"
    assert sleeps and sleeps == sorted(sleeps) and sleeps[-1] > sleeps[0]


# ----------------------------------------------------------------- TLS
@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    import trustme
    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("tls") / "cert.pem"
    leaf = ca.issue_cert("mail.test")
    pem.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems) + leaf.private_key_pem.bytes())
    return str(pem)


def test_tls_floor_is_1_2(tls_cert):
    """pop3, imap4d and the launcher's TLS ports all build their context
    and run TLS with upas/transport/tls.py."""
    from upas.transport.tls import TLSStream, server_context
    ctx = server_context(tls_cert)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_SSLv3 or ctx.minimum_version > ssl.TLSVersion.SSLv3
    # a client that speaks TLS 1.0 at most cannot complete a handshake
    a, b = socket.socketpair()
    errors = []

    def serve():
        try:
            TLSStream(ctx, a.fileno(), a.fileno()).handshake(time.monotonic() + 10)
        except OSError as e:                    # ssl.SSLError
            errors.append(e)
        a.close()
    t = threading.Thread(target=serve)
    t.start()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    try:
        with warnings.catch_warnings():          # TLSv1 is deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            client.minimum_version = client.maximum_version = ssl.TLSVersion.TLSv1
        client.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pass
    with pytest.raises((ssl.SSLError, OSError)):
        client.wrap_socket(b).close()
    t.join(10)
    b.close()
    assert errors, "the server accepted a TLS 1.0 client"
    ciphers = {c["name"] for c in ctx.get_ciphers()}
    assert not any(w in c for c in ciphers for w in ("RC4", "NULL", "EXPORT", "MD5", "DES-CBC-"))


# ----------------------------------------------------------- purgatory
def test_keyfs_purgatory_through_pop3(pop3_factory, auth_stack):
    """Ten failed APOP logins (pop3 -> factotum -> authsrv -> keyfs log)
    put bob in purgatory: the right secret is refused until it ends."""
    import hashlib
    import time
    srv = pop3_factory()

    def apop(secret: str) -> bytes:
        c = srv.connect()
        digest = hashlib.md5(c.chal.encode() + secret.encode()).hexdigest()
        reply = c.cmd(f"APOP bob {digest}".encode())
        c.send(b"QUIT")
        c.close()
        return reply

    for _ in range(10):
        assert apop("wrong-secret") == b"-ERR authentication failed\r\n"
    t10 = time.monotonic()
    with auth_stack.servers.keys_client() as keys:
        assert keys.read("bob/log") == b"10\n"                      # keyfs counted them
    refused = apop("bob-apop")
    # in purgatory (0.5 s at the tests' scale) the right secret is refused
    assert refused == b"-ERR authentication failed\r\n" or time.monotonic() - t10 > 0.5
    deadline = time.monotonic() + 15
    while apop("bob-apop").startswith(b"-ERR"):                     # 10 s, scaled
        assert time.monotonic() < deadline, "purgatory never ended"
        time.sleep(0.2)
