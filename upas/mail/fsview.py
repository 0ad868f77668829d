"""A server's view of one mailbox as upasfs serves it: /mail/fs/NAME.

pop3 and imap4d see mail only through upasfs (docs/spec/fs-auth.md §1),
and this is the one way they do it:

- the name space of a session: the user's /mail/box/USER, and on /mail/fs
  the shared upasfs (`$upasfs`, else the service posted as `upasfs`) or,
  when there is none, one of the session's own on a socketpair, as Plan 9's
  pop3 runs `upas/fs -np -f BOX` (newns, mount_shared, mount_own);
- naming a mailbox's view in a shared upasfs (view_name): one name per
  mailbox for every server, so that a folder is one view, numbered alike
  by all of them; `mbox` for the inbox, as upas/fs names it;
- `open PATH NAME` written to /mail/fs/ctl, and `delete NAME N...` in
  writes of at most DELETE_BATCH bytes, as Bell's imap4d;
- the message numbers, a digest per message (short reads, pipelined on the
  9P connection, each read once a process), reads of message files one at
  a time, many at once (ns.read_many), or streamed.

Views are never closed: a shared one is other sessions' view too, and a
session's own upasfs ends with the session.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from lib.rcquote import quote
from upas import config
from upas import ns as nsmod
from upas.fsbroker import PREFIX

FSROOT = "/mail/fs"
CTL = FSROOT + "/ctl"
INBOX = "mbox"               # the inbox's view, as upas/fs names a mailbox
DELETE_BATCH = 8192          # bytes per `delete` ctl write, as Bell
DIGEST_READ = 1024           # bytes read of a digest file: all of it
DIGEST_LEN = 40              # hex digits of a digest (SHA-1)
CHUNK = 64 * 1024            # bytes per read of a streamed file, at least
MISSING = ("No such file or directory", "does not exist")
_ESCAPE = re.compile(r"[%!]")

# view dir -> (its qid.path, {message number: digest}).  A number names one
# message for as long as upasfs keeps that mailbox open (the same qid.path):
# numbers are never reused.  So a process reads a digest once, though
# imap4d's APPEND and STATUS open their mailbox afresh every time.
_DIGESTS: dict[str, tuple[int | None, dict[int, str]]] = {}
# view dir -> [(qid.path, numbers, digests)] given to know() (lists their
# callers no longer change), put into _DIGESTS only when digests() needs
# them: a SELECT proved by its mark knows 10,000 and most sessions never
# look one up
_KNOWN: dict[str, list[tuple[int | None, list[int], list[str]]]] = {}
# view dir -> the last `summary` this process read of it, which the next
# read extends when only mail was added (_read_summary)
_SUMMARIES: dict[str, "Summary"] = {}
MARK_READ = 256              # bytes read first of a `summary`: its mark line and more


def view_name(user: str, path: str) -> str:
    """The name mailbox `path` is opened under in a shared upasfs: `mbox`
    for /mail/box/USER/mbox; else its path below /mail/box/USER (or, for a
    mailbox elsewhere, its whole path after a leading `!`) with each `/` as
    `!`, and `%` and `!` of the names written %25 and %21 (upasfs names may
    not hold `/`; these escapes keep two mailboxes from one name), and a
    mailbox named `ctl` as %63tl (the root's ctl file has that name)."""
    prefix = f"/mail/box/{user}/"
    if path == prefix + INBOX:
        return INBOX
    inside = path.startswith(prefix)
    rest = nsmod.cleanname(path[len(prefix):] if inside else path).strip("/")
    name = "!".join(_ESCAPE.sub(lambda m: "%%%02X" % ord(m.group()), c) for c in rest.split("/"))
    if name == "ctl":
        name = "%63tl"
    return name if inside else "!" + name


class FsView:
    """Mailbox view NAME of the upasfs on /mail/fs."""

    def __init__(self, ns: nsmod.Namespace, name: str = INBOX):
        self.ns, self.name = ns, name
        self.dir = f"{FSROOT}/{name}"

    @classmethod
    def open(cls, ns: nsmod.Namespace, path: str) -> "FsView":
        """`open PATH NAME` in the shared upasfs (the same again is a
        no-op); nsmod.Error naming path and where it must be if upasfs
        cannot find the file.  The upas/fs may be ours or plan9port's:
        either opens PATH on the host it runs on, plan9port's at that very
        path whatever $MAILROOT says here, and answers the bare system
        text, which says nothing of where it looked."""
        name = view_name(ns.user, path)
        try:
            ns.write(CTL, f"open {quote(path)} {quote(name)}".encode())
        except nsmod.Error as e:
            text = str(e)
            if any(m in text for m in MISSING):
                raise type(e)(f"upas/fs cannot open {path}: {text} (it must exist "
                              f"on the host upas/fs runs on)") from None
            raise
        return cls(ns, name)

    def path(self, n: int, rel: str = "") -> str:
        return f"{self.dir}/{n}/{rel}" if rel else f"{self.dir}/{n}"

    # -- the messages ----------------------------------------------------
    def stat(self) -> nsmod.Dir:
        """The view's directory (a stat makes upasfs read the mailbox)."""
        return self.ns.stat(self.dir)

    def numbers(self) -> list[int]:
        """The message numbers, in order (a listing also reads the mailbox)."""
        return sorted(int(n) for n in self.ns.readdir_names(self.dir) if n.isdigit())

    def digests(self, nums: list[int], qpath: int | None) -> list[str]:
        """The digest of each message ("" if it cannot be read), the reads
        pipelined (a digest is one short read), each message's read once a
        process while the view's directory keeps qid.path `qpath`."""
        seen = self._known(qpath)
        todo = [n for n in nums if n not in seen]
        got = self.read_many([(n, "digest") for n in todo], DIGEST_READ) if todo else []
        for n, d in zip(todo, got):
            if d is not None and d.strip():
                seen[n] = d.decode("ascii", "replace").strip()
        return [seen.get(n, "") for n in nums]

    def mark(self) -> str | None:
        """upasfs's `mark` of the view (docs/decisions.md, "upasfs's `mark`
        and `summary`"): the same line again means the same messages under
        the same numbers.  None where upasfs has none (plan9port's: not
        even asked)."""
        if not self.ns.ours(self.dir):
            return None
        # read_many: walk, open, read and clunk in one write, one round
        # trip (ns.read waits for a second, empty read to see the end; a
        # short read of upasfs's files is their end: Batch.read_many)
        got = self.ns.read_many([f"{self.dir}/mark"], None)[0]
        if got is None:
            return None
        try:
            return got.decode("ascii").strip() or None
        except UnicodeDecodeError:
            return None

    def stat_and_mark(self) -> tuple[nsmod.Dir, str | None]:
        """stat() and then mark(), in one round trip (ns.stat_then): the
        stat is taken first, so a change between them shows in the stat
        at the next look."""
        return self.ns.stat_then(self.dir, self.mark)

    def summary(self) -> "Summary | None":
        """Every message's number, digest and sizes in one read of upasfs's
        `summary`; None where upasfs has none (plan9port's: not even
        asked) or it cannot be read."""
        if not self.ns.ours(self.dir):
            return None
        try:
            got = _read_summary(self.ns, f"{self.dir}/summary", _SUMMARIES.get(self.dir))
        except nsmod.Error:
            return None
        if got is None:
            return None
        _SUMMARIES[self.dir] = got      # kept as read: the caller gets its own lists
        return Summary(got.mark, list(got.nums), list(got.digests), list(got.rows), got.size)

    def know(self, qpath: int | None, nums: list[int], digests: list[str]) -> None:
        """Keep these digests (from a summary, or what a mark proved) as
        digests() keeps those it reads: while the view keeps qid.path `qpath`."""
        _KNOWN.setdefault(self.dir, []).append((qpath, nums, digests))

    def _known(self, qpath: int | None) -> dict[int, str]:
        """The digests known of the view while it keeps qid.path `qpath`."""
        known = _DIGESTS.get(self.dir)
        if known is None or known[0] != qpath:
            known = _DIGESTS[self.dir] = (qpath, {})
        for q, nums, digests in _KNOWN.pop(self.dir, []):
            if q == qpath:
                known[1].update(zip(nums, digests))
        return known[1]

    def alive(self) -> None:
        """Raise nsmod.Hungup if upasfs has gone away (a failed walk may
        mean a message gone or a dead upasfs)."""
        self.ns.stat(CTL)

    # -- message files ---------------------------------------------------
    def read(self, n: int, rel: str) -> bytes:
        return self.ns.read(self.path(n, rel))

    def parts(self, n: int, rel: str = "") -> list[int]:
        """The numbered part directories under a message or part, in order."""
        return sorted(int(x) for x in self.ns.readdir_names(self.path(n, rel)) if x.isdigit())

    def read_many(self, files: list[tuple[int, str]], count: int | None) -> list[bytes | None]:
        """ns.read_many of these (number, file) pairs: the first `count`
        bytes of each (None: all of it); None where a read fails."""
        return self.ns.read_many([self.path(n, rel) for n, rel in files], count)

    def read_many_begin(self, files: list[tuple[int, str]],
                        count: int) -> Callable[[], list[bytes | None]]:
        """read_many in two halves (ns.read_many_begin): sent now, the
        replies taken by the function returned (called once)."""
        return self.ns.read_many_begin([self.path(n, rel) for n, rel in files], count)

    def stat_many(self, files: list[tuple[int, str]]) -> list[nsmod.Dir | None]:
        """ns.stat_many of these files (rel "": the message directory); a
        walk does not make upasfs read the mailbox, so this looks at what
        upasfs holds now even while another holds the mail lock."""
        return self.ns.stat_many([self.path(n, rel) for n, rel in files])

    def iounit(self) -> int | None:
        """The most one read returns (None: not a 9P mount, read whole)."""
        return self.ns.iounit(self.dir)

    def chunks(self, n: int, rel: str, length: int | None = None,
               offset: int = 0) -> Iterator[bytes]:
        """The file's bytes from offset on, a read per iounit, until a read
        returns nothing or `length` bytes have come; opened now (an error
        is raised here, not at the first chunk)."""
        f = self.ns.open(self.path(n, rel), "r")
        if offset:
            f.seek(offset)
        return _chunks(f, length)

    # -- deleting ----------------------------------------------------------
    def delete(self, nums: list[int]) -> None:
        """Remove messages from the mailbox: `delete NAME N...`, in writes
        of at most DELETE_BATCH bytes (each upasfs does at once)."""
        head = f"delete {self.name}"
        todo = [str(n) for n in nums]
        i = 0
        while i < len(todo):
            batch, size = [], len(head)
            while i < len(todo) and (not batch or size + 1 + len(todo[i]) <= DELETE_BATCH):
                size += 1 + len(todo[i])
                batch.append(todo[i])
                i += 1
            self.ns.write(CTL, " ".join([head, *batch]).encode())


@dataclass
class Summary:
    """upasfs's `summary` of a view: its mark line, then per message (in
    order) its number, digest and the sizes Plan 9's pop3 reads."""
    mark: str
    nums: list[int]
    digests: list[str]
    rows: list[bytes]           # the message lines, their sizes parsed on demand
    size: int = 0               # bytes of the message lines in the file

    def pop_sizes(self) -> list[tuple[int, int]]:
        """(length of raw, POP size) of each message: raw + the newlines of
        rawheader + 1 + lines, Plan 9 pop3's size (docs/spec/servers.md §2.7)."""
        out = []
        for r in self.rows:
            f = r.split()
            out.append((int(f[2]), int(f[2]) + int(f[4]) + 1 + int(f[6])))
        return out

    def cuts(self) -> dict[int, tuple[str, int, int, int]]:
        """Per message number: (digest, length of raw, of rawheader, of
        rawbody), where a reader of `raw` finds the other two (split_raw)."""
        out = {}
        for n, d, r in zip(self.nums, self.digests, self.rows):
            f = r.split(b" ", 6)
            out[n] = (d, int(f[2]), int(f[3]), int(f[5]))
        return out


def split_raw(raw: bytes, header: int, body: int) -> tuple[bytes, bytes] | None:
    """(rawheader, rawbody) of a message cut from its `raw`, given their
    lengths (Summary.cuts), or None when the lengths do not prove the cut.
    upasfs's raw is the message without its From line: the header, at most
    one newline, the body to the end (upas/mail/mime.parse_offsets).  A
    raw that also held a first line of its own (a message stored without
    a From line) is longer than that, except with an empty first line and
    no separating newline: then raw starts with a newline, which no header
    does (every header line has a colon)."""
    gap = raw_gap(raw, header, body)
    return None if gap is None else (raw[:header], raw[header + gap:])


def raw_gap(raw: bytes, header: int, body: int) -> int | None:
    """The newlines between rawheader and rawbody in raw (0 or 1) when
    the lengths prove the cut (split_raw), else None."""
    gap = len(raw) - header - body
    if gap == 1 and raw[header:header + 1] == b"\n" and (header == 0 or raw[:1] != b"\n"):
        return 1
    return 0 if gap == 0 else None


def parse_summary(data: bytes) -> Summary | None:
    """A `summary` file's bytes (docs/decisions.md): the mark line
    `<instance> <box> <vers> <count>`, then `<n> <digest> <raw> <rawheader>
    <rawheader newlines> <rawbody> <lines> <CRs>` per message; None unless
    it is whole and well formed."""
    nl = data.find(b"\n")
    if nl < 0:
        return None
    try:
        mark = data[:nl].decode("ascii")
        head = mark.split()
        if len(head) != 4:
            return None
        got = _rows(data[nl + 1:])
    except (ValueError, UnicodeDecodeError):
        return None
    if got is None or int(head[3]) != len(got[0]):
        return None
    return Summary(mark, *got, size=len(data) - nl - 1)


def _rows(data: bytes) -> tuple[list[int], list[str], list[bytes]] | None:
    """The numbers, digests and lines of summary lines (each ended); None
    unless well formed (ValueError or UnicodeDecodeError: not numbers)."""
    rows = data.split(b"\n")
    if rows.pop() != b"":
        return None
    nums, digests = [], []
    for r in rows:
        f = r.split(b" ", 2)
        if len(f) != 3 or len(f[1]) != DIGEST_LEN or r.count(b" ") != 7:
            return None
        nums.append(int(f[0]))
        digests.append(f[1].decode("ascii"))
    return nums, digests, rows


def _read_summary(ns: nsmod.Namespace, path: str, prev: Summary | None) -> Summary | None:
    """Read `summary`, only its new lines when `prev` (an earlier read of
    it) proves the rest (_grown), else whole (one open either way: the
    file's bytes are fixed at its open)."""
    with ns.open(path, "r") as f:
        if prev is not None:
            head = f.read(MARK_READ)
            nl = head.find(b"\n")
            got = _grown(f, head[:nl + 1], prev) if nl > 0 else None
            if got is not None:
                return got
            f.seek(0)
        return parse_summary(f.read())


def _grown(f, markline: bytes, prev: Summary) -> Summary | None:
    """The summary open on f, from `prev` and the lines after prev's last
    message, if they prove that only mail was added since: the same
    upasfs and mailbox (the mark's instance and box), prev's last line in
    its place (then a line begins there), and the new count prev's plus
    the lines after it.  upasfs lists its messages in the order of their
    numbers and never gives a number again (docs/decisions.md, "upasfs's
    `mark` and `summary`"), so every line before prev's last is one of
    prev's, and as many as prev had: prev's, all of them.  None: read it
    whole."""
    try:
        mark = markline[:-1].decode("ascii")
        head, old = mark.split(), prev.mark.split()
        if len(head) != 4 or head[:2] != old[:2] or not prev.rows:
            return None
        last = prev.rows[-1] + b"\n"
        f.seek(len(markline) + prev.size - len(last) - 1)
        tail = f.read()
        if tail[:1] != b"\n" or not tail.startswith(last, 1):
            return None
        more = _rows(tail[1 + len(last):])
        if more is None or len(prev.nums) + len(more[0]) != int(head[3]) or \
                (more[0] and more[0][0] <= prev.nums[-1]):
            return None
    except (ValueError, UnicodeDecodeError):
        return None
    nums, digests, rows = more
    return Summary(mark, prev.nums + nums, prev.digests + digests, prev.rows + rows,
                   size=prev.size + len(tail) - 1 - len(last))


def _chunks(f, length: int | None) -> Iterator[bytes]:
    size = max(getattr(f, "iounit", CHUNK), CHUNK)
    got = 0
    try:
        while length is None or got < length:
            data = f.read(size if length is None else min(size, length - got))
            if not data:
                return
            got += len(data)
            yield data
    finally:
        try:
            f.close()
        except Exception:  # noqa: BLE001 -- a hung-up mount: nothing to close
            pass


# ---------------------------------------------------------------- name space

def newns(user: str) -> nsmod.Namespace:
    """The session's name space once it is the user's (Plan 9's auth_chuid
    and newns): 9P attaches are made as the user from now on, and of
    /mail/box only /mail/box/USER is reachable.  /mail/fs is $upasfs if
    set (dialled at first use); see mount_shared, mount_own."""
    os.environ["user"] = os.environ["USER"] = os.environ["LOGNAME"] = user
    ns = nsmod.Namespace.default(user)
    ns.confine(user)
    return ns


def mount_shared(ns: nsmod.Namespace) -> bool:
    """Whether /mail/fs is a upasfs shared with the user's other sessions:
    $upasfs, else the service posted as `upasfs` (mounted now, so that a
    stale socket counts as none).  When that is the launcher's broker
    (upas/fsbroker.py), the user's upasfs it posted beside it is mounted
    instead (mount_direct)."""
    if mount_direct(ns):
        return True
    if ns.mounted(FSROOT):
        return True
    posted = nsmod.posted("upasfs")
    if posted is None:
        return False
    try:
        ns.mount(FSROOT, posted)
    except nsmod.Error:
        return False
    return True


def mount_direct(ns: nsmod.Namespace) -> bool:
    """Mount the user's own upasfs, posted as upasfs.USER by the broker
    that /mail/fs would reach (the service `upasfs` of this name space,
    $upasfs or unset): the broker only replays the attach to it and then
    copies every 9P message both ways, a thread hop each way per request.
    Dialled now: a stale one (that upasfs died) is not used, and the
    broker, reached as before, starts a new one."""
    broker = nsmod.posted("upasfs")
    mine = nsmod.posted(PREFIX + ns.user)
    given = config.current().upasfs
    if broker is None or mine is None or (given and given != broker):
        return False
    try:
        ns.mount(FSROOT, mine, ours=True)    # posted by our broker
    except Exception:           # refused, reset, a bad version: the broker's way
        return False
    return True


def mount_own(ns: nsmod.Namespace, box: str | None = None) -> FsView | None:
    """A upasfs of the session's own on /mail/fs (`python -m upas.fs9p -i
    -np`, serving the socketpair on its stdin); with `box`, `-f box`: that
    mailbox, served as `mbox` (its view, returned), as Plan 9's pop3 runs
    it.  upasfs finds /mail/... paths under $MAILROOT itself."""
    ns.unmount(FSROOT)
    env = dict(os.environ, user=ns.user, USER=ns.user, LOGNAME=ns.user)
    args = ["-i", "-np"] + (["-f", box] if box is not None else [])
    ns.mount_child(FSROOT, nsmod.python_argv("upas.fs9p", *args), env=env)
    return FsView(ns, INBOX) if box is not None else None
