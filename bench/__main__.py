"""`make bench`: every workload of issue 8 on ours and on Dovecot, in one run.

For each mailbox size: the corpus (bench/corpus.py, cached in bench/out/),
our servers (bench/ours.py) and Dovecot (bench/dovecot.py) on copies of it;
each workload run ROUNDS times, ours and Dovecot alternately (the order
swapped every round); the median, the ratio, the peak memory.  At the end:
the table, bench/out/bench-TIME.json and bench/out/bench-TIME.png.

    python -m bench [--sizes 1000,10000] [--workloads pop3,select-cold,...]
                    [--rounds 3] [--no-dovecot] [--listen-exec] [--install-dovecot]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import dovecot, report, upasfs_bench  # noqa: E402
from bench.corpus import corpus  # noqa: E402
from bench.dovecot import Dovecot  # noqa: E402
from bench.ours import Ours  # noqa: E402
from bench.workloads import APPENDS, BY_NAME, WORKLOADS  # noqa: E402

OUT = REPO / "bench" / "out"


def append_messages(n: int) -> list[bytes]:
    """n messages for APPEND, CRLF lines, from a corpus of another seed."""
    data = corpus(n, seed=2).read_bytes()
    msgs = []
    for m in data.split(b"\n\nFrom ")[:n]:
        body = m.split(b"\n", 1)[1]
        msgs.append(body.rstrip(b"\n").replace(b"\n", b"\r\n") + b"\r\n")
    return msgs


def measure(workload, server, ctx: dict) -> dict:
    workload.setup(server, ctx)
    bar = report.Progress(f"{server.name}: {workload.name}")
    try:
        s = workload.run(server, ctx, bar.show)
    finally:
        bar.end()
    return {"seconds": s.seconds, "peak_kb": s.peak_kb, "extra": s.extra}


def summarize(samples: list[dict]) -> dict:
    out = {"median": statistics.median(s["seconds"] for s in samples),
           "rounds": [s["seconds"] for s in samples],
           "peak_kb": max(s["peak_kb"] for s in samples),
           "extra": samples[-1]["extra"]}
    cpu = [s["extra"]["server_cpu"] for s in samples if "server_cpu" in s["extra"]]
    if cpu:
        out["server_cpu_rounds"] = cpu
        out["server_cpu_median"] = statistics.median(cpu)
    return out


def run_size(n: int, names: list[str], rounds: int, with_dovecot: bool,
             listen_exec: bool = False) -> dict:
    mbox = corpus(n)
    ctx = {"append_messages": append_messages(APPENDS)} if "append-1000" in names else {}
    out = {"messages": n, "mbox_bytes": mbox.stat().st_size, "workloads": {}}
    print(f"\n{n} messages, {out['mbox_bytes'] / 1e6:.1f} MB")
    with tempfile.TemporaryDirectory(prefix="bench.", dir="/tmp") as d:
        (Path(d) / "ours").mkdir()
        (Path(d) / "dovecot").mkdir()
        with Ours(Path(d) / "ours", mbox, listen_exec) as ours:
            servers = [ours]
            if with_dovecot:
                servers.append(Dovecot(Path(d) / "dovecot", mbox).__enter__())
            try:
                for name in names:
                    w = BY_NAME[name]
                    samples: dict[str, list] = {s.name: [] for s in servers}
                    for r in range(rounds):
                        for s in (servers if r % 2 == 0 else servers[::-1]):
                            samples[s.name].append(measure(w, s, ctx))
                    out["workloads"][name] = {k: summarize(v) for k, v in samples.items()}
                    line = "  ".join(f"{k} {v['median']:.2f}s"
                                     for k, v in out["workloads"][name].items())
                    print(f"  {name:<15} {line}")
            finally:
                for s in servers[1:]:
                    s.__exit__()
            ours._stop_fs()
            out["upasfs_peak_kb"] = ours.upasfs_peak_kb()
    out["upasfs_start"] = upasfs_bench.startup(mbox)
    print("  upasfs start    " + "  ".join(f"{k} {v:.2f}s" for k, v in out["upasfs_start"].items()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000",
                    help="mailbox sizes in messages, comma-separated (100000 on request)")
    ap.add_argument("--workloads", default=",".join(w.name for w in WORKLOADS),
                    help="comma-separated, of: " + ", ".join(w.name for w in WORKLOADS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-dovecot", action="store_true", help="time ours only")
    ap.add_argument("--listen-exec", action="store_true",
                    help="our launcher execs every session (no fork server)")
    ap.add_argument("--install-dovecot", action="store_true",
                    help="apt-get install " + " ".join(dovecot.PACKAGES) + " if missing")
    a = ap.parse_args(argv)
    names = [w for w in a.workloads.split(",") if w]
    unknown = [w for w in names if w not in BY_NAME]
    if unknown:
        ap.error(f"unknown workload {', '.join(unknown)}")
    sizes = [int(s) for s in a.sizes.split(",")]
    with_dovecot = not a.no_dovecot and (dovecot.install() if a.install_dovecot
                                         else dovecot.installed())
    if not a.no_dovecot and not with_dovecot:
        print("dovecot skipped: not installed (try --install-dovecot)")
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "rounds": a.rounds, "listen_exec": a.listen_exec, "sizes": []}
    path = OUT / time.strftime("bench-%Y%m%dT%H%M%S.json", time.gmtime())
    for n in sizes:
        results["sizes"].append(run_size(n, names, a.rounds, with_dovecot, a.listen_exec))
        report.write_json(results, path)         # partial results survive a crash
    print()
    print(report.table(results))
    print(f"\nresults: {path}")
    png = report.plot(results, path.with_suffix(".png"))
    if png:
        print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
