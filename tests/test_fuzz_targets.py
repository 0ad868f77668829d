"""Hostile input (issue 9): every fuzz target in fuzz/ under hypothesis for
a bounded number of examples (FUZZ_EXAMPLES, default 400); `make fuzz` runs
them long with atheris (python -m fuzz.run TARGET -t SECONDS)."""
import importlib
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fuzz import TARGETS

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
# targets whose every example is a big message (fuzz/nesting.py): fewer here
COSTLY = {"mime_nesting": 100}

# inputs shaped like each protocol reach deeper than random bytes
SHAPED = {
    "imap_parser": st.lists(st.sampled_from([
        b"a1 ", b"FETCH ", b"UID ", b"SEARCH ", b"1:*", b"(", b")", b"BODY[", b"]",
        b"HEADER.FIELDS (", b"<0.10>", b"{3}\r\n", b"{5+}\r\n", b"\"q\\\"", b"\r\n",
        b"OR ", b"NOT ", b"SINCE 1-Jan-2020 ", b"CHARSET UTF-8 ", b"*", b"%",
        b"\x00", b"\xff", b"BODYSTRUCTURE ", b"ENVELOPE "]), max_size=40).map(b"".join),
    "pop3_protocol": st.lists(st.sampled_from([
        b"USER glenda\r\n", b"PASS glenda-pw\r\n", b"APOP glenda 0\r\n", b"STAT\r\n",
        b"LIST\r\n", b"LIST 1\r\n", b"RETR 2\r\n", b"TOP 1 0\r\n", b"TOP 1 -1\r\n",
        b"DELE 1\r\n", b"RSET\r\n", b"UIDL\r\n", b"NOOP\r\n", b"QUIT\r\n", b"CAPA\r\n",
        b"AUTH CRAM-MD5\r\n", b"STLS\r\n", b"LIST 99999999999999999999\r\n", b"\x00",
        b"x" * 600, b"\n", b"\r"]), max_size=30).map(b"".join),
    "ninep_codec": st.binary(min_size=7, max_size=200).map(
        lambda b: len(b).to_bytes(4, "little") + b[4:]),
    "factotum_rpc": st.lists(st.sampled_from([
        b"start proto=apop role=server\n", b"start proto=pass service=imap\n",
        b"read\n", b"write glenda 0123\n", b"authinfo\n", b"attr\n", b"start\n",
        b"start proto=p9sk1 role=client\n", b"write \n"]), max_size=8).map(b"".join),
    "ratfs_ctl": st.lists(st.sampled_from([
        b"block ", b"*block ", b"deny ", b"allow ", b"trusted ", b"10.0.0.0/8 ",
        b"::1/128 ", b"300.1.1.1 ", b"1.2.3.4/33 ", b"\n", b"*", b"user@dom "]),
        max_size=30).map(b"".join),
}


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_target(name):
    fn = importlib.import_module(f"fuzz.{name}").target
    runs = [0]

    examples = min(EXAMPLES, COSTLY.get(name, EXAMPLES))

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.binary(max_size=2048), SHAPED.get(name, st.binary(max_size=64))))
    def prop(data):
        runs[0] += 1
        fn(data)

    prop()
    assert runs[0] >= min(examples, 50)
