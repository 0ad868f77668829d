"""factotum's files over 9P (docs/spec/fs-auth.md §2.1), on upas.ninep.server.

The plan9port layout: the files sit at the attach root, listed in the
order `confirm needkey ctl rpc proto log conv`.  Each open of `rpc` is an
independent Conversation; `ctl` lists keys without their secrets and takes
`key`/`delkey` lines.  We never queue requests on `needkey` or `confirm`:
a missing key is answered with a `needkey` reply at once.
"""
from __future__ import annotations

import collections
import getpass
import sys
import threading
import time
import weakref

from upas.ninep import DMDIR, DMEXCL, QTDIR, QTEXCL, Error, Node, Open, Qid, Server, Stat

from .keys import CtlError
from .proto import Context
from .rpc import PROTOCOLS, Conversation, RpcFileError

LOGLINES = 500                    # the log keeps this many recent lines


class Log:
    """The `log` file: recent lines, never a secret (callers make sure)."""

    def __init__(self, echo: bool = False) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=LOGLINES)
        self.echo = echo                       # -d: also to stderr

    def __call__(self, line: str) -> None:
        self.lines.append(line + "\n")
        if self.echo:
            print("factotum:", line, file=sys.stderr, flush=True)

    def text(self) -> bytes:
        return "".join(self.lines).encode()


class _Snapshot(Open):
    """A read-only file whose text is taken at offset 0 and read by offset."""

    def __init__(self, produce):
        self.produce = produce
        self.text = b""

    def read(self, offset: int, count: int) -> bytes:
        if offset == 0:
            self.text = self.produce()
        return self.text[offset:offset + count]


class _Ctl(_Snapshot):
    def __init__(self, factotum: "Factotum"):
        super().__init__(lambda: factotum.ctx.ring.listing().encode())
        self.factotum = factotum

    def write(self, offset: int, data: bytes) -> int:
        try:
            self.factotum.ctx.ring.ctl(data.decode("utf-8", "replace"))
        except CtlError as e:
            raise Error(str(e)) from None
        return len(data)


class _Rpc(Open):
    def __init__(self, conv: Conversation):
        self.conv = conv

    def read(self, offset: int, count: int) -> bytes:
        try:
            return self.conv.read(count)
        except RpcFileError as e:
            raise Error(str(e)) from None

    def write(self, offset: int, data: bytes) -> int:
        try:
            return self.conv.write(data)
        except RpcFileError as e:
            raise Error(str(e)) from None

    def clunk(self) -> None:
        self.conv.close()


class _Excl(Open):
    """needkey, confirm, log: one open at a time (DMEXCL)."""

    def __init__(self, file: "_File", inner: Open):
        self.file, self.inner = file, inner

    def read(self, offset: int, count: int) -> bytes:
        return self.inner.read(offset, count)

    def write(self, offset: int, data: bytes) -> int:
        return self.inner.write(offset, data)

    def clunk(self) -> None:
        self.file.release()


class _File(Node):
    def __init__(self, factotum: "Factotum", name: str, path: int, perm: int):
        self.factotum, self.name, self.path, self.perm = factotum, name, path, perm
        self.busy = False
        self.lock = threading.Lock()

    @property
    def qid(self) -> Qid:
        return Qid(QTEXCL if self.perm & DMEXCL else 0, 0, self.path)

    def stat(self) -> Stat:
        f = self.factotum
        return Stat(qid=self.qid, mode=self.perm, atime=f.started, mtime=f.started,
                    name=self.name, uid=f.owner, gid=f.owner, muid=f.owner)

    def open(self, mode: int, user: str) -> Open:
        inner = self.factotum.opener(self.name, user)
        if not self.perm & DMEXCL:
            return inner
        with self.lock:
            if self.busy:
                raise Error("exclusive use file already open")
            self.busy = True
        return _Excl(self, inner)

    def release(self) -> None:
        with self.lock:
            self.busy = False


class _Root(Node):
    def __init__(self, factotum: "Factotum"):
        self.factotum = factotum

    @property
    def qid(self) -> Qid:
        return Qid(QTDIR, 0, 0)

    def stat(self) -> Stat:
        f = self.factotum
        return Stat(qid=self.qid, mode=DMDIR | 0o555, atime=f.started, mtime=f.started,
                    name="/", uid=f.owner, gid=f.owner, muid=f.owner)

    def children(self) -> list[Node]:
        return self.factotum.files


class Factotum:
    """The file tree of one factotum process."""

    FILES = (("confirm", 0o600 | DMEXCL), ("needkey", 0o600 | DMEXCL), ("ctl", 0o600),
             ("rpc", 0o666), ("proto", 0o444), ("log", 0o600 | DMEXCL), ("conv", 0o400))

    def __init__(self, ctx: Context, owner: str | None = None, debug: bool = False):
        self.ctx = ctx
        self.owner = owner or getpass.getuser()
        self.started = int(time.time())
        self.log = Log(debug)
        self.convs: weakref.WeakSet[Conversation] = weakref.WeakSet()
        self.files = [_File(self, name, i + 1, perm) for i, (name, perm) in enumerate(self.FILES)]
        self.root = _Root(self)

    def opener(self, name: str, user: str) -> Open:
        if name == "rpc":
            conv = Conversation(Context(self.ctx.ring, self.ctx.authdial, user), self.log)
            self.convs.add(conv)
            return _Rpc(conv)
        if name == "conv":
            return _Snapshot(self.conv_list)
        if name == "ctl":
            return _Ctl(self)
        if name == "proto":
            return _Snapshot(lambda: "".join(p + "\n" for p in PROTOCOLS).encode())
        if name == "log":
            return _Snapshot(self.log.text)
        return _Snapshot(lambda: b"")       # needkey, confirm: nothing is ever queued

    def conv_list(self) -> bytes:
        """plan9port's `conv`: one line per open conversation, no secrets."""
        lines = [conv.describe() for conv in list(self.convs)]
        return "".join(line + "\n" for line in lines if line).encode()

    def server(self) -> Server:
        # inline: a connection's requests are answered in order, so a
        # client may send an rpc write and its read together (lib/factotum.py);
        # only an AS exchange blocks, and only its own connection (Plan 9's
        # factotum, one lib9p process, serializes every client on it)
        return Server(lambda uname, aname: self.root, inline=True,
                      auth_error="factotum: authentication not required")
