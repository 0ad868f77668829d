"""The launcher with the real servers, as `make run` starts them
(tests/fixtures/host.py): APOP over POP3 with -r ratification, USER/PASS
over implicit TLS (995), IMAP LOGIN over implicit TLS (993)."""
import hashlib
import imaplib
import poplib
import re
import socket
import ssl
import time

import pytest

from upas.ninep.client import Client

pytestmark = pytest.mark.timeout(90)


def tls_context(host):
    ctx = ssl.create_default_context(cafile=str(host.cafile))
    ctx.check_hostname = False        # the certificate names localhost and 127.0.0.1
    return ctx


def count_messages(mbox):
    return sum(1 for line in mbox.read_bytes().split(b"\n") if line.startswith(b"From "))


def wait_for(pred, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_pop3_apop_through_launcher_ratifies_peer(mail_host):
    host, port = mail_host.addrs["pop3"]
    p = poplib.POP3(host, port, timeout=20)
    chal = re.search(rb"<[^>]+>", p.getwelcome()).group(0)
    digest = hashlib.md5(chal + b"glenda-apop").hexdigest()
    assert p._shortcmd(f"APOP glenda {digest}").startswith(b"+OK")
    n = count_messages(mail_host.mailroot / "box" / "glenda" / "mbox")
    assert p.stat()[0] == n
    p.quit()
    # -r 127.0.0.1!port from the launcher: pop3 created trusted/127.0.0.1#32
    with ratfs_client(mail_host, "glenda") as c:
        st = c.stat("trusted/127.0.0.1")
        assert (st.name, st.uid, st.mode & 0o777) == ("127.0.0.1#32", "glenda", 0o444)
    log = mail_host.logdir / "listen.log"
    assert wait_for(lambda: re.search(r"^listen: pop3 127\.0\.0\.1!\d+ pid \d+ exit 0 ",
                                      log.read_text(), re.M))


def test_pop3s_user_pass_over_tls(mail_host):
    host, port = mail_host.addrs["pop3s"]
    p = poplib.POP3_SSL(host, port, context=tls_context(mail_host), timeout=20)
    p.user("bob")
    assert p.pass_("bob-apop").startswith(b"+OK")
    assert p.stat()[0] == count_messages(mail_host.mailroot / "box" / "bob" / "mbox")
    p.quit()


def test_pop3_plain_refuses_user_pass(mail_host):
    host, port = mail_host.addrs["pop3"]
    p = poplib.POP3(host, port, timeout=20)
    with pytest.raises(poplib.error_proto):
        p.user("bob")
        p.pass_("bob-apop")
    p.close()


def ratfs_client(host, uname):
    return Client.dial(f"unix!{host.env['NAMESPACE']}/ratify", uname=uname)


def test_imaps_login_over_tls_ratifies_peer(mail_host):
    with ratfs_client(mail_host, "glenda") as c:
        while True:                       # clear what earlier logins left
            try:
                c.remove("trusted/127.0.0.1#32")
            except Exception:
                break
        assert not any(e.name == "127.0.0.1#32" for e in c.readdir("trusted"))
    host, port = mail_host.addrs["imaps"]
    m = imaplib.IMAP4_SSL(host, port, ssl_context=tls_context(mail_host), timeout=20)
    assert m.login("glenda", "glenda-apop")[0] == "OK"
    with ratfs_client(mail_host, "glenda") as c:
        st = c.stat("trusted/127.0.0.1")
        assert (st.name, st.uid) == ("127.0.0.1#32", "glenda")
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK"
    assert int(data[0]) == count_messages(mail_host.mailroot / "box" / "glenda" / "mbox")
    assert m.logout()[0] == "BYE"


def test_sigterm_mid_session_loses_no_mail_and_says_goodbye(tmp_path):
    """DELE without QUIT, then the launcher is told to stop: the session is
    ended after the grace period with `-ERR` (issue 19: it was EOF), and
    the mailbox keeps every message (docs/decisions.md); IMAP sessions, in
    IDLE, selected, or over the launcher's TLS, get `* BYE` (RFC 3501
    7.1.5: the server is closing the connection)."""
    from tests.fixtures.host import start_host
    host = start_host(tmp_path / "run", extra_env={"LISTEN_GRACE": "0.5"})
    try:
        mbox = host.mailroot / "box" / "bob" / "mbox"
        before = mbox.read_bytes()
        h, port = host.addrs["pop3"]
        p = poplib.POP3(h, port, timeout=20)
        chal = re.search(rb"<[^>]+>", p.getwelcome()).group(0)
        p._shortcmd("APOP bob " + hashlib.md5(chal + b"bob-apop").hexdigest())
        assert p.dele(1).startswith(b"+OK")
        idle = imaplib.IMAP4(*host.addrs["imap4d"], timeout=20)
        idle.starttls(ssl.create_default_context(cafile=str(host.cafile)))
        idle.login("glenda", "glenda-apop")
        idle.select("INBOX")
        idle.send(b"i1 IDLE\r\n")
        assert idle.readline().startswith(b"+ ")
        ctx = ssl.create_default_context(cafile=str(host.cafile))
        ctx.check_hostname = False
        tls = imaplib.IMAP4_SSL(*host.addrs["imaps"], ssl_context=ctx, timeout=20)
        tls.login("bob", "bob-apop")
        tls.select("INBOX")
        listen = dict(host.procs)["listen"]
        listen.terminate()
        assert listen.wait(timeout=20) == 0
        assert p.file.readline() == b"-ERR server shutting down\r\n"
        assert idle.readline() == b"* BYE server shutting down\r\n"
        assert tls.readline() == b"* BYE server shutting down\r\n"
        assert mbox.read_bytes() == before
        log = (host.logdir / "listen.log").read_text()
        assert re.search(r"^listen: pop3 127\.0\.0\.1!\d+ pid \d+ exit 0", log, re.M)
    finally:
        host.stop()


def test_limit_answers_in_the_protocol(mail_host, launcher):
    env = dict(mail_host.env, LISTEN_GRACE="1")
    la = launcher(["-M", "1", "-l", "pop3=tcp!127.0.0.1!0", "-l", "imap4d=tcp!127.0.0.1!0",
                   "pop3", "imap4d"], env)
    held = []
    for name, busy in (("pop3", b"-ERR too many connections\r\n"),
                       ("imap4d", b"* BYE too many connections\r\n")):
        s1 = socket.create_connection(("127.0.0.1", la.port(name)), timeout=20)
        f1 = s1.makefile("rb")
        assert f1.readline()[:1] in (b"+", b"*")       # a real greeting
        held.append((s1, f1))
        s2 = socket.create_connection(("127.0.0.1", la.port(name)), timeout=20)
        with s2, s2.makefile("rb") as f2:
            assert f2.read() == busy
    for s, f in held:
        f.close()
        s.close()
