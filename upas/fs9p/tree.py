"""The /mail/fs tree of plan9port's upas/fs as ninep.server Nodes.

Qid paths are upas/fs's: (object id << 10) | file index, with the file
indexes of dat.h (25 message files, then Qtop, Qmbox, Qdir, Qctl).

Two files of a mailbox directory are ours, walkable but never listed (so
Plan 9's listings stay as they are; docs/decisions.md, "upasfs's `mark` and
`summary`"): `mark`, what a client compares to know it talks to the same
upasfs and the mailbox's numbering has not changed since it looked, and
`summary`, the mark and then a line per message with its digest, sizes
and line counts, for a server's login or SELECT in one read.
"""
from __future__ import annotations

import os
import secrets
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from upas.mail import mboxindex, mime
from upas.mail.header import Ignore
from upas.mail.mbox import Mailbox, MailError, Message, open_mailbox
from upas.ninep import DMDIR, OREAD, QTDIR, QTFILE, Error, Node, Open, Qid, Stat

QMAX = len(mime.FILES)
QTOP, QMBOX, QDIR, QCTL = QMAX + 1, QMAX + 2, QMAX + 3, QMAX + 4
# ours (not upas/fs's), after its file indexes: the mailbox's mark, summary
QMARK, QSUMMARY = QMAX + 5, QMAX + 6
EPERM = "permission denied"
ENOTEXIST = "file does not exist"


def qpath(oid: int, f: int) -> int:
    return ((oid & 0xFFFFF) << 10) | f


@contextmanager
def as_9p_error() -> Iterator[None]:
    """A mailbox that vanished or changed answers with an Rerror."""
    try:
        yield
    except MailError as e:
        raise Error(str(e)) from None
    except OSError as e:
        raise Error(e.strerror or str(e)) from None


class MailFS:
    """The state of one upasfs: its user and its open mailboxes."""

    def __init__(self, user: str, ignore: Ignore | None = None, biff=None):
        self.user = user
        self.ids = mime.Ids()
        self.ignore = ignore or Ignore.default()
        self.boxes: list[Mailbox] = []
        self.lock = threading.RLock()
        self.biff = biff
        # tells this upasfs from any other, and from itself restarted
        # (which numbers messages from 1 again, with the same qids)
        self.instance = secrets.token_hex(8)

    # -- mailboxes -------------------------------------------------------
    def open(self, path: str, name: str | None) -> None:
        """upas/fs newmbox: errors are the texts upas/fs gives."""
        if name is None:
            name = path.rstrip("/").rsplit("/", 1)[-1] if "/" in path else path
            if not name or path.endswith("/"):
                raise MailError("bad mbox name")
        if not os.path.exists(path) and not os.path.exists(path + ".tmp"):
            raise MailError(os.strerror(2))
        with self.lock:
            for mb in self.boxes:
                if mb.name == name:
                    if mb.path == path:
                        return
                    raise MailError("mbox name in use")
            mb = open_mailbox(path, name, self.ids, self.ignore)
            if self.biff:
                mb.on_new = self.biff
            self.boxes = self.boxes + [mb]      # a new list: box() reads without the lock

    def close(self, name: str) -> None:
        with self.lock:
            for mb in self.boxes:
                if mb.name == name:
                    self.boxes = [b for b in self.boxes if b is not mb]
                    mb.write_index(force=True)
                    mb.close()
                    return

    def flush(self) -> None:
        """Write what the mailboxes' indexes lack (at exit)."""
        for mb in list(self.boxes):
            try:
                mb.write_index(force=True)
            except (MailError, OSError):
                pass

    def box(self, name: str) -> Mailbox | None:
        # No lock: open and close replace the list rather than change it,
        # and every walk of every session comes here (open holds the lock
        # while it reads a whole mailbox).
        for mb in self.boxes:
            if mb.name == name:
                return mb
        return None

    def poll(self) -> None:
        """The background reader: sync every mailbox whose file changed."""
        for mb in list(self.boxes):
            try:
                mb.refresh()
                mb.write_index()
            except (MailError, OSError):    # a vanished mailbox is not fatal
                pass

    def attach(self, uname: str, aname: str) -> Node:
        if uname != self.user:
            raise Error(EPERM)
        return Root(self)


def _now_stat(name: str, qid: Qid, mode: int, user: str, length: int = 0,
              t: int | None = None, at: int | None = None) -> Stat:
    t = int(time.time()) if t is None else t
    return Stat(qid=qid, mode=mode, atime=t if at is None else at, mtime=t,
                length=length, name=name, uid=user, gid=user, muid=user)


class _Dir(Node):
    """A directory with upas/fs's walk quirk: `x.y` not found retries as `x`."""

    __slots__ = ()

    def is_dir(self) -> bool:
        return True

    def lookup(self, name: str) -> Node | None:
        raise NotImplementedError

    def walk(self, name: str) -> Node:
        node = self.lookup(name)
        if node is None:
            dot = name.find(".")
            if dot > 0:
                node = self.lookup(name[:dot])
        if node is None:
            raise Error(ENOTEXIST)
        return node

    def remove(self, user: str) -> None:
        """Tremove of anything but a message only clunks (as upas/fs)."""


class Root(_Dir):
    __slots__ = ("fs",)

    def __init__(self, fs: MailFS):
        self.fs = fs

    @property
    def qid(self) -> Qid:
        return Qid(QTDIR, 0, qpath(0, QTOP))

    def stat(self) -> Stat:
        return _now_stat(".", self.qid, DMDIR | 0o555, self.fs.user)

    def children(self) -> list[Node]:
        with self.fs.lock:
            return [TopCtl(self.fs)] + [MboxDir(self.fs, mb) for mb in self.fs.boxes]

    def lookup(self, name: str) -> Node | None:
        if name == "ctl":
            return TopCtl(self.fs)
        mb = self.fs.box(name)
        return MboxDir(self.fs, mb) if mb else None


class TopCtl(Node):
    __slots__ = ("fs",)

    def __init__(self, fs: MailFS):
        self.fs = fs

    def is_dir(self) -> bool:
        return False

    @property
    def qid(self) -> Qid:
        return Qid(QTFILE, 0, qpath(0, QCTL))

    def stat(self) -> Stat:
        return _now_stat("ctl", self.qid, 0o666, self.fs.user)

    def open(self, mode: int, user: str) -> Open:
        from upas.fs9p.ctl import CtlOpen
        return CtlOpen(self.fs)

    def remove(self, user: str) -> None:
        pass


class MboxDir(_Dir):
    __slots__ = ("fs", "mb")

    def __init__(self, fs: MailFS, mb: Mailbox):
        self.fs, self.mb = fs, mb

    @property
    def qid(self) -> Qid:
        return Qid(QTDIR, self.mb.vers, qpath(self.mb.id, QMBOX))

    def _sync(self) -> None:
        try:
            self.mb.refresh()
        except (MailError, OSError):    # as upas/fs: a failed sync still answers
            pass

    def stat(self) -> Stat:
        self._sync()
        return _now_stat(self.mb.name, self.qid, DMDIR | 0o555, self.fs.user,
                         t=self.mb.mtime, at=self.mb.atime)

    def children(self) -> Iterator[Node]:
        """One message directory at a time: a listing of a big mailbox
        keeps only its packed entries."""
        self._sync()
        return (MsgDir(self.fs, self.mb, m) for m in self.mb.live())

    def lookup(self, name: str) -> Node | None:
        m = self.mb.lookup(name)
        if m is not None:
            return MsgDir(self.fs, self.mb, m)
        if name in BoxFile.NAMES:
            return BoxFile(self, name)
        return None


class BoxFile(Node):
    """`mark` or `summary` of a mailbox (see the module's docstring):
    read as one whole, made at open after the mailbox is synced, as a
    stat of its directory syncs it."""

    __slots__ = ("d", "fname")
    NAMES = {"mark": QMARK, "summary": QSUMMARY}

    def __init__(self, d: MboxDir, name: str):
        self.d, self.fname = d, name

    def is_dir(self) -> bool:
        return False

    @property
    def qid(self) -> Qid:
        return Qid(QTFILE, 0, qpath(self.d.mb.id, self.NAMES[self.fname]))

    def stat(self) -> Stat:
        return _now_stat(self.fname, self.qid, 0o444, self.d.fs.user,
                         t=self.d.mb.mtime, at=self.d.mb.atime)

    def open(self, mode: int, user: str) -> Open:
        if mode & 3 != OREAD:
            raise Error(EPERM)
        self.d._sync()
        mb = self.d.mb
        with mb.lock:
            live = mb.live()
            data = [b"%s %d %d %d\n" % (self.d.fs.instance.encode(), mb.id, mb.vers,
                                        len(live))]
            if self.fname == "summary":
                data.append(self._lines(mb, live))
        return WholeOpen(b"".join(data))

    def _lines(self, mb: Mailbox, live: list[Message]) -> bytes:
        """The message lines of `summary`, made again only when the list of
        messages changed: mb.vers rises whenever one appears or goes (a
        Tremove that only marks one lowers the count); every session's
        SELECT and check after a change reads them.  When only mail was
        added, the new messages' lines are added to the kept ones: the
        list only grows at its end and keeps its order, so the kept last
        message still in its place means none before it went."""
        key = (mb.vers, len(live))
        got = mb.summary_lines
        if got is None or got[0] != key:
            kept, n = (got[1], got[2]) if got else (b"", 0)
            if not (n and len(live) >= n and live[n - 1] is got[3]):
                kept, n = b"", 0
            got = mb.summary_lines = (key, kept + b"".join(map(_summary_line, live[n:])),
                                      len(live), live[-1] if live else None)
        return got[1]


def _summary_line(m: Message) -> bytes:
    return b"%s %s %d %d %d %d %d %d\n" % ((m.name.encode(), m.digest, m.size - m.fromlen)
                                          + mboxindex.unpack_sizes(m.sizes))


class WholeOpen(Open):
    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def read(self, offset: int, count: int) -> bytes:
        return self.data[offset:offset + count]


class _InMessage:
    """Shared by a message/part directory and its files."""

    __slots__ = ("fs", "mb", "msg", "path_in_msg", "pid")

    fs: MailFS
    mb: Mailbox
    msg: Message
    path_in_msg: tuple[int, ...]

    def part(self) -> mime.Part:
        with as_9p_error():
            p = self.mb.parsed(self.msg)
        for i in self.path_in_msg:
            p = p.parts[i]
        return p

    def _times(self) -> tuple[int, int]:
        return self.mb.mtime, self.mb.atime

    def remove(self, user: str) -> None:
        """Bell/p9p: the fid's message is marked deleted; parts are never purged."""
        if self.path_in_msg:
            return
        with self.mb.lock:
            if not self.msg.deleted:
                self.msg.deleted = True
                if self.msg.refs == 0:
                    self.mb.sync()


class MsgDir(_InMessage, _Dir):
    __slots__ = ("name",)

    def __init__(self, fs: MailFS, mb: Mailbox, msg: Message,
                 path_in_msg: tuple[int, ...] = (), pid: int | None = None,
                 name: str | None = None):
        self.fs, self.mb, self.msg = fs, mb, msg
        self.path_in_msg = path_in_msg
        self.pid = msg.id if pid is None else pid
        self.name = msg.name if name is None else name

    @property
    def qid(self) -> Qid:
        return Qid(QTDIR, 0, qpath(self.pid, QDIR))

    def stat(self) -> Stat:
        t, at = self._times()
        return _now_stat(self.name, self.qid, DMDIR | 0o555, self.fs.user, t=t, at=at)

    def _subdirs(self, part: mime.Part) -> list["MsgDir"]:
        return [MsgDir(self.fs, self.mb, self.msg, self.path_in_msg + (i,), p.id, p.name)
                for i, p in enumerate(part.parts)]

    def children(self) -> list[Node]:
        part = self.part()          # looked up once for the whole listing
        files: list[Node] = [MsgFile(self, i, part) for i in range(QMAX)]
        return files + self._subdirs(part)

    def lookup(self, name: str) -> Node | None:
        i = mime.FILEINDEX.get(name)
        if i is not None:
            return MsgFile(self, i)
        # part k is named str(k): found by index, not by a scan of all
        # (a walk to each of 10000 parts would cost 10000 scans)
        part = self.part()
        k = int(name) if name.isascii() and name.isdigit() and len(name) < 6 else 0
        if 1 <= k <= len(part.parts) and part.parts[k - 1].name == name:
            p = part.parts[k - 1]
            return MsgDir(self.fs, self.mb, self.msg, self.path_in_msg + (k - 1,), p.id, p.name)
        return None


class MsgFile(_InMessage, Node):
    __slots__ = ("index", "fname", "parsed")

    def __init__(self, d: MsgDir, index: int, parsed: mime.Part | None = None):
        """parsed: the part, when the caller has just looked it up."""
        self.fs, self.mb, self.msg = d.fs, d.mb, d.msg
        self.path_in_msg, self.pid = d.path_in_msg, d.pid
        self.index = index
        self.fname = mime.FILES[index]
        self.parsed = parsed

    @property
    def qid(self) -> Qid:
        return Qid(QTFILE, 0, qpath(self.pid, self.index))

    def is_dir(self) -> bool:
        return False

    def _unparsed(self) -> bool:
        """raw, rawunix and digest of a message are served without parsing."""
        return not self.path_in_msg and self.fname in Mailbox.UNPARSED

    def _offsets_only(self) -> bool:
        """rawheader, rawbody and lines of a message need no full parse."""
        return not self.path_in_msg and self.fname in Mailbox.OFFSETS

    def _part_for_file(self) -> mime.Part:
        if self.parsed is not None:
            return self.parsed
        if self._offsets_only():
            with as_9p_error():
                return self.mb.offsets(self.msg)
        return self.part()

    def stat(self) -> Stat:
        t, at = self._times()
        if self._unparsed():
            n = self.mb.unparsed_length(self.msg, self.fname)
        else:
            n = self._part_for_file().length(self.fname, self.fs.ignore)
        return _now_stat(self.fname, self.qid, 0o444, self.fs.user, length=n, t=t, at=at)

    def open(self, mode: int, user: str) -> Open:
        if mode & 3 != OREAD:
            raise Error(EPERM)
        if self._unparsed():
            return FileOpen(self, None)
        part = self._part_for_file()
        if self.fname == "body":
            part.open_body()
        return FileOpen(self, part)


class FileOpen(Open):
    """An open message file: holds its message (deletion waits for the
    last clunk) and computes the content once."""

    __slots__ = ("f", "part", "data")

    def __init__(self, f: MsgFile, part: mime.Part | None):
        self.f, self.part = f, part
        self.data: bytes | None = None
        f.mb.incref(f.msg)

    def read(self, offset: int, count: int) -> bytes:
        if self.data is None:
            f = self.f
            # as as_9p_error() does, without a generator's cost: every
            # file of a FETCH of whole messages comes through here
            try:
                self.data = (f.mb.unparsed_file(f.msg, f.fname) if self.part is None
                             else self.part.file(f.fname, f.fs.ignore))
            except MailError as e:
                raise Error(str(e)) from None
            except OSError as e:
                raise Error(e.strerror or str(e)) from None
        return self.data[offset:offset + count]

    def clunk(self) -> None:
        self.data = None
        self.f.mb.decref(self.f.msg)
