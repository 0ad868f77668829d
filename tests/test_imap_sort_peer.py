"""SORT and THREAD beside Dovecot: on tests/mboxgen.py's peer mailbox
our answers are the ones Dovecot gave (recorded by bench/sort_peer.py
into tests/data/dovecot-sort.json)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mboxgen import PEER_COMMANDS, peer_mailbox

RECORDED = json.loads((Path(__file__).parent / "data" / "dovecot-sort.json").read_text())
ANSWERS = RECORDED["answers"]


@pytest.fixture(scope="module")
def answers(tmp_path_factory, request):
    """Our answers to every command, from one session."""
    return request.getfixturevalue("peer_answers")


@pytest.fixture
def peer_answers(imap_preauth):
    imap_preauth.box(name="peer").write_bytes(peer_mailbox())
    c = imap_preauth.connect()
    assert c.cmd(b"s SELECT peer")[-1].startswith(b"s OK")
    out = {}
    for cmd in PEER_COMMANDS:
        lines = c.cmd(b"t " + cmd.encode())
        assert lines[-1].startswith(b"t OK"), lines
        out[cmd] = [x.decode().rstrip("\r\n") for x in lines[:-1]]
    c.close()
    return out


def test_recording_covers_the_commands():
    assert list(ANSWERS) == PEER_COMMANDS


def test_sort_and_thread_as_dovecot(peer_answers):
    differ = {cmd: (peer_answers[cmd], ANSWERS[cmd]) for cmd in PEER_COMMANDS
              if peer_answers[cmd] != ANSWERS[cmd]}
    assert not differ, "\n".join(f"{k}:\n  ours    {a}\n  dovecot {b}" for k, (a, b) in differ.items())
