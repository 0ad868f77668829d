"""upasfs's CPU for the whole-file reads of a `FETCH 1:* BODY.PEEK[]`, in
process (docs/performance.md, round 4's tenth part).

The bench corpus is opened by a MailFS; an inline 9P connection of the
server upasfs runs (its `batch` too) is fed the records the session sends
-- Twalk, Topen, Tread and Tclunk of each message's `raw` in one record,
64 files a write (prefetch.WINDOW) -- and its replies are counted, not
sent.  What is timed is the process's CPU for every message of the box:
no socket, no session, no scheduling, so an A/B of two checkouts on a
busy machine compares upasfs's own work.

    python -m bench.whole_reads_profile [-n MESSAGES] [--rounds N] [--profile]
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import shutil
import tempfile
import time

from bench.corpus import corpus
from upas.fs9p.tree import MailFS
from upas.imap4d.prefetch import WINDOW
from upas.mail.mbox import one_look
from upas.ninep import codec
from upas.ninep.server import Server, _Conn

MSIZE = (1 << 20) + 24


class _Counted:
    """A transport that counts what would be sent."""
    sock = None

    def __init__(self) -> None:
        self.sent = 0

    def sendall(self, data: bytes) -> None:
        self.sent += len(data)

    def sendall_many(self, pieces: list) -> None:
        self.sent += sum(map(len, pieces))
        pieces.clear()

    def can_take(self) -> bool:
        return False


def _records(n: int) -> list[bytearray]:
    """The writes of a session reading every raw: WINDOW files a write."""
    recs = []
    for k in range(1, n + 1):
        t = 4 * (k % WINDOW) + 2
        recs.append(codec.pack_file_read((t, t + 1, t + 2, t + 3), 0, 100 + k % WINDOW, 3,
                                         codec.walk_names(["mbox", str(k), "raw"]), MSIZE))
    return [bytearray(b"".join(recs[i:i + WINDOW])) for i in range(0, n, WINDOW)]


def _round(conn: _Conn, writes: list[bytearray]) -> float:
    batch = conn.srv.batch or contextlib.nullcontext
    t = time.process_time()
    for w in writes:
        with batch():
            pos, _ = conn._consume(w)
        assert pos == len(w), "a request was not answered in full"
        conn._flush()
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=10_000, help="messages in the corpus")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile one more round")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mbox")
        shutil.copy(corpus(args.n), path)
        fs = MailFS("glenda")
        fs.open(path, "mbox")
        conn = _Conn(Server(fs.attach, msize=MSIZE, inline=True, batch=one_look), _Counted())
        conn._consume(bytearray(codec.pack(codec.Tversion(codec.NOTAG, MSIZE, "9P2000")) +
                                codec.pack(codec.Tattach(1, 0, codec.NOFID, "glenda", ""))))
        n = len(fs.boxes[0].live())
        writes = _records(n)
        times = [_round(conn, writes) for _ in range(args.rounds)]
        for dt in times:
            print(f"{dt * 1000:7.1f} ms  {dt / n * 1e6:6.2f} us a file")
        print(f"best {min(times) * 1000:.1f} ms for {n} raws, {conn.t.sent} bytes answered")
        if args.profile:
            prof = cProfile.Profile()
            prof.runcall(_round, conn, writes)
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
