"""Issue 13, POP3: STLS is listed in CAPA only when it can succeed (RFC
2595 4: "STLS" names a command the server accepts; docs/decisions.md), and a
command given more arguments than RFC 1939 lets it take answers -ERR and
does nothing.  Real pop3 sessions over real sockets (the acceptor and the
launcher), the real auth stack and upasfs; poplib as the client."""
from __future__ import annotations

import poplib

import pytest

from tests.test_listen_servers import tls_context
from tests.test_pop3_server import BOB, entries, login, pop3, tls_files  # noqa: F401 -- fixtures


def capa_names(p: poplib.POP3) -> set[str]:
    return set(p.capa())


# ---------------------------------------------------------------- STLS in CAPA

def test_stls_listed_only_while_it_can_succeed(pop3_factory, tls_files):
    cert, ctx = tls_files
    p = pop3_factory().poplib()                 # no certificate: STLS would fail
    assert "STLS" not in capa_names(p)
    assert p._shortcmd("NOOP").startswith(b"+OK")
    with pytest.raises(poplib.error_proto, match="tls credentials"):
        p._shortcmd("STLS")
    p.quit()
    p = pop3_factory(["-t", cert]).poplib()     # a certificate, plain text: listed
    assert "STLS" in capa_names(p)
    p.stls(context=ctx)
    assert "STLS" not in capa_names(p)          # TLS active: listed no more
    p.quit()


def test_no_stls_on_the_launchers_implicit_tls_port(mail_host):
    host, port = mail_host.addrs["pop3s"]
    p = poplib.POP3_SSL(host, port, context=tls_context(mail_host), timeout=20)
    assert "STLS" not in capa_names(p)
    p.quit()
    host, port = mail_host.addrs["pop3"]        # port 110 has -t: STLS works there
    p = poplib.POP3(host, port, timeout=20)
    assert "STLS" in capa_names(p)
    p.stls(context=tls_context(mail_host))
    assert "STLS" not in capa_names(p)
    p.quit()


# ---------------------------------------------------------------- arity

# RFC 1939 (CAPA: RFC 2449, STLS: RFC 2595; SYNC is Plan 9's, no argument):
# each command with one argument more than it takes
TOO_MANY = [b"STAT x", b"LIST 1 2", b"RETR 1 2", b"DELE 1 2", b"NOOP x", b"RSET x",
            b"TOP 1 2 3", b"UIDL 1 2", b"CAPA x", b"SYNC x", b"QUIT now"]


def test_extra_arguments_answer_err(pop3):
    before = entries(pop3.box("bob"))
    for line in TOO_MANY:
        c = pop3.connect()
        assert login(c).startswith(b"+OK")
        c.cmd(b"DELE 2")                        # state a wrong command could change
        stat = c.cmd(b"STAT")
        reply = c.cmd(line)
        assert reply.startswith(b"-ERR "), (line, reply)
        # nothing done: the session is alive, the same messages are marked
        assert c.cmd(b"NOOP") == b"+OK\r\n", line
        assert c.cmd(b"STAT") == stat, line
        assert c.cmd(b"RETR 2").startswith(b"-ERR"), line   # no RSET took place
        assert c.cmd(b"RSET") == b"+OK\r\n"
        assert c.cmd(b"QUIT").startswith(b"+OK")
        c.close()
    assert entries(pop3.box("bob")) == before


def test_dele_with_two_numbers_deletes_nothing(pop3):
    before = entries(pop3.box("bob"))
    p = pop3.poplib()
    p.apop(*BOB)
    with pytest.raises(poplib.error_proto):
        p._shortcmd("DELE 1 2")
    with pytest.raises(poplib.error_proto):
        p._shortcmd("APOP bob x y")             # APOP name digest: two arguments
    p.quit()
    assert entries(pop3.box("bob")) == before


def test_arguments_that_are_allowed_still_work(pop3):
    c = pop3.connect()
    assert login(c).startswith(b"+OK")
    assert c.cmd(b"LIST 1").startswith(b"+OK 1 ")
    assert c.cmd(b"UIDL 1").startswith(b"+OK 1 ")
    assert c.cmd(b"STAT  ").startswith(b"+OK ")   # trailing blanks are no argument
    c.send(b"TOP 1 0")
    assert c.multi().startswith(b"+OK\r\n")
