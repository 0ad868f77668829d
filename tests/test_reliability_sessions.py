"""The session-model rig (issue 13): ten IMAP clients, deliveries and
pop3 deletions at once on one mailbox; every reply must agree with the
picture a client keeps from the replies before it (tests/reliability/
model.py, sessions.py).  RELIABILITY_SESSIONS_SECONDS (default 20) and
RELIABILITY_SEED set the run; `python -m tests.reliability sessions
--seconds 300` is the long mode (make stress)."""
import os
import random

import pytest

from tests.reliability import sessions
from tests.reliability.model import Model

SECONDS = float(os.environ.get("RELIABILITY_SESSIONS_SECONDS", "20"))


@pytest.mark.timeout(int(SECONDS) + 240)
def test_ten_clients_each_see_a_consistent_mailbox(tmp_path):
    seed = int(os.environ.get("RELIABILITY_SEED", random.randrange(1 << 30)))
    report = sessions.run(tmp_path, 10, SECONDS, seed)
    print(f"seed {seed}: {report.summary()}")
    assert not report.errors, report.errors
    assert not report.findings, "\n".join(f"--- {k}: {v}" for k, v in report.examples.items())
    assert report.sessions >= 10 and report.deliveries > 0 and report.pop_deletes > 0
    for verb in ("FETCH", "STORE", "EXPUNGE", "APPEND", "COPY", "SEARCH", "LOGOUT"):
        assert report.commands[verb] > 0, verb


def feed(model: Model, *lines: bytes) -> Model:
    for line in lines:
        model.feed(line + b"\r\n")
    return model


def test_the_model_finds_each_broken_promise():
    """The checker itself: each rule, broken once, is found (and a
    transcript that keeps them all is not)."""
    good = feed(Model(), b"* FLAGS (\\Seen \\Deleted $Work)", b"* 3 EXISTS",
                b"* OK [UIDVALIDITY 7] ok", b"* 1 FETCH (UID 4 FLAGS (\\Seen $Work))",
                b"* 2 FETCH (UID 6 FLAGS ())", b"* 1 EXPUNGE", b"* 1 FETCH (UID 6 FLAGS ())",
                b"* 3 EXISTS", b"* 3 FETCH (UID 9 BODY[HEADER.FIELDS (MESSAGE-ID)] {4}\r\nab\r\n)")
    assert not good.findings, good.examples
    cases = {
        "expunge_beyond_exists": [b"* 2 EXISTS", b"* 3 EXPUNGE"],
        "fetch_beyond_exists": [b"* 2 EXISTS", b"* 3 FETCH (FLAGS ())"],
        "exists_shrank": [b"* 3 EXISTS", b"* 2 EXISTS"],
        "uid_changed": [b"* 2 EXISTS", b"* 1 FETCH (UID 5)", b"* 1 FETCH (UID 6)"],
        "uid_not_ascending": [b"* 2 EXISTS", b"* 2 FETCH (UID 5)", b"* 1 FETCH (UID 7)"],
        "keyword_not_announced": [b"* FLAGS (\\Seen $A)", b"* 1 EXISTS",
                                  b"* 1 FETCH (FLAGS (\\Seen $B))"],
        "uidvalidity_changed": [b"* OK [UIDVALIDITY 1] x", b"* OK [UIDVALIDITY 2] x"],
        "uid_names_two_messages": [
            b"* 2 EXISTS", b"* 1 FETCH (UID 5 BODY[HEADER.FIELDS (MESSAGE-ID)] {22}\r\n"
            b"Message-ID: <a@ledger>)", b"* 1 EXPUNGE", b"* 2 EXISTS",
            b"* 1 FETCH (UID 5 BODY[HEADER.FIELDS (MESSAGE-ID)] {22}\r\nMessage-ID: <b@ledger>)"],
    }
    for kind, lines in cases.items():
        m = feed(Model(), *lines)
        assert set(m.findings) == {kind}, (kind, m.findings)
