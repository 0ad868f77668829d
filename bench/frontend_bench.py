"""What the extra hop costs (issue 19): the same IMAP SELECT and FETCH on
one host (`runhost`) and through frontends of a store (`runhost -R store`
on 127.0.0.2, two `-R frontend` on 127.0.0.3 and 127.0.0.4), glenda's
mbox the bench corpus on both.

Each round: one session (LOGIN by CRAM-MD5, SELECT INBOX, FETCH 1:*
(UID FLAGS RFC822.SIZE ENVELOPE), FETCH of BODY.PEEK[] of the first 100
messages, LOGOUT) on one host, then through frontend 1; then two at once
(both frontends, or two on the one host).  Printed: the median of each
step over the rounds after the first (the first, cold: upasfs reads the
mailbox), and the frontend's extra time.  Loopback addresses: the hop's
cost in software (9P over TCP through the broker and boxfs), not a
network's latency, which adds a round trip per 9P request not pipelined.

    python -m bench.frontend_bench [-n MESSAGES] [-r ROUNDS]
"""
from __future__ import annotations

import argparse
import functools
import imaplib
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
from bench.workloads import all_at_once  # noqa: E402
from upas.runhost import PORTS, TESTDATA, Host  # noqa: E402

STEPS = ("login", "select", "fetch-envelopes", "fetch-bodies")
ENV = {"IMAP4D_DELAY_SCALE": "0", "POP3_DELAY_SCALE": "0"}


def session(addr: tuple[str, int]) -> dict[str, float]:
    t: dict[str, float] = {}
    start = time.monotonic()
    c = imaplib.IMAP4(*addr, timeout=300)
    assert c.login_cram_md5("glenda", "glenda-apop")[0] == "OK"
    t["login"] = time.monotonic() - start
    for step, run in (("select", lambda: c.select("INBOX")),
                      ("fetch-envelopes", lambda: c.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE)")),
                      ("fetch-bodies", lambda: c.fetch("1:100", "(BODY.PEEK[])"))):
        s = time.monotonic()
        assert run()[0] == "OK"
        t[step] = time.monotonic() - s
    c.logout()
    return t


def at_once(addrs: list[tuple[str, int]]) -> float:
    """Sessions on these addresses at the same time: the wall time."""
    return all_at_once([functools.partial(session, a) for a in addrs])


def prepared(d: Path, name: str, messages: int) -> Path:
    rundir = d / name
    shutil.copytree(TESTDATA, rundir / "mail")      # runhost keeps an existing copy
    make_corpus(rundir / "mail" / "box" / "glenda" / "mbox", messages)
    return rundir


def measure(one: tuple[str, int], pair: list[tuple[str, int]], rounds: int) -> dict:
    first = session(one)
    warm = [session(one) for _ in range(rounds)]
    out = {"cold": first}
    out.update({s: statistics.median(w[s] for w in warm) for s in STEPS})
    out["two-at-once"] = statistics.median(at_once(pair) for _ in range(rounds))
    return out


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # unwinds: hosts stopped
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000, help="messages in the mailbox")
    ap.add_argument("-r", type=int, default=5, help="rounds (after the cold one)")
    a = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench.fe.", dir="/tmp") as td:
        d = Path(td)
        hosts = []
        try:
            one = Host(prepared(d, "one", a.n), ports={n: 0 for n in PORTS},
                       logdir=d / "log-one", extra_env=ENV).start()
            hosts.append(one)
            results["one host"] = measure(one.addrs["imap4d"], [one.addrs["imap4d"]] * 2, a.r)
            store = Host(prepared(d, "store", a.n), host="127.0.0.2", role="store",
                         logdir=d / "log-store", extra_env=ENV).start()
            hosts.append(store)
            fronts = []
            for i, addr in enumerate(("127.0.0.3", "127.0.0.4")):
                fronts.append(Host(d / f"fe{i}", host=addr, role="frontend", storehost="127.0.0.2",
                                   ports={n: 0 for n in PORTS}, logdir=d / f"log-fe{i}",
                                   extra_env=ENV).start())
                hosts.append(fronts[-1])
            results["frontend"] = measure(fronts[0].addrs["imap4d"],
                                          [f.addrs["imap4d"] for f in fronts], a.r)
        finally:
            for h in reversed(hosts):
                h.stop()
    print(f"IMAP on {a.n} messages: one host beside a frontend of a store "
          f"(median of {a.r} warm rounds; seconds)")
    print(f"  {'step':18} {'one host':>9} {'frontend':>9} {'extra':>9}")
    for step in ("cold", *STEPS, "two-at-once"):
        if step == "cold":
            o, f = sum(results["one host"]["cold"].values()), sum(results["frontend"]["cold"].values())
            step = "cold session"
        else:
            o, f = results["one host"][step], results["frontend"][step]
        print(f"  {step:18} {o:9.3f} {f:9.3f} {f - o:+9.3f}  ({f / o if o else 0:.1f}x)")


if __name__ == "__main__":
    main()
