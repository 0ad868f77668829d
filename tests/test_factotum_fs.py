"""factotum as a process: its 9P files and lib/factotum against it.

No auth server here: pass and the apop/cram client role need none.
docs/spec/fs-auth.md §2.1-2.3; facts 13, 17, 18, 36.
"""
import shutil

import pytest

from lib import factotum as lf
from tests.fixtures.factotum import short_namespace, start_factotum
from upas import ninep


def test_files_in_plan9port_order(factotum_proc):
    with ninep.Client.dial(factotum_proc.addr) as c:
        names = [s.name for s in c.readdir("")]
        assert names == ["confirm", "needkey", "ctl", "rpc", "proto", "log", "conv"]
        modes = {s.name: s.mode for s in c.readdir("")}
    assert modes["rpc"] == 0o666 and modes["proto"] == 0o444 and modes["ctl"] == 0o600
    assert modes["log"] == 0o600 | ninep.DMEXCL


def test_proto_lists_one_protocol_per_line(factotum_proc):
    with ninep.Client.dial(factotum_proc.addr) as c:
        protos = c.read("proto").decode().split("\n")
    assert protos[-1] == ""
    assert {"apop", "cram", "p9any", "p9cr", "p9sk1", "pass"} == set(protos[:-1])


def test_ctl_hides_secrets_and_reports_errors(factotum_proc):      # docs/spec/fs-auth.md fact 18
    f = factotum_proc
    f.ctl("key proto=apop server=pop.example.com user=alice !password=sekrit")
    f.ctl("key proto=p9sk1 dom=upas.local user=upas !password=upas-host-pw")
    with ninep.Client.dial(f.addr) as c:
        listing = c.read("ctl").decode()
        assert listing == ("key proto=apop server=pop.example.com user=alice !password?\n"
                           "key proto=p9sk1 dom=upas.local user=upas !password?\n")
        with pytest.raises(ninep.Error, match="^found no keys to delete$"):
            c.write("ctl", b"delkey proto=cram")
        with pytest.raises(ninep.Error, match="^unknown verb$"):
            c.write("ctl", b"frob")
        c.write("ctl", b"delkey proto=apop\n")
        assert "alice" not in c.read("ctl").decode()
    assert f.alive()


def test_rpc_file_errors_are_9p_errors(factotum_proc):
    with ninep.Client.dial(factotum_proc.addr) as c, c.open("rpc", "rw") as rpc:
        with pytest.raises(ninep.Error, match="^no rpc pending$"):
            rpc.read(4096)
        rpc.write(b"start proto=pass")
        with pytest.raises(ninep.Error, match="^rpc already pending; read to clear$"):
            rpc.write(b"read")
        with pytest.raises(ninep.Error, match="^rpc read too small$"):
            rpc.read(10)
        assert rpc.read(4096).startswith(b"needkey ")
        with pytest.raises(ninep.Error, match="^rpc too large$"):
            rpc.write(b"write " + b"x" * 4096)


def test_each_open_of_rpc_is_a_conversation(factotum_proc):
    factotum_proc.ctl("key proto=pass service=imap user=glenda !password=pw")
    with ninep.Client.dial(factotum_proc.addr) as c:
        a, b = c.open("rpc", "rw"), c.open("rpc", "rw")
        a.write(b"start proto=pass service=imap")
        assert a.read(4096) == b"ok"                          # docs/spec/fs-auth.md fact 13
        b.write(b"read")
        assert b.read(4096) == b"error no current protocol"
        assert c.read("conv") == b"conv state=HavePass proto=pass service=imap user=glenda\n"
        a.write(b"read")
        assert a.read(4096) == b"ok glenda pw"
        a.close(), b.close()


def test_log_is_exclusive(factotum_proc):
    with ninep.Client.dial(factotum_proc.addr) as c:
        with c.open("log"):
            with pytest.raises(ninep.Error, match="exclusive use file already open"):
                c.open("log")
        c.open("log").close()


def test_getuserpasswd_finds_factotum_three_ways(factotum_proc, process_env):   # docs/spec/fs-auth.md fact 17
    f = factotum_proc
    f.ctl("key proto=pass service=imap server=mail.example.com user=glenda '!password=my pw'")
    attrs = "proto=pass service=imap server=mail.example.com"
    assert lf.auth_getuserpasswd(attrs, addr=f.addr) == ("glenda", "my pw")
    process_env.set("factotum", f.addr)
    assert lf.auth_getuserpasswd(attrs) == ("glenda", "my pw")
    process_env.delete("factotum")
    process_env.set("NAMESPACE", f.namespace)
    assert lf.auth_getuserpasswd(attrs) == ("glenda", "my pw")
    with ninep.Client.dial(f.addr) as c, c.open("rpc", "rw") as rpc:
        rpc.write(b"start proto=pass service=imap")
        rpc.read(4096)
        rpc.write(b"read")
        assert rpc.read(4096) == b"ok glenda 'my pw'"


def test_needkey_is_an_exception(factotum_proc):
    with pytest.raises(lf.NeedKey) as e:
        lf.auth_getuserpasswd("proto=pass service=pop3", addr=factotum_proc.addr)
    assert e.value.template == "!password? proto=pass service=pop3 user?"


def test_needkey_getkey_retries(factotum_proc):
    f = factotum_proc

    def getkey(template):
        f.ctl("key proto=pass service=pop3 user=bob !password=bob-pw")
        return True

    assert lf.auth_getuserpasswd("proto=pass service=pop3", addr=f.addr,
                                 getkey=getkey) == ("bob", "bob-pw")


def test_auth_respond_apop_and_cram(factotum_proc):
    f = factotum_proc
    f.ctl("key proto=apop server=dbc.mtview.ca.us user=mrose !password=tanstaaf")
    f.ctl("key proto=cram server=postoffice user=tim !password=tanstaaftanstaaf")
    assert lf.auth_respond("<1896.697170952@dbc.mtview.ca.us>",
                           "proto=apop role=client server=dbc.mtview.ca.us", addr=f.addr) == \
        ("c4c9334bac560ecc979e58001b3e22fb", "mrose")
    assert lf.auth_respond("<1896.697170952@postoffice.reston.mci.net>",
                           "proto=cram role=client server=postoffice", addr=f.addr) == \
        ("B913A602C7EDA7A495B4E6E7334D3890", "tim")


def test_errors_are_exceptions(factotum_proc):
    with pytest.raises(lf.FactotumError, match="^did not specify proto$"):
        lf.auth_challenge("role=server", addr=factotum_proc.addr)
    with pytest.raises(lf.FactotumUnavailable):
        lf.auth_challenge("proto=apop role=server", addr="unix!/nonexistent/factotum")
    assert factotum_proc.alive()


def test_initial_keys_from_a_pipe():
    """-k as `make run` uses it: key lines through a pipe, comments skipped."""
    ns = short_namespace()
    f = start_factotum(ns, keyfile="# host key\nkey proto=p9sk1 dom=upas.local user=upas "
                                   "!password=upas-host-pw\n\nkey proto=pass user=x !password=y\n")
    try:
        with ninep.Client.dial(f.addr) as c:
            assert c.read("ctl") == (b"key proto=p9sk1 dom=upas.local user=upas !password?\n"
                                     b"key proto=pass user=x !password?\n")
    finally:
        f.stop()
        shutil.rmtree(ns, ignore_errors=True)


def test_bad_initial_key_is_fatal():
    ns = short_namespace()
    with pytest.raises(RuntimeError, match="exited"):
        start_factotum(ns, keyfile="key user=nobody !password=x\n")
    shutil.rmtree(ns, ignore_errors=True)


def test_tauth_declined(factotum_proc):
    """lib9p's answer when a server takes no authentication."""
    from upas.ninep import codec
    with ninep.dial(factotum_proc.addr) as s:
        s.sendall(codec.pack(codec.Tversion(ninep.NOTAG, 8192, "9P2000")))
        assert codec.read_msg(s, 8192).version == "9P2000"
        s.sendall(codec.pack(codec.Tauth(1, 7, "glenda", "")))
        assert codec.read_msg(s, 8192) == codec.Rerror(1, "factotum: authentication not required")


def test_auth_server_down_is_an_error_not_a_crash():
    ns = short_namespace()
    f = start_factotum(ns, authaddr="tcp!127.0.0.1!1",
                       keys=("proto=p9sk1 dom=upas.local user=upas !password=upas-host-pw",))
    try:
        with pytest.raises(lf.FactotumError, match="^auth server tcp!127.0.0.1!1: "):
            lf.auth_challenge("proto=apop role=server", f.addr)
        with pytest.raises(lf.FactotumError, match="^auth server protocol botch$"):
            lf.auth_challenge("proto=p9cr role=server user=glenda", f.addr)
        assert f.alive()
    finally:
        f.stop()
        shutil.rmtree(ns, ignore_errors=True)


def test_rpc_write_and_read_sent_together_are_answered_in_order(factotum_proc):
    """lib/factotum sends an rpc write and its read in one round trip: our
    factotum answers a connection's requests in the order they came (a
    read taken first would be `no rpc pending`, docs/spec/fs-auth.md §2.3)."""
    from upas.ninep import codec
    factotum_proc.ctl("key proto=pass service=pop server=p.example.com user=ken !password=k")
    with ninep.Client.dial(factotum_proc.addr) as c:
        for _ in range(20):
            with c.open("rpc", "rw") as rpc:
                calls = c.mux.start_many(
                    [codec.Twrite(0, rpc.fid, 0, b"start proto=pass service=pop role=client"),
                     codec.Tread(0, rpc.fid, 0, 4096),
                     codec.Twrite(0, rpc.fid, 0, b"read"), codec.Tread(0, rpc.fid, 0, 4096)])
                replies = [c.mux.finish(x) for x in calls]
                assert [r.data for r in replies[1::2]] == [b"ok", b"ok ken k"]


def test_pipelined_rpc_with_a_threaded_factotum(tmp_path, monkeypatch):
    """The same tree served by worker threads (how our factotum served
    before it answered in order) may answer the read before the write and
    the open before the walk -- here always, each write and walk held back
    20 ms: lib/factotum and the 9P client then ask again, and every
    conversation still gets its answer."""
    import threading
    import time
    from auth.factotum import rpc as factotum_rpc
    from auth.factotum.fs import Factotum
    from auth.factotum.proto import Context
    from auth.factotum.rpc import new_keyring
    from auth.factotum.fs import _Root
    write, children = factotum_rpc.Conversation.write, _Root.children
    monkeypatch.setattr(factotum_rpc.Conversation, "write",
                        lambda self, data: time.sleep(0.02) or write(self, data))
    # the walk to rpc held back too: the Topen sent with it comes first
    monkeypatch.setattr(_Root, "children", lambda self: time.sleep(0.02) or children(self))
    ring = new_keyring()
    f = Factotum(Context(ring, lambda dom: None))
    srv = ninep.Server(lambda uname, aname: f.root)       # not inline
    addr = f"unix!{tmp_path}/factotum"
    listener = ninep.announce(addr)
    threading.Thread(target=srv.serve_forever, args=(listener,), daemon=True).start()
    try:
        with ninep.Client.dial(addr) as c:
            assert c.walks_pipelined
            c.write("ctl", b"key proto=pass service=imap server=m.example.com user=ken !password=k")
        for _ in range(5):
            assert lf.auth_getuserpasswd("proto=pass service=imap server=m.example.com",
                                         addr=addr) == ("ken", "k")
    finally:
        srv.shutdown()
