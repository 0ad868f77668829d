"""Fixtures for `make interop`: plan9port's programs beside ours.

Every test here needs a built plan9port in $PLAN9 and is skipped, with
the reason, without one.  With $UPAS_INTEROP_RECORD=1 each exchange with
a plan9port program is saved to tests/data/interop/, where the regular
suite (tests/test_interop_replay.py) replays the peer's half against our
programs.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from auth import demo
from tests.fixtures.acceptor import Acceptor, stop_all
from tests.fixtures.auth import running_auth
from tests.fixtures.factotum import HOST_KEY
from tests.fixtures.transcript import Tap, Transcript
from tests.interop.plan9port import Daemon, Plan9port, PrivateMail, wait_posted

RECORD = os.environ.get("UPAS_INTEROP_RECORD") == "1"
SOURCE = ("plan9port {commit}, built with ./INSTALL and upas with CC9FLAGS=-fcommon; "
          "recorded by tests/interop ({test})")


@pytest.fixture(scope="session")
def p9p() -> Plan9port:
    found, why = Plan9port.find()
    if found is None:
        pytest.skip(why)
    return found


def record(t: Transcript, test: str) -> None:
    """Save t if recording was asked for ($PLAN9_COMMIT names the build)."""
    if RECORD:
        commit = os.environ.get("PLAN9_COMMIT", "(commit not given: set $PLAN9_COMMIT)")
        t.source = SOURCE.format(commit=commit, test=test)
        t.save()


@pytest.fixture(scope="session")
def private_mail():
    why = PrivateMail.why_not()
    if why:
        pytest.skip(why)
    d = Path(tempfile.mkdtemp(prefix="p9pmail."))
    pm = PrivateMail(d)
    pm.setup()
    yield pm
    pm.teardown()
    shutil.rmtree(d, ignore_errors=True)


class P9pFactotum:
    """plan9port's factotum with the host key, finding our authsrv through
    $PLAN9/ndb/local; the authsrv is reached through a Tap (`.as_tap`)."""

    def __init__(self, p9p: Plan9port, base: Path):
        self.p9p = p9p
        self.base = base

    def start(self, servers) -> None:
        self.servers = servers
        self.as_tap = Tap(servers.auth)
        plan9 = self.p9p.overlay(self.base / "plan9",
                                 f"authdom={demo.AUTHDOM} auth={self.as_tap.addr}\n")
        self.ns = servers.namespace
        self.env = self.p9p.env(self.ns, plan9=plan9)
        self.daemon = Daemon([self.p9p.bin("factotum"), "-n"], self.env,
                             self.base / "factotum.log")
        self.path = os.path.join(self.ns, "factotum")
        wait_posted(self.path, self.daemon)
        self.ctl("key " + HOST_KEY)

    @property
    def addr(self) -> str:
        return "unix!" + self.path

    def ctl(self, line: str) -> None:
        r = self.p9p.run(["9p", "write", "factotum/ctl"], self.env, input=line.encode() + b"\n")
        assert r.returncode == 0, r.stderr

    def stop(self) -> None:
        """Whatever start() got to."""
        if hasattr(self, "daemon"):
            self.daemon.stop()
        if hasattr(self, "as_tap"):
            self.as_tap.close()


@pytest.fixture(scope="module")
def p9p_factotum(p9p):
    base = Path(tempfile.mkdtemp(prefix="p9pf.", dir="/tmp"))
    f = P9pFactotum(p9p, base)
    with running_auth() as servers:
        try:
            f.start(servers)
            yield f
        finally:
            f.stop()
    shutil.rmtree(base, ignore_errors=True)


class Servers:
    """Our pop3 and imap4d, one process per connection (as the launcher
    runs them); `.base` is a scratch directory."""

    def __init__(self, base: Path):
        self.base = base
        self.acceptors: list[Acceptor] = []
        self.extra: list = []

    def start(self, module: str, flags: list[str], env: dict,
              wrap=None) -> Acceptor:
        argv = [sys.executable, "-m", module, *flags]
        log = str(self.base / f"{module.rsplit('.', 1)[-1]}-{len(self.acceptors)}.log")
        Path(log).touch()
        a = Acceptor(wrap(argv) if wrap else argv, env, log)
        self.acceptors.append(a)
        return a

    def stop(self) -> None:
        for a in self.acceptors:
            a.stop()
        stop_all(self.extra)


@pytest.fixture
def servers():
    base = Path(tempfile.mkdtemp(prefix="p9ps.", dir="/tmp"))
    s = Servers(base)
    yield s
    s.stop()
    shutil.rmtree(base, ignore_errors=True)
