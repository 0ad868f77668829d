"""The launcher's TLS ports (993, 995): the client's TLS connection
relayed to the server's plain socket, as Plan 9's tlssrv in front of a
server (upas/listen.py runs it; the TLS is tls.TLSStream's)."""
from __future__ import annotations

import selectors
import socket
import time

from upas.transport.tls import TLSStream

RELAY_BUFFER = 64 * 1024    # bytes the relay holds for either side


def relay(tls: TLSStream, client: socket.socket, server: socket.socket) -> None:
    """Copy bytes both ways, decrypting the client's (`tls` runs on the
    `client` socket) and encrypting the server's, until the server is done
    and what it said is sent.  Nothing waits on a write: a side is read
    only while what it sent before has been taken by the other, so a
    server writing with its input full (an echo), or a client doing the
    same, stalls neither direction, and each holds at most RELAY_BUFFER."""
    _Relay(tls, client, server).run()


class _Relay:
    def __init__(self, tls: TLSStream, client: socket.socket, server: socket.socket):
        self.tls, self.client, self.server = tls, client, server
        self.up = bytearray()         # the client's, decrypted, for the server
        self.client_in = self.server_in = True     # each side still sending
        self.sel = selectors.DefaultSelector()
        self.watched: dict[socket.socket, int] = {}

    def run(self) -> None:
        self.client.setblocking(False)
        self.server.setblocking(False)
        try:
            while self.server_in or self.tls.unsent():
                self._take_buffered()
                self._watch(self.client, self._client_events())
                self._watch(self.server, self._server_events())
                for key, mask in self.sel.select():
                    if key.fileobj is self.client:
                        self._client_ready(mask)
                    else:
                        self._server_ready(mask)
        finally:
            self.sel.close()

    def _watch(self, sock: socket.socket, events: int) -> None:
        old = self.watched.get(sock, 0)
        if events == old:
            return
        if not events:
            self.sel.unregister(sock)
        elif not old:
            self.sel.register(sock, events)
        else:
            self.sel.modify(sock, events)
        self.watched[sock] = events

    def _client_events(self) -> int:
        ev = selectors.EVENT_WRITE if self.tls.unsent() else 0
        if self.client_in and len(self.up) < RELAY_BUFFER:
            ev |= selectors.EVENT_READ
        return ev

    def _server_events(self) -> int:
        ev = selectors.EVENT_WRITE if self.up else 0
        if self.server_in and not self.tls.unsent():
            ev |= selectors.EVENT_READ
        return ev

    def _client_ready(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self.tls.flush()
        if mask & selectors.EVENT_READ:
            try:
                self._took(self.tls.recv(until=time.monotonic()))
            except TimeoutError:      # part of a record so far
                pass
            except OSError:           # ssl.SSLError: as the end
                self._took(b"")

    def _take_buffered(self) -> None:
        """Whole records read from the fd with an earlier one (a poll of
        the fd shows none of those)."""
        while self.client_in and len(self.up) < RELAY_BUFFER:
            data = self.tls.recv_buffered()
            if data is None:
                return
            self._took(data)

    def _took(self, data: bytes) -> None:
        if data:
            self.up += data
            return
        self.client_in = False
        self._passed_on()

    def _passed_on(self) -> None:
        """The client is done and all it sent is the server's: so is the
        server's input."""
        if not self.client_in and not self.up:
            _shutdown_write(self.server)

    def _server_ready(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            try:
                del self.up[:self.server.send(self.up)]
            except BlockingIOError:
                pass
            except OSError:           # the server is gone: what it said still goes out
                self.up.clear()
            self._passed_on()
        if mask & selectors.EVENT_READ:
            try:
                data = self.server.recv(RELAY_BUFFER)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                self.tls.send(data)
            else:
                self.server_in = False


def _shutdown_write(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
