"""Talking to the auth server (docs/spec/fs-auth.md §3.5, §3.6).

A Connection is one TCP conversation with the AS: ticket requests go out
as 141-byte records, replies come back in the AuthOK / AuthErr / AuthOKvar
framing that auth.records.read_reply decodes.
"""
from __future__ import annotations

import select
import socket
import threading

from auth.records import ASError, TICKETLEN, read_reply
from upas import config
from upas.ninep import Error as NinepError, dial

AUTHPORT = "567"


def netmkaddr(addr: str) -> str:
    """Complete an AS address: `host` or `tcp!host` gets tcp and port 567."""
    parts = addr.split("!")
    if len(parts) == 1:
        return f"tcp!{addr}!{AUTHPORT}"
    if len(parts) == 2 and parts[0] in ("tcp", "net"):
        return f"tcp!{parts[1]}!{AUTHPORT}"
    if len(parts) == 3 and parts[2] == "ticket":
        return f"tcp!{parts[1]}!{AUTHPORT}"
    return addr


class Connection:
    """One open connection to the AS."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.rfile = sock.makefile("rb")

    @classmethod
    def dial(cls, addr: str) -> "Connection":
        try:
            sock = dial(netmkaddr(addr))
            sock.settimeout(config.current().factotum_as_timeout)
            return cls(sock)
        except (OSError, NinepError) as e:
            raise ASError(f"auth server {addr}: {getattr(e, 'strerror', None) or e}") from None

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            raise ASError("short write to auth server") from None

    def reply(self, n: int) -> bytes:
        """_asrdresp: AuthOK gives n bytes, AuthOKvar its own length."""
        try:
            return read_reply(self.rfile, n)
        except OSError:
            raise ASError("AS protocol botch") from None

    def get_tickets(self, treq: bytes) -> bytes:
        """_asgetticket: a ticket request answered by two tickets."""
        self.send(treq)
        return self.reply(2 * TICKETLEN)

    def close(self) -> None:
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass

    def idle(self) -> bool:
        """Whether the AS still holds this unused connection (nothing to
        read, no end of file: it has not timed it out).  Asked of poll:
        the socket has a timeout, which would make a recv wait."""
        p = select.poll()
        p.register(self.sock, select.POLLIN)
        return not p.poll(0)


def as_address(authaddr: str | None, dom: str | None) -> str:
    """_authdial's choice: factotum's -a address, else $auth, else the domain itself."""
    addr = authaddr or config.current().auth or dom
    if not addr:
        raise ASError("no auth server address")
    return addr


class AheadDialler:
    """authdial with the next connection dialled ahead: a conversation
    takes the one dialled for its address after the last (if the AS has
    not hung up on it meanwhile), and a thread of its own dials the next
    while the conversation goes on -- the TCP connect and the AS's accept
    off the `start` of an apop or cram conversation (the AS challenge is
    asked for there).  Each conversation still has a connection of its
    own, new to the AS, as Plan 9's factotum dials one per ticket
    request; nothing is sent on it before the conversation's request."""

    def __init__(self, authaddr: str | None):
        self.authaddr = authaddr
        self.lock = threading.Lock()
        self.ready: dict[str, Connection] = {}
        self.wanted: list[str] = []
        self.wake = threading.Event()
        threading.Thread(target=self._dial_ahead, name="as-ahead", daemon=True).start()

    def __call__(self, dom: str | None) -> Connection:
        addr = as_address(self.authaddr, dom)
        with self.lock:
            conn = self.ready.pop(addr, None)
            if addr not in self.wanted:
                self.wanted.append(addr)
        self.wake.set()
        if conn is not None and conn.idle():
            return conn
        if conn is not None:
            conn.close()
        return Connection.dial(addr)

    def _dial_ahead(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            with self.lock:
                wanted, self.wanted = self.wanted, []
            for addr in wanted:
                try:
                    conn = Connection.dial(addr)
                except ASError:
                    continue            # the next conversation dials its own
                with self.lock:
                    old, self.ready[addr] = self.ready.get(addr), conn
                if old is not None:
                    old.close()
