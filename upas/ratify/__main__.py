"""ratfs: python -m upas.ratify [-d] [-c conffile] [-f ctlfile] [-s service]

Serves the ratfs tree over 9P and posts it as $NAMESPACE/ratify (or the
service named by -s; a name holding `!` is a dial string to announce, such
as tcp!*!5356).  -m mountpoint is accepted for Plan 9 compatibility and
ignored: on Unix clients mount the posted service themselves.
Defaults, as the code (not the man page) has them:
  -c $MAILROOT/lib/smtpd.conf.ext   (only its `ournets` lines are used)
  -f $MAILROOT/lib/blocked          (the classification)
"""
from __future__ import annotations

import errno
import getpass
import os
import signal
import sys

from lib import cmdline
from upas import config
from upas.ninep.dial import namespace_dir, post
from upas.ninep.server import Server

from .tables import Tables
from .tree import Ratfs

USAGE = "usage: ratfs [-d] [-c conffile] [-f ctlfile] [-m mountpoint] [-s service]"
MAXRPC = 8192


def main(argv: list[str] | None = None) -> int:
    opts = cmdline.flags(sys.argv[1:] if argv is None else argv, "dc:f:m:s:", USAGE)
    if opts is None:
        return 1
    root = config.current().mailroot
    conf = os.path.join(root, "lib", "smtpd.conf.ext")
    ctl = os.path.join(root, "lib", "blocked")
    service, debug = "ratify", False
    for o, v in opts:
        if o == "-c":
            conf = v
        elif o == "-f":
            ctl = v
        elif o == "-s":
            service = v
        elif o == "-d":
            debug = True
    try:
        listener = post(service)
    except OSError as e:
        if e.errno == errno.EADDRINUSE and "!" not in service:
            # As ratfs: a copy already answers on the posted name; we exit.
            print(f"ratfs: {service} already running", file=sys.stderr)
            return 0
        print(f"ratfs: post {service}: {e}", file=sys.stderr)
        return 1
    fs = Ratfs(Tables(ctl, conf), owner=getpass.getuser())
    if debug:
        fs.command("debug", fs.owner)
    # inline: nothing in ratfs blocks (its tables are in memory; a reload
    # reads two local files), so each request is answered in its
    # connection's reader thread, without two thread switches
    srv = Server(fs.attach, auth_error="ratfs: authentication not required",
                 msize=MAXRPC + 24, inline=True)
    signal.signal(signal.SIGTERM, lambda *_: srv.shutdown())
    try:
        srv.serve_forever(listener)
    except KeyboardInterrupt:
        pass
    finally:
        _unpost(service)
    return 0


def _unpost(service: str) -> None:
    if "!" in service:
        return
    try:
        os.unlink(os.path.join(namespace_dir(), service))
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
