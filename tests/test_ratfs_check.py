"""The SMTP-side questions (upas/ratify/check.py) answered by a real ratfs
mounted in a namespace, and by a plain directory (docs/spec/fs-auth.md fact 34)."""
import pytest

from upas.ns import Namespace
from upas.ratify.check import classify, ip_action, is_trusted, sender_path

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def ns(ratfs):
    n = Namespace("glenda")
    n.mount("/mail/ratify", ratfs.addr)
    yield n
    n.close()


def test_fs_auth_fact34_order_allow_before_block(ns):
    # 10.1.2.3 is under both block 10/8 and allow 10.1/16: allow is tested first
    assert ip_action(ns, "10.1.2.3!25") == "allow"
    assert ip_action(ns, "10.2.2.3") == "block"
    assert ip_action(ns, "135.104.9.9") == "dial"
    assert ip_action(ns, "8.8.8.8") == "allow"


def test_fs_auth_fact34_trusted_skips_account_check(ns):
    assert is_trusted(ns, "135.104.1.1!4444")
    assert classify(ns, "135.104.1.1", "joe@spam.com") == "trusted"
    assert classify(ns, "8.8.8.8", "joe@spam.com") == "deny"
    assert classify(ns, "8.8.8.8", "jim@bad.org") == "allow"
    assert classify(ns, "8.8.8.8", "joe@bad.org") == "deny"
    assert classify(ns, "10.2.0.1", "a@b.c") == "block"


def test_login_trust_then_smtp_sees_it(ns):
    assert not is_trusted(ns, "192.0.2.7")
    ns.create("/mail/ratify/trusted/192.0.2.7#32", 0o666)
    assert is_trusted(ns, "192.0.2.7!1234")
    assert classify(ns, "192.0.2.7", "joe@spam.com") == "trusted"


def test_sender_path():
    assert sender_path("<Joe@Spam.COM>") == "spam.com!joe"
    assert sender_path("joe", "Helo.Org") == "helo.org!joe"
    assert sender_path("a!b!c") == "a!b!c"


def test_plain_directory_in_place_of_ratfs(tmp_path):
    """No ratfs: pop3/imap4d create plain files; the answers are the same."""
    import os
    import time
    (tmp_path / "trusted").mkdir()
    (tmp_path / "trusted" / "192.0.2.9#32").touch()          # as pop3 writes it
    (tmp_path / "trusted" / "198.51.100.0#24").touch()
    old = tmp_path / "trusted" / "203.0.113.5#32"
    old.touch()
    t = time.time() - 2 * 3600 - 5                            # expired
    os.utime(old, (t, t))
    (tmp_path / "deny" / "account").mkdir(parents=True)
    (tmp_path / "deny" / "account" / "spam.com!joe").touch()
    (tmp_path / "block" / "ip").mkdir(parents=True)
    (tmp_path / "block" / "ip" / "10.0.0.0#8").touch()
    n = Namespace("glenda")
    n.bind_dir("/mail/ratify", str(tmp_path))
    assert is_trusted(n, "192.0.2.9!1")
    assert is_trusted(n, "198.51.100.77")
    assert not is_trusted(n, "192.0.2.10")
    assert not is_trusted(n, "203.0.113.5")
    assert not is_trusted(n, "..")
    assert classify(n, "192.0.2.10", "joe@spam.com") == "deny"
    assert classify(n, "192.0.2.10", "jim@spam.com") == "allow"
    assert ip_action(n, "10.9.8.7") == "block"
    assert classify(n, "192.0.2.9", "joe@spam.com") == "trusted"


def test_pop3_ratifies_into_a_plain_directory(tmp_path, monkeypatch, process_env):
    """The -r path with no ratfs: the file pop3 (NamespaceHost.ratify)
    writes into $MAILROOT/ratify makes the peer trusted for smtpd."""
    import getpass
    import os
    from upas.pop3.host import NamespaceHost
    root = tmp_path / "mail"
    (root / "box" / "glenda").mkdir(parents=True)
    (root / "ratify" / "trusted").mkdir(parents=True)
    process_env.set("MAILROOT", str(root))
    process_env.set("NAMESPACE", str(tmp_path / "ns"))
    process_env.delete("ratify")
    for k in ("USER", "LOGNAME", "user"):      # login() sets them: restore after
        monkeypatch.setenv(k, os.environ.get(k) or getpass.getuser())
    host = NamespaceHost()
    host.login("glenda")
    host.ratify("192.0.2.44")
    host.close()
    n = Namespace.default("glenda")
    assert n.local_path("/mail/ratify") is not None          # a plain directory
    assert (root / "ratify" / "trusted" / "192.0.2.44#32").exists()
    assert is_trusted(n, "192.0.2.44!2525")
