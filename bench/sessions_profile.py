"""What each of 50 concurrent IMAP sessions costs, and the shared upasfs's
share (issue 16; docs/performance.md, "Round 4").

Our host as the bench runs it (bench/ours.py) over the bench mailbox.
Printed, from one run:
  - one session alone (the median of 5): connect to greeting (the fork
    server's fork), LOGIN (factotum and the auth server), SELECT, FETCH of
    a first screen, LOGOUT;
  - the same phases under the bench's 50 concurrent sessions (the mean
    and the largest of each);
  - CPU seconds spent during the 50 sessions by each kind of process:
    the sessions (reaped by their fork server: its children's time), the
    user's upasfs, the broker/launcher, factotum, authsrv, keyfs;
  - with --py-spy, where upasfs and the sessions spend it: py-spy (from
    PyPI, `pip install '.[bench]'`) samples them and the heaviest
    functions are listed (own samples and with callees).

    python -m bench.sessions_profile [-n 10000] [--py-spy] [--mixed] [--reconnect N]
        [--idle N]

With --mixed, the bench's mixed-10 load (bench/workloads.py) is run and
profiled in place of the 50 sessions.  With --reconnect N, N sequential
reconnects as qresync-reconnect makes them (connect, LOGIN, ENABLE
QRESYNC, SELECT with QRESYNC, LOGOUT), each step timed by the client,
with the CPU of each kind of process per reconnect.  With --idle N, N
rounds of the bench's idle-10 (ten sessions opened back to back: connect,
LOGIN, SELECT, each left open), each step timed by the client, with each
session process's own CPU and minor page faults (its time as a spare
too) and each other kind of process's CPU per session.
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.clients import Imap  # noqa: E402
from bench.ours import Ours  # noqa: E402
from bench.procs import cmdline, descendants  # noqa: E402

SESSIONS = 50
PHASES = ("greeting", "login", "select", "fetch", "logout")
TICK = os.sysconf("SC_CLK_TCK")


def timed(ours: Ours, phases: tuple[str, ...], commands: tuple) -> dict[str, float]:
    """A session connected, then each command sent (None: the greeting),
    each phase's seconds."""
    out, c = timed_open(ours, phases, commands)
    c.close()
    return out


def timed_open(ours: Ours, phases: tuple[str, ...], commands: tuple) -> tuple[dict[str, float], Imap]:
    """timed(), the client left open."""
    out = {}
    t = time.perf_counter()
    c = Imap(ours.imap_addr)
    for phase, command in zip(phases, commands):
        if command:
            c.cmd(command)
        now = time.perf_counter()
        out[phase], t = now - t, now
    return out, c


def session(ours: Ours) -> dict[str, float]:
    """One session as the bench's sessions-50 runs it, each phase timed."""
    return timed(ours, PHASES, (None, ours.imap_login, "SELECT INBOX",
                                "FETCH 1:20 (UID FLAGS BODY.PEEK[HEADER])", "LOGOUT"))


RECONNECT = ("greeting", "login", "enable", "select", "logout")


def reconnect(ours: Ours, uidvalidity: int, modseq: int) -> dict[str, float]:
    """One qresync-reconnect, each step timed."""
    return timed(ours, RECONNECT, (None, ours.imap_login, "ENABLE QRESYNC",
                                   f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))", "LOGOUT"))


def reconnects(ours: Ours, n: int) -> None:
    """--reconnect: n sequential reconnects, each step's median (least),
    and each kind of process's CPU per reconnect."""
    import re
    c = Imap(ours.imap_addr)
    c.cmd(ours.imap_login)
    c.cmd("ENABLE QRESYNC")
    c.cmd("SELECT INBOX", keep=True)
    text = b"".join(c.untagged)
    c.cmd("LOGOUT")
    c.close()
    v = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))
    m = int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1))
    for _ in range(3):
        reconnect(ours, v, m)
    groups = kinds(ours)
    before = cpu_of(groups)
    got = [reconnect(ours, v, m) for _ in range(n)]
    after = cpu_of(groups)
    print(f"{n} reconnects (QRESYNC), per step median (least) ms:")
    print("  " + "  ".join(f"{p} {statistics.median(r[p] for r in got) * 1000:.1f}"
                           f" ({min(r[p] for r in got) * 1000:.1f})" for p in RECONNECT))
    whole = [sum(r[p] for p in RECONNECT[:-1]) for r in got]
    print(f"  connect to SELECT's OK: median {statistics.median(whole) * 1000:.1f} ms, "
          f"least {min(whole) * 1000:.1f} ms")
    print("CPU ms per reconnect:")
    for name in sorted(after, key=lambda k: -(after[k] - before.get(k, 0))):
        print(f"  {name:<26} {(after[name] - before.get(name, 0)) * 1000 / n:6.2f} ms")


IDLE = ("greeting", "login", "select")


def stat_of(pid: int) -> tuple[float, int]:
    """(own CPU seconds, minor page faults) of a process (schedstat's
    nanoseconds: stat's clock ticks are 10 ms)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ns = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except OSError:
        return 0.0, 0
    return ns / 1e9, int(f[7])


def idle_rounds(ours: Ours, rounds: int) -> None:
    """--idle: `rounds` times ten sessions opened back to back and left
    open (bench/workloads.py idle_sessions), then logged out."""
    from bench.workloads import IDLE_SESSIONS
    groups = kinds(ours)
    got, walls, own = [], [], []
    before = cpu_of(groups)
    for _ in range(rounds):
        clients, t = [], time.perf_counter()
        for _ in range(IDLE_SESSIONS):
            r, c = timed_open(ours, IDLE, (None, ours.imap_login, "SELECT INBOX"))
            got.append(r)
            clients.append(c)
        walls.append(time.perf_counter() - t)
        own += [stat_of(p) for p in ours._sessions()]
        for c in clients:
            c.cmd("LOGOUT")
            c.close()
        time.sleep(0.2)
    after = cpu_of(groups)
    n = rounds * IDLE_SESSIONS
    print(f"{rounds} rounds of {IDLE_SESSIONS} sessions opened back to back: wall "
          + " ".join(f"{w * 1000:.0f}" for w in walls) + " ms")
    print("per step median (least) ms:")
    print("  " + "  ".join(f"{p} {statistics.median(r[p] for r in got) * 1000:.1f}"
                           f" ({min(r[p] for r in got) * 1000:.1f})" for p in IDLE))
    if own:
        print(f"a session process's own CPU (its time as a spare too): median "
              f"{statistics.median(c for c, _ in own) * 1000:.1f} ms, mean "
              f"{statistics.mean(c for c, _ in own) * 1000:.1f} ms; minor faults median "
              f"{statistics.median(f for _, f in own):.0f}")
    print("CPU ms per session, by kind (the fork servers': their reaped sessions'):")
    for name in sorted(after, key=lambda k: -(after[k] - before.get(k, 0))):
        print(f"  {name:<26} {(after[name] - before.get(name, 0)) * 1000 / n:6.2f} ms")


def concurrent(ours: Ours) -> list[dict[str, float]]:
    got: list[dict[str, float]] = []
    lock = threading.Lock()

    def one() -> None:
        r = session(ours)
        with lock:
            got.append(r)
    threads = [threading.Thread(target=one) for _ in range(SESSIONS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return got


def cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return (int(f[11]) + int(f[12])) / TICK, (int(f[13]) + int(f[14])) / TICK


def kinds(ours: Ours) -> dict[str, list[int]]:
    """The host's processes by what they are."""
    out: dict[str, list[int]] = collections.defaultdict(list)
    for name, p in ours.host.procs:
        out[name].append(p.pid)
    launcher = ours.launcher_pid
    for pid in descendants(launcher):
        cmd = " ".join(cmdline(pid))
        if pid == launcher:
            continue
        if "upas.fs9p" in cmd:
            out["upasfs"].append(pid)
        elif "upas.forkserver" in cmd:
            out["fork servers (sessions)"].append(pid)
    return out


def cpu_of(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each group; a fork server's are its sessions'."""
    out = {}
    for name, pids in groups.items():
        own = [cpu(p) for p in pids]
        out[name] = sum(c if name.startswith("fork") else o + c for o, c in own)
    return out


def spy(pids: list[int], secs: float, out: Path) -> list[subprocess.Popen]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return [subprocess.Popen([exe, "record", "-p", str(p), "-d", str(int(secs) + 1), "-r", "200",
                              "--nonblocking", "--gil", "-f", "raw", "-o", str(out / f"{p}.txt")]
                             + (["--subprocesses"] if i else []),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i, p in enumerate(pids)]


def top_functions(path: Path, n: int = 16) -> list[tuple[str, float, float]]:
    """(function, own share, share with callees) of a py-spy raw profile."""
    own: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f.split(" (")[0] + " " + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                  for f in stack.split(";") if f]
        k = int(count)
        samples += k
        if frames:
            own[frames[-1]] += k
        for f in set(frames):
            total[f] += k
    if not samples:
        return []
    return [(f, own[f] / samples, total[f] / samples) for f, _ in own.most_common(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10_000, help="messages in the corpus")
    ap.add_argument("--py-spy", action="store_true", help="sample upasfs and the sessions")
    ap.add_argument("--mixed", action="store_true", help="profile mixed-10, not 50 sessions")
    ap.add_argument("--reconnect", type=int, metavar="N",
                    help="time N sequential QRESYNC reconnects, not 50 sessions")
    ap.add_argument("--idle", type=int, metavar="N",
                    help="N rounds of idle-10's ten sessions, not 50 sessions")
    a = ap.parse_args()
    from bench.corpus import corpus
    with tempfile.TemporaryDirectory(prefix="bench-sessions.", dir="/tmp") as d:
        with Ours(Path(d), corpus(a.n)) as ours:
            session(ours)                   # upasfs started, the .imp written
            if a.reconnect:
                return reconnects(ours, a.reconnect)
            if a.idle:
                return idle_rounds(ours, a.idle)
            alone = [session(ours) for _ in range(5)]
            print(f"{a.n} messages; one session alone (median of 5):")
            print("  " + "  ".join(f"{p} {statistics.median(r[p] for r in alone) * 1000:.0f} ms"
                                   for p in PHASES))
            groups = kinds(ours)
            before = cpu_of(groups)
            spies = spy(groups["upasfs"] + groups["fork servers (sessions)"][:1], 120,
                        Path(d)) if a.py_spy else []
            t = time.perf_counter()
            if a.mixed:
                from bench.workloads import mixed_load
                got = mixed_load(ours, {}, lambda *_: None).extra
            else:
                got = concurrent(ours)
            wall = time.perf_counter() - t
            after = cpu_of(groups)
            for p in spies:
                p.send_signal(signal.SIGINT)        # py-spy writes its profile then
                p.wait()
            if a.mixed:
                print(f"mixed-10: {wall:.2f} s wall, {got['commands_per_s']:.1f} commands/s, "
                      f"{got['errors']} errors")
            else:
                print(f"{SESSIONS} concurrent sessions: {wall:.2f} s wall; per phase mean / max:")
                print("  " + "  ".join(f"{p} {statistics.mean(r[p] for r in got) * 1000:.0f}"
                                       f"/{max(r[p] for r in got) * 1000:.0f} ms" for p in PHASES))
            print("CPU seconds meanwhile (2 cores shared with other work):")
            for name in sorted(after, key=lambda k: -(after[k] - before.get(k, 0))):
                print(f"  {name:<26} {after[name] - before.get(name, 0):6.2f} s")
            for pid, sp in zip(groups["upasfs"] + groups["fork servers (sessions)"][:1], spies):
                prof = Path(d) / f"{pid}.txt"
                if prof.exists():
                    who = "upasfs" if pid in groups["upasfs"] else "sessions"
                    print(f"py-spy, {who}: function, own share, share with callees")
                    for f, o, tot in top_functions(prof):
                        print(f"  {o:6.1%} {tot:6.1%}  {f}")


if __name__ == "__main__":
    main()
