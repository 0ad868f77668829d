"""The launcher's -u: POP3 sessions with a upasfs started per session
(Plan 9's way) beside sessions handed to the user's kept-alive upasfs.

The whole host as `make run` starts it (upas/runhost.py), glenda's mbox
replaced by the bench corpus.  Each session: APOP, STAT, RETR 1, QUIT.
Printed: the first session and the median of the rest, for both modes.

    python -m bench.listen_bench [-n MESSAGES] [-s SESSIONS]
"""
from __future__ import annotations

import argparse
import hashlib
import poplib
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.corpus import make_corpus  # noqa: E402
from upas.runhost import PORTS, TESTDATA, Host  # noqa: E402


def session(addr: tuple[str, int]) -> float:
    start = time.monotonic()
    p = poplib.POP3(*addr, timeout=120)
    chal = re.search(rb"<[^>]+>", p.getwelcome()).group(0)
    p._shortcmd("APOP glenda " + hashlib.md5(chal + b"glenda-apop").hexdigest())
    p.stat()
    p.retr(1)
    p.quit()
    return time.monotonic() - start


def run(keep_fs: bool, messages: int, sessions: int) -> list[float]:
    with tempfile.TemporaryDirectory() as d:
        rundir = Path(d) / "run"
        shutil.copytree(TESTDATA, rundir / "mail")      # runhost keeps an existing copy
        make_corpus(rundir / "mail" / "box" / "glenda" / "mbox", messages)
        host = Host(rundir, ports={n: 0 for n in PORTS}, logdir=Path(d) / "log",
                    keep_fs=keep_fs, extra_env={"POP3_DELAY_SCALE": "0"})
        host.start()
        try:
            return [session(host.addrs["pop3"]) for _ in range(sessions)]
        finally:
            host.stop()


def main() -> None:
    # SIGTERM (e.g. from timeout(1)) unwinds, so the host is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=1000, help="messages in the mailbox")
    ap.add_argument("-s", type=int, default=10, help="sessions per mode")
    a = ap.parse_args()
    print(f"POP3 sessions (APOP, STAT, RETR 1, QUIT) on {a.n} messages")
    for keep, label in ((False, "upasfs per session"), (True, "listen -u (kept alive)")):
        t = run(keep, a.n, a.s)
        print(f"  {label:24} first {t[0]:6.2f}s   then median {statistics.median(t[1:]):6.2f}s")


if __name__ == "__main__":
    main()
