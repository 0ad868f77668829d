"""ratfs over 9P: a real `python -m upas.ratify` on a posted unix socket,
driven with our 9P client (docs/spec/fs-auth.md §4, facts 31-34)."""
import os
import socket
import threading

import pytest

pytestmark = pytest.mark.timeout(30)

from upas.ninep.client import Client, Error
from upas.ninep.codec import DMDIR
from upas.ninep.server import Server
from upas.ratify.tables import TIMEOUT, Tables
from upas.ratify.tree import Ratfs
from tests.fixtures.ratfs import start_ratfs, stop


def test_root_listing_order_and_modes(ratfs):
    with ratfs.client() as c:
        ents = c.readdir("")
        assert [e.name for e in ents] == ["allow", "delay", "block", "dial", "deny",
                                          "trusted", "ctl"]
        modes = {e.name: e.mode for e in ents}
        assert modes["ctl"] == 0o222
        assert modes["trusted"] == DMDIR | 0o777
        assert modes["block"] == DMDIR | 0o555
        assert [e.name for e in c.readdir("block")] == ["ip", "account"]


def test_fs_auth_fact31_trusted_walk_names_the_entry(ratfs):
    with ratfs.client() as c:
        assert c.stat("trusted/135.104.9.1").name == "135.104.0.0#16"
        with pytest.raises(Error, match="^file does not exist$"):
            c.stat("trusted/10.1.1.1")


def test_fs_auth_fact32_create_trusted(ratfs):
    with ratfs.client("u") as c, ratfs.client("v") as other:
        c.create("trusted/1.2.3.4#32", 0o666, 1).close()
        st = c.stat("trusted/1.2.3.4")
        assert (st.name, st.mode & 0o777, st.uid) == ("1.2.3.4#32", 0o444, "u")
        assert "1.2.3.4#32" in [e.name for e in c.readdir("trusted")]
        with pytest.raises(Error, match="^permission denied$"):
            other.remove("trusted/1.2.3.4#32")
        c.remove("trusted/1.2.3.4#32")
        with pytest.raises(Error, match="^file does not exist$"):
            c.stat("trusted/1.2.3.4")


def test_trusted_bell_minimal_mask_and_bad_name(ratfs):
    with ratfs.client("u") as c:
        c.create("trusted/192.168.7", 0o666, 1).close()
        assert c.stat("trusted/192.168.7.99").name == "192.168.7"
        with pytest.raises(Error, match="^bad cidr in filename$"):
            c.create("trusted/nonsense", 0o666, 1)


def test_permanent_entry_not_removable(ratfs):
    with ratfs.client("upas") as c:
        assert c.stat("trusted/135.104.1.1").mode & 0o777 == 0o111
        with pytest.raises(Error, match="^can't be removed$"):
            c.remove("trusted/135.104.1.1")


def test_fs_auth_fact33_blocked_lines_as_files(ratfs):
    with ratfs.client() as c:
        assert c.stat("block/account/.*!gre").name == ".*!gre"
        assert c.stat("dial/ip/135.104.9.7").name == "135.104.9.0#24"
        assert [e.name for e in c.readdir("dial/ip")] == ["135.104.9.0#24"]
        assert [e.name for e in c.readdir("deny/account")] == ["spam.com", "bad.org!joe"]
        with pytest.raises(Error, match="^file does not exist$"):
            c.stat("dial/ip/135.104.8.7")


def test_fs_auth_fact33_ctl_write_only_and_unknown_command(ratfs):
    with ratfs.client() as c:
        with pytest.raises(Error, match="^permission denied$"):
            c.open("ctl", "r")
        with pytest.raises(Error, match="^unknown command$"):
            c.write("ctl", b"frob")
        c.write("ctl", b"nodebug")


def test_pseudo_files_read_only_and_empty(ratfs):
    with ratfs.client() as c:
        with pytest.raises(Error, match="^permission denied or operation not supported$"):
            c.open("block/ip/10.2.3.4", "w")
        with c.open("block/ip/10.2.3.4") as f:
            assert f.read() == b""
        with pytest.raises(Error, match="^permission denied$"):
            c.create("block/ip/1.2.3.4", 0o666, 1)


def test_account_patterns_by_walk(ratfs):
    with ratfs.client() as c:
        assert c.stat("deny/account/spam.com!x.org!fred").name == "spam.com"
        assert c.stat("deny/account/bad.org!joe").name == "bad.org!joe"
        with pytest.raises(Error, match="^file does not exist$"):
            c.stat("deny/account/bad.org!jim")


def test_reload_rereads_changed_ctl(ratfs):
    with ratfs.client() as c:
        with pytest.raises(Error):
            c.stat("delay/ip/8.8.8.8")
    ratfs.ctlfile.write_text("delay 8.8.0.0/16\n")
    with ratfs.client() as c:
        c.write("ctl", b"reload")
        assert c.stat("delay/ip/8.8.8.8").name == "8.8.0.0#16"
        with pytest.raises(Error):
            c.stat("block/ip/10.2.3.4")


def test_reload_at_attach_when_mtime_changes(ratfs):
    ratfs.ctlfile.write_text("deny 7.0.0.0/8\n")
    st = os.stat(ratfs.ctlfile)
    os.utime(ratfs.ctlfile, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    with ratfs.client() as c:      # a new attach notices
        assert c.stat("deny/ip/7.7.7.7").name == "7.0.0.0#8"


def test_wstat_refused(ratfs):
    from upas.ninep.codec import Stat
    with ratfs.client() as c:
        with pytest.raises(Error, match="^wstat not implemented$"):
            c.wstat("ctl", Stat.sync())


def test_second_copy_exits(ratfs):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "upas.ratify", "-c", str(ratfs.conffile),
                        "-f", str(ratfs.ctlfile)], env=dict(os.environ, NAMESPACE=ratfs.namespace),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0
    assert "already running" in r.stderr
    with ratfs.client() as c:       # the first copy still serves
        assert c.stat("trusted/135.104.9.1").name == "135.104.0.0#16"


def test_fs_auth_fact32_expiry_swept_at_attach(tmp_path):
    """In-process server with a controlled clock: entries go at the first
    attach made two hours after creation, not before."""
    (tmp_path / "blocked").write_text("")
    (tmp_path / "conf").write_text("")
    now = [1000.0]
    fs = Ratfs(Tables(str(tmp_path / "blocked"), str(tmp_path / "conf"),
                      clock=lambda: now[0]), owner="upas")
    srv = Server(fs.attach)
    a, b = socket.socketpair()
    threading.Thread(target=srv.serve, args=(a,), daemon=True).start()
    c = Client(b, uname="u")
    c.create("trusted/1.2.3.4#32", 0o444, 1).close()
    now[0] += TIMEOUT - 1
    assert c.stat("trusted/1.2.3.4").name == "1.2.3.4#32"   # no attach, no sweep
    now[0] += 10
    assert c.stat("trusted/1.2.3.4").name == "1.2.3.4#32"   # still: no new attach
    a2, b2 = socket.socketpair()
    threading.Thread(target=srv.serve, args=(a2,), daemon=True).start()
    with Client(b2, uname="v") as c2:
        with pytest.raises(Error, match="^file does not exist$"):
            c2.stat("trusted/1.2.3.4")
    c.close()


def test_ctl_debug_file_only_for_owner(ratfs, tmp_path):
    with ratfs.client("intruder") as c:
        with pytest.raises(Error, match="^permission denied$"):
            c.write("ctl", f"debug {tmp_path}/x".encode())
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["9" * 1000, "1.2.3.4.5", "..x", "::1", "1.2.3.4#99",
                                  "\u00e9t\u00e9", "-1.0.0.0"])
def test_odd_names_are_clean_misses(ratfs, name):
    with ratfs.client() as c:
        for d in ("trusted", "block/ip", "deny/account"):
            with pytest.raises(Error, match="^file does not exist$"):
                c.stat(f"{d}/{name}")
        assert c.stat("trusted/135.104.9.1").name == "135.104.0.0#16"   # still serving


def test_debug_to_file_by_owner(ratfs, tmp_path):
    import getpass
    log = tmp_path / "ratfs.debug"
    with ratfs.client(getpass.getuser()) as c:
        c.write("ctl", f"debug '{log}'".encode())
        c.stat("block/ip/10.9.9.9")
        c.write("ctl", b"nodebug")
    text = log.read_text()
    assert "block/ip/10.9.9.9 -> 10.0.0.0#8" in text


def test_d_flag_logs_to_stderr(tmp_path):
    ns = tmp_path / "ns"
    ns.mkdir(mode=0o700)
    (tmp_path / "b").write_text("")
    (tmp_path / "c").write_text("")
    proc = start_ratfs(str(ns), tmp_path / "b", tmp_path / "c", ["-d"])
    try:
        with Client.dial(f"unix!{ns}/ratify", uname="dbg"):
            pass
    finally:
        stop(proc)
    assert "attach dbg" in proc.stderr.read()
