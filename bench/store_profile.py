"""What one `UID STORE 1:* +FLAGS (\\Seen)` costs the session that runs it
(store-seen's command; docs/performance.md, "Round 4, eighth part").

Our host as the bench runs it (bench/ours.py) over the bench mailbox.
Each round is the bench's: a session clears \\Seen on every message and
logs out; a new one logs in and selects INBOX, then the STORE is sent and
its reply read.  Printed: the client's wall time of the STORE and the
session process's CPU for it (its process CPU clock read around the
command, in nanoseconds: every thread's) and its minor page faults, the
least and the median of the rounds.  With
--py-spy the session processes are sampled meanwhile and the heaviest
functions are listed.

    python -m bench.store_profile [-n 10000] [--rounds 30] [--py-spy]
           [--condstore]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.clients import Imap  # noqa: E402
from bench.ours import Ours  # noqa: E402
from bench.procs import children, cmdline  # noqa: E402
from bench.sessions_profile import spy, top_functions  # noqa: E402

COMMAND = "UID STORE 1:* +FLAGS (\\Seen)"


def cpu_ns(pid: int) -> int:
    """The CPU time a process (all its threads, ended ones too) has spent
    so far, in nanoseconds: its process CPU clock (clock_getcpuclockid's
    id for a pid: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED))."""
    return time.clock_gettime_ns(((~pid) << 3) | 2)


def minflt(pid: int) -> int:
    """The minor page faults of a process so far (all its threads:
    /proc/PID/stat's tenth field)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[7])


def session_pid(ours: Ours, c: Imap) -> int:
    """The session process serving the client c: the one holding the
    server's end of c's TCP connection (found in /proc/net/tcp by c's
    port, then among the sessions' descriptors by the socket's inode)."""
    port, server = c.sock.getsockname()[1], c.sock.getpeername()[1]
    inode = None
    for _ in range(100):
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(name).read_text().splitlines()[1:]:
                f = line.split()
                if int(f[2].rsplit(":", 1)[1], 16) == port and \
                        int(f[1].rsplit(":", 1)[1], 16) == server and f[3] == "01":
                    inode = f[9]                # its remote end is c, established
        if inode is not None:
            break
        time.sleep(0.01)
    want = f"socket:[{inode}]"
    for pid in ours._sessions():
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == want:
                    return pid
            except OSError:
                pass
    raise RuntimeError("no session process found")


def one(ours: Ours, extra: str | None) -> tuple[float, float, int]:
    """A round: (wall seconds, session CPU seconds, the session's minor
    page faults) of the STORE."""
    c = Imap(ours.imap_addr)
    c.cmd(ours.imap_login)
    c.cmd("SELECT INBOX")
    c.cmd("UID STORE 1:* -FLAGS.SILENT (\\Seen)")
    c.cmd("LOGOUT")
    c.close()
    c = Imap(ours.imap_addr)
    c.cmd(ours.imap_login)
    pid = session_pid(ours, c)
    if extra:
        c.cmd(extra)
    c.cmd("SELECT INBOX")
    cpu, faults = cpu_ns(pid), minflt(pid)
    t = time.perf_counter()
    c.cmd(COMMAND)
    wall = time.perf_counter() - t
    cpu, faults = cpu_ns(pid) - cpu, minflt(pid) - faults
    c.cmd("LOGOUT")
    c.close()
    return wall, cpu / 1e9, faults


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10_000, help="messages in the corpus")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--py-spy", action="store_true", help="sample the sessions")
    ap.add_argument("--condstore", action="store_true", help="ENABLE CONDSTORE first")
    a = ap.parse_args()
    from bench.corpus import corpus
    extra = "ENABLE CONDSTORE" if a.condstore else None
    with tempfile.TemporaryDirectory(prefix="bench-store.", dir="/tmp") as d:
        with Ours(Path(d), corpus(a.n)) as ours:
            for _ in range(3):
                one(ours, extra)
            forkservers = [p for p in children(ours.launcher_pid)
                           if "upas.forkserver" in cmdline(p)] if a.py_spy else []
            spies = spy(forkservers, 600, Path(d)) if a.py_spy else []
            got = [one(ours, extra) for _ in range(a.rounds)]
            for p in spies:
                p.send_signal(signal.SIGINT)
                p.wait()
            walls, cpus = [g[0] * 1000 for g in got], [g[1] * 1000 for g in got]
            faults = [g[2] for g in got]
            print(f"{a.n} messages, {a.rounds} rounds of {COMMAND}"
                  + (" (CONDSTORE)" if a.condstore else "") + ": least / median ms")
            print(f"  wall          {min(walls):6.2f} / {statistics.median(walls):6.2f}")
            print(f"  session CPU   {min(cpus):6.2f} / {statistics.median(cpus):6.2f}")
            print(f"  page faults   {min(faults):6d} / {statistics.median(faults):6.0f}")
            for pid in forkservers:
                prof = Path(d) / f"{pid}.txt"
                if prof.exists():
                    print("py-spy, sessions: own share, share with callees, function")
                    for f, o, tot in top_functions(prof, 40):
                        print(f"  {o:6.1%} {tot:6.1%}  {f}")


if __name__ == "__main__":
    main()
