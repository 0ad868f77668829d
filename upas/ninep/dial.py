"""Dial strings and the plan9port name space directory.

`unix!PATH`, `tcp!HOST!PORT`, `net!HOST!PORT` (listening: `tcp!*!PORT`),
or a bare service name meaning the unix socket `$NAMESPACE/NAME`.
"""
from __future__ import annotations

import errno
import os
import pwd
import re
import socket
import stat
import sys

from upas import config

from .server import Error, nodelay


def _display_name(disp: str) -> str:
    """plan9port's canonical form: `host:0.0` -> `host:0`, `/` -> `_`."""
    colon = disp.rfind(":")
    if colon >= 0:
        m = re.match(r"\d*", disp[colon + 1:])
        end = colon + 1 + m.end()
        if disp[end:] == ".0":
            disp = disp[:end]
    return disp.replace("/", "_")


def getuser() -> str:
    """The login name of our uid, as plan9port's getuser() (not $USER)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return "none"


def namespace_dir() -> str:
    """$NAMESPACE, else /tmp/ns.$USER.$DISPLAY, created mode 0700.

    As in plan9port, a directory that exists with another mode or owner is
    refused ("bad name space dir"). An explicit $NAMESPACE is trusted, but
    created (0700) if missing so services can be posted in it."""
    cfg = config.current()
    ns = cfg.namespace
    if ns:
        os.makedirs(ns, mode=0o700, exist_ok=True)
        return ns
    disp = cfg.display
    if disp is None:
        if sys.platform != "darwin":
            raise Error("$NAMESPACE not set, $DISPLAY not set")
        disp = ":0"
    path = f"/tmp/ns.{getuser()}.{_display_name(disp)}"
    try:
        os.mkdir(path, 0o700)
        return path
    except FileExistsError:
        pass
    st = os.lstat(path)
    if (not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o700
            or st.st_uid != os.getuid()):
        raise Error(f"bad name space dir {path}")
    return path


def _parse(addr: str) -> tuple[str, str, str]:
    """(net, host, port) for a dial string; a bare name is a service."""
    if "!" not in addr:
        path = addr if "/" in addr else os.path.join(namespace_dir(), addr)
        return "unix", path, ""
    net, _, rest = addr.partition("!")
    if net == "unix":
        return net, rest, ""
    if net not in ("tcp", "net"):
        raise Error(f"unsupported network {net!r} in {addr!r}")
    host, _, port = rest.rpartition("!")
    if not host or not port:
        raise Error(f"bad dial string {addr!r}")
    return "tcp", host, port


def _port(port: str) -> int:
    if port.isdigit():
        return int(port)
    try:
        return socket.getservbyname(port, "tcp")
    except OSError:
        if port == "9fs":               # often missing from /etc/services
            return 564
        raise Error(f"unknown service {port!r}") from None


def dial(addr: str) -> socket.socket:
    """Connect to addr; returns a connected stream socket."""
    net, host, port = _parse(addr)
    if net == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(host)
        except OSError:
            s.close()
            raise
        return s
    return nodelay(socket.create_connection((host, _port(port))))



def announce(addr: str, backlog: int = 64) -> socket.socket:
    """A listening socket for addr (`tcp!*!0` picks a free port)."""
    net, host, port = _parse(addr)
    if net == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: object = host
    else:
        bind_host = "" if host == "*" else host
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        target = (bind_host, _port(port))
    try:
        s.bind(target)
        s.listen(backlog)
    except OSError:
        s.close()
        raise
    return s


def still_open(sock: socket.socket) -> bool:
    """Whether the server still holds this connection (nothing to read,
    no end of file): a connection made ahead of its use, checked before
    it is used (a server restarted meanwhile)."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True             # nothing to read: still open
    except OSError:
        pass
    return False                # its end of file, or bytes nobody asked for


def _is_live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def post(name: str) -> socket.socket:
    """Listen on the service socket $NAMESPACE/name (a name containing `!`
    is a full address). A stale socket left by a dead server is removed
    (a unix! address's too); a live one is an error."""
    if name.startswith("unix!"):
        path = name[len("unix!"):]
    elif "!" in name:
        return announce(name)
    else:
        path = os.path.join(namespace_dir(), name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode) or _is_live(path):
            raise OSError(errno.EADDRINUSE, f"{path}: address in use")
        os.unlink(path)
    return announce("unix!" + path)


def service_path(name: str) -> str:
    """The socket path of a posted service."""
    return os.path.join(namespace_dir(), name)
