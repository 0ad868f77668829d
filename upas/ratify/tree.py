"""The ratfs file tree on upas.ninep.server.

    /ctl                              0222  reload | debug [file] | nodebug
    /trusted/                         0777  create ADDR#BITS; walk an address
    /{allow,delay,block,dial,deny}/{ip,account}/   0555  walk an address/path

Address lookups are walks: `trusted/10.1.2.3` exists when an entry holds
10.1.2.3, and its stat names the entry (the most specific one).
"""
from __future__ import annotations

import sys
from typing import Callable

from upas.ninep.codec import DMDIR, OREAD, OWRITE, QTDIR, Qid, Stat
from upas.ninep.server import Error, Node, Open

from . import rules
from .tables import OWNER, Tables, TableError, Trusted

EACCES_OPEN = "permission denied or operation not supported"

# qid paths: fixed ones small, trusted entries and address pseudo-files above
Q_ROOT, Q_CTL, Q_TRUSTED, Q_DUMMY = 1, 2, 3, 4
Q_ACTION = {a: 10 + 2 * i for i, a in enumerate(rules.ACTIONS)}  # +0 dir, ip/account +100/+101
Q_TRUSTEDFILE = 1 << 32
Q_ADDRFILE = 1 << 33


def _stat(name: str, qid: Qid, mode: int, mtime: float, uid: str = OWNER) -> Stat:
    t = int(mtime)
    return Stat(type=0, dev=0, qid=qid, mode=mode, atime=t, mtime=t, length=0,
                name=name, uid=uid, gid=uid, muid=uid)


class _Empty(Open):
    """An open pseudo-file or directory: reads are empty (dirs: the framework)."""

    def read(self, offset: int, count: int) -> bytes:
        return b""

    def write(self, offset: int, data: bytes) -> int:
        raise Error(EACCES_OPEN)

    def clunk(self) -> None:
        pass


class _Base(Node):
    def __init__(self, fs: "Ratfs"):
        self.fs = fs

    def children(self) -> list[Node]:
        return []

    def walk(self, name: str) -> Node:
        raise Error("file does not exist")

    def open(self, mode: int, user: str) -> Open:
        if mode & 3 != OREAD:
            raise Error(EACCES_OPEN)
        return _Empty()

    def create(self, name, perm, mode, user):
        raise Error("permission denied" if self.stat().mode & DMDIR else "not a directory")

    def remove(self, user: str) -> None:
        raise Error("can't be removed")

    def wstat(self, st: Stat, user: str) -> None:
        raise Error("wstat not implemented")


class _Dir(_Base):
    def __init__(self, fs, name: str, qpath: int, kids: list[Node]):
        super().__init__(fs)
        self.name, self.qpath, self.kids = name, qpath, kids

    @property
    def qid(self) -> Qid:
        return Qid(QTDIR, 0, self.qpath)

    def stat(self) -> Stat:
        return _stat(self.name, self.qid, DMDIR | 0o555, self.fs.started)

    def children(self) -> list[Node]:
        return self.kids

    def walk(self, name: str) -> Node:
        for k in self.kids:
            if k.stat().name == name:
                return k
        raise Error("file does not exist")


class _Pseudo(_Base):
    """A walked-to address: read-only, empty, named after the matching entry."""

    def __init__(self, fs, name: str, qpath: int):
        super().__init__(fs)
        self.name, self.qpath = name, qpath

    @property
    def qid(self) -> Qid:
        return Qid(0, 0, self.qpath)

    def stat(self) -> Stat:
        return _stat(self.name, self.qid, 0o444, self.fs.tables.loaded_at)


class _AddrDir(_Dir):
    """allow/ip, block/account, ...: lists the entries, walks by lookup."""

    def __init__(self, fs, action: str, kind: str, qpath: int):
        super().__init__(fs, kind, qpath, [])
        self.action, self.kind = action, kind

    def children(self) -> list[Node]:
        names = self.fs.tables.names(self.action, self.kind)
        base = Q_ADDRFILE + (self.qpath << 20)
        return [_Pseudo(self.fs, n, base + i) for i, n in enumerate(names)]

    def walk(self, name: str) -> Node:
        t = self.fs.tables
        try:
            if self.kind == "ip":
                hit = t.lookup_ip(self.action, name)
            else:
                hit = t.lookup_account(self.action, name)
        except rules.CidrError:
            hit = None
        self.fs.debug(f"{self.action}/{self.kind}/{name} -> {hit}")
        if hit is None:
            raise Error("file does not exist")
        return _Pseudo(self.fs, hit, Q_DUMMY)


class _TrustedFile(_Base):
    def __init__(self, fs, entry: Trusted):
        super().__init__(fs)
        self.entry = entry

    @property
    def qid(self) -> Qid:
        return Qid(0, 0, Q_TRUSTEDFILE + self.entry.qid)

    def stat(self) -> Stat:
        e = self.entry
        return _stat(e.name, self.qid, e.mode, e.ctime, e.uid)

    def remove(self, user: str) -> None:
        try:
            self.fs.tables.remove_trusted(self.entry, user)
        except TableError as e:
            raise Error(str(e)) from None


class _TrustedDir(_Dir):
    def __init__(self, fs):
        super().__init__(fs, "trusted", Q_TRUSTED, [])

    def stat(self) -> Stat:
        return _stat("trusted", self.qid, DMDIR | 0o777, self.fs.started)

    def children(self) -> list[Node]:
        return [_TrustedFile(self.fs, e) for e in self.fs.tables.trusted_entries()]

    def walk(self, name: str) -> Node:
        try:
            hit = self.fs.tables.lookup_trusted(name)
        except rules.CidrError:
            hit = None
        self.fs.debug(f"trusted/{name} -> {hit.name if hit else None}")
        if hit is None:
            raise Error("file does not exist")
        return _TrustedFile(self.fs, hit)

    def create(self, name, perm, mode, user):
        # The requested permissions are ignored: the file is always 0444.
        try:
            entry = self.fs.tables.add_trusted(name, user)
        except TableError as e:
            raise Error(str(e)) from None
        self.fs.debug(f"create trusted/{name} by {user}")
        return _TrustedFile(self.fs, entry), _Empty()


class _CtlOpen(Open):
    def __init__(self, fs: "Ratfs", user: str):
        self.fs, self.user = fs, user

    def read(self, offset: int, count: int) -> bytes:
        raise Error("permission denied")

    def write(self, offset: int, data: bytes) -> int:
        self.fs.command(data.decode("utf-8", "replace"), self.user)
        return len(data)

    def clunk(self) -> None:
        pass


class _Ctl(_Base):
    qid = Qid(0, 0, Q_CTL)

    def stat(self) -> Stat:
        return _stat("ctl", self.qid, 0o222, self.fs.started)

    def open(self, mode: int, user: str) -> Open:
        if mode & 3 != OWRITE:
            raise Error("permission denied")
        return _CtlOpen(self.fs, user)


def tokenize(text: str) -> list[str]:
    """Plan 9 tokenize(2): blank-separated words, rc '...' quoting ('' is ')."""
    words, cur, quoted, inword = [], [], False, False
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "'" and text[i + 1:i + 2] == "'":
                cur.append("'")
                i += 1
            elif c == "'":
                quoted = False
            else:
                cur.append(c)
        elif c == "'":
            quoted = inword = True
        elif c in " \t\r\n":
            if inword:
                words.append("".join(cur))
            cur, inword = [], False
        else:
            cur.append(c)
            inword = True
        i += 1
    if inword:
        words.append("".join(cur))
    return words


class Ratfs:
    """The whole file server: tables plus tree plus the ctl commands."""

    def __init__(self, tables: Tables, owner: str,
                 debug_open: Callable[[str], object] | None = None):
        self.tables = tables
        self.owner = owner            # who may point debug output at a file
        self.started = tables.clock()
        self.debugf = None
        self._debug_open = debug_open or (lambda path: open(path, "w", buffering=1))
        actions = []
        for a in rules.ACTIONS:
            q = Q_ACTION[a]
            kids = [_AddrDir(self, a, "ip", 100 + q), _AddrDir(self, a, "account", 101 + q)]
            actions.append(_Dir(self, a, q, kids))
        self.root = _Dir(self, "/", Q_ROOT, actions + [_TrustedDir(self), _Ctl(self)])

    def attach(self, uname: str, aname: str) -> Node:
        self.tables.refresh()
        self.debug(f"attach {uname}")
        return self.root

    def debug(self, line: str) -> None:
        if self.debugf is not None:
            try:
                print(line, file=self.debugf, flush=True)
            except (OSError, ValueError):
                pass

    def command(self, text: str, user: str) -> None:
        argv = tokenize(text)
        verb = argv[0] if argv else ""
        if verb == "reload":
            self.tables.reload()
        elif verb == "debug":
            self._set_debug(argv[1] if len(argv) > 1 else None, user)
        elif verb == "nodebug":
            self._set_debug(None, user, off=True)
        else:
            raise Error("unknown command")

    def _set_debug(self, path: str | None, user: str, off: bool = False) -> None:
        if off:
            new = None
        elif path is None:
            new = sys.stderr
        elif user != self.owner:
            # Any user can write ctl; only the owner may name a file to create.
            raise Error("permission denied")
        else:
            try:
                new = self._debug_open(path)
            except OSError:
                raise Error("create failed") from None
        old, self.debugf = self.debugf, new
        if old not in (None, sys.stderr):
            old.close()
        self.tables.log = self.debug
