"""mbappend: deliver one message to a mailbox.

    python -m upas.mbappend [-f sender] BOX < message

In the spirit of 9front's upas/mbappend.  BOX is a Plan 9 path
(/mail/box/USER/mbox, found under $MAILROOT), a host path, or a name
relative to /mail/box/$user.  The message gets a `From sender date` line
unless it already starts with one; lines that begin with `From ` are
escaped with a leading blank as upas delivery does; one empty line
follows.  The mailbox is written through the namespace (upas/ns.py; its
directory bound as a mount of its own), under L.mbox: one append and an
fdatasync, the file cut back to its old length if either fails, so
earlier mail is never touched.  An mdir BOX gets a new `<secs>.<NN>`
file, written crash-safely (upas/mail/safewrite.py).  imap4d's APPEND
stores through append_locked in its own name space.
"""
from __future__ import annotations

import getopt
import os
import sys
import time

from upas import config
from upas import ns as nsmod
from upas.mail import safewrite
from upas.mail.lock import LockError
from upas.mail.mbox import MBOXMODE

BOX = "/mail/deliver"       # where the mailbox's directory is bound



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
    msg = escape_from(msg)
    if not msg.endswith(b"\n"):
        msg += b"\n"
    return head + msg + b"\n"


def escape_from(body: bytes) -> bytes:
    """Every line that begins `From ` begun with a blank: two substring
    replaces, not a multi-line regex (a step per byte: 4-5 times as long
    for an APPEND's message; docs/performance.md, Round 4, ninth part)."""
    body = body.replace(b"\nFrom ", b"\n From ")
    return b" " + body if body.startswith(b"From ") else body


def append_mbox(path: str, data: bytes) -> None:
    """Append `data` to the mbox file at host path `path` under its lock."""
    ns = _bound(os.path.dirname(path) or ".")
    with ns.lock(BOX):
        append_locked(ns, f"{BOX}/{os.path.basename(path)}", data)


def append_locked(ns: nsmod.Namespace, path: str, data: bytes) -> nsmod.Dir:
    """Append to the mbox at `path` in ns, for a caller holding its lock:
    one write and an fdatasync (the data and the new length are what
    matter), cut back if either fails, never glued onto a last line a
    crash left unended; the file's stat after."""
    return ns.append(path, data, perm=MBOXMODE, after=b"\n", sync=True)


def append_mdir(path: str, data: bytes, when: float | None = None) -> str:
    """Add a message file `<secs>.<NN>` to the mdir at host path `path`."""
    secs = int(time.time() if when is None else when)
    ns = _bound(path)
    with ns.lock(BOX):
        for seq in range(100):
            name = f"{secs}.{seq:02d}"
            if not ns.exists(f"{BOX}/{name}"):
                break
        else:
            raise OSError("too many messages in one second")
        safewrite.replace(ns, f"{BOX}/{name}", data)
        return name


def _bound(dirpath: str) -> nsmod.Namespace:
    """A name space holding the host directory `dirpath` at BOX."""
    ns = nsmod.Namespace(config.current().login_name)
    ns.bind_dir(BOX, dirpath)
    return ns


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
    path = nsmod.mboxpath(args[0], user)
    data = format_message(sys.stdin.buffer.read(), sender)
    try:
        if os.path.isdir(path):
            append_mdir(path, data)
        else:
            append_mbox(path, data)
    except (nsmod.Error, OSError, LockError) as e:
        print(f"mbappend: {path}: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
