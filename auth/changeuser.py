"""auth/changeuser: create a user, set its password (-> key) and APOP secret.

    python -m auth.changeuser [-s keys] user
    python -m auth.changeuser -f keyfile -k authkeyfile user

By default it works through the running keyfs (mkdir, write key/secret), as
on Plan 9. With -f it edits a keys file directly (keyfs must not be running
on it). On a terminal it prompts without echo; otherwise stdin gives the
password on its first line and the APOP secret on the second (an empty or
missing line leaves that field unchanged). Secrets never go on the command
line.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import replace

from auth import crypt, keyfile
from auth.keyfile import KeyRecord
from auth.records import SECRETLEN
from upas.ninep.client import Client
from upas.ninep.codec import DMDIR
from upas.ninep.server import Error


def _prompt_twice(what: str) -> str:
    first = getpass.getpass(f"{what}: ")
    if getpass.getpass(f"Confirm {what.lower()}: ") != first:
        raise ValueError("mismatch")
    return first


def read_secrets(stdin=None) -> tuple[str, str]:
    """(password, secret); '' means leave unchanged."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        return _prompt_twice("Password"), _prompt_twice("APOP secret")
    lines = stdin.read().splitlines() + ["", ""]
    return lines[0], lines[1]


def _check(secret: str) -> bytes:
    raw = secret.encode()
    if len(raw) >= SECRETLEN or b"\0" in raw:
        raise ValueError(f"secret must be shorter than {SECRETLEN} bytes")
    return raw


def _need_password(password: str) -> None:
    if not password:
        raise ValueError("a new user needs a password")


def via_keyfs(addr: str, user: str, password: str, secret: str) -> bool:
    """Install through keyfs; True when the user was created."""
    with Client.dial(addr, uname="auth") as c:
        try:
            c.stat(user)
            created = False
        except Error:
            created = True
        if created:
            _need_password(password)
            c.create(user, DMDIR | 0o777, "r").close()
        if password:
            c.write(f"{user}/key", crypt.passtokey(password))
        if secret:
            c.write(f"{user}/secret", _check(secret))
        return created


def via_file(path: str, authkey: bytes, user: str, password: str, secret: str) -> bool:
    """Install by rewriting the keys file; True when the user was created."""
    from auth.keydb import KeyDB
    KeyDB.check_name(user)
    recs, skipped = keyfile.load_scan(path, authkey)
    if skipped:   # rewriting would destroy what we could not read
        raise ValueError(f"{path}: {skipped} bad records: wrong auth key or damaged file")
    old = next((r for r in recs if r.name == user), None)
    if old is None:
        _need_password(password)
    rec = old or KeyRecord(user)
    if password:
        rec = replace(rec, key=crypt.passtokey(password))
    if secret:
        rec = replace(rec, secret=_check(secret))
    recs = [rec if r is old else r for r in recs] if old else recs + [rec]
    keyfile.save(path, recs, authkey)
    return old is None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="changeuser", description="create or change a user")
    ap.add_argument("-s", metavar="keys", default="keys", help="keyfs service or dial string")
    ap.add_argument("-f", metavar="keyfile", help="edit this keys file directly")
    ap.add_argument("-k", metavar="authkeyfile", help="with -f: file holding the auth password")
    ap.add_argument("user")
    args = ap.parse_args(argv)
    try:
        if args.f and not args.k:
            raise ValueError("-f needs -k authkeyfile")
        password, secret = read_secrets()
        if args.f:
            created = via_file(args.f, keyfile.read_authkey(args.k), args.user, password, secret)
        else:
            created = via_keyfs(args.s, args.user, password, secret)
    except (OSError, ValueError, Error) as e:
        print(f"changeuser: {e}", file=sys.stderr)
        return 1
    if created:
        print(f"user {args.user} installed for Plan 9")
    else:
        print(f"user {args.user} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
