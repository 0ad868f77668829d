"""The rpc file: one conversation per open, sans I/O (docs/spec/fs-auth.md §2.3).

A write only records the request; the read that follows executes it and
returns the reply, as Plan 9's rpc.c does.  Failures at the file level
(too large, pending, read too small, nothing pending) are RpcFileError:
fs.py sends them as Rerror.  Everything else is a reply string.
"""
from __future__ import annotations

import itertools
import threading
from typing import Callable

from lib.attrs import find, parse_attrs, quote, show_attrs
from .keys import Keyring
from .proto import (ETOOLARGE, Context, Failure, NeedKey, PhaseError, Protocol,
                    TooSmall)
from . import apop, p9any, p9cr, p9sk1, pass_

MAXRPC = 4096          # a request must be shorter (Maxrpc)
MINREAD = 64           # a read must ask for at least this much

# The protocol table, in Plan 9's order; `proto` lists it.
PROTOCOLS: dict[str, type[Protocol]] = {
    p.name: p for p in (apop.Apop, apop.Cram, p9any.P9any, p9cr.P9cr, p9sk1.P9sk1, pass_.Pass)
}

# proto -> the check a new key must pass (addkey); p9any and p9cr take none.
ADDKEY = {"apop": apop.addkey, "cram": apop.addkey, "pass": pass_.addkey, "p9sk1": p9sk1.addkey}

_seqnum = itertools.count(1)


def new_keyring() -> Keyring:
    """An empty key ring that knows our protocols and their key checks."""
    return Keyring(addkey=dict(ADDKEY), known=lambda name: name in PROTOCOLS)


class RpcFileError(Exception):
    """A 9P-level refusal; the text becomes the Rerror."""


class Conversation:
    """One open of `rpc`."""

    def __init__(self, ctx: Context, log: Callable[[str], None] = lambda s: None):
        self.ctx = ctx
        self.log = log
        self.proto: Protocol | None = None
        self.attrs: list = []
        self.pending: bytes | None = None
        self.seq = 0
        self.lock = threading.Lock()

    # --- the file ---

    def write(self, data: bytes) -> int:
        if len(data) >= MAXRPC:
            raise RpcFileError(ETOOLARGE)
        with self.lock:
            if self.pending is not None:
                raise RpcFileError("rpc already pending; read to clear")
            self.pending = bytes(data)
        return len(data)

    def read(self, count: int) -> bytes:
        if count < MINREAD:
            raise RpcFileError("rpc read too small")
        with self.lock:
            if self.pending is None:
                raise RpcFileError("no rpc pending")
            request, self.pending = self.pending, None
            return self.execute(request, count)[:count]

    def close(self) -> None:
        with self.lock:
            self._drop()

    def describe(self) -> str:
        """A `conv` line: the phase and the attributes, or "" when idle."""
        proto = self.proto
        if proto is None:
            return ""
        return f"conv state={quote(proto.phase)} {show_attrs(self.attrs)}"

    # --- the verbs ---

    def execute(self, request: bytes, count: int) -> bytes:
        verb, _, arg = request.partition(b" ")
        handler = {
            b"start": self._start, b"read": self._read, b"write": self._write,
            b"authinfo": self._authinfo, b"attr": self._attr,
        }.get(verb)
        if handler is None:
            return b"error unknown verb"
        return handler(arg, count)

    def _drop(self) -> None:
        if self.proto is not None:
            self.log(f"{self.seq}: implicit close of {self.proto.name}")
            self.proto.close()
        self.proto, self.attrs = None, []

    def _start(self, arg: bytes, count: int) -> bytes:
        self._drop()
        attrs = parse_attrs(arg.decode("utf-8", "replace"))
        name = find(attrs, "proto")
        if name is None:
            return b"error did not specify proto"
        cls = PROTOCOLS.get(name)
        if cls is None:
            return f"error unknown protocol '{name}'".encode()
        self.seq = next(_seqnum)
        try:
            proto = cls(self.ctx, attrs)
        except (Failure, NeedKey, PhaseError, TooSmall) as e:
            self.log(f"{self.seq}: start {name}: {type(e).__name__} {e}")
            return self._outcome(e)
        self.proto, self.attrs = proto, attrs
        self.log(f"{self.seq}: start {name} in phase {proto.phase}")
        return b"ok"

    def _check(self) -> bytes | None:
        """rdwrcheck: the replies for a conversation that cannot move."""
        if self.proto is None:
            return b"error no current protocol"
        if self.proto.established:
            return b"done haveai" if self.proto.ai is not None else b"done"
        return None

    def _read(self, arg: bytes, count: int) -> bytes:
        if arg:
            return b"error read needs no parameters"
        stop = self._check()
        if stop is not None:
            return stop
        try:
            data = self.proto.read(count - 3)
        except (Failure, NeedKey, PhaseError, TooSmall) as e:
            return self._outcome(e)
        return b"ok " + data if data else b"ok"

    def _write(self, arg: bytes, count: int) -> bytes:
        stop = self._check()
        if stop is not None:
            return stop
        try:
            self.proto.write(arg)
        except (Failure, NeedKey, PhaseError, TooSmall) as e:
            return self._outcome(e)
        return b"ok"

    def _authinfo(self, arg: bytes, count: int) -> bytes:
        if self.proto is None or not self.proto.established:
            return b"error authentication unfinished"
        if self.proto.ai is None:
            return b"error no authinfo available"
        data = b"ok " + self.proto.ai.pack()
        return data if len(data) <= count else b"error read too small"

    def _attr(self, arg: bytes, count: int) -> bytes:
        return ("ok " + show_attrs(self.attrs)).encode()

    def _outcome(self, e: Exception) -> bytes:
        """retrpc: the reply for a protocol's failure outcome."""
        if isinstance(e, NeedKey):
            return f"needkey {e.template}".encode()
        if isinstance(e, TooSmall):
            return f"toosmall {e.n}".encode()
        if isinstance(e, PhaseError):
            return f"phase {e}".encode()
        self.log(f"{self.seq}: failure {e}")
        return f"error {e}".encode()
