"""mbappend: deliver one message to a mailbox.

    python -m upas.mbappend [-f sender] BOX < message

In the spirit of 9front's upas/mbappend.  BOX is a Plan 9 path
(/mail/box/USER/mbox, found under $MAILROOT), a host path, or a name
relative to /mail/box/$user.  The message gets a `From sender date` line
unless it already starts with one; lines that begin with `From ` are
escaped with a leading blank as upas delivery does; one empty line
follows.  The append is made under L.mbox with one write and an fdatasync;
if anything fails the file is cut back to its old length, so earlier mail
is never touched.  An mdir BOX gets a new `<secs>.<NN>` file, written to a
temporary name, fsynced and renamed.
"""
from __future__ import annotations

import getopt
import os
import re
import sys
import time

from upas import config
from upas.fs9p.ctl import mboxpath
from upas.mail.lock import LockError, MailLock
from upas.mail.mbox import MBOXMODE
from upas.mail.safewrite import fsync_dir

_FROMLINE = re.compile(rb"(?m)^From ")


def envelope(sender: str, when: float | None = None) -> bytes:
    """`From sender Thu Nov 26 12:00:00 EST 2026\\n` (Plan 9 ctime)."""
    t = time.localtime(when)
    return f"From {sender} {time.strftime('%a %b %d %H:%M:%S %Z %Y', t)}\n".encode()


def format_message(msg: bytes, sender: str, when: float | None = None) -> bytes:
    """The bytes to append: envelope, escaped message, newline, blank line."""
    if msg.startswith(b"From ") and b"\n" in msg:
        head, msg = msg.split(b"\n", 1)
        head += b"\n"
    else:
        head = envelope(sender, when)
    msg = _FROMLINE.sub(b" From ", msg)
    if not msg.endswith(b"\n"):
        msg += b"\n"
    return head + msg + b"\n"


def append_mbox(path: str, data: bytes) -> None:
    """Append `data` to the mbox file at path under its lock."""
    with MailLock(os.path.dirname(path) or "."):
        append_locked(path, data)


def append_locked(path: str, data: bytes) -> os.stat_result:
    """append_mbox for a caller holding the lock; the file's stat after.
    fdatasync, not fsync: it makes the data and the new length durable,
    which is all an append changes that matters (the mtime is not)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, MBOXMODE)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data      # never glue onto a truncated last line
        try:
            _write_all(fd, data)
            os.fdatasync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            os.fsync(fd)
            raise
        return os.fstat(fd)
    finally:
        os.close(fd)


def append_mdir(path: str, data: bytes, when: float | None = None) -> str:
    """Add a message file `<secs>.<NN>` to the mdir at path."""
    secs = int(time.time() if when is None else when)
    with MailLock(path):
        for seq in range(100):
            name = f"{secs}.{seq:02d}"
            if not os.path.exists(os.path.join(path, name)):
                break
        else:
            raise OSError("too many messages in one second")
        tmp = os.path.join(path, f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(path, name))
        fsync_dir(tmp)
        return name


def _write_all(fd: int, data: bytes) -> None:
    mv = memoryview(data)
    while mv:
        mv = mv[os.write(fd, mv):]


def main(argv: list[str]) -> int:
    try:
        opts, args = getopt.getopt(argv, "f:")
    except getopt.GetoptError:
        args = []
    if len(args) != 1:
        print("usage: mbappend [-f sender] mailbox", file=sys.stderr)
        return 1
    user = config.current().login_name
    sender = dict(opts).get("-f", user)
    path = mboxpath(args[0], user)
    data = format_message(sys.stdin.buffer.read(), sender)
    try:
        if os.path.isdir(path):
            append_mdir(path, data)
        else:
            append_mbox(path, data)
    except (OSError, LockError) as e:
        print(f"mbappend: {path}: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
