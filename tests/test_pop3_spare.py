"""pop3's spare (upas/pop3/spare.py) prepares as imap4d's does: the
ratfs of our name space dialled and its version agreed before any user
is known, then attached as the user by the login's ratification, and an
unused one dropped once the mailbox is opened."""
from __future__ import annotations

import os
import socket

import pytest

from upas import ns as nsmod
from upas.ninep import PIPELINE_ANAME
from upas.pop3 import spare
from upas.pop3.host import NamespaceHost
from upas.pop3.protocol import MailboxError

FILES = {"trusted/10.1.2.3#32": b"", "ctl": b""}


def prepare() -> None:
    """What the fork server has a spare do before its connection comes."""
    for step in spare.STEPS:
        step()


@pytest.fixture
def ratfs(strict_9p, ninep_namespace, process_env, tmp_path):
    """A 9P stand-in posted as `ratify` in $NAMESPACE (so: ours), one
    connection at a time (a second dial would wait, here 3 s)."""
    (tmp_path / "box" / "glenda").mkdir(parents=True)
    process_env.set("MAILROOT", str(tmp_path))
    process_env.delete("ratify")
    process_env.delete("upasfs")
    srv = strict_9p(FILES, probe_answer=PIPELINE_ANAME)
    os.rename(srv.addr[len("unix!"):], os.path.join(ninep_namespace, "ratify"))
    socket.setdefaulttimeout(3)
    yield srv
    socket.setdefaulttimeout(None)
    nsmod.drop_ahead()


def test_pop3_spare_dials_ratfs_ahead_and_the_login_attaches_on_it(ratfs, monkeypatch):
    prepare()               # no factotum here: its dial fails, silently
    assert ratfs.accepted == 1 and ratfs.attached == [] and ratfs.violations == []
    for name in ("user", "USER", "LOGNAME"):
        monkeypatch.setenv(name, os.environ.get(name, ""))    # newns sets them
    host = NamespaceHost(log=open(os.devnull, "w"))
    host.login("glenda")
    assert host.ns.exists("/mail/ratify/trusted/10.1.2.3#32")
    assert ratfs.accepted == 1 and ratfs.attached == ["glenda"] and ratfs.violations == []
    host.close()


def test_pop3_drops_an_unused_ratfs_connection_at_its_mailbox(ratfs):
    prepare()
    assert nsmod._ahead is not None
    host = NamespaceHost(log=open(os.devnull, "w"))
    with pytest.raises(MailboxError):       # no upasfs here: only the drop is looked at
        host.open_mailbox("mbox")
    assert nsmod._ahead is None
    host.close()
