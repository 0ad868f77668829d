"""upas/pop3 end to end: `python -m upas.pop3` per connection (socket as
stdin/stdout), the real upasfs (started per session, or posted) and the real
factotum + authsrv + keyfs.  Each testable fact of docs/spec/servers.md §4
(1-22) is asserted as an exact string; docs/decisions.md fixes are named."""
import hashlib
import os
import poplib
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trustme

from tests.test_pop3_protocol import split_mbox

GLENDA = ("glenda", "glenda-apop")
BOB = ("bob", "bob-apop")


@pytest.fixture
def pop3(pop3_factory):
    return pop3_factory()


def login(c, who=BOB) -> bytes:
    return c.apop(*who)


def entries(path: Path):
    return split_mbox(path.read_bytes())


def expected_size(raw: bytes) -> int:
    return len(raw) + raw.count(b"\n")


def wire(raw: bytes) -> bytes:
    """What RETR must send for `raw` (one CRLF per line, dots doubled)."""
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out = []
    for line in lines:
        if line.endswith(b"\r"):
            line = line[:-1]
        out.append((b"." if line.startswith(b".") else b"") + line + b"\r\n")
    return b"".join(out) + b".\r\n"


# -- docs/spec/servers.md facts 1-5 ---------------------------------------------------------------
def test_servers_fact1_greeting(pop3):
    c = pop3.connect()
    assert re.fullmatch(rb"\+OK POP3 server ready <[0-9a-f]+\.[0-9a-f]+@[^>]+>\r\n", c.greeting)
    assert pop3.connect().greeting != c.greeting   # a new challenge per session


def test_servers_fact2_capa(pop3_factory):
    c = pop3_factory().connect()
    c.send(b"CAPA")
    assert c.multi() == b"+OK\r\nTOP\r\nPIPELINING\r\nUIDL\r\n.\r\n"     # no -t: no STLS
    c = pop3_factory(["-p"]).connect()
    c.send(b"CAPA")
    assert c.multi() == b"+OK\r\nTOP\r\nUSER\r\nPIPELINING\r\nUIDL\r\n.\r\n"


def test_servers_fact3_fact4_fact5(pop3):
    c = pop3.connect()
    assert c.cmd(b"STAT") == b"-ERR STAT requires authentication\r\n"
    assert c.cmd(b"stat") == b"-ERR stat requires authentication\r\n"
    assert c.cmd(b"FOO") == b"-ERR unknown command FOO\r\n"
    assert c.cmd(b"NOOP") == b"+OK\r\n"
    assert c.cmd(b"RSET") == b"+OK\r\n"
    assert c.cmd(b"QUIT") == b"+OK\r\n"
    assert c.closed()


# -- logins: docs/spec/servers.md facts 6-12 --------------------------------------------------------
def test_servers_fact6_pass_in_clear_disallowed(pop3):
    c = pop3.connect()
    assert c.cmd(b"USER bob") == b"+OK\r\n"
    assert c.cmd(b"PASS x") == b"-ERR password in the clear disallowed\r\n"


def test_servers_fact7_bad_mailbox_name_bell_continues(pop3):
    c = pop3.connect()
    assert c.cmd(b"USER ../etc") == b"-ERR bad mailbox name\r\n"
    assert c.cmd(b"NOOP") == b"+OK\r\n"


def test_servers_fact8_pass_without_user_bell(pop3_factory):
    """BL (our reference dialect): no phase error; the login just fails."""
    c = pop3_factory(["-p"]).connect()
    assert c.cmd(b"PASS x") == b"-ERR authentication failed\r\n"
    assert c.cmd(b"NOOP") == b"+OK\r\n"


def test_servers_fact9_delays_scaled(pop3_factory):
    c = pop3_factory(env={"POP3_DELAY_SCALE": "0.01"}).connect()
    for want in (0.1, 0.2):
        t = time.monotonic()
        assert c.cmd(b"APOP bob 0123456789abcdef0123456789abcdef") == b"-ERR authentication failed\r\n"
        assert time.monotonic() - t >= want


def test_servers_fact9_fact10_21st_failure_exits_and_guesser_logged(pop3_factory):
    srv = pop3_factory(env={"POP3_DELAY_SCALE": "0.00005"})
    c = srv.connect()
    bad = b"APOP bob 0123456789abcdef0123456789abcdef"
    for i in range(20):
        assert c.cmd(bad) == b"-ERR authentication failed\r\n", i
    last = c.cmd(bad)
    assert last.startswith(b"-ERR authentication failed: ") and last.endswith(b"; server exiting\r\n")
    assert c.closed()
    srv.wait_idle()
    log = srv.syslog()
    assert log.count("likely password guesser from 127.0.0.1") == 1


def test_servers_fact11_apop_login(pop3):
    c = pop3.connect()
    assert login(c) == b"+OK mailbox is /mail/box/bob/mbox\r\n"
    assert "pop3: user bob logged in" in pop3.syslog()


def test_servers_fact12_user_sub_mailbox(pop3_factory):
    srv = pop3_factory(["-p"])
    c = srv.connect()
    assert c.cmd(b"USER glenda/lists") == b"+OK\r\n"
    assert c.cmd(b"PASS glenda-apop") == b"+OK mailbox is /mail/box/glenda/lists/mbox\r\n"
    (digest, raw), = entries(srv.box("glenda", "lists/mbox"))
    # docs/spec/servers.md fact 13, singular
    assert c.cmd(b"LIST") == f"+OK +1 message ({expected_size(raw)} octets)\r\n".encode()
    assert c.multi() == f"1 {expected_size(raw)}\r\n.\r\n".encode()
    assert c.cmd(b"UIDL 1") == f"+OK 1 {digest}\r\n".encode()


def test_wrong_secret_and_unknown_user(pop3_factory):
    c = pop3_factory(["-p"]).connect()
    assert c.cmd(b"USER bob") == b"+OK\r\n"
    assert c.cmd(b"PASS bob-pw") == b"-ERR authentication failed\r\n"   # the login password is not it
    assert c.cmd(b"USER nobody") == b"+OK\r\n"
    assert c.cmd(b"PASS whatever") == b"-ERR authentication failed\r\n"
    assert c.cmd(b"USER bob") == b"+OK\r\n"
    assert c.cmd(b"PASS bob-apop") == b"+OK mailbox is /mail/box/bob/mbox\r\n"


# -- message commands: docs/spec/servers.md facts 13-20 ---------------------------------------------
def test_servers_fact13_fact14_list_and_sizes(pop3):
    msgs = entries(pop3.box("bob"))
    sizes = [expected_size(r) for _, r in msgs]
    c = pop3.connect()
    login(c)
    assert c.cmd(b"STAT") == f"+OK 3 {sum(sizes)}\r\n".encode()
    assert c.cmd(b"DELE 3") == b"+OK message 3 deleted\r\n"
    assert c.cmd(b"LIST") == f"+OK +2 messages ({sizes[0] + sizes[1]} octets)\r\n".encode()
    assert c.multi() == f"1 {sizes[0]}\r\n2 {sizes[1]}\r\n.\r\n".encode()
    assert c.cmd(b"STAT") == f"+OK 2 {sizes[0] + sizes[1]}\r\n".encode()
    # the size is what RETR sends before dot-stuffing and the final "."
    assert c.cmd(b"RETR 1") == b"+OK\r\n"
    body = c.multi()
    assert len(body) - len(b".\r\n") - body.count(b"\r\n..") == sizes[0]


def test_servers_fact15_uidl_stable_across_sessions(pop3):
    digests = [d for d, _ in entries(pop3.box("bob"))]
    want = "+OK\r\n" + "".join(f"{i} {d}\r\n" for i, d in enumerate(digests, 1)) + ".\r\n"
    for _ in range(2):
        c = pop3.connect()
        login(c)
        c.send(b"UIDL")
        assert c.multi() == want.encode()
        assert c.cmd(b"UIDL 2") == f"+OK 2 {digests[1]}\r\n".encode()
        c.cmd(b"QUIT")


def test_servers_fact16_dele_rset(pop3):
    c = pop3.connect()
    login(c)
    assert c.cmd(b"DELE 1") == b"+OK message 1 deleted\r\n"
    assert c.cmd(b"DELE 1") == b"-ERR no such message\r\n"
    assert c.cmd(b"RSET") == b"+OK\r\n"
    assert c.cmd(b"LIST 1").startswith(b"+OK 1 ")
    before = pop3.box("bob").read_bytes()
    assert c.cmd(b"QUIT") == b"+OK\r\n"
    assert c.closed()
    assert pop3.box("bob").read_bytes() == before


def test_servers_fact17_retr_every_message(pop3):
    """glenda's mbox has lines starting with '.', 8-bit and MIME mail."""
    msgs = entries(pop3.box("glenda"))
    c = pop3.connect()
    login(c, GLENDA)
    for i, (_, raw) in enumerate(msgs, 1):
        assert c.cmd(f"RETR {i}".encode()) == b"+OK\r\n"
        assert c.multi() == wire(raw), i


def test_servers_fact18_top(pop3):
    (_, raw), *_ = entries(pop3.box("bob"))
    header = raw.split(b"\n\n", 1)[0]
    c = pop3.connect()
    login(c)
    assert c.cmd(b"TOP 1 0") == b"+OK\r\n"
    assert c.multi() == header.replace(b"\n", b"\r\n") + b"\r\n\r\n.\r\n"
    assert c.cmd(b"TOP 1") == b"-ERR TOP requires a line count\r\n"
    assert c.cmd(b"TOP 1 -1") == b"-ERR bad args to TOP\r\n"
    assert c.cmd(b"TOP 1 1") == b"+OK\r\n"
    body1 = raw.split(b"\n\n", 1)[1].split(b"\n")[0]
    assert c.multi() == header.replace(b"\n", b"\r\n") + b"\r\n\r\n" + body1 + b"\r\n.\r\n"


def test_servers_fact19_empty_line_ends_session_no_deletions(pop3):
    before = pop3.box("bob").read_bytes()
    c = pop3.connect()
    login(c)
    assert c.cmd(b"DELE 1") == b"+OK message 1 deleted\r\n"
    c.send(b"\r\n")
    assert c.closed()
    pop3.wait_idle()
    assert pop3.box("bob").read_bytes() == before


def test_servers_fact20_quit_deletes_others_byte_identical(pop3):
    path = pop3.box("bob")
    text = path.read_bytes()
    msgs = entries(path)
    c = pop3.connect()
    login(c)
    assert c.cmd(b"DELE 2") == b"+OK message 2 deleted\r\n"
    assert c.cmd(b"QUIT") == b"+OK\r\n"
    assert c.closed()
    after = path.read_bytes()
    assert [d for d, _ in entries(path)] == [msgs[0][0], msgs[2][0]]
    # what is left is the file without message 2's entry, byte for byte
    second = text.index(b"\nFrom ") + 1
    third = text.index(b"\nFrom ", second) + 1
    assert after == text[:second] + text[third:]


def test_servers_fact20_sync_deletes_and_stays(pop3):
    path = pop3.box("bob")
    msgs = entries(path)
    c = pop3.connect()
    login(c)
    assert c.cmd(b"DELE 1") == b"+OK message 1 deleted\r\n"
    assert c.cmd(b"SYNC") == b"+OK\r\n"
    assert [d for d, _ in entries(path)] == [msgs[1][0], msgs[2][0]]
    assert c.cmd(b"NOOP") == b"+OK\r\n"
    assert c.cmd(b"RETR 2") == b"+OK\r\n"
    assert c.multi() == wire(msgs[1][1])
    assert c.cmd(b"DELE 3") == b"+OK message 3 deleted\r\n"
    assert c.cmd(b"QUIT") == b"+OK\r\n"
    assert [d for d, _ in entries(path)] == [msgs[1][0]]


# -- TLS: docs/spec/servers.md fact 21 ----------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    path = tmp_path_factory.mktemp("pop3tls") / "cert.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(path))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return str(path), ctx


def test_servers_fact21_stls_without_cert(pop3):
    c = pop3.connect()
    assert c.cmd(b"STLS") == b"-ERR don't have any tls credentials\r\n"


def test_servers_fact21_stls_then_pass_with_poplib(pop3_factory, tls_files):
    cert, ctx = tls_files
    srv = pop3_factory(["-t", cert])
    p = srv.poplib()
    assert p.capa() == {"TOP": [], "PIPELINING": [], "UIDL": [], "STLS": []}
    assert p.stls(context=ctx).startswith(b"+OK")
    assert "USER" in p.capa()
    with pytest.raises(poplib.error_proto, match="tls already started"):
        p._shortcmd("STLS")
    assert p.user("glenda") == b"+OK"
    assert p.pass_("glenda-apop") == b"+OK mailbox is /mail/box/glenda/mbox"
    assert p.stat()[0] == len(entries(srv.box("glenda")))
    p.quit()


def test_bad_certificate_file(pop3_factory, tmp_path):
    c = pop3_factory(["-t", str(tmp_path / "nothing.pem")]).connect()
    assert c.greeting.startswith(b"-ERR cannot read TLS certificate: ")
    assert c.closed()


def test_certificate_read_at_start_key_used_at_stls(pop3_factory, tls_files, tmp_path):
    """docs/spec/servers.md §2.1: -t names a PEM certificate, read before
    the greeting (unreadable: -ERR and exit); §2.9: the handshake after
    STLS's +OK uses it, and its failure ends the process.  A file holding the certificate without its
    key can be read, so the session starts; its handshake cannot succeed."""
    cert, ctx = tls_files
    text = open(cert).read()
    only = tmp_path / "cert-only.pem"
    only.write_text(text[text.index("-----BEGIN CERTIFICATE-----"):])
    nocert = tmp_path / "key-only.pem"
    nocert.write_text(text[:text.index("-----BEGIN CERTIFICATE-----")])
    c = pop3_factory(["-t", str(nocert)]).connect()
    assert c.greeting.startswith(b"-ERR cannot read TLS certificate: ")
    assert c.closed()
    c = pop3_factory(["-t", str(only)]).connect()
    assert c.greeting.startswith(b"+OK POP3 server ready <")
    assert c.cmd(b"STLS") == b"+OK\r\n"
    with pytest.raises((ssl.SSLError, OSError)):
        ctx.wrap_socket(c.sock, server_hostname="localhost")


def test_stls_over_pipes(pop3_factory, tls_files):
    """stdin/stdout as pipes, not a socket: TLS through ssl.MemoryBIO."""
    cert, ctx = tls_files
    srv = pop3_factory()
    p = subprocess.Popen([sys.executable, "-m", "upas.pop3", "-t", cert], env=srv.env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert p.stdout.readline().startswith(b"+OK POP3 server ready <")
        p.stdin.write(b"STLS\r\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"+OK\r\n"
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(inc, out, server_hostname="localhost")

        def pump(op):
            while True:
                try:
                    r = op()
                except ssl.SSLWantReadError:
                    p.stdin.write(out.read())
                    p.stdin.flush()
                    inc.write(os.read(p.stdout.fileno(), 65536))
                    continue
                p.stdin.write(out.read())
                p.stdin.flush()
                return r
        pump(tls.do_handshake)
        pump(lambda: tls.write(b"USER bob\r\nPASS bob-apop\r\nSTAT\r\nQUIT\r\n"))
        got = b""
        while got.count(b"\r\n") < 4:
            got += pump(lambda: tls.read(65536))
        n = len(entries(srv.box("bob")))
        lines = got.split(b"\r\n")
        assert lines[:2] == [b"+OK", b"+OK mailbox is /mail/box/bob/mbox"]
        assert lines[2].startswith(f"+OK {n} ".encode()) and lines[3] == b"+OK"
    finally:
        p.kill()
        p.wait()


# -- ratification: docs/spec/servers.md fact 22 ---------------------------------------------------------
def test_servers_fact22_ratify_creates_and_refreshes(pop3_factory):
    srv = pop3_factory(["-p"], remote=True)
    trusted = Path(srv.mailroot) / "ratify" / "trusted" / "127.0.0.1#32"
    assert not trusted.exists()
    c = srv.connect()
    assert login(c) == b"+OK mailbox is /mail/box/bob/mbox\r\n"
    assert trusted.exists()
    old = trusted.stat()
    os.utime(trusted, (old.st_atime - 1000, old.st_mtime - 1000))
    c = srv.connect()
    c.cmd(b"USER glenda")
    assert c.cmd(b"PASS glenda-apop") == b"+OK mailbox is /mail/box/glenda/mbox\r\n"
    assert trusted.stat().st_mtime > old.st_mtime - 500   # removed and created again


def test_failed_login_does_not_ratify(pop3_factory):
    srv = pop3_factory(remote=True)
    c = srv.connect()
    c.cmd(b"APOP bob 0123456789abcdef0123456789abcdef")
    assert not (Path(srv.mailroot) / "ratify" / "trusted" / "127.0.0.1#32").exists()


# -- poplib, -a, debug file, posted upasfs -------------------------------------
def test_poplib_apop_top_uidl_dele_rset(pop3):
    p = pop3.poplib()
    assert p.apop("bob", "bob-apop") == b"+OK mailbox is /mail/box/bob/mbox"
    msgs = entries(pop3.box("bob"))
    resp, lines, _ = p.uidl()
    assert [l.split()[1].decode() for l in lines] == [d for d, _ in msgs]
    resp, lines, _ = p.top(2, 0)
    assert b"" in lines and lines[-1] == b""
    p.dele(1)
    assert p.stat()[0] == 2
    p.rset()
    assert p.stat()[0] == 3
    resp, lines, octets = p.retr(3)
    assert b"\n".join(lines) + b"\n" == msgs[2][1]
    p.quit()


def test_pipelined_commands(pop3):
    c = pop3.connect()
    digest = hashlib.md5(c.chal.encode() + b"bob-apop").hexdigest()
    c.sock.sendall(f"APOP bob {digest}\r\nSTAT\r\nDELE 1\r\nLIST 1\r\nRSET\r\nUIDL 1\r\nQUIT\r\n".encode())
    d1 = entries(pop3.box("bob"))[0][0]
    assert c.line() == b"+OK mailbox is /mail/box/bob/mbox\r\n"
    assert c.line().startswith(b"+OK 3 ")
    assert c.line() == b"+OK message 1 deleted\r\n"
    assert c.line() == b"-ERR no such message\r\n"
    assert c.line() == b"+OK\r\n"
    assert c.line() == f"+OK 1 {d1}\r\n".encode()
    assert c.line() == b"+OK\r\n"
    assert c.closed()


def test_preauth_a_flag(pop3_factory):
    srv = pop3_factory(["-a", "/mail/box/glenda/mbox"], remote=True)
    c = srv.connect()
    assert c.greeting.startswith(b"+OK POP3 server ready <")
    n = len(entries(srv.box("glenda")))
    assert c.cmd(b"STAT").startswith(f"+OK {n} ".encode())
    assert c.cmd(b"USER bob") == b"-ERR already authenticated\r\n"
    assert not (Path(srv.mailroot) / "ratify" / "trusted" / "127.0.0.1#32").exists()


def test_preauth_missing_mailbox(pop3_factory):
    c = pop3_factory(["-a", "/mail/box/glenda/nonesuch"]).connect()
    assert c.greeting.startswith(b"-ERR ")
    assert c.closed()


def test_debug_file_without_password(pop3_factory, tmp_path):
    dbg = tmp_path / "pop3.debug"
    srv = pop3_factory(["-p", "-d", str(dbg)])
    c = srv.connect()
    c.cmd(b"USER bob")
    assert c.cmd(b"PASS bob-apop") == b"+OK mailbox is /mail/box/bob/mbox\r\n"
    c.cmd(b"PASS another-secret")
    c.cmd(b"QUIT")
    assert c.closed()
    srv.wait_idle()
    text = dbg.read_bytes()
    assert b"USER bob\n" in text and b"-> +OK mailbox is /mail/box/bob/mbox\n" in text
    assert b"bob-apop" not in text and b"another-secret" not in text
    assert oct(dbg.stat().st_mode & 0o777) in ("0o666", "0o644", "0o664", "0o646")


def test_posted_upasfs(pop3_factory):
    """`$upasfs` names a running upasfs: the session writes `open BOX mbox`."""
    srv = pop3_factory(posted_upasfs="glenda")
    path = srv.box("glenda")
    msgs = entries(path)
    c = srv.connect()
    assert login(c, GLENDA) == b"+OK mailbox is /mail/box/glenda/mbox\r\n"
    assert c.cmd(b"UIDL 1") == f"+OK 1 {msgs[0][0]}\r\n".encode()
    assert c.cmd(b"DELE 1") == b"+OK message 1 deleted\r\n"
    assert c.cmd(b"QUIT") == b"+OK\r\n"
    assert c.closed()
    assert [d for d, _ in entries(path)] == [d for d, _ in msgs[1:]]


# -- bad input ---------------------------------------------------------------------
def test_overlong_line_discarded_whole(pop3):
    c = pop3.connect()
    c.send(b"NOOP " + b"x" * 5000 + b" QUIT")
    assert c.line() == b"-ERR line too long\r\n"
    assert c.cmd(b"NOOP") == b"+OK\r\n"   # the tail was not run as a command


def test_nul_and_junk_numbers(pop3):
    c = pop3.connect()
    assert c.cmd(b"NO\0OP") == b"-ERR unknown command NO\0OP\r\n"
    assert c.cmd(b"USER bo\0b") == b"-ERR bad mailbox name\r\n"
    login(c)
    for arg in (b"abc", b"0", b"-5", b"4", b"99999999999999999999999999999", b"\0"):
        assert c.cmd(b"RETR " + arg) == b"-ERR no such message\r\n", arg
        assert c.cmd(b"DELE " + arg) == b"-ERR no such message\r\n", arg
    assert c.cmd(b"TOP 1 abc") == b"+OK\r\n"    # atoi: junk line count reads as 0
    c.multi()


def test_commands_before_greeting_is_read(pop3):
    s = socket.create_connection(pop3.addr, timeout=20)
    s.sendall(b"NOOP\r\nFOO\r\nQUIT\r\n")
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK POP3 server ready <")
    assert f.readline() == b"+OK\r\n"
    assert f.readline() == b"-ERR unknown command FOO\r\n"
    assert f.readline() == b"+OK\r\n"
    assert f.read() == b""


def test_client_vanishes_between_dele_and_quit(pop3):
    before = pop3.box("bob").read_bytes()
    c = pop3.connect()
    login(c)
    assert c.cmd(b"DELE 1") == b"+OK message 1 deleted\r\n"
    c.close()
    pop3.wait_idle()
    assert pop3.box("bob").read_bytes() == before


def big_message(n_lines: int) -> bytes:
    line = b"." + b"x" * 70 + b"\n"
    return (b"From big@example.org Thu Nov 26 10:00:00 GMT 2026\nSubject: big\n\n"
            + line * n_lines + b"\n")


def test_client_vanishes_mid_retr(pop3):
    path = pop3.box("bob")
    path.write_bytes(path.read_bytes() + big_message(100_000))   # ~7 MB
    before = path.read_bytes()
    c = pop3.connect()
    login(c)
    assert c.cmd(b"DELE 1") == b"+OK message 1 deleted\r\n"
    c.send(b"RETR 4")
    assert c.line() == b"+OK\r\n"
    c.sock.recv(1000)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    c.close()
    pop3.wait_idle()
    assert all(p.poll() is not None for p in pop3.procs)
    assert path.read_bytes() == before


def test_mailbox_changes_during_session(pop3):
    """Mail delivered during a session is invisible to it (docs/spec/servers.md §2.7, step 7),
    and its QUIT deletes only what it marked: the new mail survives."""
    path = pop3.box("bob")
    msgs = entries(path)
    c = pop3.connect()
    login(c)
    new = b"From late@example.org Thu Nov 26 12:00:00 GMT 2026\nSubject: late\n\nhi\n\n"
    with open(path, "ab") as f:
        f.write(new)
    assert c.cmd(b"STAT").startswith(b"+OK 3 ")
    assert c.cmd(b"DELE 1") == b"+OK message 1 deleted\r\n"
    assert c.cmd(b"QUIT") == b"+OK\r\n"
    assert c.closed()
    left = entries(path)
    assert [d for d, _ in left[:2]] == [msgs[1][0], msgs[2][0]]
    assert left[-1][1] == b"Subject: late\n\nhi\n"


def test_two_sessions_delete_concurrently(pop3):
    """Another session removes a message first: ours still leaves a sound file."""
    path = pop3.box("bob")
    msgs = entries(path)
    a, b = pop3.connect(), pop3.connect()
    login(a)
    login(b)
    assert b.cmd(b"DELE 1") == b"+OK message 1 deleted\r\n"
    assert b.cmd(b"QUIT") == b"+OK\r\n"
    assert b.closed()
    assert a.cmd(b"DELE 3") == b"+OK message 3 deleted\r\n"
    assert a.cmd(b"QUIT") == b"+OK\r\n"
    assert a.closed()
    assert [d for d, _ in entries(path)] == [msgs[1][0]]


def test_large_message_streams_with_flat_memory(pop3):
    """A 50 MB message: RETR is exact and the pop3 process stays small."""
    path = pop3.box("glenda", "big/mbox")
    path.parent.mkdir()
    path.write_bytes(big_message(700_000))          # ~50 MB
    (_, raw), = entries(path)
    c = pop3.connect()
    assert c.apop("glenda/big", "glenda-apop") == b"+OK mailbox is /mail/box/glenda/big/mbox\r\n"
    c.send(b"RETR 1")
    assert c.line() == b"+OK\r\n"
    h = hashlib.sha1()
    total = 0
    while True:
        line = c.line()
        if line == b".\r\n":
            break
        h.update(line)
        total += len(line)
    assert h.hexdigest() == hashlib.sha1(wire(raw)[:-3]).hexdigest()
    pid = [p for p in pop3.procs if p.poll() is None][-1].pid
    hwm_kb = int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))
    assert hwm_kb < 60 * 1024, f"pop3 peak RSS {hwm_kb} kB for a {total >> 20} MB message"
    c.cmd(b"QUIT")


def test_posted_upasfs_inbox_and_sub_mailbox_side_by_side(pop3_factory):
    srv = pop3_factory(["-p"], posted_upasfs="glenda")
    a = srv.connect()
    assert login(a, GLENDA) == b"+OK mailbox is /mail/box/glenda/mbox\r\n"
    b = srv.connect()
    b.cmd(b"USER glenda/lists")
    assert b.cmd(b"PASS glenda-apop") == b"+OK mailbox is /mail/box/glenda/lists/mbox\r\n"
    assert b.cmd(b"STAT").startswith(b"+OK 1 ")
    n = len(entries(srv.box("glenda")))
    assert a.cmd(b"STAT").startswith(f"+OK {n} ".encode())
    b.cmd(b"QUIT")
    c = srv.connect()
    assert login(c, GLENDA) == b"+OK mailbox is /mail/box/glenda/mbox\r\n"


def test_posted_upasfs_mailbox_name_with_a_space(pop3_factory):
    """`USER glenda/old mail`: the path and name are rc-quoted in upasfs's
    ctl, so the space does not split the `open` command."""
    srv = pop3_factory(["-p"], posted_upasfs="glenda")
    sub = srv.box("glenda", "old mail")
    sub.mkdir()
    (sub / "mbox").write_bytes((srv.box("glenda", "lists") / "mbox").read_bytes())
    c = srv.connect()
    c.cmd(b"USER glenda/old mail")
    assert c.cmd(b"PASS glenda-apop") == b"+OK mailbox is /mail/box/glenda/old mail/mbox\r\n"
    assert c.cmd(b"STAT").startswith(b"+OK 1 ")
    assert c.cmd(b"RETR 1") == b"+OK\r\n"
    assert b"Subject: [9fans] acme tips\r\n" in c.multi()


# -- RFC 2449/5034 additions, only with -e -------------------------------------
def test_in_use_response_code(pop3_factory):
    """Another client holds the name `mbox` for another file: [IN-USE]."""
    from upas import ninep
    srv = pop3_factory(["-e"], posted_upasfs="glenda")
    with ninep.Client.dial(srv.env["upasfs"], uname="glenda") as fs:
        fs.write("ctl", b"open /mail/box/glenda/lists/mbox mbox")
    c = srv.connect()
    assert login(c, GLENDA) == b"-ERR [IN-USE] mbox name in use\r\n"
    assert c.closed()


def test_auth_cram_md5_through_factotum(pop3_factory):
    import base64
    import hmac
    c = pop3_factory(["-e"]).connect()
    c.send(b"CAPA")
    assert b"SASL CRAM-MD5\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n" in c.multi()
    sent = c.cmd(b"AUTH CRAM-MD5")
    assert sent.startswith(b"+ ")
    chal = base64.b64decode(sent[2:].strip())
    assert re.fullmatch(rb"<[0-9a-f]+\.[0-9a-f]+@[^>]+>", chal)
    bad = hmac.new(b"wrong", chal, "md5").hexdigest()
    assert c.cmd(base64.b64encode(b"bob " + bad.encode())) == b"-ERR [AUTH] authentication failed\r\n"
    sent = c.cmd(b"AUTH CRAM-MD5")
    chal = base64.b64decode(sent[2:].strip())
    good = hmac.new(b"bob-apop", chal, "md5").hexdigest()
    assert c.cmd(base64.b64encode(b"bob " + good.encode())) == b"+OK mailbox is /mail/box/bob/mbox\r\n"
    assert c.cmd(b"STAT").startswith(b"+OK 3 ")


def test_auth_plain_under_p(pop3_factory):
    import base64
    c = pop3_factory(["-e", "-p"]).connect()
    assert c.cmd(b"AUTH PLAIN " + base64.b64encode(b"\0glenda\0glenda-apop")) == (
        b"+OK mailbox is /mail/box/glenda/mbox\r\n")


def test_symlink_out_of_the_users_mail_dir_is_refused(pop3_factory):
    srv = pop3_factory(["-p"])
    os.symlink("../glenda", srv.box("bob", "evil"))
    c = srv.connect()
    c.cmd(b"USER bob/evil")
    assert c.cmd(b"PASS bob-apop") == b"-ERR can't initialize upas/fs: permission denied\r\n"
    assert c.closed()


def test_missing_sub_mailbox(pop3_factory):
    c = pop3_factory(["-p"]).connect()
    c.cmd(b"USER bob/nonesuch")
    reply = c.cmd(b"PASS bob-apop")
    assert reply.startswith(b"-ERR ") and reply.endswith(b"\r\n")
    assert c.closed()


def test_plaintext_pipelined_after_stls_is_dropped(pop3_factory, tls_files):
    """Commands sent in the clear behind STLS must not run inside TLS."""
    cert, ctx = tls_files
    c = pop3_factory(["-t", cert]).connect()
    c.sock.sendall(b"STLS\r\nFOO\r\n")
    assert c.line() == b"+OK\r\n"
    tls = ctx.wrap_socket(c.sock, server_hostname="localhost")
    f = tls.makefile("rb")
    tls.sendall(b"NOOP\r\n")
    assert f.readline() == b"+OK\r\n"
    tls.sendall(b"STLS\r\n")
    assert f.readline() == b"-ERR tls already started\r\n"


def test_poplib_user_pass_under_p(pop3_factory):
    srv = pop3_factory(["-p"])
    p = srv.poplib()
    assert "USER" in p.capa()
    assert p.user("bob") == b"+OK"
    assert p.pass_("bob-apop") == b"+OK mailbox is /mail/box/bob/mbox"
    msgs = entries(srv.box("bob"))
    count, octets = p.stat()
    assert (count, octets) == (len(msgs), sum(expected_size(r) for _, r in msgs))
    with pytest.raises(poplib.error_proto, match="already authenticated"):
        p.user("glenda")
    p.quit()


def test_retr_in_order_and_out_of_order_over_many_messages(pop3):
    """RETR reads the messages after an in-order RETR in the same round
    trip: every reply stays byte for byte what the message alone gives,
    through a large message, a DELE, a TOP and jumps back and forth."""
    path = pop3.box("glenda", "many/mbox")
    path.parent.mkdir()
    msgs = [b"From a%d@example.org Thu Nov 26 10:00:00 GMT 2026\nSubject: m%d\n\n"
            b".dot %d\n\xff body\r\nend" % (i, i, i) + b"\n" * (i % 2) + b"\n" for i in range(40)]
    msgs[7] = big_message(2_000)                     # ~140 KB: streamed
    path.write_bytes(b"".join(msgs))
    raws = [r for _, r in entries(path)]
    assert len(raws) == 40
    c = pop3.connect()
    assert c.apop("glenda/many", "glenda-apop").startswith(b"+OK")
    assert c.cmd(b"DELE 12") == b"+OK message 12 deleted\r\n"
    order = [*range(1, 12), 12, 13, 3, 4, *range(14, 31), 2, 31, 32]
    for i in order:
        if i == 12:
            assert c.cmd(b"RETR 12") == b"-ERR no such message\r\n"
            continue
        assert c.cmd(f"RETR {i}".encode()) == b"+OK\r\n", i
        assert c.multi() == wire(raws[i - 1]), i
    assert c.cmd(b"TOP 33 0") == b"+OK\r\n"
    assert c.multi() == raws[32].split(b"\n\n", 1)[0].replace(b"\n", b"\r\n") + b"\r\n\r\n.\r\n"
    for i in range(34, 41):
        assert c.cmd(f"RETR {i}".encode()) == b"+OK\r\n", i
        assert c.multi() == wire(raws[i - 1]), i
    assert c.cmd(b"QUIT") == b"+OK\r\n"


@pytest.mark.parametrize("ttl", ["0.2", "60"])
def test_a_message_read_ahead_is_not_kept_past_its_time(pop3_factory, ttl):
    """Another session deletes message 3 after ours read it ahead (RETR 1,
    RETR 2 in order): the copy serves RETR 3 only within POP3_READAHEAD_TTL
    (as if RETR 3 had come first); after it, RETR 3 reads upasfs again and
    finds the message gone, as without read-ahead."""
    srv = pop3_factory(["-p"], env={"POP3_READAHEAD_TTL": ttl})
    raws = [r for _, r in entries(srv.box("bob"))]
    assert len(raws) == 3
    a = srv.connect()
    login(a)
    for i in (1, 2):
        assert a.cmd(f"RETR {i}".encode()) == b"+OK\r\n"
        assert a.multi() == wire(raws[i - 1])
    b = srv.connect()
    login(b)
    assert b.cmd(b"DELE 3") == b"+OK message 3 deleted\r\n"
    assert b.cmd(b"QUIT") == b"+OK\r\n"
    assert b.closed()
    time.sleep(0.4)
    if ttl == "60":
        assert a.cmd(b"RETR 3") == b"+OK\r\n"
        assert a.multi() == wire(raws[2])
    else:
        assert a.cmd(b"RETR 3") == b"-ERR message disappeared\r\n"
    assert a.cmd(b"QUIT") == b"+OK\r\n"


def test_posted_upasfs_without_the_mailbox_says_where(pop3_factory):
    """A running upas/fs opens the mailbox on its own host (plan9port's at
    /mail/box/USER whatever $MAILROOT says here): when it is not there
    the error names the path and where it must be, not the bare system
    text (issue 14)."""
    srv = pop3_factory(posted_upasfs="glenda")
    srv.box("glenda").unlink()
    c = srv.connect()
    reply = login(c, GLENDA)
    assert reply.startswith(b"-ERR upas/fs cannot open /mail/box/glenda/mbox: "), reply
    assert reply.endswith(b" (it must exist on the host upas/fs runs on)\r\n"), reply
    assert c.closed()


TRICKY = [b"Subject: dots\n\n.\n..\n.hidden\nend\n", b"Subject: crlf\r\n\r\nline\r\n.dot\r\n",
          b"Subject: cr alone\n\nbare\rcr\n\r\n", b"Subject: first line a dot\n\n.",
          b"Subject: nul\n\na\0b\n>From quoted\n", b"Subject: empty body\n\n"]


def test_an_in_order_download_is_sent_as_rfc1939_says(pop3):
    """RETR of every message in order (read ahead, and each next message
    turned into its multi-line data while the client reads the last:
    Session.idle), then out of order and again: every reply is the
    message's lines each ended by CRLF, leading dots doubled, the "." line
    at the end (RFC 1939 3), whatever path made it."""
    path = pop3.box("bob")
    path.write_bytes(b"".join(b"From bob Thu Nov 26 12:00:00 EST 2026\n" + t + b"\n"
                              for t in TRICKY * 4))
    raws = [r for _, r in entries(path)]
    assert len(raws) == 4 * len(TRICKY)
    c = pop3.connect()
    login(c)
    for i in [*range(1, len(raws) + 1), 5, 3, 4, 4, len(raws)]:
        assert c.cmd(f"RETR {i}".encode()) == b"+OK\r\n"
        assert c.multi() == wire(raws[i - 1]), i
    assert c.cmd(b"QUIT") == b"+OK\r\n"
