"""The workloads of issue 8, each run the same way against ours and Dovecot.

A workload is an untimed `setup(server)` and a timed `run(server, tick)`
returning a Sample; `tick(done, total)` drives the progress bar.  Peak
memory is read from the server before the session logs out.
"""
from __future__ import annotations

import functools
import hashlib
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from bench.clients import Imap, Pop3

SEARCH_WORD = "factotum"
SESSIONS = 50
APPENDS = 1000
MIXED_CLIENTS = 10
MIXED_SESSIONS = 3          # sessions each mixed-load client runs in turn
IDLE_SESSIONS = 10
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")
Tick = Callable[[int, int], None]


@dataclass
class Sample:
    seconds: float
    peak_kb: int = 0
    extra: dict = field(default_factory=dict)


@dataclass
class Workload:
    name: str
    title: str
    run: Callable[..., Sample]
    setup: Callable = lambda server, ctx: None


def imap_session(server) -> Imap:
    c = Imap(server.imap_addr)
    if server.imap_login:
        c.cmd(server.imap_login)
    return c


def selected(server) -> Imap:
    c = imap_session(server)
    c.cmd("SELECT INBOX")
    return c


def timed_command(command: str) -> Callable[..., Sample]:
    """One timed command in a session that has selected INBOX."""
    def run(server, ctx, tick: Tick) -> Sample:
        c = selected(server)
        t = time.perf_counter()
        lines = c.cmd(command)
        secs = time.perf_counter() - t
        peak = server.peak_kb()
        c.cmd("LOGOUT")
        return Sample(secs, peak, {"untagged": lines})
    return run


def pop3_download(server, ctx, tick: Tick) -> Sample:
    """The wall time of 10,000 request-reply round trips swings with
    whatever else the machine runs (each waits for two processes to be
    scheduled); the CPU the server's processes spent (server_cpu, until
    the last message is in) does not, and is kept beside it."""
    cpu = server.cpu_seconds()
    t = time.perf_counter()
    c = Pop3(server.pop3_addr)
    for line in server.pop3_login:
        c.cmd(line)
    n = int(c.cmd("STAT").split()[1])
    c.cmd("UIDL")
    c.multi()
    h, octets = hashlib.sha1(), 0
    for i in range(1, n + 1):
        c.cmd(f"RETR {i}")
        data = c.multi()
        octets += len(data)
        h.update(data)
        if i % 100 == 0:
            tick(i, n)
    cpu = server.cpu_seconds() - cpu
    peak = server.peak_kb()
    c.cmd("QUIT")
    return Sample(time.perf_counter() - t, peak,
                  {"messages": n, "octets": octets, "sha1": h.hexdigest()[:12],
                   "server_cpu": round(cpu, 3)})


def pop3_warm(server, ctx) -> None:
    """An untimed login, STAT and UIDL first, so that every timed download
    finds the server warm: the first session after the servers start pays
    for Dovecot's index of the mbox (its first download took 1.5 s of CPU
    against 0.6 s after) and for our upasfs's first reading of the mailbox
    and its index (2.6 s against 1.2 s); the rounds measured each other
    workload warm too (select-cold measures the cold open)."""
    c = Pop3(server.pop3_addr)
    for line in server.pop3_login:
        c.cmd(line)
    c.cmd("STAT")
    c.cmd("UIDL")
    c.multi()
    c.cmd("QUIT")
    c.close()


def select_cold_setup(server, ctx) -> None:
    server.drop_index()


def select(server, ctx, tick: Tick) -> Sample:
    c = imap_session(server)
    t = time.perf_counter()
    c.cmd("SELECT INBOX")
    secs = time.perf_counter() - t
    peak = server.peak_kb()
    c.cmd("LOGOUT")
    return Sample(secs, peak)


def warm(server, ctx) -> None:
    selected(server).cmd("LOGOUT")


def unseen(server, ctx) -> None:
    c = selected(server)
    c.cmd("UID STORE 1:* -FLAGS.SILENT (\\Seen)")
    c.cmd("LOGOUT")


def warmed_by(command: str) -> Callable:
    """Setup: the command run once in a session of its own, so that what
    the server keeps of it (our digest cache, Dovecot's index) is made."""
    def setup(server, ctx) -> None:
        c = selected(server)
        c.cmd(command)
        c.cmd("LOGOUT")
    return setup


SORT_DATE = "SORT (DATE) UTF-8 ALL"
THREAD_REFS = "THREAD REFERENCES UTF-8 ALL"


def append_setup(server, ctx) -> None:
    c = imap_session(server)
    try:
        c.cmd("DELETE benchappend")
    except RuntimeError:
        pass
    c.cmd("CREATE benchappend")
    c.cmd("LOGOUT")


def append(server, ctx, tick: Tick) -> Sample:
    msgs = ctx["append_messages"]
    c = imap_session(server)
    t = time.perf_counter()
    for i, m in enumerate(msgs, 1):
        c.cmd("APPEND benchappend ()", m)
        if i % 50 == 0:
            tick(i, len(msgs))
    secs = time.perf_counter() - t
    peak = server.peak_kb()
    c.cmd("DELETE benchappend")
    c.cmd("LOGOUT")
    return Sample(secs, peak, {"messages": len(msgs)})


def all_at_once(fns: list[Callable[[], None]]) -> float:
    """Seconds until every fn, each run in its own thread, has returned."""
    threads = [threading.Thread(target=fn) for fn in fns]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t


def concurrent_sessions(server, ctx, tick: Tick) -> Sample:
    """SESSIONS clients at once: SELECT, the headers of the first 20
    messages (a client's first screen), LOGOUT.  Errors are counted, not raised."""
    errors: list[str] = []
    done = [0]
    lock = threading.Lock()
    peaks: list[int] = []

    def one() -> None:
        try:
            c = imap_session(server)
            c.cmd("SELECT INBOX")
            c.cmd("FETCH 1:20 (UID FLAGS BODY.PEEK[HEADER])")
            with lock:
                if len(peaks) == SESSIONS // 2:
                    peaks.append(server.peak_kb())
                else:
                    peaks.append(0)
            c.cmd("LOGOUT")
            c.close()
        except Exception as e:  # every failure is a result here
            with lock:
                errors.append(f"{type(e).__name__}: {e}")
        with lock:
            done[0] += 1
            tick(done[0], SESSIONS)

    secs = all_at_once([one] * SESSIONS)
    return Sample(secs, max(peaks, default=0),
                  {"sessions_per_s": SESSIONS / secs, "errors": len(errors),
                   "first_error": errors[0] if errors else ""})


def mixed_load(server, ctx, tick: Tick) -> Sample:
    """MIXED_CLIENTS clients at once, each running MIXED_SESSIONS sessions
    of what a mail client sends (mixed_session); commands per second and
    protocol errors (NO, BAD, a dropped connection) counted."""
    done, errors, commands = [0], [], [0]
    lock = threading.Lock()
    peaks: list[int] = []
    total = MIXED_CLIENTS * MIXED_SESSIONS

    def client(k: int) -> None:
        rng = random.Random(k)
        for i in range(MIXED_SESSIONS):
            n, errs = mixed_session(server, rng, f"{k}.{i}")
            with lock:
                commands[0] += n
                errors.extend(errs)
                done[0] += 1
                tick(done[0], total)
                if done[0] == total // 2:
                    peaks.append(server.peak_kb())

    secs = all_at_once([functools.partial(client, k) for k in range(MIXED_CLIENTS)])
    return Sample(secs, max(peaks, default=0),
                  {"commands": commands[0], "commands_per_s": commands[0] / secs,
                   "errors": len(errors), "first_error": errors[0] if errors else ""})


def idle_sessions(server, ctx, tick: Tick) -> Sample:
    """IDLE_SESSIONS sessions logged in, INBOX selected, then idle (a
    client left open on a desktop): the time to open them one after the
    other, and the memory each session's processes hold meanwhile (PSS,
    which counts pages shared with a fork server or another session by
    share; the mean of the sessions)."""
    t = time.perf_counter()
    clients = []
    for i in range(IDLE_SESSIONS):
        clients.append(selected(server))
        tick(i + 1, IDLE_SESSIONS)
    secs = time.perf_counter() - t
    time.sleep(0.5)                          # what a SELECT left behind settles
    pss = server.session_pss_kb()
    for c in clients:
        c.cmd("LOGOUT")
        c.close()
    return Sample(secs, sum(pss), {"pss_kb_per_session": sum(pss) / max(1, len(pss)),
                                   "sessions": len(pss)})


def mixed_session(server, rng: random.Random, label: str) -> tuple[int, list[str]]:
    """login, select, the flags of all (a client's sync), the envelopes of
    a screenful, two bodies (one marks \\Seen), STORE of flags and of a
    keyword, APPEND, \\Deleted on what it appended, EXPUNGE, logout.
    Only messages a session appended are expunged, so the mailbox keeps
    its size and the numbers below EXISTS - 2 * MIXED_CLIENTS stay put."""
    errors: list[str] = []
    sent = [0]

    def do(c: Imap, text: str, literal: bytes | None = None, keep: bool = False) -> None:
        sent[0] += 1
        try:
            c.cmd(text, literal, keep)
        except RuntimeError as e:           # NO or BAD: counted, the session goes on
            errors.append(str(e)[:200])

    try:
        c = Imap(server.imap_addr)
        if server.imap_login:
            do(c, server.imap_login)
        do(c, "SELECT INBOX", keep=True)
        exists = next(int(x.split()[1]) for x in c.untagged if x.endswith(b" EXISTS\r\n"))
        top = max(1, exists - 2 * MIXED_CLIENTS)
        do(c, "UID FETCH 1:* (FLAGS)")
        lo = rng.randint(1, max(1, top - 19))
        do(c, f"FETCH {lo}:{min(top, lo + 19)} (UID FLAGS RFC822.SIZE ENVELOPE)")
        do(c, f"FETCH {rng.randint(1, top)} BODY[]")
        do(c, f"FETCH {rng.randint(1, top)} BODY.PEEK[]")
        do(c, f"STORE {rng.randint(1, top)} +FLAGS (\\Flagged)")
        k = rng.randint(1, top)
        do(c, f"STORE {k} +FLAGS ($Bench)")
        do(c, f"STORE {k} -FLAGS ($Bench)")
        msg = (f"From: bench <bench@example.org>\r\nTo: glenda@example.org\r\n"
               f"Subject: mixed load {label}\r\nMessage-ID: <{label}.{time.time()}@bench>\r\n"
               f"\r\nA message a client saved.\r\n").encode()
        do(c, "APPEND INBOX (\\Seen $Bench)", msg)
        uid = _APPENDUID.search(c.tagged)
        if uid is None:
            errors.append(f"APPEND: no APPENDUID in {c.tagged!r}")
        else:
            do(c, f"UID STORE {uid.group(1).decode()} +FLAGS.SILENT (\\Deleted)")
        do(c, "EXPUNGE")
        do(c, "LOGOUT")
        c.close()
    except Exception as e:  # a dropped connection: the rest of the session is lost
        errors.append(f"{type(e).__name__}: {e}")
    return sent[0], errors


RESYNC_CHANGES = 20         # messages another client flags between two connections
_HIGHEST = re.compile(rb"\[HIGHESTMODSEQ (\d+)\]")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")


def resync_setup(server, ctx) -> None:
    """A client syncs INBOX and disconnects, remembering UIDVALIDITY and
    HIGHESTMODSEQ; another then flags RESYNC_CHANGES messages (cleared
    again, by the next round's setup: a change either way)."""
    c = imap_session(server)
    c.cmd("ENABLE QRESYNC")
    c.cmd("SELECT INBOX", keep=True)
    text = b"".join(c.untagged)
    exists = next(int(x.split()[1]) for x in c.untagged if x.endswith(b" EXISTS\r\n"))
    ctx[server.name] = (int(_UIDVALIDITY.search(text).group(1)),
                        int(_HIGHEST.search(text).group(1)), exists)
    c.cmd("LOGOUT")
    c = selected(server)
    step = max(1, exists // RESYNC_CHANGES)
    nums = ",".join(str(i) for i in range(1, exists + 1, step)[:RESYNC_CHANGES])
    flagged = ctx.get("resync_flagged", {}).get(server.name, False)
    c.cmd(f"STORE {nums} {'-' if flagged else '+'}FLAGS.SILENT (\\Flagged)")
    ctx.setdefault("resync_flagged", {})[server.name] = not flagged
    c.cmd("LOGOUT")


def _reconnect(server, ctx, select: str, fetch: str | None) -> Sample:
    """Timed: connect, log in, resync INBOX the way `select` (and `fetch`) do."""
    t = time.perf_counter()
    c = imap_session(server)
    if "QRESYNC" in select:
        c.cmd("ENABLE QRESYNC")
    lines = c.cmd(select)
    if fetch:
        lines += c.cmd(fetch)
    secs = time.perf_counter() - t
    peak = server.peak_kb()
    c.cmd("LOGOUT")
    return Sample(secs, peak, {"untagged": lines})


def qresync_reconnect(server, ctx, tick: Tick) -> Sample:
    """The reconnect of a QRESYNC client (RFC 7162 3.2.5): one SELECT
    brings what changed since its HIGHESTMODSEQ."""
    v, m, _ = ctx[server.name]
    return _reconnect(server, ctx, f"SELECT INBOX (QRESYNC ({v} {m}))", None)


def flags_reconnect(server, ctx, tick: Tick) -> Sample:
    """The same reconnect without QRESYNC: SELECT, then every message's flags."""
    return _reconnect(server, ctx, "SELECT INBOX", "UID FETCH 1:* (UID FLAGS)")


WORKLOADS = [
    Workload("pop3", "POP3 full download", pop3_download, pop3_warm),
    Workload("select-cold", "SELECT cold", select, select_cold_setup),
    Workload("select-warm", "SELECT warm", select, warm),
    Workload("fetch-envelope", "FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)",
             timed_command("FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)")),
    Workload("fetch-body", "FETCH 1:* BODY.PEEK[]", timed_command("FETCH 1:* BODY.PEEK[]")),
    Workload("search-text", f"SEARCH TEXT {SEARCH_WORD}",
             timed_command(f"SEARCH TEXT {SEARCH_WORD}")),
    Workload("sort-date", SORT_DATE + ", warm", timed_command(SORT_DATE), warmed_by(SORT_DATE)),
    Workload("thread-refs", THREAD_REFS + ", warm", timed_command(THREAD_REFS),
             warmed_by(THREAD_REFS)),
    Workload("sessions-50", f"{SESSIONS} concurrent sessions", concurrent_sessions),
    Workload("store-seen", "UID STORE 1:* +FLAGS (\\Seen)",
             timed_command("UID STORE 1:* +FLAGS (\\Seen)"), unseen),
    Workload("append-1000", f"APPEND of {APPENDS} messages", append, append_setup),
    Workload("mixed-10", f"{MIXED_CLIENTS} clients, mixed commands", mixed_load),
    Workload("qresync-reconnect", f"reconnect with QRESYNC, {RESYNC_CHANGES} changed",
             qresync_reconnect, resync_setup),
    Workload("flags-reconnect", f"reconnect, all flags fetched, {RESYNC_CHANGES} changed",
             flags_reconnect, resync_setup),
    Workload("idle-10", f"{IDLE_SESSIONS} idle sessions, INBOX selected", idle_sessions),
]
BY_NAME = {w.name: w for w in WORKLOADS}
