"""The sans-I/O POP3 core, driven without a socket (docs/spec/servers.md §2).

The session's collaborators here are small in-memory stand-ins with honest
behaviour (an mbox split by the upas/fs digest rule, APOP checked with MD5);
the same replies are checked end to end against the real upasfs and factotum
in test_pop3_server.py.
"""
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upas.pop3 import protocol as P

CHAL = "<1a2b3c.4d5e6f@upas.local>"
SECRETS = {"glenda": b"glenda-apop", "bob": b"bob-apop"}


class Chal:
    def __init__(self, text, proto):
        self.chal, self.proto = text, proto

    def respond(self, user, response):
        secret = SECRETS.get(user)
        if secret is None:
            raise P.AuthError("no such user")
        if self.proto == "apop":
            want = hashlib.md5(self.chal.encode() + secret).hexdigest()
        else:
            want = hmac.new(secret, self.chal.encode(), "md5").hexdigest()
        if not hmac.compare_digest(want, response):
            raise P.AuthError("authentication failure")
        return user

    def close(self):
        pass


class Auth:
    def __init__(self, fail=False):
        self.fail, self.n = fail, 0

    def challenge(self, proto="apop"):
        if self.fail:
            raise P.AuthError("cannot dial auth server")
        self.n += 1
        return Chal(CHAL if self.n == 1 else f"<{self.n:x}.{self.n:x}@upas.local>", proto)


def split_mbox(text: bytes):
    """(digest, raw) per message, by the upas/fs rule of docs/spec/servers.md §1.1."""
    starts = [0] + [m.start() + 1 for m in re.finditer(rb"\nFrom ", text)]
    out = []
    for a, b in zip(starts, starts[1:] + [len(text)]):
        entry = text[a:b]
        if entry.endswith(b"\n"):
            entry = entry[:-1]
        raw = entry.split(b"\n", 1)[1]
        out.append((hashlib.sha1(entry).hexdigest(), raw))
    return out


class Box:
    def __init__(self, text):
        self.raws = {}
        self.messages = []
        self.deleted = []
        for i, (digest, raw) in enumerate(split_mbox(text), 1):
            self.raws[i] = raw
            self.messages.append(P.MessageInfo(i, digest, len(raw) + raw.count(b"\n")))

    def open_raw(self, fsnum):
        if fsnum not in self.raws:
            raise P.MailboxError("file does not exist")
        raw = self.raws[fsnum]
        return [raw[i:i + 7] for i in range(0, len(raw), 7)]   # odd chunking

    def delete(self, fsnums):
        self.deleted.append(list(fsnums))
        for n in fsnums:
            self.raws.pop(n, None)


MBOX = (b"From glenda Thu Jan  1 00:00:00 2026\nSubject: one\n\nhello\n.dot line\n\n"
        b"From bob Thu Jan  1 00:00:01 2026\nSubject: two\nX: y\n\nline1\r\nline2\nline3\n\n"
        b"From bob Thu Jan  1 00:00:02 2026\nSubject: three\n\nnul\0byte\nlast no newline")


class Host:
    def __init__(self, text=MBOX, fail_load=None):
        self.text, self.fail_load = text, fail_load
        self.log, self.ratified, self.logins, self.boxes = [], [], [], []
        self.box = None

    def login(self, user):
        self.logins.append(user)

    def open_mailbox(self, box):
        if self.fail_load:
            raise P.MailboxError(self.fail_load)
        self.boxes.append(box)
        self.box = Box(self.text)
        return self.box

    def ratify(self, peer):
        self.ratified.append(peer)

    def syslog(self, text):
        self.log.append(text)


def session(**kw):
    host = kw.pop("host", None) or Host()
    auth = kw.pop("auth", None) or Auth()
    s = P.Session(auth, host, **kw)
    greeting = b"".join(e for e in s.start() if isinstance(e, bytes))
    return s, host, greeting


def run(s, line: bytes):
    """All events of one command: (sent bytes, other events)."""
    sent, other = b"", []
    for e in s.handle(line):
        if isinstance(e, bytes):
            sent += e
        else:
            other.append(e)
    return sent, other


def say(s, line: bytes) -> bytes:
    return run(s, line)[0]


def apop(s, user="glenda", chal=CHAL):
    d = hashlib.md5(chal.encode() + SECRETS[user]).hexdigest()
    return say(s, f"APOP {user} {d}".encode())


# -- greeting, CAPA, states (docs/spec/servers.md facts 1-5) --------------------------------------
def test_servers_fact1_greeting():
    _, _, g = session()
    assert g == b"+OK POP3 server ready " + CHAL.encode() + b"\r\n"
    assert re.fullmatch(rb"\+OK POP3 server ready <[0-9a-f]+\.[0-9a-f]+@[^>]+>\r\n", g)


def test_greeting_without_factotum():
    s = P.Session(Auth(fail=True), Host())
    assert s.start() == [b"-ERR auth server not responding, try later\r\n", P.Close()]


def test_servers_fact2_capa():
    # STLS only where it can succeed: a certificate, TLS not yet active
    # (docs/decisions.md; movemail and plan9port's upas/fs try it whenever listed)
    s, _, _ = session()
    assert say(s, b"CAPA") == b"+OK\r\nTOP\r\nPIPELINING\r\nUIDL\r\n.\r\n"
    s, _, _ = session(allow_clear=True)
    assert say(s, b"capa") == b"+OK\r\nTOP\r\nUSER\r\nPIPELINING\r\nUIDL\r\n.\r\n"
    s, _, _ = session(tls_cert=True)
    assert say(s, b"CAPA") == b"+OK\r\nTOP\r\nPIPELINING\r\nUIDL\r\nSTLS\r\n.\r\n"


def test_capa_after_tls_lists_user():
    s, _, _ = session(tls_cert=True)
    sent, ev = run(s, b"STLS")
    assert sent == b"+OK\r\n" and ev == [P.StartTLS()]
    s.tls_started()
    assert say(s, b"CAPA") == b"+OK\r\nTOP\r\nUSER\r\nPIPELINING\r\nUIDL\r\n.\r\n"
    assert say(s, b"STLS") == b"-ERR tls already started\r\n"


def test_servers_fact3_fact4_auth_required_and_unknown():
    s, _, _ = session()
    assert say(s, b"STAT") == b"-ERR STAT requires authentication\r\n"
    assert say(s, b"stat") == b"-ERR stat requires authentication\r\n"
    for w in (b"LIST", b"RETR 1", b"DELE 1", b"TOP 1 1", b"UIDL", b"SYNC"):
        assert say(s, w) == b"-ERR " + w.split()[0] + b" requires authentication\r\n"
    assert say(s, b"FOO") == b"-ERR unknown command FOO\r\n"
    assert say(s, b"AUTH CRAM-MD5") == b"-ERR unknown command AUTH\r\n"
    assert say(s, b"xtnd x") == b"-ERR unknown command xtnd\r\n"


def test_servers_fact5_noop_rset_quit_before_login():
    s, _, _ = session()
    assert say(s, b"NOOP") == b"+OK\r\n"
    assert say(s, b"RSET") == b"+OK\r\n"
    assert run(s, b"QUIT") == (b"+OK\r\n", [P.Close()])


# -- logins (docs/spec/servers.md facts 6-12, 22) -------------------------------------------------
def test_servers_fact6_user_then_pass_in_clear():
    s, _, _ = session()
    assert say(s, b"USER bob") == b"+OK\r\n"
    assert say(s, b"PASS x") == b"-ERR password in the clear disallowed\r\n"
    assert say(s, b"USER") == b"-ERR USER requires argument\r\n"


@pytest.mark.parametrize("name", [b"../etc", b"bob/", b"bob//x", b"./bob", b"bob/../glenda",
                                  b".", b"bob\0x"])
def test_servers_fact7_bad_mailbox_name_continues(name):
    s, _, _ = session()
    assert say(s, b"USER " + name) == b"-ERR bad mailbox name\r\n"
    assert say(s, b"NOOP") == b"+OK\r\n"


def test_servers_fact11_fact12_fact22_login_apop():
    s, host, _ = session(peer="10.1.2.3")
    assert apop(s) == b"+OK mailbox is /mail/box/glenda/mbox\r\n"
    assert host.logins == ["glenda"] and host.ratified == ["10.1.2.3"]
    assert "user glenda logged in" in host.log
    s, host, _ = session()
    d = hashlib.md5(CHAL.encode() + b"bob-apop").hexdigest()
    assert say(s, f"APOP bob/sub {d}".encode()) == b"+OK mailbox is /mail/box/bob/sub/mbox\r\n"
    assert host.logins == ["bob"] and host.boxes == ["/mail/box/bob/sub/mbox"]
    assert host.ratified == []   # no peer known: nothing to ratify
    assert say(s, b"USER bob") == b"-ERR already authenticated\r\n"


def test_pass_under_p_uses_a_fresh_challenge():
    s, host, _ = session(allow_clear=True, peer="1.2.3.4")
    assert say(s, b"USER bob") == b"+OK\r\n"
    assert say(s, b"PASS bob-apop") == b"+OK mailbox is /mail/box/bob/mbox\r\n"
    assert host.ratified == ["1.2.3.4"]


def test_password_with_spaces_is_the_whole_rest():
    SECRETS["sp"] = b"two words  "
    try:
        s, _, _ = session(allow_clear=True)
        say(s, b"USER sp")
        assert say(s, b"PASS two words  ") == b"+OK mailbox is /mail/box/sp/mbox\r\n"
    finally:
        del SECRETS["sp"]


def test_servers_fact9_fact10_delays_guesser_and_exit():
    s, host, _ = session(peer="9.9.9.9", delay_scale=1.0)
    want = [10, 20, 40, 80, 160, 320, 640, 1280, 1800, 1800]
    for i in range(20):
        sent, ev = run(s, b"APOP glenda 00000000000000000000000000000000")
        assert sent == b"-ERR authentication failed\r\n"
        assert ev == [P.Sleep(want[i] if i < len(want) else 1800)]
        if i == 2:
            assert host.log == ["likely password guesser from 9.9.9.9"]
    assert host.log == ["likely password guesser from 9.9.9.9"]
    sent, ev = run(s, b"APOP glenda 00000000000000000000000000000000")
    assert sent == b"-ERR authentication failed: authentication failure; server exiting\r\n"
    assert ev == [P.Close()]


def test_delay_scale():
    s, _, _ = session(delay_scale=0.001)
    _, ev = run(s, b"APOP glenda bad")
    assert ev == [P.Sleep(10 * 0.001)]


def test_failed_apop_keeps_greeting_challenge():
    s, _, _ = session()
    run(s, b"APOP glenda bad")
    assert apop(s) == b"+OK mailbox is /mail/box/glenda/mbox\r\n"


def test_pass_without_user_fails_as_bell():
    s, _, _ = session(allow_clear=True, delay_scale=0)
    assert say(s, b"PASS x") == b"-ERR authentication failed\r\n"


def test_load_error_exits():
    s, _, _ = session(host=Host(fail_load="cannot open /mail/fs/mbox: file does not exist"))
    sent, ev = run(s, b"APOP glenda " + hashlib.md5(CHAL.encode() + b"glenda-apop").hexdigest().encode())
    assert sent == b"-ERR cannot open /mail/fs/mbox: file does not exist\r\n"
    assert ev == [P.Close()]


def test_preauth_loads_before_greeting_and_does_not_ratify():
    host = Host()
    s, host, g = session(host=host, preauth_box="/mail/box/glenda/mbox", peer="1.1.1.1")
    assert g.startswith(b"+OK POP3 server ready <")
    assert host.boxes == ["/mail/box/glenda/mbox"] and host.ratified == [] and host.logins == []
    assert say(s, b"STAT").startswith(b"+OK 3 ")
    s = P.Session(Auth(), Host(fail_load="upas/fs: no such mailbox"), preauth_box="/x")
    assert s.start() == [b"-ERR upas/fs: no such mailbox\r\n", P.Close()]


# -- message commands (docs/spec/servers.md facts 13-20) ------------------------------------------
def logged_in(**kw):
    s, host, _ = session(**kw)
    apop(s)
    return s, host


def sizes():
    return [len(r) + r.count(b"\n") for _, r in split_mbox(MBOX)]


def test_servers_fact13_fact14_list_stat_sizes():
    s, _ = logged_in()
    sz = sizes()
    assert say(s, b"STAT") == f"+OK 3 {sum(sz)}\r\n".encode()
    assert say(s, b"LIST") == (f"+OK +3 messages ({sum(sz)} octets)\r\n1 {sz[0]}\r\n"
                               f"2 {sz[1]}\r\n3 {sz[2]}\r\n.\r\n").encode()
    assert say(s, b"LIST 2") == f"+OK 2 {sz[1]}\r\n".encode()
    say(s, b"DELE 1")
    say(s, b"DELE 3")
    assert say(s, b"LIST") == f"+OK +1 message ({sz[1]} octets)\r\n2 {sz[1]}\r\n.\r\n".encode()
    assert say(s, b"STAT") == f"+OK 1 {sz[1]}\r\n".encode()


def test_servers_fact15_uidl():
    s, _ = logged_in()
    digests = [d for d, _ in split_mbox(MBOX)]
    assert say(s, b"UIDL 2") == f"+OK 2 {digests[1]}\r\n".encode()
    assert say(s, b"UIDL") == ("+OK\r\n" + "".join(f"{i} {d}\r\n" for i, d in enumerate(digests, 1))
                               + ".\r\n").encode()
    assert re.fullmatch(rb"\+OK 1 [0-9a-f]{40}\r\n", say(s, b"uidl 1"))


def test_servers_fact16_dele_rset():
    s, _ = logged_in()
    assert say(s, b"DELE 1") == b"+OK message 1 deleted\r\n"
    assert say(s, b"DELE 1") == b"-ERR no such message\r\n"
    assert say(s, b"RETR 1") == b"-ERR no such message\r\n"
    assert say(s, b"RSET") == b"+OK\r\n"
    assert say(s, b"LIST 1").startswith(b"+OK 1 ")


@pytest.mark.parametrize("arg,reply", [
    (b"", b"-ERR RETR requires a message number\r\n"),
    (b"0", b"-ERR no such message\r\n"),
    (b"4", b"-ERR no such message\r\n"),
    (b"abc", b"-ERR no such message\r\n"),
    (b"-1", b"-ERR no such message\r\n"),
    (b"99999999999999999999999999999999999", b"-ERR no such message\r\n"),
])
def test_bad_message_numbers(arg, reply):
    s, _ = logged_in()
    assert say(s, b"RETR " + arg if arg else b"RETR") == reply


def test_atoi_junk():
    assert P.atoi(b"2abc") == 2 and P.atoi(b"  +3") == 3 and P.atoi(b"x") == 0
    assert P.atoi(b"9" * 500) == 2**63 - 1


def test_servers_fact17_retr_dot_stuffing_crlf_nul():
    s, _ = logged_in()
    assert say(s, b"RETR 1") == b"+OK\r\nSubject: one\r\n\r\nhello\r\n..dot line\r\n.\r\n"
    # a CRLF line is sent with one CR (docs/decisions.md), not \r\r\n
    assert say(s, b"RETR 2") == (b"+OK\r\nSubject: two\r\nX: y\r\n\r\nline1\r\nline2\r\nline3\r\n.\r\n")
    # NUL passes through; the unterminated last line gets its CRLF
    assert say(s, b"RETR 3") == b"+OK\r\nSubject: three\r\n\r\nnul\0byte\r\nlast no newline\r\n.\r\n"


def test_servers_fact18_top():
    s, _ = logged_in()
    assert say(s, b"TOP 2 0") == b"+OK\r\nSubject: two\r\nX: y\r\n\r\n.\r\n"
    assert say(s, b"TOP 2 2") == b"+OK\r\nSubject: two\r\nX: y\r\n\r\nline1\r\nline2\r\n.\r\n"
    assert say(s, b"TOP 1 99") == b"+OK\r\nSubject: one\r\n\r\nhello\r\n..dot line\r\n.\r\n"
    assert say(s, b"TOP 2") == b"-ERR TOP requires a line count\r\n"
    assert say(s, b"TOP 2 -1") == b"-ERR bad args to TOP\r\n"
    assert say(s, b"TOP") == b"-ERR TOP requires a message number\r\n"
    assert say(s, b"TOP 9 1") == b"-ERR no such message\r\n"


def test_top_cut_across_chunks():
    raw = b"A: 1\r\nB: 2\r\n\r\nb1\nb2\nb3\n"
    for size in range(1, len(raw) + 1):
        chunks = [raw[i:i + size] for i in range(0, len(raw), size)]
        assert b"".join(P.top_cut(chunks, 0)) == b"A: 1\r\nB: 2\r\n\r\n"
        assert b"".join(P.top_cut(chunks, 2)) == b"A: 1\r\nB: 2\r\n\r\nb1\nb2\n"
    assert b"".join(P.top_cut([b"\nbody\n"], 0)) == b"\n"


def test_dot_stuffer_any_chunking():
    raw = b".a\r\n.\r\nb\r\r\n\n..c\rd\n.e"
    want = b"..a\r\n..\r\nb\r\r\n\r\n...c\rd\r\n..e\r\n.\r\n"
    for size in range(1, len(raw) + 1):
        st = P.DotStuffer()
        out = b"".join(st.feed(raw[i:i + size]) for i in range(0, len(raw), size)) + st.end()
        assert out == want, size
    st = P.DotStuffer()
    assert st.end() == b".\r\n"


def test_retr_disappeared():
    s, host = logged_in()
    del host.box.raws[1]
    assert say(s, b"RETR 1") == b"-ERR message disappeared\r\n"
    assert say(s, b"TOP 1 0") == b"-ERR message disappeared\r\n"


def test_retr_failure_mid_stream_closes():
    s, host = logged_in()

    def broken(fsnum):
        yield b"Subject: x\n"
        raise P.MailboxError("i/o error")
    host.box.open_raw = lambda n: broken(n)
    sent, ev = run(s, b"RETR 1")
    assert sent == b"+OK\r\nSubject: x\r\n" and ev == [P.Close()]


def test_servers_fact20_quit_and_sync_delete():
    s, host = logged_in()
    say(s, b"DELE 1")
    say(s, b"DELE 3")
    assert say(s, b"SYNC") == b"+OK\r\n"
    assert host.box.deleted == [[1, 3]]
    assert say(s, b"RSET") == b"+OK\r\n"
    assert say(s, b"STAT") == f"+OK 1 {sizes()[1]}\r\n".encode()   # synced ones stay gone
    say(s, b"DELE 2")
    assert run(s, b"QUIT") == (b"+OK\r\n", [P.Close()])
    assert host.box.deleted == [[1, 3], [1, 2, 3]]


def test_quit_without_marks_writes_nothing():
    s, host = logged_in()
    assert run(s, b"QUIT") == (b"+OK\r\n", [P.Close()])
    assert host.box.deleted == []


def test_delete_error_reply():
    s, host = logged_in()

    def fail(fsnums):
        raise P.MailboxError("error deleting messages: i/o error")
    host.box.delete = fail
    say(s, b"DELE 1")
    assert run(s, b"QUIT") == (b"-ERR error deleting messages: i/o error\r\n", [P.Close()])


def test_servers_fact19_empty_line_ends_without_deleting():
    s, host = logged_in()
    say(s, b"DELE 1")
    assert run(s, b"") == (b"", [P.Close()])
    assert host.box.deleted == []


def test_servers_fact21_stls_without_cert():
    s, _, _ = session()
    assert say(s, b"STLS") == b"-ERR don't have any tls credentials\r\n"


# -- framing -------------------------------------------------------------------
def test_splitter_crlf_lf_lone_cr():
    sp = P.LineSplitter()
    assert sp.feed(b"NOOP\r\nST") == [b"NOOP"]
    assert sp.feed(b"AT\na\rb\r\n\r\n") == [b"STAT", b"a\rb", b""]
    assert sp.feed(b"QUIT") == [] and sp.eof() == [b"QUIT"]


def test_splitter_overlong_discarded_whole():
    sp = P.LineSplitter()
    out = sp.feed(b"NOOP\r\n" + b"A" * 5000 + b" QUIT\r\nSTAT\r\n")
    assert out == [b"NOOP", P.OVERLONG, b"STAT"]
    out = []
    for i in range(100):
        out += sp.feed(b"B" * 100)
    out += sp.feed(b"\r\nNOOP\n")
    assert out == [P.OVERLONG, b"NOOP"]
    assert sp.feed(b"X" * 1023 + b"\r\n") == [b"X" * 1023]
    assert sp.feed(b"X" * 1024 + b"\r\n") == [P.OVERLONG]


def test_overlong_reply():
    s, _, _ = session()
    assert s.overlong() == [b"-ERR line too long\r\n"]


def test_echo_keeps_bytes_and_reply_limit():
    s, _, _ = session()
    assert say(s, b"F\0O") == b"-ERR unknown command F\0O\r\n"
    long = b"Z" * 1020
    assert say(s, long) == (b"-ERR unknown command " + long)[:1023] + b"\r\n"


def test_debug_log_has_no_password():
    logged = []
    s, _, _ = session(allow_clear=True, debug=logged.append)
    say(s, b"USER bob")
    say(s, b"PASS bob-apop")
    say(s, b"pass secret two")
    text = b"".join(logged)
    assert b"bob-apop" not in text and b"secret" not in text
    assert b"USER bob\n" in text and b"-> +OK mailbox is /mail/box/bob/mbox\n" in text


# -- RFC 2449/5034 extensions, off by default --------------------------------
def test_extensions_capa_and_codes():
    s, _, _ = session(extensions=True, delay_scale=0)
    assert say(s, b"CAPA") == (b"+OK\r\nTOP\r\nPIPELINING\r\nUIDL\r\nSASL CRAM-MD5\r\n"
                               b"RESP-CODES\r\nAUTH-RESP-CODE\r\nIMPLEMENTATION upas-py-pop3\r\n.\r\n")
    assert say(s, b"APOP glenda bad") == b"-ERR [AUTH] authentication failed\r\n"


def test_auth_cram_md5():
    import base64
    s, _, _ = session(extensions=True, delay_scale=0)
    sent = say(s, b"AUTH CRAM-MD5")
    chal = base64.b64decode(sent[2:-2])
    assert re.fullmatch(rb"<[0-9a-f]+\.[0-9a-f]+@upas.local>", chal)
    digest = hmac.new(b"bob-apop", chal, "md5").hexdigest()
    resp = base64.b64encode(b"bob " + digest.encode())
    assert say(s, resp) == b"+OK mailbox is /mail/box/bob/mbox\r\n"


def test_auth_plain_only_when_clear_allowed():
    import base64
    s, _, _ = session(extensions=True)
    assert say(s, b"AUTH PLAIN") == b"-ERR unsupported authentication mechanism\r\n"
    s, _, _ = session(extensions=True, allow_clear=True)
    assert say(s, b"AUTH PLAIN") == b"+ \r\n"
    assert say(s, base64.b64encode(b"\0glenda\0glenda-apop")) == (
        b"+OK mailbox is /mail/box/glenda/mbox\r\n")
    s, _, _ = session(extensions=True, allow_clear=True)
    assert say(s, b"AUTH PLAIN *") == b"-ERR authentication cancelled\r\n"


def _stuffed(raw: bytes) -> bytes:
    """RETR's data for raw, line by line (docs/decisions.md: one CRLF per line,
    a CR before LF dropped, other bytes kept, a leading '.' doubled)."""
    lines = raw.split(b"\n")
    last = lines.pop()
    out = [(b"." if ln[:1] == b"." else b"") + (ln[:-1] if ln.endswith(b"\r") else ln) + b"\r\n"
           for ln in lines]
    if last:
        out.append((b"." if last[:1] == b"." else b"") + last + b"\r\n")
    return b"".join(out) + b".\r\n"


@given(st.lists(st.sampled_from([b"\r", b"\n", b".", b"x", b"\0", b"\r\n", b"\n."]), max_size=60)
       .map(b"".join), st.lists(st.integers(1, 9), min_size=1, max_size=20))
def test_dot_stuffer_matches_line_by_line(raw, sizes):
    st_ = P.DotStuffer()
    out, pos, k = [], 0, 0
    while pos < len(raw):
        n = sizes[k % len(sizes)]
        out.append(st_.feed(raw[pos:pos + n]))
        pos, k = pos + n, k + 1
    assert b"".join(out) + st_.end() == _stuffed(raw)
