"""Talking to the auth server (docs/spec/fs-auth.md §3.5, §3.6).

A Connection is one TCP conversation with the AS: ticket requests go out
as 141-byte records, replies come back in the AuthOK / AuthErr / AuthOKvar
framing that auth.records.read_reply decodes.
"""
from __future__ import annotations

import socket

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


def authdial(authaddr: str | None, dom: str | None) -> Connection:
    """_authdial: factotum's -a address, else $auth, else the domain itself."""
    addr = authaddr or config.current().auth or dom
    if not addr:
        raise ASError("no auth server address")
    return Connection.dial(addr)
