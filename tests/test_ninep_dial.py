"""Dial strings, posting and the plan9port name space dir (docs/spec/fs-auth.md §5.3)."""
from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import threading

import pytest

from tests.fixtures.ninep import sample_tree
from upas.ninep import Client, Error, Server, announce, dial, namespace_dir, post
from upas.ninep.dial import _display_name, getuser


@pytest.mark.parametrize("disp,canon", [
    (":0.0", ":0"),
    (":0", ":0"),
    ("host:10.0", "host:10"),
    (":0.1", ":0.1"),                 # only the .0 screen is dropped
    ("/tmp/launch-abc/org.x:0", "_tmp_launch-abc_org.x:0"),
    ("/tmp/launch/:0.0", "_tmp_launch_:0"),
])
def test_display_normalisation(disp, canon):
    assert _display_name(disp) == canon


def test_namespace_env_wins(process_env, tmp_path):
    ns = tmp_path / "ns"
    process_env.set("NAMESPACE", str(ns))
    assert namespace_dir() == str(ns)
    assert stat.S_IMODE(os.stat(ns).st_mode) == 0o700


@pytest.fixture
def display_ns(process_env):
    """An unused DISPLAY, so /tmp/ns.$USER.$DISPLAY is ours to make."""
    disp = f"upas-test-{os.getpid()}:0"
    path = f"/tmp/ns.{getuser()}.upas-test-{os.getpid()}:0"
    process_env.delete("NAMESPACE")
    process_env.set("DISPLAY", disp + ".0")
    shutil.rmtree(path, ignore_errors=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_namespace_from_display(display_ns):
    old = os.umask(0o022)
    try:
        assert namespace_dir() == display_ns
    finally:
        os.umask(old)
    st = os.stat(display_ns)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()
    assert namespace_dir() == display_ns            # existing and right: fine


def test_bad_name_space_dir(display_ns):
    os.mkdir(display_ns, 0o700)
    os.chmod(display_ns, 0o755)
    with pytest.raises(Error, match=f"^bad name space dir {display_ns}$"):
        namespace_dir()


def test_no_namespace_no_display(process_env):
    process_env.delete("NAMESPACE")
    process_env.delete("DISPLAY")
    with pytest.raises(Error, match=r"^\$NAMESPACE not set, \$DISPLAY not set$"):
        namespace_dir()


def _serve(listener) -> Server:
    root = sample_tree()
    srv = Server(lambda u, a: root)
    threading.Thread(target=srv.serve_forever, args=(listener,), daemon=True).start()
    return srv


def test_post_and_dial_by_service_name(ninep_namespace):
    ls = post("svc")
    path = os.path.join(ninep_namespace, "svc")
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    srv = _serve(ls)
    try:
        for addr in ("svc", f"unix!{path}"):
            with Client.dial(addr) as c:
                assert c.read("hello") == b"hello, world\n"
        # A live service cannot be posted twice.
        with pytest.raises(OSError) as e:
            post("svc")
        assert e.value.errno == errno.EADDRINUSE
    finally:
        srv.shutdown()


def test_post_replaces_a_stale_socket(ninep_namespace):
    path = os.path.join(ninep_namespace, "stale")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                              # the file stays, nobody listens
    srv = _serve(post("stale"))
    try:
        with Client.dial("stale") as c:
            assert c.stat("hello").length == 13
    finally:
        srv.shutdown()


def test_tcp_and_net_dial_strings(ninep_namespace):
    ls = announce("tcp!*!0")
    port = ls.getsockname()[1]
    srv = _serve(ls)
    try:
        for addr in (f"tcp!127.0.0.1!{port}", f"net!localhost!{port}"):
            with Client.dial(addr) as c:
                assert c.read("sub/ünïcødé.txt") == "grüße\n".encode()
    finally:
        srv.shutdown()


def test_bad_dial_strings(ninep_namespace):
    with pytest.raises(Error, match="unsupported network"):
        dial("udp!host!53")
    with pytest.raises(Error, match="bad dial string"):
        dial("tcp!hostonly")
    with pytest.raises(OSError):
        dial("nosuchservice")


def test_shutdown_removes_socket_and_hangs_up(ninep_namespace):
    path = os.path.join(ninep_namespace, "gone")
    srv = _serve(post("gone"))
    c = Client.dial("gone")
    assert c.read("hello") == b"hello, world\n"
    srv.shutdown()
    assert not os.path.exists(path)
    from upas.ninep import Hungup
    with pytest.raises(Hungup):
        c.read("hello")
    c.close()
