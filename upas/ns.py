"""The namespace: the one way every server reaches files.

A mount table, as on Plan 9: `/mail/fs` (the upasfs), `/mail/box` (the mail
store), `/mail/ratify` (ratfs) are bound to 9P connections or to local
directories, and a path is served by the mount with the longest matching
prefix.  Paths are cleaned Plan 9 style first, and nothing escapes its mount:
`..` cannot climb above a mount point and a symbolic link inside a local
mount cannot lead outside it.
"""
from __future__ import annotations

import dataclasses
import errno
import functools
import os
import socket
import stat as statmod
import struct
import subprocess
import sys
import threading
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator

from upas import beside, config

DMDIR = 0x80000000


class Error(Exception):
    """A file operation failed; the text is Plan 9's (`file does not exist`)."""


class Hungup(Error):
    """The 9P service behind a mount went away (`i/o on hungup channel`):
    nothing on that mount will work again in this process."""


@dataclass(frozen=True)
class Qid:
    type: int
    vers: int
    path: int


@dataclass(frozen=True)
class Dir:
    """What stat tells of a file, whichever kind of mount serves it."""
    name: str
    length: int
    mode: int
    mtime: int
    qid: Qid
    uid: str = ""

    @property
    def isdir(self) -> bool:
        return bool(self.mode & DMDIR)


@functools.lru_cache(maxsize=1024)     # every file operation cleans its path: a few, over and over
def cleanname(path: str) -> str:
    """Plan 9 cleanname(2): drop `.` and empty elements, fold `..` lexically."""
    rooted = path.startswith("/")
    out: list[str] = []
    for elem in path.split("/"):
        if elem in ("", "."):
            continue
        if elem == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(elem)
    name = "/".join(out)
    if rooted:
        return "/" + name
    return name or "."


_ERRNO_TEXT = {
    errno.ENOENT: "file does not exist",
    errno.ENOTDIR: "file does not exist",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EEXIST: "file already exists",
    errno.ENOTEMPTY: "directory not empty",
    errno.EISDIR: "is a directory",
}


def _oserror(e: OSError) -> Error:
    return Error(_ERRNO_TEXT.get(e.errno, e.strerror or str(e)))


EXCL_BUSY = "exclusive use file already open"   # Plan 9's file servers say so


class _LocalMount:
    """A local directory bound into the namespace."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)

    def real(self, rel: str) -> str:
        """The host path of `rel`, refusing anything that leaves the root."""
        path = os.path.join(self.root, rel) if rel else self.root
        if self._plain(rel):
            return path
        # Resolve links in the existing part of the path; the last element may
        # not exist yet (create), so check its parent.
        probe = path if os.path.lexists(path) else os.path.dirname(path)
        resolved = os.path.realpath(probe)
        if resolved != self.root and not resolved.startswith(self.root + os.sep):
            raise Error("permission denied")
        return path

    def _plain(self, rel: str) -> bool:
        """No element of `rel` below the root (itself a realpath) is a link
        or `..`, as far as they exist: the path is then its own resolution,
        inside the root.  An lstat per element below the root, where
        realpath lstats every element from /: each file operation costs
        ~15 us less on a mail directory 7 levels down."""
        cur = self.root
        for elem in rel.split("/") if rel else ():
            if elem in ("", ".", ".."):
                return False
            cur = f"{cur}/{elem}"
            try:
                if statmod.S_ISLNK(os.lstat(cur).st_mode):
                    return False
            except (FileNotFoundError, NotADirectoryError):
                return True         # the rest does not exist (yet)
            except OSError:
                return False
        return True

    def open(self, rel: str, mode: str) -> BinaryIO:
        flags = {"r": "rb", "w": "wb", "a": "ab", "rw": "r+b"}[mode]
        try:
            return open(self.real(rel), flags)
        except OSError as e:
            raise _oserror(e) from None

    def read(self, rel: str) -> bytes:
        with self.open(rel, "r") as f:
            return f.read()

    def write(self, rel: str, data: bytes) -> int:
        with self.open(rel, "w") as f:
            return f.write(data)

    def stat(self, rel: str) -> Dir:
        try:
            st = os.stat(self.real(rel))
        except OSError as e:
            raise _oserror(e) from None
        return _dir_from_os(os.path.basename(rel) or "/", st)

    def readdir(self, rel: str) -> list[Dir]:
        base = self.real(rel)
        try:
            names = sorted(os.listdir(base))
        except OSError as e:
            raise _oserror(e) from None
        out = []
        for name in names:
            try:
                out.append(_dir_from_os(name, os.stat(os.path.join(base, name))))
            except OSError:
                continue  # vanished, or a dangling link
        return out

    def readdir_names(self, rel: str) -> list[str]:
        return [d.name for d in self.readdir(rel)]

    def create(self, rel: str, perm: int, isdir: bool) -> None:
        path = self.real(rel)
        try:
            if isdir:
                os.mkdir(path, perm & 0o777)
            else:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, perm & 0o777))
        except OSError as e:
            raise _oserror(e) from None

    def remove(self, rel: str) -> None:
        path = self.real(rel)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
        except OSError as e:
            raise _oserror(e) from None

    def rename(self, old: str, new: str) -> None:
        try:
            os.rename(self.real(old), self.real(new))
        except OSError as e:
            raise _oserror(e) from None

    def append(self, rel: str, data: bytes, perm: int | None, after: bytes,
               prefix: bytes | None, sync: bool) -> Dir | None:
        try:
            fd = os.open(self.real(rel), os.O_RDWR | os.O_APPEND
                         | (os.O_CREAT if perm is not None else 0), perm or 0)
        except OSError as e:
            raise _oserror(e) from None
        try:
            size = os.fstat(fd).st_size
            if prefix is not None and os.pread(fd, len(prefix), 0) != prefix:
                return None
            if after and size and os.pread(fd, len(after), max(size - len(after), 0)) != after:
                data = after + data
            try:
                _pwrite_all(fd, data, None)
                if sync:
                    os.fdatasync(fd)
            except BaseException:
                if sync:                # all or nothing: cut back to the old end
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                raise
            return _dir_from_os(os.path.basename(rel), os.fstat(fd))
        except OSError as e:
            raise _oserror(e) from None
        finally:
            os.close(fd)

    def write_at(self, rel: str, edits: list[tuple[int, bytes]], sync: bool) -> Dir:
        try:
            fd = os.open(self.real(rel), os.O_WRONLY)
        except OSError as e:
            raise _oserror(e) from None
        try:
            for offset, data in edits:
                _pwrite_all(fd, data, offset)
            if sync:
                os.fdatasync(fd)
            return _dir_from_os(os.path.basename(rel), os.fstat(fd))
        except OSError as e:
            raise _oserror(e) from None
        finally:
            os.close(fd)

    def local_path(self, rel: str) -> str:
        return self.real(rel)

    def close(self) -> None:
        pass


def _pwrite_all(fd: int, data: bytes, offset: int | None) -> None:
    """All of data at offset (None: the end of an O_APPEND file)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        view = view[n:]
        if offset is not None:
            offset += n


def _dir_from_os(name: str, st: os.stat_result) -> Dir:
    isdir = statmod.S_ISDIR(st.st_mode)
    mode = (st.st_mode & 0o777) | (DMDIR if isdir else 0)
    return Dir(name, 0 if isdir else st.st_size, mode, int(st.st_mtime), qid_of(st))


def qid_of(st: os.stat_result) -> Qid:
    """A host file's qid, as plan9port's _p9dir: qid.path is the inode;
    qid.vers changes with the contents.  Nanosecond mtime and ctime and the
    size, mixed by a checksum (XOR cancelled out equal mtime and ctime,
    leaving only the size)."""
    vers = zlib.crc32(struct.pack("<qqq", st.st_mtime_ns, st.st_ctime_ns, st.st_size))
    return Qid(0x80 if statmod.S_ISDIR(st.st_mode) else 0, vers, st.st_ino)


class _NinepMount:
    """A 9P connection (or a lazily dialled address) bound into the namespace."""

    def __init__(self, client=None, subpath: str = "", addr: str | None = None,
                 child: subprocess.Popen | None = None, uname: str | None = None,
                 ours: bool = False):
        self._client = client
        self._addr = addr
        self.uname = uname          # None: the process's user (getpass)
        self.ours = ours            # a server of ours: see ninep.Client
        self._lock = threading.Lock()
        self.subpath = subpath.strip("/")
        self.child = child

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                from upas.ninep.client import Client
                from upas.ninep.client import Error as NinepError
                try:
                    self._client = _attach_ahead(self._addr, self.uname) or \
                        Client.dial(self._addr, uname=self.uname, ours=self.ours)
                except OSError as e:
                    raise Error(f"cannot mount {self._addr}: {e.strerror or e}") from None
                except NinepError as e:     # hung up or refused in Tversion/Tattach
                    raise Error(f"cannot mount {self._addr}: {e}") from None
            return self._client

    def _p(self, rel: str) -> str:
        return "/".join(p for p in (self.subpath, rel) if p)

    def _call(self, fn, *args):
        from upas.ninep import client as nc
        try:
            return fn(*args)
        except nc.Hungup as e:
            raise Hungup(str(e)) from None
        except nc.Error as e:
            raise Error(str(e)) from None
        except OSError as e:
            raise Error(f"i/o error: {e.strerror or e}") from None

    def open(self, rel: str, mode: str):
        c = self.client
        if mode == "a":
            raise Error("permission denied")
        return self._call(lambda: c.open(self._p(rel), mode, trunc=(mode == "w")))

    def read(self, rel: str) -> bytes:
        return self._call(self.client.read, self._p(rel))

    def read_many(self, rels: list[str], count: int | None) -> list[bytes | None]:
        got = self._call(self.client.read_many, [self._p(r) for r in rels], count)
        return [None if isinstance(g, Exception) else g for g in got]

    def read_many_begin(self, rels: list[str], count: int) -> Callable[[], list[bytes | None]]:
        finish = self._call(self.client.read_many_begin, [self._p(r) for r in rels], count)

        def collect() -> list[bytes | None]:
            got = self._call(finish)
            return [None if isinstance(g, Exception) else g for g in got]
        return collect

    def stat_many(self, rels: list[str]) -> list[Dir | None]:
        got = self._call(self.client.stat_many, [self._p(r) for r in rels])
        return [None if isinstance(g, Exception) else _dir_from_9p(g) for g in got]

    def write(self, rel: str, data: bytes) -> int:
        return self._call(self.client.write, self._p(rel), data)

    def stat(self, rel: str) -> Dir:
        return _dir_from_9p(self._call(self.client.stat, self._p(rel)))

    def stat_then(self, rel: str, then: Callable[[], Any]) -> tuple[Dir, Any]:
        st, got = self._call(self.client.stat_then, self._p(rel), then)
        return _dir_from_9p(st), got

    def readdir(self, rel: str) -> list[Dir]:
        return [_dir_from_9p(s) for s in self._call(self.client.readdir, self._p(rel))]

    def readdir_names(self, rel: str) -> list[str]:
        return self._call(self.client.readdir_names, self._p(rel))

    def create(self, rel: str, perm: int, isdir: bool) -> None:
        f = self._call(self.client.create, self._p(rel), perm | (DMDIR if isdir else 0), 0)
        close = getattr(f, "close", None)
        if close:
            close()

    def remove(self, rel: str) -> None:
        self._call(self.client.remove, self._p(rel))

    def rename(self, old: str, new: str) -> None:
        """A Twstat of the name: 9P renames only within a directory."""
        po, pn = self._p(old), self._p(new)
        if po.rpartition("/")[0] != pn.rpartition("/")[0]:
            raise Error("can't rename to another directory over 9P")
        from upas.ninep.codec import Stat
        st = Stat.sync()
        st.name = pn.rpartition("/")[2]
        self._call(self.client.wstat, po, st)

    def open_exclusive(self, rel: str) -> object | None:
        """Open an exclusive-use (DMEXCL) file, made if missing; None while
        another holds it open (upas/boxfs.py)."""
        from upas.ninep.codec import DMEXCL
        c, p = self.client, self._p(rel)
        try:
            return self._call(c.open, p, "rw")
        except Hungup:
            raise
        except Error as e:
            if EXCL_BUSY in str(e):
                return None
            if not any(m in str(e) for m in ("does not exist", "not found")):
                raise
        try:
            return self._call(c.create, p, DMEXCL | 0o666, "rw")
        except Hungup:
            raise
        except Error as e:
            if EXCL_BUSY in str(e) or "exists" in str(e):
                return None     # made and held by another meanwhile
            raise

    def append(self, rel: str, data: bytes, perm: int | None, after: bytes,
               prefix: bytes | None, sync: bool) -> Dir | None:
        """As the local one, but not atomic: 9P has no append mode for a
        file that is not DMAPPEND; the caller's lock keeps writers apart.
        With sync, a write or sync the server refuses cuts the file back
        to its old end (a Twstat of its length), as the local one does;
        a server gone mid-way cannot be (docs/decisions.md)."""
        c, p = self.client, self._p(rel)

        def run():
            try:
                f = c.open(p, "rw")
            except Exception:   # noqa: BLE001 -- missing: made if asked to
                if perm is None:
                    raise
                f = c.create(p, perm, "rw")
            with f:
                size = f.stat().length
                if prefix is not None and _pread(f, 0, len(prefix)) != prefix:
                    return None
                ended = not after or not size or \
                    _pread(f, max(size - len(after), 0), len(after)) == after
                try:
                    _edit(f, [(size, data if ended else after + data)])
                except BaseException:
                    self._cut_back(p, size, sync)
                    raise
            try:
                return self._synced(p, sync)
            except BaseException:
                self._cut_back(p, size, sync)
                raise
        return self._call(run)

    def _cut_back(self, p: str, size: int, sync: bool) -> None:
        """A durable append that failed: the file back to `size` bytes and
        synced, if the server still answers (the error raised is the
        append's, whatever this meets)."""
        if not sync:
            return
        from upas.ninep.codec import Stat
        try:
            self.client.wstat(p, dataclasses.replace(Stat.sync(), length=size))
            self.client.wstat(p, Stat.sync())
        except Exception:   # noqa: BLE001 -- hung up: the documented limit
            pass

    def write_at(self, rel: str, edits: list[tuple[int, bytes]], sync: bool) -> Dir:
        c, p = self.client, self._p(rel)

        def run():
            with c.open(p, "rw") as f:
                _edit(f, edits)
            return self._synced(p, sync)
        return self._call(run)

    def _synced(self, p: str, sync: bool) -> Dir:
        """With sync, Plan 9's sync of the file (the all-"don't touch"
        Twstat: commit it to stable storage); its stat."""
        if sync:
            from upas.ninep.codec import Stat
            self.client.wstat(p, Stat.sync())
        return _dir_from_9p(self.client.stat(p))

    def local_path(self, rel: str) -> None:
        return None

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
        if self.child is not None:
            self.child.terminate()
            try:
                self.child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.child.kill()


def _pread(f, offset: int, count: int) -> bytes:
    f.seek(offset)
    return f.read(count)


def _edit(f, edits: list[tuple[int, bytes]]) -> None:
    for offset, data in edits:
        f.seek(offset)
        f.write(data)


def _dir_from_9p(s) -> Dir:
    q = s.qid
    return Dir(s.name, s.length, s.mode, s.mtime, Qid(q.type, q.vers, q.path), s.uid)


class Namespace:
    """A per-process mount table.  See docs/design.md."""

    def __init__(self, user: str):
        self.user = user
        self._mounts: dict[str, _LocalMount | _NinepMount] = {}

    # -- binding -------------------------------------------------------
    def bind_dir(self, path: str, local_dir: str) -> None:
        self._set(path, _LocalMount(local_dir))

    def bind_9p(self, path: str, client, subpath: str = "") -> None:
        self._set(path, _NinepMount(client=client, subpath=subpath))

    def mount(self, path: str, addr: str, lazy: bool = False, uname: str | None = None,
              ours: bool = False) -> None:
        """Bind the 9P service at dial string `addr`, attached as `uname`
        (None: the process's user); dial now unless lazy.  ours: a server
        of ours is known to serve it (its session starts in one round
        trip, ninep.Client)."""
        m = _NinepMount(addr=addr, uname=uname, ours=ours)
        if not lazy:
            m.client  # noqa: B018 - dial now so that errors surface here
        self._set(path, m)

    def mount_child(self, path: str, argv: list[str], env: dict | None = None) -> None:
        """Start a 9P server (e.g. upasfs) on a socketpair, as Plan 9's pop3 does."""
        from upas.ninep.client import Client
        ours, theirs = socket.socketpair()
        child = subprocess.Popen(argv, stdin=theirs, stdout=theirs, env=env,
                                 close_fds=True)
        theirs.close()
        try:
            client = Client(ours, uname=self.user)
        except Exception as e:
            child.kill()
            child.wait()
            raise Error(f"can't initialize upas/fs: {e}") from None
        self._set(path, _NinepMount(client=client, child=child))

    def unmount(self, path: str) -> None:
        m = self._mounts.pop(cleanname(path), None)
        if m:
            m.close()

    def confine(self, user: str) -> None:
        """After login: of /mail/box only /mail/box/USER stays reachable
        (a store's boxfs: attached as USER, it serves no more)."""
        box = self._mounts.get("/mail/box")
        if isinstance(box, _LocalMount):
            del self._mounts["/mail/box"]
            self.bind_dir(f"/mail/box/{user}", os.path.join(box.root, user))
        boxfs = config.current().boxfs
        if boxfs and user != self.user:
            self.unmount(f"/mail/box/{self.user}")
            self.mount(f"/mail/box/{user}", boxfs, lazy=True, uname=user)
        self.user = user

    def close(self) -> None:
        for m in self._mounts.values():
            m.close()
        self._mounts.clear()

    def mounted(self, path: str) -> bool:
        return cleanname(path) in self._mounts

    def _set(self, path: str, m) -> None:
        path = cleanname(path)
        if not path.startswith("/"):
            raise Error(f"mount point not absolute: {path}")
        old = self._mounts.pop(path, None)
        if old:
            old.close()
        self._mounts[path] = m

    def _resolve(self, path: str):
        path = cleanname(path)
        if not path.startswith("/"):
            raise Error(f"path not absolute: {path}")
        probe = path
        while True:
            m = self._mounts.get(probe)
            if m is not None:
                return m, path[len(probe):].lstrip("/")
            if probe == "/":
                raise Error("file does not exist")
            probe = os.path.dirname(probe)

    # -- file operations -------------------------------------------------
    def open(self, path: str, mode: str = "r"):
        m, rel = self._resolve(path)
        return m.open(rel, mode)

    def read(self, path: str) -> bytes:
        m, rel = self._resolve(path)
        return m.read(rel)

    def read_many(self, paths: list[str], count: int | None = None) -> list[bytes | None]:
        """The first `count` bytes of each file by one read (all of a small
        file), or with count None each whole file; None where that fails.
        Files on one 9P mount are read with their requests pipelined
        (ninep Client.read_many)."""
        one = self._one_9p_mount(paths)
        if one is not None:
            return one[0].read_many(one[1], count)
        out: list[bytes | None] = []
        for path in paths:
            try:
                m, rel = self._resolve(path)
                with m.open(rel, "r") as f:
                    out.append(f.read(count))
            except Error:
                out.append(None)
        return out

    def read_many_begin(self, paths: list[str], count: int) -> Callable[[], list[bytes | None]]:
        """read_many(paths, count) in two halves: on a 9P mount the requests
        are sent now, and the returned function (to be called once) waits
        for the replies; elsewhere all the work is done by that function."""
        one = self._one_9p_mount(paths)
        if one is not None:
            return one[0].read_many_begin(one[1], count)
        return lambda: self.read_many(paths, count)

    def stat_many(self, paths: list[str]) -> list[Dir | None]:
        """stat of each file, None where it fails; pipelined as read_many."""
        one = self._one_9p_mount(paths)
        if one is not None:
            return one[0].stat_many(one[1])
        out: list[Dir | None] = []
        for path in paths:
            try:
                out.append(self.stat(path))
            except Error:
                out.append(None)
        return out

    def _one_9p_mount(self, paths: list[str]) -> tuple[_NinepMount, list[str]] | None:
        """The 9P mount serving all of paths, with the paths on it, if one
        does (each path resolved once: a FETCH resolves thousands)."""
        if not paths:
            return None
        first, rel0 = self._resolve(paths[0])
        if not isinstance(first, _NinepMount):
            return None
        point = next(k for k, m in self._mounts.items() if m is first)
        prefix = point.rstrip("/") + "/"
        nested = any(k.startswith(prefix) for k in self._mounts)
        rels = [rel0]
        for p in paths[1:]:
            if not nested and p.startswith(prefix) and not p.endswith("/") \
                    and "//" not in p and "/." not in p:
                rels.append(p[len(prefix):])    # clean, and under no other mount
                continue
            m, rel = self._resolve(p)
            if m is not first:
                return None
            rels.append(rel)
        return first, rels

    def write(self, path: str, data: bytes) -> int:
        m, rel = self._resolve(path)
        return m.write(rel, data)

    def stat(self, path: str) -> Dir:
        m, rel = self._resolve(path)
        return m.stat(rel)

    def stat_then(self, path: str, then: Callable[[], Any]) -> tuple[Dir, Any]:
        """stat(path), then then(); on a 9P mount then()'s requests go out
        before the stat's reply comes back (one round trip for both where
        the server answers in order: ninep Client.stat_then)."""
        m, rel = self._resolve(path)
        if isinstance(m, _NinepMount):
            return m.stat_then(rel, then)
        return m.stat(rel), then()

    def readdir(self, path: str) -> list[Dir]:
        m, rel = self._resolve(path)
        return m.readdir(rel)

    def readdir_names(self, path: str) -> list[str]:
        """The names readdir would give, without the rest of each entry."""
        m, rel = self._resolve(path)
        return m.readdir_names(rel)

    def iounit(self, path: str) -> int | None:
        """The most one 9P read of a file at path returns; None if path is
        not on a 9P mount (a local file is read whole)."""
        m, _ = self._resolve(path)
        return m.client.iounit if isinstance(m, _NinepMount) else None

    def ours(self, path: str) -> bool:
        """Whether path is served over 9P by one of our servers (it said so
        at attach: ninep.Client.walks_pipelined), which have files Plan 9's
        and plan9port's do not (upasfs's `mark` and `summary`)."""
        m, _ = self._resolve(path)
        return isinstance(m, _NinepMount) and self._call_ours(m)

    @staticmethod
    def _call_ours(m: "_NinepMount") -> bool:
        try:
            return bool(m.client.walks_pipelined)
        except Error:
            return False

    def create(self, path: str, perm: int = 0o666, dir: bool = False) -> None:
        m, rel = self._resolve(path)
        m.create(rel, perm, dir)

    def remove(self, path: str) -> None:
        m, rel = self._resolve(path)
        m.remove(rel)

    def rename(self, old: str, new: str) -> None:
        m1, r1 = self._resolve(old)
        m2, r2 = self._resolve(new)
        if m1 is not m2:
            raise Error("rename across mounts")
        m1.rename(r1, r2)

    def append(self, path: str, data: bytes, *, perm: int | None = None, after: bytes = b"",
               prefix: bytes | None = None, sync: bool = False) -> Dir | None:
        """Add data at the end of a file in one write; the file's stat
        after (its qid and length name this very content: a stat key).
        `perm`: create the file if it is missing; `after`: written first if
        the file is not empty and does not end with it (an mbox's last line
        ended even if a crash cut it); `prefix`: append only if the file
        still begins with it, else None.  With `sync` the data are on
        stable storage before the return, and a failed write or sync cuts
        the file back to its old end (the caller holds the lock: a durable
        append is all or nothing)."""
        m, rel = self._resolve(path)
        return m.append(rel, data, perm, after, prefix, sync)

    def write_at(self, path: str, edits: list[tuple[int, bytes]], sync: bool = False) -> Dir:
        """Write (offset, bytes) edits in place, in order, then with `sync`
        commit them to stable storage; the file's stat after."""
        m, rel = self._resolve(path)
        return m.write_at(rel, edits, sync)

    def together(self, paths: list[str], *calls: Callable[[], object]) -> list[object]:
        """Run calls that each write (with sync) one of `paths`, and their
        results.  When every path is a host file they run at once: a
        journalled file system commits syncs that wait together in one
        commit (an APPEND's mailbox and .imp: one wait instead of two).
        Else in turn (a 9P connection here carries one request at a time).
        Every call runs; the first error is raised after all have."""
        # (the mounts' kind decides; each call checks its own path)
        if len(calls) < 2 or not all(isinstance(self._resolve(p)[0], _LocalMount) for p in paths):
            return [c() for c in calls]
        return beside.run(calls[0], list(calls[1:]))     # the others in its thread

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except Error:
            return False
        return True

    def local_path(self, path: str) -> str | None:
        """The host path of a locally bound file, or None for a 9P mount."""
        m, rel = self._resolve(path)
        return m.local_path(rel)

    @contextmanager
    def lock(self, dirpath: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the mail lock (L.mbox) of the mail directory `dirpath`,
        waiting at most `timeout` seconds (default: upas's 5 minutes;
        upas.mail.lock.LockError when it stays busy)."""
        from upas.mail.lock import LOCKFILE, MailLock
        m, rel = self._resolve(f"{dirpath}/{LOCKFILE}")
        if isinstance(m, _LocalMount):
            with MailLock(os.path.dirname(m.real(rel)), timeout):
                yield
        else:
            from upas.mail.lock import OpenLock
            with OpenLock((m, rel), lambda: m.open_exclusive(rel), timeout):
                yield

    # -- the default table -------------------------------------------------
    @classmethod
    def default(cls, user: str) -> "Namespace":
        """The usual mounts, from the environment (see docs/design.md)."""
        ns = cls(user)
        root = mailroot()
        cfg = config.current()
        if cfg.boxfs:       # a frontend: the store's /mail/box/USER
            ns.mount(f"/mail/box/{user}", cfg.boxfs, lazy=True, uname=user)
        else:
            ns.bind_dir("/mail/box", os.path.join(root, "box"))
        if cfg.upasfs:
            ns.mount("/mail/fs", cfg.upasfs, lazy=True)
        ratify, ours = ratfs()
        if ratify:
            ns.mount("/mail/ratify", ratify, lazy=True, ours=ours)
        elif os.path.isdir(os.path.join(root, "ratify")):
            ns.bind_dir("/mail/ratify", os.path.join(root, "ratify"))
        return ns


def ratfs() -> tuple[str | None, bool]:
    """ratfs's dial string (None: none) and whether it is ours: the one
    posted as `ratify` in our $NAMESPACE is (upas.ratify; plan9port has
    no ratfs); one given in $ratify may be any server."""
    given = config.current().ratify
    return (given, False) if given else (posted("ratify"), True)


# A connection to a 9P service of ours dialled, and its version agreed,
# before its user is known (a fork server's spare, upas/imap4d/spare.py):
# (its dial string, the Client, not attached).  Once only.
_ahead: tuple[str, object] | None = None
AHEAD_TIMEOUT = 2.0     # seconds a local server of ours may take to answer it


def ratfs_ahead() -> None:
    """What a fork server's spare does for its login's ratification
    (upas/imap4d/spare.py, upas/pop3/spare.py): dial the ratfs of this
    name space and agree its version, if it is ours (see ratfs)."""
    addr, ours = ratfs()
    if addr and ours:
        dial_ahead(addr)


def dial_ahead(addr: str) -> None:
    """Dial the local service `addr` (one of ours) and agree its version
    now, for this process's first mount of it: a login then sends only
    the attach, as its user.  Nothing of a user is in it.  Failures are
    silent: the service is dialled at its use, as before."""
    global _ahead
    from upas.ninep.client import Client
    from upas.ninep.client import Error as NinepError
    from upas.ninep.dial import dial
    if "!" in addr and not addr.startswith("unix!"):
        return                  # only a local socket: connecting does not wait
    drop_ahead()
    try:
        sock = dial(addr)
    except (OSError, NinepError):
        return
    try:
        sock.settimeout(AHEAD_TIMEOUT)
        client = Client(sock, attach=False)
        sock.settimeout(None)
    except (OSError, NinepError):
        sock.close()
        return
    _ahead = (addr, client)


def _attach_ahead(addr: str, uname: str | None):
    """The client dial_ahead made for `addr`, attached as uname, if the
    server still holds it (not restarted since); else None.  The attach
    goes out now and its reply is read with the first request's (a
    login's ratification: the remove's walk follows it at once)."""
    global _ahead
    from upas.ninep.dial import still_open
    if _ahead is None or _ahead[0] != addr:
        return None
    client = _ahead[1]
    _ahead = None
    if not still_open(client.mux.sock):
        client.close()
        return None
    client.attach_begin(uname)
    return client


def drop_ahead() -> None:
    """Close a connection made ahead and not used (its server keeps no
    idle connection of a session that did not need it)."""
    global _ahead
    if _ahead is not None:
        _ahead[1].close()
        _ahead = None


def mailroot() -> str:
    """$MAILROOT, else the system's /mail."""
    return config.current().mailroot


def mboxpath(path: str, user: str) -> str:
    """The host file for a mailbox path given to upasfs's ctl or -f, or to
    mbappend (upas/fs mboxpath): `/mail/...` is a Plan 9 path, found under
    $MAILROOT; other paths that start with `/`, `./` or `../` are used as
    they are; anything else is relative to /mail/box/USER."""
    if path == "/mail" or path.startswith("/mail/"):
        try:
            real = Namespace.default(user).local_path(path)
            if real:
                return real
        except Exception:   # noqa: BLE001 -- a path no mount serves locally
            pass
        return os.path.join(mailroot(), path[len("/mail/"):])
    if path.startswith(("/", "./", "../")):
        return path
    return os.path.join(mailroot(), "box", user, path)


def posted(name: str) -> str | None:
    """The dial string of service `name` if it is posted in $NAMESPACE."""
    try:
        from upas.ninep.dial import namespace_dir
        d = namespace_dir()
    except Exception:
        return None
    path = os.path.join(d, name)
    if os.path.exists(path):
        return f"unix!{path}"
    return None


def python_argv(module: str, *args: str) -> list[str]:
    """argv that runs one of our modules with this interpreter."""
    return [sys.executable, "-m", module, *args]
