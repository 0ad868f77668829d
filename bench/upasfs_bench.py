"""upasfs on a 10,000-message (~100 MB) mailbox (issue 2, Benchmarks).

Printed, from one run:
  - time to open the mailbox (process start to posted service, and a ctl
    `open` of the same file under a second name),
  - start-up on the unchanged mailbox with its index and without one
    (UPASFS_INDEX=0), the median of three starts each (startup()),
  - peak memory (VmHWM) of the upasfs process against the mailbox size,
  - MB/s reading every message's `raw` over 9P, beside a plain local read
    of the same mailbox file as the reference,
  - files/s for walk/open/read/clunk of every message's `digest`, one
    file at a time and batched (read_many, as imap4d's SELECT reads them),
    and the same digests from one read of the mailbox's `summary`,
  - files/s reading every message's `info` batched, which parses every
    message (the MIME work of IMAP's FETCH and SEARCH),
  - the raw reads again straight through the tree (no 9P), to show where
    the time goes.

    python -m bench.upasfs_bench [--sizes 10000,100000 | -n MESSAGES]

The corpus is the one `python -m bench` caches in bench/out/corpus.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.corpus import corpus  # noqa: E402
from upas import ninep  # noqa: E402

USER = "glenda"


def vmhwm_kb(pid: int, field: str = "VmHWM") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def vmrss_kb(pid: int) -> int:
    return vmhwm_kb(pid, "VmRSS")


def start(root: Path, ns: Path, extra: dict | None = None) -> tuple[subprocess.Popen, float]:
    env = dict(os.environ, MAILROOT=str(root), NAMESPACE=str(ns), user=USER, **(extra or {}))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "upas.fs9p", "-s", "-p"],
                            env=env, cwd=str(REPO))
    addr = "unix!" + str(ns / "upasfs")
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"upasfs exited with {proc.returncode}")
        try:
            ninep.Client.dial(addr, uname=USER).close()
            return proc, time.perf_counter() - t0
        except (OSError, ninep.Error):
            time.sleep(0.02)


def startup(src: Path, rounds: int = 3) -> dict:
    """Seconds from process start to the posted service, upasfs opening
    the unchanged mailbox src: the first start (no index yet: it reads
    the file and writes the index), then alternately without an index
    (UPASFS_INDEX=0: every message read, hashed and its structure
    scanned) and from the index (medians of `rounds`)."""
    with tempfile.TemporaryDirectory(prefix="upasfs-start-") as tmp:
        root = Path(tmp) / "mail"
        box = root / "box" / USER
        box.mkdir(parents=True)
        os.symlink(src, box / "mbox")       # the index is written beside the link
        ns = Path(tmp) / "ns"
        ns.mkdir(mode=0o700)
        times: dict[str, list[float]] = {"first": [], "no index": [], "index": []}
        runs = [("first", {})] + [m for _ in range(rounds) for m in
                                  (("no index", {"UPASFS_INDEX": "0"}), ("index", {}))]
        for mode, env in runs:
            proc, secs = start(root, ns, env)
            proc.terminate()
            proc.wait()
            times[mode].append(secs)
    return {mode: statistics.median(v) for mode, v in times.items()}


def local_read(path: Path) -> float:
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 16):
            pass
    return time.perf_counter() - t0


def walks_first(ns: Path, names: list[str]) -> str:
    """Rates of the digest reads and stats when every request waits for
    its walk: our client as it talks to servers not known to be ours."""
    c = ninep.Client.dial("unix!" + str(ns / "upasfs"), uname=USER)
    c.walks_pipelined = False
    rates = []
    for what, fn in (("read", lambda: [c.read(f"mbox/{n}/digest") for n in names]),
                     ("stat", lambda: [c.stat(f"mbox/{n}/digest") for n in names]),
                     ("read_many", lambda: c.read_many([f"mbox/{n}/digest" for n in names], 64)),
                     ("stat_many", lambda: c.stat_many([f"mbox/{n}/digest" for n in names]))):
        t0 = time.perf_counter()
        fn()
        rates.append(f"{what} {len(names) / (time.perf_counter() - t0):.0f}/s")
    c.close()
    return ", ".join(rates)


def pipelined_stats(c: ninep.Client, names: list[str]) -> str:
    t0 = time.perf_counter()
    for n in names:
        c.stat(f"mbox/{n}/digest")
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    c.stat_many([f"mbox/{n}/digest" for n in names])
    many = time.perf_counter() - t0
    return f"stat {len(names) / one:.0f}/s, stat_many {len(names) / many:.0f}/s"


def tree_only(mbox: Path, names: list[str]) -> float:
    """Seconds to walk/open/read/clunk every raw file through upas.fs9p.tree
    directly: what the file server costs without the 9P transport."""
    from upas.fs9p.tree import MailFS
    fs = MailFS(USER)
    fs.open(str(mbox), "mbox")
    root = fs.attach(USER, "")
    t0 = time.perf_counter()
    for name in names:
        f = root.walk("mbox").walk(name).walk("raw")
        o = f.open(ninep.OREAD, USER)
        o.read(0, f.stat().length)
        o.clunk()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000",
                    help="corpus sizes in messages, comma-separated, as `python -m bench`")
    ap.add_argument("-n", type=int, help="one corpus size")
    a = ap.parse_args()
    for n in [a.n] if a.n else [int(x) for x in a.sizes.split(",") if x]:
        bench_size(n)


def bench_size(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="upasfs-bench-") as tmp:
        root = Path(tmp) / "mail"
        box = root / "box" / USER
        box.mkdir(parents=True)
        ns = Path(tmp) / "ns"
        ns.mkdir(mode=0o700)
        mbox = box / "mbox"
        src = corpus(n)
        os.symlink(src, mbox)               # only read: no copy needed
        size = src.stat().st_size
        print(f"corpus: {n} messages, {size / 1e6:.1f} MB")
        st = startup(src)
        print(f"start-up (process start to service posted, median of 3): "
              f"{st['index']:.2f} s from the index, {st['no index']:.2f} s without "
              f"(UPASFS_INDEX=0); the first start, writing the index, {st['first']:.2f} s")
        proc, secs = start(root, ns)
        try:
            run(proc, ns, mbox, size, secs, n)
        finally:
            proc.terminate()
            proc.wait()


def run(proc, ns: Path, mbox: Path, size: int, startup: float, n: int) -> None:
    c = ninep.Client.dial("unix!" + str(ns / "upasfs"), uname=USER)
    t0 = time.perf_counter()
    c.write("ctl", f"open {mbox} again\n".encode())
    reopen = time.perf_counter() - t0
    c.write("ctl", b"close again\n")
    print(f"open: process start to service posted {startup:.2f} s; "
          f"ctl open of the same mailbox {reopen:.2f} s")

    names = [s.name for s in c.readdir("mbox")]
    assert len(names) == n, len(names)

    local = local_read(mbox)
    t0 = time.perf_counter()
    total = 0
    for name in names:
        total += len(c.read(f"mbox/{name}/raw"))
    ninep_secs = time.perf_counter() - t0
    print(f"read all raw over 9P: {total / 1e6:.1f} MB in {ninep_secs:.2f} s = "
          f"{total / 1e6 / ninep_secs:.1f} MB/s; reference local read of the "
          f"mailbox: {size / 1e6 / local:.0f} MB/s")

    t0 = time.perf_counter()
    for name in names:
        c.read(f"mbox/{name}/digest")
    secs = time.perf_counter() - t0
    t0 = time.perf_counter()
    c.read_many([f"mbox/{name}/digest" for name in names], 64)
    many = time.perf_counter() - t0
    print(f"digest walk/open/read/clunk: {n / secs:.0f} files/s one by one, "
          f"{n / many:.0f} files/s batched (read_many); {pipelined_stats(c, names)}")

    print("the same where walks may not be pipelined (a server that does not "
          "say it takes them, e.g. plan9port's upas/fs behind 9pserve): "
          + walks_first(ns, names))
    t0 = time.perf_counter()
    mark = c.read("mbox/mark")
    mark_secs = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = c.read("mbox/summary")
    secs = time.perf_counter() - t0
    assert summary.count(b"\n") == n + 1 and summary.startswith(mark)
    print(f"every digest, size and line count in one read of `summary`: {secs * 1000:.0f} ms "
          f"({len(summary) / 1e6:.1f} MB; SELECT's digests by read_many above: "
          f"{many * 1000:.0f} ms); `mark` {mark_secs * 1000:.1f} ms")

    t0 = time.perf_counter()
    info = c.read_many([f"mbox/{name}/info" for name in names], c.iounit)
    secs = time.perf_counter() - t0
    assert all(isinstance(i, bytes) for i in info)
    print(f"info of every message (a MIME parse each), batched: {n / secs:.0f} files/s")

    tree_secs = tree_only(mbox, names)
    print(f"the same raw reads through the tree without 9P (in this process): "
          f"{total / 1e6 / tree_secs:.0f} MB/s")

    peak = vmhwm_kb(proc.pid)
    print(f"upasfs peak memory (VmHWM): {peak / 1024:.1f} MB for a "
          f"{size / 1e6:.1f} MB mailbox ({peak * 1024 / size:.0%}); "
          f"resident at the end {vmrss_kb(proc.pid) / 1024:.1f} MB")
    c.close()


if __name__ == "__main__":
    main()
