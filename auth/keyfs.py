"""keyfs: the authentication database served over 9P (docs/spec/fs-auth.md §3.8).

    python -m auth.keyfs [-p] [-k authkeyfile] [-s service] [keyfile]

The tree is /USER/{key,secret,log,status,expire,warnings}; mkdir makes a
user, remove deletes one, wstat renames. The auth key decrypting the keys
file (Plan 9 keeps it in NVRAM) comes from -k FILE (first line: the
password) or, with -p, from the terminal or the first line of stdin.
KEYFS_PURGATORY_SCALE multiplies purgatory seconds (tests use a small one).
"""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import sys
import time

from auth import crypt, keyfile
from auth.keydb import FILES, KeyDB, KeyfsError, User
from upas import config
from upas.ninep.dial import post, service_path
from upas.ninep.codec import DMDIR, QTDIR, QTFILE, Qid, Stat
from upas.ninep.server import Error, Node, Open, Server

log = logging.getLogger("auth.keyfs")

OWNER = "auth"
DEFAULT_KEYFILE = "/adm/keys"


def _plan9(fn):
    """Run a KeyDB call, turning its error into a 9P error."""
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except KeyfsError as e:
            raise Error(str(e)) from None
    return wrapper


class _Base(Node):
    def __init__(self, db: KeyDB, t0: int):
        self.db, self.t0 = db, t0

    def _stat(self, name: str, qid: Qid, mode: int) -> Stat:
        return Stat(qid=qid, mode=mode, atime=self.t0, mtime=self.t0, length=0,
                    name=name, uid=OWNER, gid=OWNER, muid=OWNER)


class _FileOpen(Open):
    def __init__(self, node: "FileNode"):
        self.node = node

    @_plan9
    def read(self, offset: int, count: int) -> bytes:
        data = self.node.db.read(self.node.user, self.node.name)
        return data[offset:offset + count]

    @_plan9
    def write(self, offset: int, data: bytes) -> int:
        return self.node.db.write(self.node.user, self.node.name, data)


class FileNode(_Base):
    def __init__(self, db: KeyDB, t0: int, user: User, index: int):
        super().__init__(db, t0)
        self.user, self.index, self.name = user, index, FILES[index]

    @property
    def qid(self) -> Qid:
        return Qid(QTFILE, 0, (self.user.id << 4) | (self.index + 1))

    def _check(self) -> None:
        if self.user.removed:
            raise Error("user removed")

    def stat(self) -> Stat:
        self._check()
        return self._stat(self.name, self.qid, 0o666)

    def open(self, mode: int, user: str) -> Open:
        self._check()
        return _FileOpen(self)

    def remove(self, user: str) -> None:
        self._check()
        raise Error("permission denied")


class UserDir(_Base):
    def __init__(self, db: KeyDB, t0: int, user: User):
        super().__init__(db, t0)
        self.user = user

    @property
    def qid(self) -> Qid:
        return Qid(QTDIR, 0, self.user.id << 4)

    def stat(self) -> Stat:
        return self._stat(self.user.name, self.qid, DMDIR | 0o777)

    def children(self) -> list[Node]:
        if self.user.removed:
            return []
        return [FileNode(self.db, self.t0, self.user, i) for i in range(len(FILES))]

    def walk(self, name: str) -> Node:
        if self.user.removed:
            raise Error("user removed")
        if name not in FILES:
            raise Error("file does not exist")
        return FileNode(self.db, self.t0, self.user, FILES.index(name))

    @_plan9
    def remove(self, user: str) -> None:
        self.db.remove(self.user)

    @_plan9
    def wstat(self, st: Stat, user: str) -> None:
        if st.name:
            self.db.rename(self.user, st.name)


class RootDir(_Base):
    @property
    def qid(self) -> Qid:
        return Qid(QTDIR, 0, 0)

    def stat(self) -> Stat:
        return self._stat("/", self.qid, DMDIR | 0o777)

    def children(self) -> list[Node]:
        return [UserDir(self.db, self.t0, u) for u in self.db.all_users()]

    @_plan9
    def walk(self, name: str) -> Node:
        return UserDir(self.db, self.t0, self.db.lookup(name))

    @_plan9
    def create(self, name: str, perm: int, mode: int, user: str) -> tuple[Node, Open]:
        if not perm & DMDIR:
            raise Error("permission denied")
        u = self.db.create(name)
        return UserDir(self.db, self.t0, u), Open()


def make_server(db: KeyDB) -> Server:
    root = RootDir(db, int(time.time()))
    # inline: each request answered in its connection's reader thread, in
    # order (the auth server asks over one connection, three times a
    # login); only a change of a key or secret writes the database, and
    # that delays only its own connection (Plan 9's keyfs is one process)
    return Server(lambda uname, aname: root, inline=True,
                  auth_error="keyfs: authentication not required")


def _authkey(args: argparse.Namespace) -> bytes:
    if args.k:
        return keyfile.read_authkey(args.k)
    if sys.stdin.isatty():
        pw = getpass.getpass("Password: ")
    else:
        pw = sys.stdin.readline().rstrip("\r\n")
    if not pw:
        raise ValueError("no password")
    return crypt.passtokey(pw)


def open_db(path: str, authkey: bytes) -> KeyDB:
    """Load the keys file. Unlike keyfs, refuse a file with undecodable records
    (a wrong auth key or damage): the next write-back would destroy them."""
    db = KeyDB(path, authkey, purgatory_scale=config.current().keyfs_purgatory_scale)
    if db.skipped:
        raise ValueError(f"{path}: {db.skipped} bad records: wrong auth key or damaged file")
    if not os.path.exists(path):
        db.save_all()
    return db


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="keyfs", description="serve the authentication database")
    ap.add_argument("-p", action="store_true", help="read the auth password (tty, else stdin)")
    ap.add_argument("-k", metavar="authkeyfile", help="file whose first line is the auth password")
    ap.add_argument("-s", metavar="service", default="keys", help="post this service (default keys)")
    ap.add_argument("keyfile", nargs="?", default=DEFAULT_KEYFILE)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="keyfs: %(message)s")
    if not args.p and not args.k:
        print("keyfs: no auth key: use -p or -k authkeyfile", file=sys.stderr)
        return 1
    if "!" in args.s and not args.s.startswith("unix!"):
        print("keyfs: keys are served on a local socket only", file=sys.stderr)
        return 1
    try:
        db = open_db(args.keyfile, _authkey(args))
        listener = post(args.s)
    except (OSError, ValueError, Error) as e:
        print(f"keyfs: {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("serving %s as %s (%d users)", args.keyfile, args.s, len(db.users))
    try:
        make_server(db).serve_forever(listener)
    finally:
        if "!" not in args.s:
            os.unlink(service_path(args.s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
