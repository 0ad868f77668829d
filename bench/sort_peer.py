"""Records Dovecot's SORT and THREAD answers on tests/mboxgen.py's peer
mailbox into tests/data/dovecot-sort.json, which
tests/test_imap_sort_peer.py holds our answers to.

    python -m bench.sort_peer          (needs Dovecot: bench/dovecot.py)
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.dovecot import Dovecot  # noqa: E402
from bench.workloads import selected  # noqa: E402
from tests.mboxgen import PEER_COMMANDS, peer_mailbox  # noqa: E402

OUT = REPO / "tests" / "data" / "dovecot-sort.json"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sortpeer.", dir="/tmp") as d:
        mbox = Path(d) / "mbox"
        mbox.write_bytes(peer_mailbox())
        (Path(d) / "dovecot").mkdir()
        with Dovecot(Path(d) / "dovecot", mbox) as dv:
            c = selected(dv)
            answers = {}
            for cmd in PEER_COMMANDS:
                c.cmd(cmd, keep=True)
                answers[cmd] = [x.decode().rstrip("\r\n") for x in c.untagged]
            c.cmd("LOGOUT")
    OUT.write_text(json.dumps({"peer": "Dovecot " + dovecot_version(), "answers": answers},
                              indent=1) + "\n")
    print(f"{OUT}: {len(answers)} answers")
    return 0


def dovecot_version() -> str:
    import subprocess
    return subprocess.run(["/usr/sbin/dovecot", "--version"], capture_output=True,
                          text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
