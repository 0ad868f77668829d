"""python -m fuzz.run TARGET [-t SECONDS] [-n EXAMPLES]: atheris when it is
installed (coverage-guided; corpus in $FUZZ_CORPUS/TARGET, default under
the temporary directory), else hypothesis."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time


def with_atheris(name: str, seconds: float) -> None:
    import atheris
    with atheris.instrument_imports():     # coverage of the parser's own code
        fn = importlib.import_module(f"fuzz.{name}").target
    corpus = os.path.join(os.environ.get("FUZZ_CORPUS", os.path.join(
        tempfile.gettempdir(), "upas-fuzz-corpus")), name)
    os.makedirs(corpus, exist_ok=True)
    atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds)}", "-max_len=4096",
                   corpus], fn)
    atheris.Fuzz()


def with_hypothesis(fn, seconds: float, examples: int) -> int:
    from hypothesis import HealthCheck, given, settings, strategies as st
    count = [0]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=4096))
    def prop(data):
        count[0] += 1
        fn(data)

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        prop()
    return count[0]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m fuzz.run")
    ap.add_argument("target")
    ap.add_argument("-t", "--seconds", type=float, default=60)
    ap.add_argument("-n", "--examples", type=int, default=2000)
    ap.add_argument("--hypothesis", action="store_true", help="even if atheris is installed")
    a = ap.parse_args(argv)
    try:
        if a.hypothesis:
            raise ImportError
        import atheris  # noqa: F401
    except ImportError:
        fn = importlib.import_module(f"fuzz.{a.target}").target
        n = with_hypothesis(fn, a.seconds, a.examples)
        print(f"{a.target}: {n} executions, no crash")
        return 0
    with_atheris(a.target, a.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
