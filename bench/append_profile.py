"""What one APPEND of append-1000 costs (docs/performance.md, "Round 4,
ninth part").

Our host as the bench runs it (bench/ours.py): one session creates
`benchappend` and APPENDs the bench's messages to it, one command each
with a synchronizing literal, as bench/workloads.py's append() does.
Printed, per APPEND: the client's wall time, the session process's CPU
and upasfs's CPU (their process CPU clocks read around each command),
the least and the median over the APPENDs after the first 20 (the run's
first ones take the long way: the `status` view of the target).  With
--py-spy the session is sampled meanwhile and its heaviest functions
are listed.

    python -m bench.append_profile [-n 10000] [--appends 400] [--py-spy]
"""
from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
from pathlib import Path
import time

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.__main__ import append_messages  # noqa: E402
from bench.clients import Imap  # noqa: E402
from bench.ours import Ours  # noqa: E402
from bench.sessions_profile import spy, top_functions  # noqa: E402
from bench.store_profile import cpu_ns, session_pid  # noqa: E402

WARM = 20       # APPENDs left out of the figures


def run(ours: Ours, msgs: list[bytes], py_spy: Path | None) -> list[tuple[float, float, float]]:
    """(wall, session CPU, upasfs CPU) seconds of each APPEND."""
    c = Imap(ours.imap_addr)
    c.cmd(ours.imap_login)
    try:
        c.cmd("DELETE benchappend")
    except RuntimeError:
        pass
    c.cmd("CREATE benchappend")
    pid = session_pid(ours, c)
    fs = ours._upasfs()
    spies = spy([pid], 600, py_spy) if py_spy else []
    got = []
    for m in msgs:
        cpu, fcpu = cpu_ns(pid), sum(map(cpu_ns, fs))
        t = time.perf_counter()
        c.cmd("APPEND benchappend ()", m)
        wall = time.perf_counter() - t
        got.append((wall, (cpu_ns(pid) - cpu) / 1e9, (sum(map(cpu_ns, fs)) - fcpu) / 1e9))
    for p in spies:
        p.send_signal(signal.SIGINT)
        p.wait()
    c.cmd("DELETE benchappend")
    c.cmd("LOGOUT")
    c.close()
    return got[WARM:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10_000, help="messages in the corpus")
    ap.add_argument("--appends", type=int, default=400)
    ap.add_argument("--py-spy", action="store_true", help="sample the session")
    a = ap.parse_args()
    from bench.corpus import corpus
    msgs = append_messages(a.appends + WARM)
    with tempfile.TemporaryDirectory(prefix="bench-append.", dir="/tmp") as d:
        with Ours(Path(d), corpus(a.n)) as ours:
            got = run(ours, msgs, Path(d) if a.py_spy else None)
            print(f"{len(got)} APPENDs (after {WARM}): least / quartiles / mean ms")
            for name, k in (("wall", 0), ("session CPU", 1), ("upasfs CPU", 2)):
                xs = [g[k] * 1000 for g in got]
                q = statistics.quantiles(xs, n=4)
                print(f"  {name:12s}  {min(xs):6.3f} / {q[0]:6.3f} {q[1]:6.3f} {q[2]:6.3f}"
                      f" / {statistics.mean(xs):6.3f}")
            for prof in Path(d).glob("*.txt"):
                print("py-spy, the session: own share, share with callees, function")
                for f, o, tot in top_functions(prof, 40):
                    print(f"  {o:6.1%} {tot:6.1%}  {f}")


if __name__ == "__main__":
    main()
