"""Concurrency (issue 9): at least 20 clients at once on one mailbox --
imap4d and pop3 sessions and upas.mbappend deliveries -- for
RELIABILITY_STRESS_SECONDS (default 8; `python -m tests.reliability stress
--seconds 600` is the nightly mode).  Nothing lost, duplicated or torn; UIDs
ascend and are never reused within a UIDVALIDITY; each session's view is
consistent (tests/reliability/stress.py), while a hostile client sends the
attacks of issue 17 (tests/reliability/hostile.py); every acknowledged delete holds
and a fresh session at the end sees exactly what the file holds (strict:
RELIABILITY_STRICT=0 only reports those two).
"""
import os
import random

import pytest

from tests.reliability import hostile, stress

SECONDS = float(os.environ.get("RELIABILITY_STRESS_SECONDS", "8"))
CLIENTS = int(os.environ.get("RELIABILITY_CLIENTS", "20"))


@pytest.mark.timeout(int(SECONDS) + 180)
def test_twenty_clients_lose_nothing(tmp_path):
    seed = int(os.environ.get("RELIABILITY_SEED", random.randrange(1 << 30)))
    stats = stress.run(tmp_path, CLIENTS, SECONDS, seed)
    print(f"seed {seed}: {stats}")
    assert stats.clients >= 20
    assert stats.imap_sessions >= 8 and stats.pop_sessions >= 4
    assert stats.deliveries > 0 and stats.fetch_views > 0
    assert stats.hostile_attacks >= hostile.MIN_ATTACKS   # none made the others fail
