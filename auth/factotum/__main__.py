"""python -m auth.factotum [-d] [-a authaddr] [-s service] [-k keysfile]

Posts `service` (default `factotum`) in $NAMESPACE and serves it until
killed.  -a names the auth server (else $auth, else the key's domain);
-k reads initial `key ...` lines (ctl syntax) from a file, e.g. a pipe, so
that no secret needs to sit in a file on disk.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

from upas.ninep import post, service_path

from .asclient import AheadDialler
from .fs import Factotum
from .keys import CtlError, Keyring
from .proto import Context
from .rpc import new_keyring


def load_keys(ring: Keyring, path: str) -> None:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                ring.ctl(line)
            except CtlError as e:
                sys.exit(f"factotum: {path}:{n}: {e}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="factotum")
    ap.add_argument("-a", dest="authaddr", help="auth server dial string")
    ap.add_argument("-s", dest="service", default="factotum", help="service name to post")
    ap.add_argument("-k", dest="keys", help="file of initial key lines")
    ap.add_argument("-d", dest="debug", action="store_true", help="log every conversation step")
    for flag in ("-D", "-n", "-x"):           # plan9port flags without meaning here
        ap.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("-m", dest="mtpt", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    ring = new_keyring()
    if args.keys:
        load_keys(ring, args.keys)
    factotum = Factotum(Context(ring, AheadDialler(args.authaddr)), debug=args.debug)
    listener = post(args.service)
    path = None if "!" in args.service else service_path(args.service)

    def stop(signum, frame):
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    factotum.server().serve_forever(listener)


if __name__ == "__main__":
    main()
