"""boxfs: a mail store's /mail/box over 9P, each user confined to their own.

    python -m upas.boxfs [-s service]     (default service: boxfs)

On Plan 9 /mail/box lives on the file server and a frontend's imap4d
reaches it over 9P.  This is that file server for a store: a 9P attach
as USER (the Tattach uname, as the store's upasfs broker takes it, or
the aname when one is given) is rooted at $MAILROOT/box/USER, and nothing outside it can be walked to
(`..` stops at the root; a symbolic link that leads out is refused).
Frontends mount it on /mail/box/USER (`$boxfs`, upas/ns.py), so imap4d's
.imp files, folders, subscriptions and APPEND work with no shared disk.

The mail lock across machines: L.mbox is an exclusive-use file (DMEXCL),
as on Plan 9's file servers: while one fid has it open, another open
fails with "exclusive use file already open" and the client retries.
An open also holds the host's lock on the file (upas/mail/lock.py), so a
frontend's lock excludes the store's own upasfs and deliveries, and a
frontend that dies or hangs up loses its lock when its fids are clunked.

Renames are Twstat name changes within a directory, done by rename(2):
over an existing file too (the crash-safe replace of upas/mail/safewrite).
A Twstat changing nothing (Plan 9's sync) fsyncs the file.  9P on TCP has
no authentication here, as the broker's: private networks only.
"""
from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat as statmod
import sys
import threading

from lib import cmdline
from upas import config
from upas.mail.lock import LOCKFILE
from upas.ninep.codec import DMDIR, DMEXCL, ORDWR, OTRUNC, OWRITE, Qid, Stat
from upas.ninep.dial import post
from upas.ninep.server import Error, Node, Open, Server
from upas.ns import EXCL_BUSY, qid_of
from lib.username import valid

USAGE = "usage: boxfs [-s service]"
NOCHANGE32, NOCHANGE64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF   # Twstat: "don't touch"

# Exclusive opens held by this process, by host path: fcntl locks belong to
# a process, so two fids of ours must be kept apart here.
_exclusive: set[str] = set()
_exclusive_lock = threading.Lock()


def _error(e: OSError) -> Error:
    if e.errno == errno.ENOENT:
        return Error("file does not exist")
    if e.errno == errno.EEXIST:
        return Error("file already exists")
    if e.errno in (errno.EACCES, errno.EPERM):
        return Error("permission denied")
    return Error(e.strerror or str(e))


class HostFile(Node):
    """A file or directory below one user's mail directory."""

    __slots__ = ("root", "path", "uid")

    def __init__(self, root: str, path: str, uid: str):
        self.root, self.path, self.uid = root, path, uid

    def _st(self) -> os.stat_result:
        try:
            return os.stat(self.path)
        except OSError as e:
            raise _error(e) from None

    @property
    def qid(self) -> Qid:
        return _qid(self._st())

    def stat(self) -> Stat:
        st = self._st()
        isdir = statmod.S_ISDIR(st.st_mode)
        mode = (st.st_mode & 0o777) | (DMDIR if isdir else 0)
        name = "/" if self.path == self.root else os.path.basename(self.path)
        if name == LOCKFILE:
            mode |= DMEXCL
        return Stat(qid=_qid(st), mode=mode, atime=int(st.st_atime),
                    mtime=int(st.st_mtime), length=0 if isdir else st.st_size,
                    name=name, uid=self.uid, gid=self.uid, muid=self.uid)

    def is_dir(self) -> bool:
        return statmod.S_ISDIR(self._st().st_mode)

    def _child(self, name: str) -> "HostFile":
        path = os.path.join(self.path, name)
        real = os.path.realpath(path)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise Error("permission denied")
        return HostFile(self.root, path, self.uid)

    def walk(self, name: str) -> "HostFile":
        child = self._child(name)
        child._st()
        return child

    def children(self):
        try:
            names = sorted(os.listdir(self.path))
        except OSError as e:
            raise _error(e) from None
        for name in names:
            child = HostFile(self.root, os.path.join(self.path, name), self.uid)
            try:
                child._st()
            except Error:
                continue        # vanished, or a dangling link
            yield child

    def open(self, mode: int, user: str) -> Open:
        if self.is_dir():
            return Open()
        return HostOpen(self.path, _flags(mode))

    def create(self, name: str, perm: int, mode: int, user: str) -> tuple[Node, Open]:
        child = self._child(name)
        try:
            if perm & DMDIR:
                os.mkdir(child.path, perm & 0o777)
                return child, Open()
            # Plan 9: creating an existing file truncates it, its mode kept
            return child, HostOpen(child.path, _flags(mode) | os.O_CREAT | os.O_TRUNC,
                                   perm & 0o777)
        except OSError as e:
            raise _error(e) from None

    def remove(self, user: str) -> None:
        if self.path == self.root:
            raise Error("permission denied")
        try:
            if self.is_dir():
                os.rmdir(self.path)
            else:
                os.unlink(self.path)
        except OSError as e:
            raise _error(e) from None

    def wstat(self, st: Stat, user: str) -> None:
        """A name change renames within the directory (replacing a file of
        that name, as rename(2)); a length truncates; mode bits chmod;
        nothing changed (Plan 9's sync) makes the file durable."""
        changed = False
        try:
            if st.length != NOCHANGE64:
                os.truncate(self.path, st.length)
                changed = True
            if st.mode != NOCHANGE32:
                os.chmod(self.path, st.mode & 0o777)
                changed = True
            if st.name:
                if self.path == self.root or "/" in st.name or st.name in (".", ".."):
                    raise Error("permission denied")
                new = self._parent()._child(st.name).path
                os.replace(self.path, new)
                _fsync(os.path.dirname(new))
                self.path = new
                changed = True
            if not changed:
                _fsync(self.path)
        except OSError as e:
            raise _error(e) from None

    def _parent(self) -> "HostFile":
        return HostFile(self.root, os.path.dirname(self.path), self.uid)


def _qid(st: os.stat_result) -> Qid:
    q = qid_of(st)
    return Qid(q.type, q.vers, q.path)


def _flags(mode: int) -> int:
    flags = {0: os.O_RDONLY, OWRITE: os.O_WRONLY, ORDWR: os.O_RDWR}.get(mode & 3, os.O_RDONLY)
    return flags | (os.O_TRUNC if mode & OTRUNC else 0)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class HostOpen(Open):
    """An open host file; L.mbox held exclusively while open."""

    __slots__ = ("fd", "excl")

    def __init__(self, path: str, flags: int, perm: int = 0o666):
        self.excl = path if os.path.basename(path) == LOCKFILE else None
        if self.excl:
            with _exclusive_lock:
                if path in _exclusive:
                    raise Error(EXCL_BUSY)
                _exclusive.add(path)
        try:
            self.fd = os.open(path, flags | (os.O_RDWR if self.excl else 0), perm)
            if self.excl:
                fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if getattr(self, "fd", None) is not None:
                os.close(self.fd)
            self._drop_excl()
            if e.errno in (errno.EAGAIN, errno.EACCES) and self.excl:
                raise Error(EXCL_BUSY) from None
            raise _error(e) from None

    def _drop_excl(self) -> None:
        if self.excl:
            with _exclusive_lock:
                _exclusive.discard(self.excl)

    def read(self, offset: int, count: int) -> bytes:
        return os.pread(self.fd, count, offset)

    def write(self, offset: int, data: bytes) -> int:
        try:
            return os.pwrite(self.fd, data, offset)
        except OSError as e:
            raise _error(e) from None

    def clunk(self) -> None:
        os.close(self.fd)           # drops the host lock too
        self._drop_excl()


class BoxFS:
    """The attach: each user's own directory of $MAILROOT/box."""

    def __init__(self, mailroot: str):
        self.box = os.path.realpath(os.path.join(mailroot, "box"))

    def attach(self, uname: str, aname: str) -> Node:
        """uname's directory, or aname's when one is given: the tree named
        at attach, as Plan 9's file servers take it.  A kernel mount needs
        it (9pfuse attaches as the local login, root, with -a USER); and
        with no authentication here it gives no more than uname does."""
        user = aname or uname
        root = os.path.join(self.box, user)
        if not valid(user) or "/" in user or user in (".", "..") or not os.path.isdir(root):
            raise Error("permission denied")
        return HostFile(os.path.realpath(root), os.path.realpath(root), user)


def main(argv: list[str] | None = None) -> int:
    opts = cmdline.flags(sys.argv[1:] if argv is None else argv, "s:", USAGE)
    if opts is None:
        return 1
    service = dict(opts).get("-s", "boxfs")
    try:
        listener = post(service)
    except OSError as e:
        print(f"boxfs: post {service}: {e}", file=sys.stderr)
        return 1
    srv = Server(BoxFS(config.current().mailroot).attach)
    signal.signal(signal.SIGTERM, lambda *_: srv.shutdown())
    signal.signal(signal.SIGINT, lambda *_: srv.shutdown())
    srv.serve_forever(listener)
    return 0


if __name__ == "__main__":
    sys.exit(main())
