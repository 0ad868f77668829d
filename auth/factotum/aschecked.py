"""What apop, cram and p9cr share (docs/spec/fs-auth.md §2.5): a server
role whose response the auth server checks, holding the AS connection from
the challenge to the verdict (a ticket and authenticator under the host's
key), and a client role that reads back the response it computed."""
from __future__ import annotations

from typing import Callable

from auth.records import (ASError, AUTHENTLEN, AuthInfo, Authenticator, RecordNum, TICKETLEN,
                          Ticket)

from .proto import EASPROTO, ESTABLISHED, Context, Failure, Protocol


class ASChecked(Protocol):
    # what a write does in each phase: the protocol's own table
    writes: dict[str, Callable[[ASChecked, bytes], None]] = {}

    def __init__(self, ctx: Context, attrs: list):
        super().__init__(ctx, attrs)
        self.conn = None

    def give_challenge(self, n: int) -> bytes:
        """The read of the server's challenge (SHaveChal), which sets the
        next phase."""
        raise NotImplementedError

    def verdict(self, request: bytes) -> None:
        """Send the AS `request`, which carries the client's response, and
        take its answer: established as the ticket's users, or Failure (an
        AS error keeps the connection for a retry)."""
        if self.conn is None:
            raise Failure(EASPROTO)
        try:
            self.conn.send(request)
            buf = self.conn.reply(TICKETLEN + AUTHENTLEN)
        except ASError as e:
            raise Failure(str(e)) from None
        self.close()
        t = Ticket.unpack(buf[:TICKETLEN], self.key.data)
        if t.num != RecordNum.AuthTs or t.chal != self.tr.chal:
            raise Failure(EASPROTO)
        self.key.successes += 1
        a = Authenticator.unpack(buf[TICKETLEN:], t.key)
        if a.num != RecordNum.AuthAc or a.chal != self.tr.chal or a.id != 0:
            raise Failure(EASPROTO)
        self.ai = AuthInfo(t.cuid, t.suid)
        self.phase = ESTABLISHED

    # --- the rpc verbs ---

    def write(self, data: bytes) -> None:
        step = self.writes.get(self.phase)
        if step is None:
            raise self.phase_error("write")
        step(self, data)

    def read(self, n: int) -> bytes:
        if self.phase == "CHaveResp":
            self.phase = ESTABLISHED
            return self.resp[:n]
        if self.phase == "SHaveChal":
            return self.give_challenge(n)
        raise self.phase_error("read")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
