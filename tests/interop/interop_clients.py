"""plan9port's mail programs as clients of ours (issue 14, rows 1 and 2):
its upas/fs reading a POP3 mailbox from our pop3, mailfs (upas/nfs, an
IMAP client) reading from our imap4d, and its `9p` command against our
upasfs.  What they show is compared with what plan9port's own upas/fs
shows for the same mailbox file.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tests.fixtures.factotum import start_factotum
from tests.fixtures.transcript import Tap, Transcript, finished
from tests.interop import sessions
from tests.interop.conftest import record
from tests.interop.plan9port import Daemon, wait_posted

USER, SECRET = sessions.USER, sessions.SECRET


@pytest.fixture
def mailroot(servers) -> Path:
    """testdata/mail, glenda's mailbox with a ninth message whose Subject
    is folded."""
    return sessions.mailroot(servers.base, folded=True)


class P9pClientHost:
    """A plan9port name space for plan9port's client programs, with a
    factotum (ours: plan9port's libauth speaks Plan 9's conversations,
    which ours implements) holding glenda's keys for `server`."""

    def __init__(self, p9p, base: Path, env_auth: dict):
        self.p9p, self.base = p9p, base
        self.ns = tempfile.mkdtemp(prefix="ns.", dir="/tmp")
        self.env = p9p.env(self.ns)
        self.factotum = start_factotum(self.ns)
        self.daemons: list[Daemon] = []

    def keys(self, *lines: str) -> None:
        for line in lines:
            self.factotum.ctl("key " + line)

    def daemon(self, argv: list[str], service: str) -> Daemon:
        d = Daemon(argv, self.env, self.base / f"{service}.log")
        self.daemons.append(d)
        wait_posted(os.path.join(self.ns, service), d)
        return d

    def nine(self, *args: str) -> bytes:
        r = self.p9p.run(["9p", *args], self.env)
        assert r.returncode == 0, (args, r.stderr)
        return r.stdout

    def stop(self) -> None:
        for d in self.daemons:
            d.stop()
        self.factotum.stop()
        shutil.rmtree(self.ns, ignore_errors=True)


@pytest.fixture
def p9p_client(p9p, servers, auth_stack):
    h = P9pClientHost(p9p, servers.base, auth_stack.env)
    yield h
    h.stop()


def our_env(auth_stack, mailroot: Path) -> dict:
    env = dict(os.environ, **auth_stack.env, MAILROOT=str(mailroot), POP3_DELAY_SCALE="0")
    env.pop("upasfs", None)
    return env


def p9p_upasfs_view(p9p, servers, mbox: Path, files=("subject", "to", "body")) -> dict[str, bytes]:
    """What plan9port's upas/fs shows of the mailbox file itself (the
    reference)."""
    h = P9pClientHost(p9p, servers.base, {})
    try:
        h.daemon([p9p.bin("upas/fs"), "-s", "-f", str(mbox)], "upasfs")
        return view(h, "upasfs/mbox", files)
    finally:
        h.stop()


def view(h: P9pClientHost, mdir: str, files=("subject", "to", "body")) -> dict[str, bytes]:
    """Those files of each message.  (Not `from`: read from the file it
    falls back on the envelope's `From daemon` line, which POP3 does not
    carry.)"""
    out = {}
    names = sorted((n for n in h.nine("ls", mdir).decode().split() if n.isdigit()), key=int)
    for n in names:
        for f in files:
            out[f"{n}/{f}"] = h.nine("read", f"{mdir}/{n}/{f}")
    return out


# -- plan9port's upas/fs as a POP3 client ---------------------------------------

def _pop_mailbox(p9p, p9p_client, servers, auth_stack, mailroot, flags, path, name):
    a = servers.start("upas.pop3", flags, our_env(auth_stack, mailroot))
    tap = Tap(f"tcp!127.0.0.1!{a.addr[1]}")
    try:
        host = tap.addr
        p9p_client.keys(f"proto=apop server={host} user={USER} !password={SECRET}",
                        f"proto=pass service=pop dom={host} user={USER} !password={SECRET}")
        p9p_client.daemon([p9p.bin("upas/fs"), "-s", "-f", f"/{path}/{host}/{USER}"], "upasfs")
        got = view(p9p_client, "upasfs/mbox")
        conns = finished(tap, 0, 1)
    finally:
        tap.close()
    want = p9p_upasfs_view(p9p, servers, mailroot / "box" / USER / "mbox")
    assert got == want
    record(Transcript(name, f"plan9port's upas/fs -f /{path}/HOST/{USER} reading "
                           f"glenda's mailbox from our pop3 {' '.join(flags)}",
                           "plan9port upas/fs (POP3 client)", "server", "lines", conns),
           "interop_clients")


def test_p9p_upasfs_pop3_client_apop(p9p, p9p_client, servers, auth_stack, mailroot):
    _pop_mailbox(p9p, p9p_client, servers, auth_stack, mailroot, [], "apopnotls",
                 "pop3-p9p-upasfs-apop")


def test_p9p_upasfs_pop3_client_user_pass(p9p, p9p_client, servers, auth_stack, mailroot):
    _pop_mailbox(p9p, p9p_client, servers, auth_stack, mailroot, ["-p"], "popnotls",
                 "pop3-p9p-upasfs-pass")


def test_p9p_upasfs_pop3_client_tries_stls_only_when_offered(p9p, p9p_client, servers,
                                                             auth_stack, mailroot):
    """/apop/ (not /apopnotls/) starts TLS when CAPA lists STLS: our pop3
    without -t must not list it."""
    _pop_mailbox(p9p, p9p_client, servers, auth_stack, mailroot, [], "apop",
                 "pop3-p9p-upasfs-apop-capa")


# -- mailfs (plan9port's upas/nfs) as an IMAP client ---------------------------------

def decoded(subject: bytes) -> bytes:
    """The RFC 2047 words of upas/fs's subject decoded, as mailfs shows them."""
    from email.header import decode_header, make_header
    return str(make_header(decode_header(subject.decode()))).encode()


@pytest.fixture
def mailfs_view(p9p, p9p_client, servers, auth_stack, mailroot):
    """(what mailfs shows of glenda's INBOX read from our imap4d -p, what
    plan9port's upas/fs shows of the mailbox file): subjects and bodies
    (its other files are built from ENVELOPE in formats of its own)."""
    a = servers.start("upas.imap4d", ["-p", "-s", "imap.test"], our_env(auth_stack, mailroot))
    tap = Tap(f"tcp!127.0.0.1!{a.addr[1]}")
    try:
        p9p_client.keys(f"proto=pass service=imap server={tap.addr} user={USER} !password={SECRET}")
        d = p9p_client.daemon([p9p.bin("mailfs"), "-u", USER, tap.addr], "mail")
        got = view(p9p_client, "mail/mbox", ("subject", "body"))
        d.stop()
        conns = finished(tap, 0, 1)
    finally:
        tap.close()
    want = p9p_upasfs_view(p9p, servers, mailroot / "box" / USER / "mbox", ("subject", "body"))
    want = {k: decoded(v) if k.endswith("/subject") else v for k, v in want.items()}
    record(Transcript("imap4d-p9p-mailfs", "plan9port's mailfs -u glenda reading "
                           "glenda's mail from our imap4d -p (LOGIN), then stopped",
                           "plan9port mailfs (upas/nfs)", "server", "lines", conns),
           "interop_clients")
    return got, want


def test_mailfs_reads_our_imap4d(mailfs_view):
    got, want = mailfs_view
    assert len(got) == len(want) == 2 * 9
    assert {k: v for k, v in got.items() if k != "9/subject"} == \
        {k: v for k, v in want.items() if k != "9/subject"}


def test_mailfs_folded_subject_as_upasfs_shows_it(mailfs_view):
    got, want = mailfs_view
    assert got["9/subject"] == want["9/subject"]


# -- plan9port's 9p against our upasfs ----------------------------------------------

OPS = [("ls", ""), ("ls", "-l", "mbox"), ("ls", "-l", "mbox/2"), ("ls", "mbox/2/5"),
       ("stat", "mbox/1/raw"), ("stat", "mbox/2/1"), ("read", "mbox/1/subject"),
       ("read", "mbox/1/info"), ("read", "mbox/2/body"), ("read", "mbox/2/2/type"),
       ("read", "mbox/3/from"), ("read", "mbox/4/raw"), ("read", "mbox/9/subject"),
       ("read", "mbox/99/raw"), ("read", "mbox/5/rawunix"), ("read", "ctl"),
       ("ls", "-l", "mbox/8")]
CTL = [b"bogus\n", b"delete mbox 3\n"]


def test_9p_against_our_upasfs(p9p, servers, mailroot, tmp_path):
    """Each operation gives what it gives against plan9port's upas/fs on
    a copy of the same mailbox file (both as the invoking user, neither
    with a lib/ignore: plan9port's reads /mail/lib/ignore, ours
    $MAILROOT/lib/ignore)."""
    import pwd
    me = pwd.getpwuid(os.getuid()).pw_name       # each upas/fs serves only its owner
    (mailroot / "lib" / "ignore").unlink()
    mbox = mailroot / "box" / me / "mbox"
    mbox.parent.mkdir(exist_ok=True)
    shutil.copy(mailroot / "box" / USER / "mbox", mbox)
    os.utime(mbox, (sessions.MTIME, sessions.MTIME))
    theirs_box = tmp_path / "theirs.mbox"
    shutil.copy2(mbox, theirs_box)
    ours_ns = tempfile.mkdtemp(prefix="ns.", dir="/tmp")
    ours = Daemon([sys.executable, "-m", "upas.fs9p", "-p", "-s"],
                  dict(os.environ, NAMESPACE=ours_ns, MAILROOT=str(mailroot),
                       user=me, USER=me, LOGNAME=me), tmp_path / "ours.log")
    h = P9pClientHost(p9p, servers.base, {})
    tap = None
    try:
        h.daemon([p9p.bin("upas/fs"), "-s", "-f", str(theirs_box)], "upasfs")
        wait_posted(os.path.join(ours_ns, "upasfs"), ours)
        tap = Tap(f"unix!{ours_ns}/upasfs", listen=f"unix!{ours_ns}/tap")

        def both(argv, input=None):
            a = p9p.run(["9p", "-a", tap.addr, *argv], h.env, input=input)
            b = p9p.run(["9p", *argv[:-1], "upasfs/" + argv[-1]], h.env, input=input)
            # 9p names the path as typed before the error: only what follows
            return [(r.returncode, r.stdout, r.stderr.partition(b": ")[2]) for r in (a, b)]
        for op in OPS:
            got, want = both(list(op))
            assert got == want, op
        for line in CTL:
            got, want = both(["write", "ctl"], line)
            assert got == want, line
        got, want = both(["ls", "mbox"])
        assert got == want
        conns = finished(tap, 0, len(OPS) + len(CTL) + 1)
    finally:
        if tap:
            tap.close()
        h.stop()
        ours.stop()
        shutil.rmtree(ours_ns, ignore_errors=True)
    record(Transcript("upasfs-p9p-9p", "plan9port's 9p -a against our upasfs -p -s on "
                           "the user's mailbox "
                           f"(glenda's mailbox and the folded one, mtime {sessions.MTIME}): "
                           + "; ".join(" ".join(op) for op in OPS) + "; write ctl: "
                           + ", ".join(repr(c.decode()) for c in CTL) + "; ls mbox",
                           "plan9port 9p", "server", "9p", conns), "interop_clients")


def test_p9p_upasfs_apop_through_p9p_factotum_is_refused(p9p, servers, auth_stack, mailroot):
    """What docs/running.md says: plan9port's upas/fs cannot log in by
    APOP through plan9port's factotum, whoever the server is (its
    libauth's auth_respond reads once, and gets the user its factotum
    gives first); our pop3 refuses the user name taken for a digest."""
    a = servers.start("upas.pop3", [], our_env(auth_stack, mailroot))
    host = f"tcp!127.0.0.1!{a.addr[1]}"
    h = P9pClientHost(p9p, servers.base, {})
    h.factotum.stop()                        # plan9port's instead of ours
    f = h.daemon([p9p.bin("factotum"), "-n"], "factotum")
    r = p9p.run(["9p", "write", "factotum/ctl"], h.env,
                input=f"key proto=apop server={host} user={USER} !password={SECRET}\n".encode())
    assert r.returncode == 0 and f.alive()
    try:
        with pytest.raises(RuntimeError, match="opening mailbox: -ERR authentication failed"):
            h.daemon([p9p.bin("upas/fs"), "-s", "-f", f"/apopnotls/{host}/{USER}"], "upasfs")
    finally:
        h.stop()
