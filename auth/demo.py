"""The demo identities shared by tests and `make run` (see the brief).

make_demo(dir) writes a keys file holding them, the file with its auth
password (our stand-in for NVRAM) and a "speaks for" rules file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from auth import crypt, keyfile
from auth.keyfile import KeyRecord
from lib import secretfile

AUTHDOM = "upas.local"
HOSTID = "upas"                        # the mail host's p9sk1 identity
HOST_PASSWORD = "upas-host-pw"
USERS = {                              # user: (password, APOP/CRAM secret)
    "glenda": ("glenda-pw", "glenda-apop"),
    "bob": ("bob-pw", "bob-apop"),
}
AUTHKEY_PASSWORD = "upas-keys-pw"      # decrypts the demo keys file
SPEAKSFOR = f"hostid={HOSTID}\n\tuid=!sys uid=!adm uid=*\n"


@dataclass
class DemoFiles:
    keys: str          # the encrypted keys file
    authkey: str       # its auth password (keyfs -k)
    speaksfor: str     # authsrv -u


def records() -> list[KeyRecord]:
    recs = [KeyRecord(HOSTID, crypt.passtokey(HOST_PASSWORD))]
    for user, (pw, secret) in USERS.items():
        recs.append(KeyRecord(user, crypt.passtokey(pw), secret=secret.encode()))
    return recs


def make_demo(directory: str) -> DemoFiles:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    files = DemoFiles(os.path.join(directory, "keys"), os.path.join(directory, "authkey"),
                      os.path.join(directory, "auth.ndb"))
    secretfile.write(files.authkey, AUTHKEY_PASSWORD.encode() + b"\n")
    keyfile.save(files.keys, records(), crypt.passtokey(AUTHKEY_PASSWORD))
    secretfile.write(files.speaksfor, SPEAKSFOR.encode())
    return files


if __name__ == "__main__":
    import sys
    f = make_demo(sys.argv[1] if len(sys.argv) > 1 else "run/auth")
    print(f"keys={f.keys} authkey={f.authkey} speaksfor={f.speaksfor}")
