"""upasfs: python -m upas.fs9p [-bdilnps] [-f mailbox] [-m name] [-S alsoname]

As plan9port's upas/fs: opens /mail/box/$user/mbox (or -f) as `mbox` and
posts the 9P service `upasfs` (-m NAME: another service name; -S ALSO:
post it also as ALSO, e.g. `mail` for plan9port's mail clients).  -i serves
one 9P connection on stdin instead (a server started on a socketpair, e.g.
by pop3 through the namespace).  -s is accepted: posting is the only way
to serve on Unix.  -p turns off plumbing and the background reader, -b
prints a line per new message, -d logs the 9P traffic, -l is accepted.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time

from lib import cmdline
from upas import config
from upas.ns import mboxpath
from upas.mail import lock
from upas.fs9p.tree import MailFS
from upas.mail.mbox import MailError, one_look
from upas.ninep import IOHDRSZ, Server, post

USAGE = "usage: upas/fs [-bdilnps] [-f mailbox] [-m name] [-S alsoname]"
# plan9port's upas/fs offers 4096*IOHDRSZ; we offer more, for our own
# client's bulk reads (a client asking less, as plan9port's do, gets what
# it asks for)
MSIZE = (1 << 20) + IOHDRSZ


def biff(mb, m) -> None:
    part = mb.parsed(m)
    sender = (part.from_ or part.unixfrom or b"").decode("utf-8", "replace")
    subject = (part.subject or b"").decode("utf-8", "replace")
    print(f"[ {sender} / {subject} / {m.end - m.start} ]", flush=True)


def reader(fs: MailFS) -> None:
    """upas/fs's reader: wait, then look at every mailbox each period."""
    while True:
        time.sleep(config.current().upasfs_poll)
        fs.poll()


def main(argv: list[str]) -> int:
    lock.for_sessions()         # it answers sessions' requests
    opts = cmdline.flags(argv, "bdf:ilm:npsS:", USAGE)
    if opts is None:
        return 1
    o = dict(opts)
    also = [v for k, v in opts if k == "-S"]
    user = config.current().login_name
    logging.basicConfig(level=logging.DEBUG if "-d" in o else logging.WARNING,
                        stream=sys.stderr)
    fs = MailFS(user, biff=biff if "-b" in o else None)
    box = o.get("-f")
    if box is None and "-n" not in o:
        box = f"/mail/box/{user}/mbox"
    if box is not None:
        try:
            fs.open(mboxpath(box, user), "mbox")
        except MailError as e:
            print(f"upas/fs: opening mailbox: {e}", file=sys.stderr)
            return 1
    # no upasfs file blocks on read, so requests are answered in order in
    # each connection's reader thread (no hand-off to a worker)
    # handover: the broker (fsbroker.py) passes each session's connection
    # to us rather than copying its bytes
    # batch: a mailbox file is stat'ed once for the reads a session sent
    # together (a FETCH of whole messages: 64 raws a batch), not per read
    srv = Server(fs.attach, auth_error="upas/fs: authentication not required",
                 msize=MSIZE, inline=True, handover=True, batch=one_look)
    if "-p" not in o:
        threading.Thread(target=reader, args=(fs,), daemon=True).start()
    # a stop is an exit that writes the mailboxes' indexes first
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if "-i" in o:
            srv.serve_fd(0, 1)
            return 0
        names = [o.get("-m", "upasfs")] + also
        try:
            listeners = [post(n) for n in names]
        except OSError as e:    # another upasfs serves that name
            print(f"upas/fs: post: {e.strerror or e}", file=sys.stderr)
            return 1
        for ls in listeners[1:]:
            threading.Thread(target=srv.serve_forever, args=(ls,), daemon=True).start()
        srv.serve_forever(listeners[0])
    except KeyboardInterrupt:
        pass
    finally:
        fs.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
