"""imap4d's session without a socket: it is fed the client's bytes in any
pieces and hands back what to send and what to ask of the transport
(upas/transport/events.py), as pop3's protocol does.  Reply texts are
Plan 9's (docs/spec/servers.md §3) where the other tests check them over
a socket; here the point is that the session never reads for itself."""
from __future__ import annotations

from tests.fixtures.imap import without_capability_code as nocap

import pytest

from upas import ns as nsmod
from upas.imap4d.session import Options, Session
from upas.transport.events import Sleep, StartTLS


class Client:
    """A session and everything it emitted, bytes joined into lines."""

    def __init__(self, tmp_path, **opts):
        self.events: list = []
        self.tmp = tmp_path

        def namespace(user: str) -> nsmod.Namespace:
            (tmp_path / user).mkdir(exist_ok=True)
            ns = nsmod.Namespace(user)
            ns.bind_dir(f"/mail/box/{user}", str(tmp_path / user))
            return ns
        self.s = Session(Options(servername="imap.test", **opts), namespace, self.events.append)
        self.s.start()

    def take(self) -> list:
        """What was emitted since the last take: lines, and the other events."""
        out = []
        for ev in self.events:
            if isinstance(ev, bytes):
                out += [x + b"\r\n" for x in ev.split(b"\r\n")[:-1]]
            else:
                out.append(ev)
        self.events.clear()
        return out

    def feed(self, data: bytes) -> int:
        return self.s.feed(data)


def test_commands_arrive_in_any_pieces(tmp_path):
    c = Client(tmp_path)
    assert [nocap(x) for x in c.take()] == [b"* OK imap.test IMAP4rev1 server ready\r\n"]
    assert c.feed(b"a NO") == 0 and c.take() == []
    assert c.feed(b"OP\r\nb NOOP\r\nc NO") == 2
    assert c.take() == [b"a OK NOOP completed\r\n", b"b OK NOOP completed\r\n"]
    assert c.feed(b"OP\r\n") == 1


def test_starttls_is_a_request_and_drops_what_came_after_it(tmp_path):
    c = Client(tmp_path, certfile="cert.pem")
    c.take()
    # RFC 3501 6.2.1: a command pipelined in the clear must not run over TLS
    c.feed(b"b STARTTLS\r\nc NOOP\r\n")
    assert c.take() == [b"b OK STARTTLS begin TLS negotiation now\r\n", StartTLS()]
    c.s.tls_started()
    c.feed(b"d CAPABILITY\r\n")
    caps, ok = c.take()
    assert b"STARTTLS" not in caps.split() and ok == b"d OK CAPABILITY\r\n"
    c.feed(b"e STARTTLS\r\n")
    assert c.take() == [b"e BAD STARTTLS tls already started\r\n"]


def test_authenticate_waits_for_its_line(tmp_path):
    c = Client(tmp_path, plaintext=True)
    c.take()
    assert c.feed(b"a AUTHENTICATE PLAIN\r\n") == 0       # not done: it waits
    assert c.take() == [b"+ \r\n"]
    assert c.feed(b"*") == 0 and c.take() == []
    assert c.feed(b"\r\nb NOOP\r\n") == 2
    assert c.take() == [b"a NO AUTHENTICATE failed client cancelled authentication\r\n",
                        b"b OK NOOP completed\r\n"]


def test_end_of_input_while_authenticate_waits(tmp_path):
    c = Client(tmp_path, plaintext=True)
    c.take()
    c.feed(b"a AUTHENTICATE PLAIN\r\n")
    c.take()
    c.s.end_of_input()
    assert c.take() == [b"* BYE end of input\r\n"] and c.s.done


def test_idle_waits_for_done_across_feeds(tmp_path):
    c = Client(tmp_path, preauth=True, user="glenda")
    assert [nocap(x) for x in c.take()] == [b"* PREAUTH imap.test IMAP4rev1 server ready user glenda authenticated\r\n"]
    assert c.feed(b"i IDLE\r\n") == 0
    assert c.take() == [b"+ idling, waiting for done\r\n"]
    assert not c.s.polling                  # nothing selected: nothing to poll
    assert c.feed(b"DO") == 0
    assert c.feed(b"NE\r\n") == 1
    assert c.take() == [b"i OK IDLE terminated\r\n"]
    c.feed(b"j IDLE\r\nnot done\r\n")
    assert c.take() == [b"+ idling, waiting for done\r\n", b"j BAD IDLE expected DONE\r\n"]


def test_failed_login_sleep_comes_before_the_reply(tmp_path, monkeypatch):
    """Plan 9's per-connection delay: the session asks the driver to wait,
    in order with its output, and never sleeps itself."""
    monkeypatch.setenv("factotum", f"unix!{tmp_path}/no-factotum")
    monkeypatch.setenv("IMAP4D_DELAY_SCALE", "0.5")
    c = Client(tmp_path, plaintext=True)
    c.take()
    c.feed(b"a LOGIN glenda secret\r\n")
    out = c.take()
    assert isinstance(out[0], Sleep) and out[0].seconds > 0
    assert out[1:] == [b"a NO LOGIN failed check\r\n"]


@pytest.mark.parametrize("line, reply", [
    (b"(a NOOP", b"* BAD empty command line: bad syntax\r\n"),
    (b"a  NOOP", b"a BAD no command: bad syntax\r\n"),
    (b"a UID", b"a BAD UID illegal command\r\n"),
])
def test_head_errors_come_from_the_parser(tmp_path, line, reply):
    c = Client(tmp_path)
    c.take()
    c.feed(line + b"\r\n")
    assert c.take() == [reply]
