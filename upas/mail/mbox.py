"""Mailboxes as upas/fs keeps them: Plan 9 mbox files and mdir directories.

A Mailbox holds one small record per message (offsets, digest, id, name);
message bytes stay in the file and are read (and MIME-parsed) only when a
message is looked at.  Scanning uses mmap; syncing follows upas/fs
(plan9.c): re-read under L.mbox, match known messages by digest in order,
purge deleted ones, rewrite crash-safely through `<path>.tmp`.
Change detection compares inode, size, mtime/ctime in ns and a hash of the
file's tail, so an append in the same second is never missed.  What a read
learnt is kept in the mailbox's index (mboxindex.py), so that the next
upasfs need not read an unchanged file again.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import mmap
import os
import stat as statmod
import logging
import threading
import time
from typing import Callable, Iterator

from upas import config
from upas.mail import mboxindex, mime
from upas.mail.header import Ignore
from upas.mail.lock import LockError, MailLock
from upas.mail.safewrite import fsync_dir, host_tmp

_log = logging.getLogger("upas.fs9p.index")
MBOXMODE = 0o600      # Plan 9: 0622, for deliveries by other users; ours run as one
TAIL = 4096                 # bytes of the file's end hashed for change detection
CACHE_BYTES = 8 << 20       # parsed messages kept while unreferenced
CACHE_COUNT = 256
COPY_CHUNK = 1 << 20
REFRESH_POLL = 0.02        # seconds between a reader's tries at L.mbox
RECENT = 16                 # 9front flag bits: a D d f r s S = 1 2 4 ... 64
INDEX_LOCK_WAIT = 0.5       # an index is not worth waiting longer for L.mbox


class MailError(Exception):
    """A mailbox error; its text is what upas/fs would say."""


class Message:
    """A top-level message: where it is, what it digests to, its fs name."""

    __slots__ = ("name", "id", "start", "end", "digest", "deleted", "inmbox",
                 "holders", "file", "flags", "fromlen", "kept", "nids", "sizes",
                 "detail")

    def __init__(self, name: str, mid: int, start: int, end: int, digest: bytes,
                 file: str | None = None):
        self.name, self.id = name, mid
        self.start, self.end, self.digest = start, end, digest
        self.deleted, self.inmbox = False, True
        self.holders: list[None] = []   # one item per open fid (see Mailbox.incref)
        self.file = file            # mdir: the message's own file
        self.flags = RECENT
        self.fromlen = 0            # length of the `From ` line, \n included
        self.kept: bytes | None = None   # stored bytes, once purged while open
        self.nids = 1               # object ids it takes (itself and its parts)
        self.sizes = b""            # mboxindex.sizes()
        # where its parsed tree is kept (mboxindex.Details: 0 if it cannot
        # be), or None while it has not been parsed
        self.detail: int | None = None

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def refs(self) -> int:
        """How many open fids hold the message."""
        return len(self.holders)


def scan(buf, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Stored-message ranges in buf[start:end] (Bell/p9p rule).

    Every `\\nFrom ` starts a message; a message ends before the last `\\n`
    preceding the next one (or EOF).  If the region does not begin with
    `From ` it holds no messages.
    """
    if end - start < 5 or buf[start:start + 5] != b"From ":
        return
    s = start
    while s < end:
        nxt = buf.find(b"\nFrom ", s, end)
        e = end if nxt < 0 else nxt + 1
        stored_end = e - 1 if buf[e - 1] == 0x0A and e - 1 >= s else e
        yield s, stored_end
        s = e


def digest_of(buf, start: int, end: int) -> bytes:
    with memoryview(buf) as mv:
        return hashlib.sha1(mv[start:end]).hexdigest().encode()


def describe(m: Message, data: bytes) -> None:
    """What a new message's stored bytes tell without a full parse."""
    m.fromlen = _fromlen(data, 0, len(data))
    m.nids = mime.count_ids(data, 0, len(data))
    m.sizes = mboxindex.sizes(data, m.fromlen)


class Mailbox:
    """One open mailbox of the fs (the plan9 mbox form)."""

    def __init__(self, path: str, name: str, ids: mime.Ids,
                 ignore: Ignore | None = None, dolock: bool = True,
                 index: bool | None = None):
        self.path, self.name, self.ids = path, name, ids
        self.ignore = ignore or Ignore([])
        self.dolock = dolock
        self.id = ids()
        self.root_id = ids()
        self.messages: list[Message] = []
        self._byname: dict[str, Message] = {}
        self.subname = 0
        self.vers = 0
        # upasfs's `summary` lines as last made: (key, lines, count, last
        # message) (fs9p/tree.py: BoxFile)
        self.summary_lines: tuple | None = None
        self.key: tuple | None = None
        self.size = 0
        self.mtime = 0
        self.atime = 0
        self.lock = threading.RLock()
        self.on_new: Callable[[Mailbox, Message], None] | None = None
        self._cache: collections.OrderedDict[str, tuple[Message, mime.Part]] = \
            collections.OrderedDict()
        self._cache_bytes = 0
        self._offsets: tuple[Message, mime.Part] | None = None  # see offsets()
        self._expunging = False     # a ctl delete is purging
        if index is None:
            index = config.current().upasfs_index
        self.index_path = mboxindex.path_for(path) if index and dolock else None
        self._details = mboxindex.Details()     # where messages' trees are kept
        self._idx_known: dict[bytes, mboxindex.Entry] | None = None
        self._idx_dirty = False
        self._idx_written = 0.0             # time.monotonic() of the last write
        self.read_ns = 0                    # time.time_ns() when key was taken
        # (fd, its stat key) kept open between reads (_kept_fd); False once closed
        self._fd: tuple[int, tuple] | None | bool = None

    # -- public ----------------------------------------------------------
    def lockdir(self) -> str:
        return os.path.dirname(self.path) or "."

    def sync(self, timeout: float | None = None) -> None:
        """Read what changed, purge deleted messages, rewrite if needed,
        under L.mbox (waiting up to `timeout`, default upas's 5 minutes;
        LockError if it stays busy)."""
        with self.lock:
            if self.dolock:
                with MailLock(self.lockdir(), timeout):
                    self._sync()
            else:
                self._sync()

    def refresh(self) -> None:
        """A sync for readers (directory reads, stats, the background
        reader): if someone holds the lock for long -- e.g. a client that
        consults the fs while holding it -- the last state is served.
        L.mbox is waited for without the mailbox's own lock held: holding
        it for $UPASFS_READ_LOCK_WAIT while deliveries kept L.mbox busy queued every
        walk and read of the mailbox behind one reader (a pop3 session
        starved for a minute in the stress run).  A file whose stat is
        what it was when last read is not looked at again: no lock at all
        (every stat and listing of the mailbox directory comes here)."""
        if self._expunging:             # a delete under way (see delete): its outcome
            with self.lock:
                pass
        if self._unchanged():
            return
        deadline = time.monotonic() + config.current().upasfs_read_lock_wait
        while True:
            try:
                self.sync(0)            # one try at the file lock
                return
            except LockError:
                if time.monotonic() >= deadline:
                    return
                time.sleep(REFRESH_POLL)

    def live(self) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if not m.deleted]

    def lookup(self, name: str) -> Message | None:
        # No lock: each dict operation is atomic, and sync changes _byname
        # an entry at a time.  Every walk of every session comes here;
        # taking the mailbox lock for it convoyed concurrent sessions.
        m = self._byname.get(name)
        return m if m is not None and not m.deleted else None

    def delete(self, names: list[str]) -> None:
        """Mark messages deleted (unknown names ignored) and sync.  They are
        purged even while a fid still holds one (that fid then gets errors):
        the caller is told the delete is done, so it must be on disk before
        the reply, whatever happens to this process next."""
        with self.lock:
            # set before the marks: from the first mark on, a walk to one
            # fails, and refresh() (every stat of the mailbox) waits for
            # the outcome rather than answer the state before it -- else a
            # session whose read of one failed would stat the directory,
            # see it unchanged and not list again: a NO with no EXPUNGE
            # after it (the reliability rig's finding)
            self._expunging = True
            try:
                marked = []
                for n in names:
                    m = self._byname.get(n)
                    if m is not None and not m.deleted:
                        m.deleted = True
                        marked.append(m)
                if marked:
                    try:
                        self.sync()
                    except LockError:
                        for m in marked:    # not done: the messages stay, and show
                            m.deleted = False
                        raise
            finally:
                self._expunging = False

    def set_flags(self, m: Message, on: int, off: int) -> None:
        with self.lock:
            m.flags = (m.flags | on) & ~off

    def incref(self, m: Message) -> None:
        # list.append and list.pop are atomic: every open and clunk of every
        # session comes here, and no lock is taken unless a deleted message
        # is let go (a sync that finds refs > 0 keeps the message; a decref
        # that finds it deleted syncs again: one of the two sees the other)
        m.holders.append(None)

    def decref(self, m: Message) -> None:
        m.holders.pop()
        if m.deleted and not m.holders:
            with self.lock:
                if m.deleted and not m.holders:
                    try:
                        self.sync()
                    except Exception:
                        pass        # the message stays marked; next sync retries

    def parsed(self, m: Message) -> mime.Part:
        """The MIME tree of m, parsed on first use (or taken from the
        index, its bytes read only when a file needs them) and cached."""
        with self.lock:
            hit = self._cache.get(m.name)
            if hit is not None and hit[0] is m:
                self._cache.move_to_end(m.name)
                return hit[1]
            part = self._from_detail(m)
            if part is None:
                data = self.read_message(m)
                part = mime.parse_message(data, 0, len(data), mime.Ids(m.id - 1),
                                          m.name, m.digest)
                if self.index_path and m.detail is None:
                    m.detail = self._details.keep(mboxindex.encode(part) or b"")
                    self._idx_dirty = True
            self._cache[m.name] = (m, part)
            self._cache_bytes += m.size
            while len(self._cache) > 1 and (len(self._cache) > CACHE_COUNT
                                            or self._cache_bytes > CACHE_BYTES):
                _, (old, p) = self._cache.popitem(last=False)
                self._cache_bytes -= len(p.buf)
            return part

    def _from_detail(self, m: Message) -> mime.Part | None:
        """m's tree as its index detail has it, or None (no usable detail)."""
        d = self._details.read(m.detail) if m.detail else None
        if d:
            lazy = mboxindex.LazyBytes(m.size, lambda: self.read_message(m))
            try:
                return mboxindex.decode(d, lazy, m.id, m.name)
            except ValueError:
                d = None
        if d is None and m.detail:
            m.detail = None                 # unreadable: parse and keep anew
        return None

    # files of a top-level message that need no MIME parse
    UNPARSED = ("raw", "rawunix", "digest")
    # ... and those that need only where its header and body are
    OFFSETS = ("rawheader", "rawbody", "lines")

    def offsets(self, m: Message) -> mime.Part:
        """m's parsed tree if it is cached, else a Part that knows only
        where m's header and body are (mime.parse_offsets; the last one is
        kept: a reader asks for several such files of one message)."""
        with self.lock:
            hit = self._cache.get(m.name)
            if hit is not None and hit[0] is m:
                return hit[1]
            if self._offsets is not None and self._offsets[0] is m:
                return self._offsets[1]
            data = self.read_message(m)
            part = mime.parse_offsets(data, 0, len(data), m.id, m.name)
            self._offsets = (m, part)
            return part

    def unparsed_length(self, m: Message, name: str) -> int:
        return {"raw": m.size - m.fromlen, "rawunix": m.size, "digest": len(m.digest)}[name]

    def unparsed_file(self, m: Message, name: str) -> bytes:
        if name == "digest":
            return m.digest
        return self.read_message(m, m.fromlen if name == "raw" else 0)

    def read_message(self, m: Message, skip: int = 0) -> bytes:
        """The stored bytes of m (less its first `skip`), checked: if the
        file's stat is still the one it was read with, the bytes at m's
        offsets are those digested then; else they are digested again, and
        if the file changed behind our back, synced once and read again."""
        with self.lock:
            for attempt in (0, 1):
                if not m.inmbox:            # purged since it was walked to
                    if m.kept is not None:
                        return m.kept[skip:]
                    raise MailError("file does not exist")
                data = self._read_if_unchanged(m, skip)
                if data is not None:
                    return data
                data = self._read_stored(m)
                if digest_of(data, 0, len(data)) == m.digest:
                    return data[skip:]
                if attempt == 0:
                    # the file changed where we had read it: read it all
                    # again, matching by digest (a sync that saw the same
                    # inode grown would check only the last message, and
                    # its key would then vouch for bytes never digested)
                    self.key = None
                    self.sync()
            raise MailError("message changed in the mailbox file")

    def _read_if_unchanged(self, m: Message, skip: int) -> bytes | None:
        """m's bytes if the file open now is the one last read (its stat
        unchanged: what the digest check would show, without hashing the
        message at every read); None if it may have changed."""
        if self.key is None:
            return None
        fd = self._kept_fd()
        if fd is None:
            return None
        n = m.end - m.start - skip
        data = _pread_all(fd, n, m.start + skip)
        return data if len(data) == n else None    # cut meanwhile (_cut_tail)

    def _kept_fd(self) -> int | None:
        """A descriptor of the mailbox file as it was last read (key), kept
        open between reads: the file at the path is stat'ed (its dev, inode,
        size and times unchanged prove it is the file the fd was opened on,
        and unwritten: the open fd keeps the inode from being used again),
        and a changed one is opened anew -- a stat and a pread a read
        instead of an open, fstat, pread and close.  None if the file is
        not the one last read."""
        want = self.key[:5]
        if self._fd is False:           # closed: nothing kept any more
            return None
        kept = self._fd
        proven = getattr(_LOOK, "proven", None)
        if proven is not None and self in proven and kept and kept[1] == want:
            return kept[0]              # looked at already for this batch
        try:
            now = stat_key(os.stat(self.path))
        except OSError:
            now = None
        if now != want:
            self._drop_fd()             # not the file read: keep nothing of it
            return None
        if proven is not None:
            proven.add(self)
        if kept and kept[1] == want:
            return kept[0]
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            ok = stat_key(os.fstat(fd)) == want
        except OSError:
            ok = False
        if not ok:
            os.close(fd)
            return None
        self._drop_fd()
        self._fd = (fd, want)
        return fd

    def _drop_fd(self) -> None:
        if self._fd:
            os.close(self._fd[0])
            self._fd = None

    def _read_stored(self, m: Message) -> bytes:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return _pread_all(fd, m.end - m.start, m.start)
        finally:
            os.close(fd)

    def close(self) -> None:
        with self.lock:
            self._drop_fd()
            self._fd = False
            self._cache.clear()
            self._offsets = None
            self._details.close()
            self.index_path = None

    # -- syncing ---------------------------------------------------------
    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            try:
                os.rename(self.path + ".tmp", self.path)   # crash recovery
            except OSError:
                pass
            try:
                return os.open(self.path, os.O_RDONLY)
            except OSError as e:
                raise MailError(e.strerror) from None
        except OSError as e:
            raise MailError(e.strerror) from None

    def _sync(self) -> None:
        fd = self._open()
        try:
            self._read(fd)
        finally:
            os.close(fd)
        if self._purge():
            self._rewrite()
        if self._idx_dirty and (not self._idx_written or self._index_due()):
            self._write_index()

    def _filekey(self, fd: int, st: os.stat_result) -> tuple:
        n = min(TAIL, st.st_size)
        tail = hashlib.sha1(os.pread(fd, n, st.st_size - n)).digest() if n else b""
        return stat_key(st) + (tail,)

    def _unchanged(self) -> bool:
        """The file's stat is the one in the key it was last read with (the
        placeholder key after a rewrite that carried mail over matches no
        stat, so that mail is read)."""
        return self.key is not None and self.key[:5] == _quick_stat(self.path)

    def _read(self, fd: int) -> None:
        st = os.fstat(fd)
        key = self._filekey(fd, st)
        read_ns = time.time_ns()
        self.mtime, self.atime = int(st.st_mtime), int(st.st_atime)
        if key == self.key:
            return
        self.vers += 1
        size = st.st_size
        if self.key is None and not self.messages and self.index_path \
                and self._from_index(key, size):
            self.size, self.key, self.read_ns = size, key, read_ns
            return
        known = [m for m in self.messages if m.inmbox]
        try:
            with _mapped(fd, size) as buf:
                start, merge_from = self._resume_point(buf, self.key, key, known, size)
                scanned = scan(buf, start, size)
                self._merge(buf, scanned, known[merge_from:])
        finally:
            self._idx_known = None
        # only now: a read that failed half-way must not leave a key that
        # says the file was read (reads trust the offsets while it matches)
        self.size, self.key, self.read_ns = size, key, read_ns
        self._idx_dirty = True

    # -- the index -------------------------------------------------------
    def _from_index(self, key: tuple, size: int) -> bool:
        """First read: take the messages from the index if it describes
        this very file (True); else keep its entries to be found by digest
        while the file is read."""
        idx = mboxindex.load(self.index_path)
        if idx is None:
            return False
        self._details.use_index(idx.fd)
        if not (idx.trusted and idx.key == key and _in_order(idx.entries, size)):
            self._idx_known = idx.by_digest()
            return False
        for e in idx.entries:
            m = Message(str(self.subname + 1), self.ids(), e.start, e.end, e.digest)
            self._take_entry(m, e)
            self.subname += 1
            self._add(m)
        self.ids()                           # the read that finds EOF
        _log.debug("%s: %d messages from %s", self.name, len(idx.entries), self.index_path)
        return True

    def _take_entry(self, m: Message, e: mboxindex.Entry) -> None:
        m.fromlen, m.nids, m.sizes, m.detail, m.flags = e.fromlen, e.nids, e.sizes, e.detail, e.flags
        self.ids.last += e.nids - 1

    def _index_due(self) -> bool:
        return time.monotonic() - self._idx_written >= config.current().upasfs_index_delay

    def write_index(self, force: bool = False) -> None:
        """Write the index if it changed and $UPASFS_INDEX_DELAY seconds
        have passed since the last write (force: at once; the first read
        writes at once), if L.mbox can be had quickly."""
        if not (self.index_path and self._idx_dirty):
            return
        if not force and not self._index_due():
            return
        try:
            with self.lock, MailLock(self.lockdir(), INDEX_LOCK_WAIT):
                self._write_index()
        except LockError:
            pass

    def _write_index(self) -> None:
        """Under L.mbox: the index of the file as last read, if it is still
        that file (else the next read writes it).  Best effort: an index
        that cannot be written only costs the next upasfs a read."""
        if not self.index_path or self.key is None or self.key[:5] != _quick_stat(self.path) \
                or mboxindex.foreign(self.index_path):
            return
        msgs = sorted((m for m in self.messages if m.inmbox), key=lambda m: m.start)
        entries = [mboxindex.Entry(m.digest, m.start, m.end, m.fromlen, m.nids,
                                   m.flags & ~RECENT, m.sizes, m.detail) for m in msgs]
        try:
            fd, placed = mboxindex.write(self.index_path, self.key,
                                         mboxindex.is_trusted(self.key, self.read_ns),
                                         entries, self._details)
        except OSError as e:
            _log.debug("%s: index not written: %s", self.name, e)
            self._idx_written = time.monotonic()      # not again at once
            return
        for m, p in zip(msgs, placed):
            m.detail = p
        self._details.use_index(fd, spilled=True)
        self._idx_dirty = False
        self._idx_written = time.monotonic()

    def _resume_point(self, buf, old, key, known: list[Message], size: int) -> tuple[int, int]:
        """Where to rescan from, and the index of the first known message to
        match against: appends are read from the old end, anything else from 0
        (a file of the same size, changed, was written in place: nothing
        appended, and reads must not trust its old offsets unchecked)."""
        if old is None or not known or old[:2] != key[:2] or size <= self.size:
            return 0, 0
        last = known[-1]
        if last.end > size or digest_of(buf, last.start, last.end) != last.digest:
            return 0, 0
        if self.size >= 1 and buf[self.size - 1:self.size] == b"\n" \
                and buf[self.size:self.size + 5] == b"From " and last.end < self.size:
            return self.size, len(known)
        return last.start, len(known) - 1

    def _merge(self, buf, scanned, known: list[Message]) -> None:
        """upas/fs's merge: known messages are matched by digest in order;
        a known message skipped over has disappeared from the file."""
        k = 0
        new: list[Message] = []
        dropped = 0
        for s, e in scanned:
            dropped = _drop_pages(buf, dropped, s)
            mid = self.ids()                 # every message read takes an id
            dig = digest_of(buf, s, e)
            matched = None
            while k < len(known):
                km = known[k]
                k += 1
                if km.digest == dig:
                    matched = km
                    break
                km.inmbox, km.deleted = False, True
            if matched is not None:
                matched.start, matched.end = s, e
                continue
            self.subname += 1
            m = Message(str(self.subname), mid, s, e, dig)
            ent = self._idx_known.get(dig) if self._idx_known else None
            if ent is not None and ent.end - ent.start == e - s:
                self._take_entry(m, ent)         # parsed by an earlier upasfs
            else:
                describe(m, buf[s:e])
                self.ids.last += m.nids - 1
            new.append(m)
            self._add(m)
        for km in known[k:]:
            km.inmbox, km.deleted = False, True
        self.ids()                           # the read that finds EOF
        self._announce(new)

    def _announce(self, new: list[Message]) -> None:
        if self.on_new is not None and self.key is not None:
            for m in new:
                self.on_new(self, m)

    def _add(self, m: Message) -> None:
        self.messages.append(m)
        self._byname[m.name] = m

    def _purge(self) -> int:
        newdels = 0
        gone = False
        keep = []
        for m in self.messages:
            if m.deleted and (m.refs == 0 or self._expunging):
                if m.refs and m.inmbox and m.kept is None:
                    # a fid still reads it (a pop3 RETR, say): keep its bytes
                    # so that reader finishes, as upas/fs's in-memory copy does
                    m.kept = self._read_stored(m)
                newdels += m.inmbox
                m.inmbox = False            # fids still holding it get an error
                gone = True
                self._cache.pop(m.name, None)
                if self._offsets is not None and self._offsets[0] is m:
                    self._offsets = None
                del self._byname[m.name]
            else:
                keep.append(m)
        self.messages = keep
        if gone:
            self.vers += 1                  # the numbering changed (see `mark`)
        return newdels

    def _rewrite(self) -> None:
        """Write the surviving messages to <path>.tmp, fsync, rename over
        <path>; mail appended meanwhile by writers that skip the lock is
        carried over.  When the deleted messages are the last ones, the
        file is cut instead (_cut_tail)."""
        if self._cut_tail():
            return
        tmp = self.path + ".tmp"
        # the old file's mode: the mailbox's owner chose it (a new one is 0600)
        try:
            mode = os.stat(self.path).st_mode & 0o777
        except OSError:
            mode = MBOXMODE
        src = os.open(self.path, os.O_RDONLY)
        try:
            with host_tmp(tmp, mode) as out:
                placed = self._copy_messages(src, out)
                copied = self._copy_tail(src, out, self.size)
            os.rename(tmp, self.path)
            fsync_dir(self.path)
            late = self._copy_tail_after_rename(src, copied)
        finally:
            os.close(src)
        for m, (s, e) in placed:
            m.start, m.end = s, e
        for m in self.messages:
            if m.deleted:
                m.inmbox = False
        self._after_rewrite(placed, appended=(copied > self.size or late))

    def _cut_tail(self) -> bool:
        """The rewrite of a file whose deleted messages all came after every
        message kept (an APPEND expunged again, the usual EXPUNGE): the
        rewrite would write the file's own bytes up to the first deleted
        message, so the file is truncated there and fsync'd instead of
        copied whole (99 MB for one message at 10,000).  One ftruncate: a
        crash leaves the file as it was or cut, the bytes kept never
        written; the size changes, so every reader's stat check sees it.
        Not when the file grew since it was read (a writer that skipped
        the lock: the rewrite carries that mail over)."""
        kept = [m for m in self.messages if m.inmbox]   # _purge dropped the rest
        pos = 0
        for m in kept:                  # where the rewrite would put each: where it is
            if m.start != pos:
                return False
            pos = m.end + 1
        if pos >= self.size:
            return False
        fd = os.open(self.path, os.O_RDWR)
        try:
            if os.fstat(fd).st_size != self.size or \
                    (pos and os.pread(fd, 1, pos - 1) != b"\n"):
                return False
            os.ftruncate(fd, pos)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._after_rewrite([(m, (m.start, m.end)) for m in kept], appended=False)
        return True

    def _copy_messages(self, src: int, out: int) -> list:
        placed = []
        pos = 0
        for m in self.messages:
            if m.deleted or not m.inmbox:
                continue
            _copy_range(src, out, m.start, m.end)
            os.write(out, b"\n")
            placed.append((m, (pos, pos + m.end - m.start)))
            pos += m.end - m.start + 1
        return placed

    @staticmethod
    def _copy_tail(src: int, out: int, seen: int) -> int:
        size = os.fstat(src).st_size
        if size > seen:
            _copy_range(src, out, seen, size)
        return max(size, seen)

    def _copy_tail_after_rename(self, src: int, copied: int) -> bool:
        size = os.fstat(src).st_size
        if size <= copied:
            return False
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            _copy_range(src, fd, copied, size)
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def _after_rewrite(self, placed: list, appended: bool) -> None:
        """Record the new file so our own rewrite is not seen as new mail;
        mail carried over from the old file is scanned at the next sync."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            end = placed[-1][1][1] + 1 if placed else 0
            self.size = end
            if appended:
                self.key = (st.st_dev, st.st_ino, end, 0, 0, b"")
            else:
                self.key = self._filekey(fd, st)
            self.read_ns = time.time_ns()
        finally:
            os.close(fd)
        self.vers += 1
        self._idx_dirty = True


def _in_order(entries: list[mboxindex.Entry], size: int) -> bool:
    """Entries that can describe a file of `size` bytes, in file order."""
    end = 0
    for e in entries:
        if not end <= e.start < e.end <= size or e.nids < 1:
            return False
        end = e.end
    return True


# the mailboxes whose file was found unchanged in this thread's one_look()
_LOOK = threading.local()


@contextlib.contextmanager
def one_look() -> Iterator[None]:
    """Reads of a mailbox within it stat its file once (_kept_fd), not
    each: upasfs answers a batch of requests a session sent together (a
    FETCH of whole messages sends 64 raws' reads at once) inside one, as
    if all were answered at the moment of that look -- the session cannot
    tell, having sent them all before any reply.  A stat is ~2 us, a
    tenth of upasfs's work for one raw.  Nested, the outer look holds."""
    if getattr(_LOOK, "proven", None) is not None:
        yield
        return
    _LOOK.proven = set()
    try:
        yield
    finally:
        _LOOK.proven = None


def stat_key(st: os.stat_result) -> tuple:
    """What changes whenever a file is written or replaced."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _quick_stat(path: str) -> tuple | None:
    try:
        return stat_key(os.stat(path))
    except OSError:
        return None


class _mapped:
    """mmap of a file (an empty file maps to b'')."""

    def __init__(self, fd: int, size: int):
        self.fd, self.size, self.mm = fd, size, None

    def __enter__(self):
        if self.size == 0:
            return b""
        self.mm = mmap.mmap(self.fd, self.size, prot=mmap.PROT_READ)
        return self.mm

    def __exit__(self, *exc) -> None:
        if self.mm is not None:
            self.mm.close()


RELEASE = 4 << 20


def _fromlen(buf, s: int, e: int) -> int:
    if buf[s:s + 5] != b"From ":
        return 0
    nl = buf.find(b"\n", s, e)
    return 0 if nl < 0 else nl + 1 - s


def _drop_pages(buf, done: int, upto: int) -> int:
    """Let the kernel drop mapped pages already scanned, so that scanning a
    large mailbox does not grow the resident set by the mailbox's size."""
    if not isinstance(buf, mmap.mmap) or upto - done < RELEASE:
        return done
    end = upto - upto % mmap.PAGESIZE
    buf.madvise(mmap.MADV_DONTNEED, done, end - done)
    return end


def _pread_all(fd: int, n: int, off: int) -> bytes:
    parts = []
    while n > 0:
        b = os.pread(fd, min(n, 1 << 24), off)
        if not b:
            break
        parts.append(b)
        n -= len(b)
        off += len(b)
    return b"".join(parts)


def _copy_range(src: int, out: int, start: int, end: int) -> None:
    while start < end:
        b = os.pread(src, min(COPY_CHUNK, end - start), start)
        if not b:
            raise MailError("mailbox shrank while being rewritten")
        mv = memoryview(b)
        while mv:
            mv = mv[os.write(out, mv):]
        start += len(b)


class MdirBox(Mailbox):
    """A directory with one message per file, named `<secs>.<NN>` (9front mdir)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.index_path = None      # mbox files only: each file is read here

    def _unchanged(self) -> bool:
        return False        # a directory: its files are listed at every sync

    def _sync(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise MailError(e.strerror) from None
        self.mtime, self.atime = int(st.st_mtime), int(st.st_atime)
        entries = _mdir_entries(self.path)
        key = tuple(entries)
        if key != self.key:
            self.key = key
            self.vers += 1
            self._read_entries(entries)
        if self._purge_files():
            self.vers += 1
            self.key = tuple(_mdir_entries(self.path))

    def _read_entries(self, entries: list[tuple]) -> None:
        byfile = {m.file: m for m in self.messages if m.inmbox}
        seen = set()
        before = len(self.messages)
        for (_secs, _seq, fname, _size, _mt) in entries:
            data = self._read_file(fname)
            if data is None:
                continue
            seen.add(fname)
            end = len(data) - 1 if data.endswith(b"\n") else len(data)
            dig = digest_of(data, 0, end)
            mid = self.ids()
            km = byfile.get(fname)
            if km is not None and km.digest == dig:
                km.end = end
                continue
            if km is not None:
                km.inmbox, km.deleted = False, True
            self.subname += 1
            m = Message(str(self.subname), mid, 0, end, dig, fname)
            describe(m, data[:end])
            self.ids.last += m.nids - 1
            self._add(m)
        for fname, km in byfile.items():
            if fname not in seen:
                km.inmbox, km.deleted = False, True
        self.ids()
        self._announce(self.messages[before:])

    def _read_file(self, fname: str) -> bytes | None:
        try:
            with open(os.path.join(self.path, fname), "rb") as f:
                return f.read()
        except OSError:
            return None

    def _purge_files(self) -> int:
        n = 0
        for m in self.messages:
            if m.deleted and (m.refs == 0 or self._expunging) and m.inmbox:
                if m.refs:
                    m.kept = self._read_stored(m)   # before its file goes
                try:
                    os.remove(os.path.join(self.path, m.file))
                except FileNotFoundError:
                    pass
                n += 1
        self._purge()
        if n:
            fsync_dir(os.path.join(self.path, "x"))
        return n

    def _read_if_unchanged(self, m: Message, skip: int) -> bytes | None:
        return None         # a message's own file: read and digested

    def _read_stored(self, m: Message) -> bytes:
        data = self._read_file(m.file) or b""
        return data[:m.end]

    def lockdir(self) -> str:
        return self.path


def _mdir_entries(path: str) -> list[tuple]:
    """(secs, seq, name, size, mtime_ns) of the message files, in mdir order."""
    out = []
    with os.scandir(path) as it:
        for e in it:
            secs, dot, seq = e.name.partition(".")
            if not (dot and secs.isdigit() and seq.isdigit() and len(seq) == 2):
                continue
            if int(secs) < 1000000:
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if not statmod.S_ISREG(st.st_mode) or st.st_size == 0:
                continue
            out.append((int(secs), int(seq), e.name, st.st_size, st.st_mtime_ns))
    out.sort()
    return out


def open_mailbox(path: str, name: str, ids: mime.Ids,
                 ignore: Ignore | None = None, index: bool | None = None) -> Mailbox:
    """Open and read a mailbox: a directory is mdir, anything else mbox
    (index: use and keep its index; default UPASFS_INDEX, on)."""
    if not os.path.exists(path) and not os.path.exists(path + ".tmp"):
        raise MailError(os.strerror(2))
    cls = MdirBox if os.path.isdir(path) else Mailbox
    mb = cls(path, name, ids, ignore, index=index)
    mb.sync()
    return mb
