"""IMAP, ours beside Dovecot: the read-only IMAP workloads of the harness
(python -m bench), kept as a shortcut.

    python -m bench.imap_bench [-n MESSAGES] [--rounds N]
"""
from __future__ import annotations

import argparse
import sys

from bench.__main__ import main as bench_main

STEPS = "select-cold,select-warm,fetch-envelope,fetch-body,search-text"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000, help="messages in the corpus")
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args(argv)
    return bench_main(["--sizes", str(a.n), "--rounds", str(a.rounds), "--workloads", STEPS])


if __name__ == "__main__":
    sys.exit(main())
