"""factotum's rpc file (auth/factotum/rpc.py): any request bytes get an
rpc reply (`ok`, `error ...`, `needkey ...`, ...) or a RpcFileError."""
from auth.factotum.proto import Context
from auth.factotum.rpc import Conversation, RpcFileError, new_keyring
from auth.records import ASError

KEYS = ("proto=apop role=server dom=upas.local user=glenda !password=glenda-apop",
        "proto=pass service=imap user=glenda !password=glenda-pw")


def _no_as(dom):
    raise ASError("no auth server while fuzzing")


def target(data: bytes) -> None:
    ring = new_keyring()
    for k in KEYS:
        ring.ctl("key " + k)
    c = Conversation(Context(ring, _no_as, "upas"))
    for request in data.split(b"\n")[:16]:
        try:
            c.write(request)
            reply = c.read(4096)
        except RpcFileError:
            continue
        assert reply.split(b" ", 1)[0] in (b"ok", b"error", b"done", b"phase", b"protocol",
                                           b"needkey", b"toosmall"), reply[:40]
    c.close()
