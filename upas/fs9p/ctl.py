"""The top `ctl` file: open, close, delete (Bell/p9p) and the 9front verbs
create, rename, remove, flag (docs/decisions.md).  Each write is one command."""
from __future__ import annotations

import os
import shutil

from lib.rcquote import tokenize
from upas.mail import mboxindex
from upas.mail.lock import LockError, MailLock
from upas.mail.mbox import MailError
from upas.ninep import Error, Open
from upas.ns import mboxpath

EBADCTL = "unknown control message"
FLAGLETTERS = "aDdfrsS"        # answered Deleted draft flagged recent seen Stored
# files that go with a mailbox: 9front's index, imap4d's shadow, our index
BESIDE = (".idx", ".imp", mboxindex.SUFFIX)


def parse_flags(spec: str) -> tuple[int, int]:
    """9front flag syntax: letters, each optionally preceded by + or -."""
    on = off = 0
    sign = "+"
    for c in spec:
        if c in "+-":
            sign = c
            continue
        i = FLAGLETTERS.find(c)
        if i < 0:
            raise Error("bad flag")
        if sign == "-":
            off |= 1 << i
        else:
            on |= 1 << i
        sign = "+"
    return on, off


class Ctl:
    """Runs ctl commands against a MailFS."""

    def __init__(self, fs):
        self.fs = fs

    def execute(self, data: bytes) -> None:
        if not data:
            raise Error(EBADCTL)
        if data.endswith(b"\n"):
            data = data[:-1]
        tok = tokenize(data.decode("utf-8", "replace"))
        if not tok:
            raise Error(EBADCTL)
        fn = VERBS.get(tok[0])
        if fn is None:
            raise Error(EBADCTL)
        try:
            fn(self, tok[1:])
        except (MailError, LockError) as e:
            raise Error(str(e)) from None
        except OSError as e:
            raise Error(e.strerror or str(e)) from None

    def _path(self, p: str) -> str:
        return mboxpath(p, self.fs.user)

    def cmd_open(self, args: list[str]) -> None:
        if not args:
            raise Error(EBADCTL)
        name = None
        if len(args) >= 2:
            if "/" in args[1]:
                raise Error("/ not allowed in mailbox name")
            name = args[1]
        self.fs.open(self._path(args[0]), name)

    def cmd_close(self, args: list[str]) -> None:
        if args:
            self.fs.close(args[0])

    def cmd_delete(self, args: list[str]) -> None:
        if len(args) < 2:
            return
        mb = self.fs.box(args[0])
        if mb is not None:
            mb.delete(args[1:])

    def cmd_flag(self, args: list[str]) -> None:
        """`flag MBOX FLAGS N...`; kept in memory (the Bell tree has no
        flags file; 9front keeps them in .idx)."""
        if len(args) < 3:
            raise Error("bad flags")
        on, off = parse_flags(args[1])
        mb = self.fs.box(args[0])
        if mb is None:
            return
        for n in args[2:]:
            m = mb.lookup(n)
            if m is not None:
                mb.set_flags(m, on, off)

    def cmd_create(self, args: list[str]) -> None:
        if len(args) != 1:
            raise Error("invalid arguments")
        path = self._path(args[0])
        if not os.path.exists(path):
            os.mkdir(path, 0o700)
        self.fs.open(path, None)

    def cmd_remove(self, args: list[str]) -> None:
        recursive = trunc = False
        while args and args[0].startswith("-"):
            recursive |= "r" in args[0]
            trunc |= "t" in args[0]
            args = args[1:]
        if not args:
            raise Error("invalid arguments")
        for p in args:
            self._remove(self._path(p), recursive, trunc)

    def _remove(self, path: str, recursive: bool, trunc: bool) -> None:
        self._close_path(path)
        with MailLock(os.path.dirname(path) or "."):
            if trunc and os.path.isfile(path):
                os.truncate(path, 0)
            elif os.path.isdir(path):
                if recursive:
                    shutil.rmtree(path)
                else:
                    os.rmdir(path)
            else:
                os.remove(path)
            for ext in BESIDE:
                if not trunc and os.path.exists(path + ext):
                    os.remove(path + ext)

    def cmd_rename(self, args: list[str]) -> None:
        keep = False
        if args and args[0] == "-t":
            keep, args = True, args[1:]
        if len(args) != 2:
            raise Error("invalid arguments")
        old, new = self._path(args[0]), self._path(args[1])
        if os.path.exists(new):
            raise Error("mailbox already exists")
        self._close_path(old)
        with MailLock(os.path.dirname(old) or "."):
            os.rename(old, new)
            for ext in BESIDE:
                if os.path.exists(old + ext):
                    os.rename(old + ext, new + ext)
            if keep:
                fd = os.open(old, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(fd)

    def cmd_move(self, args: list[str]) -> None:
        raise Error("move not supported")

    def _close_path(self, path: str) -> None:
        for mb in list(self.fs.boxes):
            if mb.path == path:
                self.fs.close(mb.name)


# the ctl verbs (the table the writes are looked up in)
VERBS = {
    "open": Ctl.cmd_open, "close": Ctl.cmd_close, "delete": Ctl.cmd_delete,
    "flag": Ctl.cmd_flag, "create": Ctl.cmd_create, "remove": Ctl.cmd_remove,
    "rename": Ctl.cmd_rename, "move": Ctl.cmd_move,
}


class CtlOpen(Open):
    """The open top ctl: reads as empty, each write is a command."""

    def __init__(self, fs):
        self.ctl = Ctl(fs)

    def read(self, offset: int, count: int) -> bytes:
        return b""

    def write(self, offset: int, data: bytes) -> int:
        self.ctl.execute(data)
        return len(data)
