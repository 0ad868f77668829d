"""Long modes: python -m tests.reliability crash|stress|sessions
[--iterations N] [--seconds S] [--clients N] [--seed N]  (run from the
repository root).  sessions: the session-model rig (sessions.py); it
prints what it found and an example of each kind, and exits 1 if any."""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.reliability")
    ap.add_argument("mode", choices=("crash", "stress", "sessions"))
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--clients", type=int, default=24)
    ap.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reliability.") as d:
        if a.mode == "crash":
            from tests.reliability import crash
            stats = crash.run(Path(d), a.iterations, a.seed)
        elif a.mode == "stress":
            from tests.reliability import stress
            stats = stress.run(Path(d), a.clients, a.seconds, a.seed)
        else:
            from tests.reliability import sessions
            report = sessions.run(Path(d), a.clients, a.seconds, a.seed)
            for kind, example in report.examples.items():
                print(f"--- {kind}: {example}\n")
            stats = report.summary()
            if report.findings or report.errors:
                print(f"{a.mode} seed {a.seed}: {stats} in {time.monotonic() - t0:.0f}s")
                return 1
    print(f"{a.mode} seed {a.seed}: {stats} in {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
