"""IMAP and POP3 on frontends with nothing shared but the network (issue
19): a store (`runhost -R store`: its mail, auth, upasfs broker and boxfs,
the store's /mail/box over 9P) and two frontends (`runhost -R frontend`)
in network namespaces of their own, each frontend unable to see the
store's files (tests/fixtures/netns.py).  Expected values are the store's
own files (the mbox, read with Python's mailbox module) and what one
frontend tells of what the other did."""
from __future__ import annotations

import email
import imaplib
import mailbox
import os
import poplib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_clients_mbsync import CONFIG as MBSYNC_CHANNEL

pytestmark = pytest.mark.timeout(240)

IMAP, POP3 = 11143, 11110
SECRET = {"glenda": "glenda-apop", "bob": "bob-apop"}


def imap(addr: str, user: str = "glenda") -> imaplib.IMAP4:
    c = imaplib.IMAP4(addr, IMAP, timeout=30)
    assert c.login_cram_md5(user, SECRET[user])[0] == "OK"
    return c


def pop3(addr: str, user: str = "glenda") -> poplib.POP3:
    p = poplib.POP3(addr, POP3, timeout=30)
    p.apop(user, SECRET[user])
    return p


def uids_flags(c: imaplib.IMAP4) -> list[tuple[int, str]]:
    typ, data = c.fetch("1:*", "(UID FLAGS)")
    assert typ == "OK"
    out = []
    for line in data:       # (unsolicited FETCH FLAGS of a NOOP before come too)
        m = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", line)
        if m is None:
            continue
        out.append((int(m.group(1)), " ".join(sorted(m.group(2).decode().replace("\\Recent", "").split()))))
    return out


def store_messages(mailroot: Path, box: str = "glenda/mbox") -> list[email.message.Message]:
    return list(mailbox.mbox(str(mailroot / "box" / box), create=False))


def message(mid: str, size: int = 0) -> bytes:
    """A message whose body repeats its Message-ID (a torn one shows)."""
    body = (mid + "\r\n") * max(1, size // (len(mid) + 2))
    return (f"From: t@example.com\r\nSubject: {mid}\r\nMessage-ID: <{mid}>\r\n\r\n"
            f"{body}").encode()


def intact(msg: email.message.Message) -> bool:
    mid = msg["Message-ID"].strip("<>")
    lines = msg.get_payload().split("\n")
    return all(ln.rstrip("\r") == mid for ln in lines if ln)


def test_imap_and_pop3_on_both_frontends_see_one_store(cluster):
    fe1, fe2 = cluster.fronts["fe1"], cluster.fronts["fe2"]
    # nothing shared: a frontend sees an empty directory where the store's files are
    assert os.listdir(f"/proc/{cluster.procs['fe1'].pid}/root{cluster.tmp}/store") == []
    printed = cluster.printed["fe1"]
    assert "a copy of testdata/mail" not in printed
    assert f"mail store   on {cluster.store}: /mail/box over 9P (tcp!{cluster.store}!11571)" in printed
    for what, port in (("auth server", 11567), ("factotum   ", 11568), ("ratfs      ", 11569)):
        assert f"  {what}  tcp!{cluster.store}!{port}  (the store's" in printed
    assert "(keys, factotum, ratify)" not in printed       # its name space holds none
    assert "nothing: every service is the store's" in printed   # (UPAS_LOGINFAIL_DIR=off)
    a, b = imap(fe1), imap(fe2)
    n = int(a.select("INBOX")[1][0])
    assert int(b.select("INBOX")[1][0]) == n == len(store_messages(cluster.mailroot))
    assert a.response("UIDVALIDITY") == b.response("UIDVALIDITY")
    assert a.store("2", "+FLAGS", "(\\Flagged)")[0] == "OK"
    assert b.noop()[0] == "OK"
    assert uids_flags(a) == uids_flags(b)
    assert "\\Flagged" in uids_flags(b)[1][1]
    # POP3 on both at once, the IMAP sessions still open
    p1, p2 = pop3(fe1), pop3(fe2)
    assert p1.stat()[0] == p2.stat()[0] == n
    assert p1.uidl()[1] == p2.uidl()[1]
    p1.quit()
    p2.quit()
    # folders: made on one frontend, on the store's disk, seen by the other
    home = cluster.mailroot / "box" / "glenda"
    assert a.create("projects/2026")[0] == "OK"
    assert a.subscribe("projects/2026")[0] == "OK"
    assert a.copy("1:2", "projects/2026")[0] == "OK"
    assert a.append("projects/2026", "(\\Seen)", None, message("appended@fe1"))[0] == "OK"
    assert len(store_messages(cluster.mailroot, "glenda/projects/2026")) == 3
    assert (home / "projects" / "2026.imp").exists()
    assert b'"projects/2026"' in b"".join(b.lsub()[1])
    assert b.rename("projects/2026", "projects/old")[0] == "OK"
    assert b'"projects/old"' in b"".join(a.list()[1])
    assert b'"projects/old"' in b"".join(a.lsub()[1])
    assert int(a.select("projects/old")[1][0]) == 3
    assert "\\Seen" in uids_flags(a)[2][1]
    a.close()
    assert b.delete("projects/old")[0] == "OK"
    assert not (home / "projects" / "old").exists()
    # the other user, through the other frontend: only his own mail
    bob = imap(fe2, "bob")
    assert int(bob.select("INBOX")[1][0]) == len(store_messages(cluster.mailroot, "bob/mbox"))
    assert bob.select("../glenda/mbox")[0] == "NO"
    for c in (a, b, bob):
        c.logout()


def test_idle_on_one_frontend_sees_an_append_through_the_other(cluster):
    a, b = imap(cluster.fronts["fe1"]), imap(cluster.fronts["fe2"])
    n = int(a.select("INBOX")[1][0])
    a.send(b"i IDLE\r\n")
    assert a.readline().startswith(b"+ ")
    start = time.monotonic()
    assert b.append("INBOX", None, None, message("idle@fe2"))[0] == "OK"
    a.sock.settimeout(10)
    line = a.readline()
    took = time.monotonic() - start
    assert line == b"* %d EXISTS\r\n" % (n + 1), line
    a.send(b"DONE\r\n")
    while not (line := a.readline()).startswith(b"i "):
        pass
    assert line.startswith(b"i OK")
    print(f"IDLE across frontends: EXISTS {took:.2f}s after the APPEND began")
    a.logout()
    b.logout()


def append_at_once(cluster, sessions: list[tuple[str, int]], deliveries: int = 8) -> list[str]:
    """Eight APPENDs from each IMAP session (front, k) and `deliveries` on
    the store itself (mbappend, the fcntl lock), all at once; the
    Message-IDs sent (each send asserted to have succeeded)."""
    errors: list[str] = []
    sent = [f"<{f}.{k}.{i}@test>" for f, k in sessions for i in range(8)] + \
        [f"<store.{i}@test>" for i in range(deliveries)]

    def appender(front: str, k: int) -> None:
        try:
            c = imap(cluster.fronts[front])
            for i in range(8):
                mid = f"{front}.{k}.{i}@test"
                typ, data = c.append("INBOX", None, None, message(mid, 20000 + 3000 * i))
                if typ != "OK":
                    errors.append(f"{mid}: {typ} {data}")
            c.logout()
        except Exception as e:      # noqa: BLE001 -- reported below
            errors.append(f"{front}.{k}: {e!r}")

    def deliverer() -> None:
        env = dict(os.environ, MAILROOT=str(cluster.mailroot), user="glenda")
        for i in range(deliveries):
            p = subprocess.run([sys.executable, "-m", "upas.mbappend", "/mail/box/glenda/mbox"],
                               input=message(f"store.{i}@test", 25000), env=env,
                               capture_output=True, timeout=60)
            if p.returncode:
                errors.append(f"mbappend {i}: {p.stderr!r}")
    threads = [threading.Thread(target=appender, args=s) for s in sessions]
    threads.append(threading.Thread(target=deliverer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert not errors, errors
    return sent


def test_appends_from_both_frontends_and_the_store_at_once_lose_and_tear_nothing(cluster):
    before = len(store_messages(cluster.mailroot))
    sent = append_at_once(cluster, [(f, k) for f in ("fe1", "fe2") for k in range(2)])
    msgs = store_messages(cluster.mailroot)
    assert sorted(m["Message-ID"] for m in msgs[before:]) == sorted(sent)
    assert all(intact(m) for m in msgs[before:])
    c = imap(cluster.fronts["fe2"])
    assert int(c.select("INBOX")[1][0]) == len(msgs)
    uids = [u for u, _ in uids_flags(c)]
    assert uids == sorted(set(uids))
    c.logout()


def test_kernel_mount_deployment(cluster):
    """A third frontend sees the store's /mail/box through a mount (-K; a
    bind mount here, where NFS or v9fs would be: docs/running.md) and
    takes the mail lock with fcntl; a boxfs frontend takes it as an
    exclusive-use open.  APPENDs through both at once: nothing lost or torn."""
    cluster.fronts["fe3"] = cluster.net.add("fe3")
    cluster.start_front("fe3", kernel_mount=True)
    assert "boxfs" not in cluster.printed["fe3"]
    assert f"/mail/box mounted on {cluster.tmp / 'fe3' / 'mail' / 'box'}" in cluster.printed["fe3"]
    before = len(store_messages(cluster.mailroot))
    errors: list[str] = []

    def appender(front: str) -> None:
        try:
            c = imap(cluster.fronts[front])
            for i in range(10):
                typ, data = c.append("INBOX", None, None, message(f"{front}.{i}@test", 30000))
                if typ != "OK":
                    errors.append(f"{front}.{i}: {typ} {data}")
            c.logout()
        except Exception as e:      # noqa: BLE001 -- reported below
            errors.append(f"{front}: {e!r}")
    threads = [threading.Thread(target=appender, args=(f,)) for f in ("fe1", "fe3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    msgs = store_messages(cluster.mailroot)[before:]
    assert sorted(m["Message-ID"] for m in msgs) == sorted(
        f"<{f}.{i}@test>" for f in ("fe1", "fe3") for i in range(10))
    assert all(intact(m) for m in msgs)
    a, b = imap(cluster.fronts["fe1"]), imap(cluster.fronts["fe3"])
    assert int(a.select("INBOX")[1][0]) == int(b.select("INBOX")[1][0]) == before + 20
    assert uids_flags(a) == uids_flags(b)
    a.logout()
    b.logout()


def _store_pids(cluster, module: bytes) -> list[int]:
    """The store's processes running python -m MODULE (by its NAMESPACE)."""
    ns = f"NAMESPACE={cluster.tmp / 'store' / 'ns'}".encode()
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
                env = (d / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if module in argv and ns in env:
                out.append(int(d.name))
    return out


def test_store_killed_and_restarted_under_load(cluster):
    """The store's broker is killed (the store stops) while both frontends
    APPEND; the store is started again; clients reconnect, and an APPEND
    whose answer was lost is looked for before it is sent again.  Every
    message is in the store once, and one upasfs serves each user."""
    before = len(store_messages(cluster.mailroot))
    done = threading.Event()
    sent: list[str] = []
    errors: list[str] = []

    def connect(front: str) -> imaplib.IMAP4:
        end = time.monotonic() + 90
        while True:
            try:
                c = imap(cluster.fronts[front])
                if c.select("INBOX")[0] == "OK":
                    return c
                c.logout()
            except (OSError, imaplib.IMAP4.error, EOFError):
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)

    def landed(c: imaplib.IMAP4, mid: str) -> bool:
        typ, data = c.search(None, "HEADER", "Message-ID", f"<{mid}>")
        return typ == "OK" and bool(data[0].split())

    def loader(front: str) -> None:
        i = 0
        c = connect(front)
        try:
            while not done.is_set() or i < 5:
                mid = f"{front}.load.{i}@test"
                while True:
                    try:
                        if c.append("INBOX", None, None, message(mid, 4000))[0] == "OK":
                            break
                    except (OSError, imaplib.IMAP4.abort, EOFError):
                        pass
                    c = connect(front)
                    if landed(c, mid):
                        break
                sent.append(mid)
                i += 1
        except Exception as e:      # noqa: BLE001 -- reported below
            errors.append(f"{front}: {e!r}")
    threads = [threading.Thread(target=loader, args=(f,)) for f in ("fe1", "fe2")]
    for t in threads:
        t.start()
    time.sleep(1.5)
    (broker,) = _store_pids(cluster, b"upas.fsbroker")
    os.kill(broker, signal.SIGKILL)
    assert cluster.procs["store"].wait(30) == 1      # a store without its broker stops
    cluster.start_store()
    time.sleep(1.5)
    done.set()
    for t in threads:
        t.join(120)
    assert not errors, errors
    msgs = store_messages(cluster.mailroot)
    ids = [m["Message-ID"].strip("<>") for m in msgs[before:]]
    assert sorted(ids) == sorted(sent)               # none lost, none twice
    assert all(intact(m) for m in msgs[before:])
    upasfs = _store_pids(cluster, b"upas.fs9p")
    assert len(upasfs) == 1, upasfs                  # glenda's, and no orphan
    log = cluster.procs["store"]
    assert log.poll() is None


MBSYNC = shutil.which("mbsync")


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (apt package isync) is not installed")
def test_mbsync_through_one_frontend_while_flags_change_through_the_other(cluster, tmp_path):
    near = tmp_path / "near"
    near.mkdir()
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(f"""IMAPAccount plan9
Host {cluster.fronts['fe1']}
Port {IMAP}
User glenda
Pass glenda-apop
AuthMechs CRAM-MD5
SSLType None
""" + MBSYNC_CHANNEL.format(near=near))

    def sync() -> None:
        p = subprocess.run([MBSYNC, "-c", str(cfg), "-a"], capture_output=True, timeout=120)
        assert p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")
    sync()
    b = imap(cluster.fronts["fe2"])
    n = int(b.select("INBOX")[1][0])
    stop = threading.Event()

    def flagger() -> None:
        i = 0
        while not stop.is_set():
            b.store(str(i % n + 1), "+FLAGS" if i // n % 2 == 0 else "-FLAGS", "(\\Flagged)")
            i += 1
    t = threading.Thread(target=flagger)
    t.start()
    try:
        for _ in range(3):
            sync()
    finally:
        stop.set()
        t.join(30)
    sync()                      # once more with the flags still
    server = {}
    typ, data = b.fetch("1:*", "(FLAGS BODY.PEEK[HEADER])")
    for item in data:
        if isinstance(item, tuple):
            server[_key(item[1])] = "\\Flagged" in item[0].decode()
    b.logout()
    local = {}
    for sub in ("cur", "new"):
        for f in (near / "INBOX" / sub).iterdir():
            local[_key(f.read_bytes())] = "F" in f.name.split(":2,")[-1]
    assert len(server) == n
    assert local == server


def _key(msg: bytes) -> tuple:
    m = email.message_from_bytes(msg)
    return m["Message-ID"], m["Subject"], m["Date"], m["From"]


def test_a_stopping_frontend_says_goodbye_and_deletes_nothing(cluster):
    """Issue 19: stopping a frontend ended its sessions with EOF at the end
    of the grace period.  Now IMAP gets `* BYE`, POP3 `-ERR`, and a POP3
    session's DELE without QUIT stays unapplied (RFC 1939 6)."""
    mbox = cluster.mailroot / "box" / "glenda" / "mbox"
    before = mbox.read_bytes()
    fe1 = cluster.fronts["fe1"]
    a = imap(fe1)
    a.select("INBOX")
    a.send(b"i IDLE\r\n")
    assert a.readline().startswith(b"+ ")
    p = pop3(fe1)
    assert p.dele(1).startswith(b"+OK")
    front = cluster.procs["fe1"]
    front.terminate()
    assert front.wait(30) == 0
    assert a.readline() == b"* BYE server shutting down\r\n"
    assert p.file.readline() == b"-ERR server shutting down\r\n"
    assert mbox.read_bytes() == before
    p2 = pop3(cluster.fronts["fe2"])         # the other frontend serves on
    assert p2.stat()[0] == len(store_messages(cluster.mailroot))
    p2.quit()
