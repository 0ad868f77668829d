"""The auth server (docs/spec/fs-auth.md §3.5, §3.6).

    python -m auth.authsrv [-a tcp!*!567] [-k keys] [-D dom] [-u rulesfile] [-t idle]

Answers AuthTreq, AuthApop, AuthCram, AuthChal (p9cr) and AuthPass. Keys
come from keyfs over 9P (the posted service `keys`, or any dial string),
as on Plan 9 where authsrv reads /mnt/keys. Unknown or unusable users get
random keys, so replies never reveal which users exist.

Session is sans-I/O: it asks for a number of bytes (`want`) and answers
what it is fed; serve_conn is the socket driver.
"""
from __future__ import annotations

import argparse
import logging
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Generator

from auth import crypt, speaksfor
from lib import username
from auth.records import (AUTHENTLEN, NETCHLEN, PASSREQLEN, TICKREQLEN, Authenticator, AuthType,
                          Passwordreq, RecordNum, Ticket, Ticketreq, err_reply, ok_reply,
                          okvar_reply)
from upas import config
from upas.ninep.client import Client, Hungup
from upas.ninep.dial import announce
from upas.ninep.server import Error

log = logging.getLogger("auth.authsrv")

MAXFAIL = 7              # Bell: the 7th failure ends the connection
MD5HEXLEN = 32
DEFAULT_IDLE = 600.0     # Bell gives up after 10 minutes
# Guess rates (ours, issue 17; AUTHSRV_DELAY_SCALE multiplies the seconds):
# after its k-th failure a connection waits CONN_DELAY * 2^(k-1) (at most
# CONN_MAXDELAY) before its next request is read, and an address may fail
# BURST times at once, then once per REFILL seconds: while it is over that
# budget every request from it waits (right or wrong: no answer is sooner).
CONN_DELAY, CONN_MAXDELAY = 0.5, 8.0
BURST, REFILL = 20, 1.0


class KeyfsFiles:
    """keyfs's files over 9P: read(path)/write(path, data), redialling once
    if keyfs was restarted."""

    def __init__(self, addr: str):
        self.addr = addr
        self._client: Client | None = None
        self._lock = threading.Lock()

    def _call(self, fn, *args):
        for attempt in (0, 1):
            with self._lock:
                if self._client is None:
                    self._client = Client.dial(self.addr, uname="auth")
                c = self._client
            try:
                return fn(c, *args)
            except Hungup:
                with self._lock:
                    if self._client is c:
                        self._client = None
                if attempt:
                    raise

    def read(self, path: str) -> bytes:
        return self._call(Client.read, path)

    def read_many(self, paths: list[str]) -> list[bytes | Error]:
        """Each file or its Error, the requests pipelined: one round trip."""
        return self._call(_read_many, paths)

    def write(self, path: str, data: bytes) -> int:
        return self._call(_write, path, data)


def _read_many(c: Client, paths: list[str]) -> list[bytes | Error]:
    """Client.read_many, a hang-up raised (to be dialled again)."""
    got = c.read_many(paths)
    for g in got:
        if isinstance(g, Hungup):
            raise g
    return got


def _write(c: Client, path: str, data: bytes) -> int:
    """Write a keyfs file: done at its Rwrite (keyfs's clunk does nothing
    but forget the fid), so the Tclunk goes with the next request -- one
    round trip less before the AS's reply (a login's `good` in USER/log)."""
    f = c.open(path, "w")
    try:
        return f.write(data)
    finally:
        f.close_later()


class KeyStore:
    """What the AS needs from /mnt/keys: USER/key, USER/secret, USER/log.
    `files` has read(path) and write(path, data) raising ninep Error."""

    def __init__(self, files):
        self.files = files

    def _read(self, path: str) -> bytes | None:
        return self._read_many([path])[0]

    def _read_many(self, paths: list[str]) -> list[bytes | None]:
        """The files (None: unreadable), in one round trip where `files`
        can (KeyfsFiles.read_many)."""
        try:
            many = getattr(self.files, "read_many", None)
            if many is None:
                return [self._read_one(p) for p in paths]
            return [None if isinstance(g, Error) else g for g in many(paths)]
        except Error:
            return [None] * len(paths)
        except OSError as e:
            log.warning("keyfs unreachable: %s", e.strerror or type(e).__name__)
            return [None] * len(paths)

    def _read_one(self, path: str) -> bytes | None:
        try:
            return self.files.read(path)
        except Error:
            return None

    def _write(self, path: str, data: bytes) -> bool:
        try:
            self.files.write(path, data)
            return True
        except Error:
            return False
        except OSError as e:
            log.warning("keyfs unreachable: %s", e.strerror or type(e).__name__)
            return False

    @staticmethod
    def _usable(user: str) -> bool:
        return username.valid(user) and "/" not in user and user not in (".", "..")

    def key(self, user: str) -> bytes | None:
        return self._key(self._read(f"{user}/key") if self._usable(user) else None)

    def secret(self, user: str) -> bytes | None:
        return self._secret(self._read(f"{user}/secret") if self._usable(user) else None)

    def secret_and_key(self, user: str, host: str) -> tuple[bytes | None, bytes | None]:
        """user's secret and host's key (an APOP/CRAM check, then its
        ticket), read together: one keyfs round trip instead of two."""
        paths = [f"{user}/secret" if self._usable(user) else None,
                 f"{host}/key" if self._usable(host) else None]
        got = iter(self._read_many([p for p in paths if p is not None]))
        s, k = [next(got) if p is not None else None for p in paths]
        return self._secret(s), self._key(k)

    @staticmethod
    def _key(k: bytes | None) -> bytes | None:
        return k if k is not None and len(k) == crypt.DESKEYLEN else None

    @staticmethod
    def _secret(s: bytes | None) -> bytes | None:
        return s[:31] if s else None

    def log(self, user: str, good: bool) -> None:
        if self._usable(user):
            self._write(f"{user}/log", b"good" if good else b"bad")

    def set_key(self, user: str, key: bytes) -> bool:
        return self._usable(user) and self._write(f"{user}/key", key)

    def set_secret(self, user: str, secret: bytes) -> bool:
        return self._usable(user) and self._write(f"{user}/secret", secret)


class GuessLimit:
    """The failure budget of each peer address: a token bucket of BURST
    failures, one back every REFILL seconds (scaled).  Shared by all
    connections; a success costs nothing."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale
        self.lock = threading.Lock()
        self.spent: dict[str, tuple[float, float]] = {}   # addr -> (tokens used, when)

    def _used(self, addr: str, now: float) -> float:
        used, when = self.spent.get(addr, (0.0, now))
        refill = REFILL * self.scale
        return max(0.0, used - (now - when) / refill) if refill > 0 else 0.0

    def admit(self, addr: str) -> None:
        """Wait while addr has no failure left to spend."""
        while True:
            with self.lock:
                now = time.monotonic()
                over = self._used(addr, now) - (BURST - 1)
                if over <= 0:
                    return
            time.sleep(over * REFILL * self.scale)

    def failed(self, addr: str) -> None:
        with self.lock:
            now = time.monotonic()
            self.spent[addr] = (self._used(addr, now) + 1, now)
            if len(self.spent) > 10000:       # forget addresses back to full budget
                self.spent = {a: v for a, v in self.spent.items() if self._used(a, now) > 0}

    def after_failure(self, k: int) -> float:
        """What a connection waits after its k-th failure."""
        return min(CONN_DELAY * 2 ** (k - 1), CONN_MAXDELAY) * self.scale


@dataclass
class Config:
    store: KeyStore
    dom: str
    rules: list = field(default_factory=list)
    idle: float = DEFAULT_IDLE
    limit: GuessLimit = field(default_factory=GuessLimit)


def _printable(name: str) -> str:
    """Names come off the wire: keep control characters out of the log."""
    return "".join(c if c.isprintable() else "?" for c in name)


def _randkey() -> bytes:
    return secrets.token_bytes(crypt.DESKEYLEN)


class Session:
    """One connection's conversation. `want` is how many bytes to feed next
    (0: the connection is over); feed returns the bytes to send back."""

    def __init__(self, cfg: Config, raddr: str):
        self.cfg, self.raddr = cfg, raddr
        self.failures = 0
        self._out = b""
        self._gen = self._run()
        self.want = next(self._gen)

    def feed(self, data: bytes) -> bytes:
        if len(data) != self.want:
            raise ValueError("feed exactly `want` bytes")
        try:
            self.want = self._gen.send(data)
        except StopIteration:
            self.want = 0
        out, self._out = self._out, b""
        return out

    def _reply(self, data: bytes) -> None:
        self._out += data

    def _fail(self, user: str, what: str) -> None:
        """A bad response: AuthErr, `bad` to keyfs log; too many ends the session."""
        self._reply(err_reply(f"{what}-fail bad response {self.raddr}"))
        self.cfg.store.log(user, False)
        self.failures += 1
        self.cfg.limit.failed(self.raddr)
        log.info("%s-fail %s(%s) bad response", what, _printable(user), self.raddr)

    def _run(self) -> Generator[int, bytes, None]:
        handlers = {AuthType.AuthTreq: self._treq, AuthType.AuthChal: self._chal,
                    AuthType.AuthPass: self._passwd, AuthType.AuthApop: self._apop,
                    AuthType.AuthCram: self._apop}
        while self.failures < MAXFAIL:
            tr = Ticketreq.unpack((yield TICKREQLEN))
            handler = handlers.get(tr.type)
            if handler is None:
                log.info("unknown ticket request type %d from %s", tr.type, self.raddr)
                return
            if (yield from handler(tr)) is False:
                return

    def _key_or_random(self, user: str) -> bytes:
        return self.cfg.store.key(user) or _randkey()

    def _ticket_pair(self, chal: bytes, uid: str, hkey: bytes) -> bytes:
        """Khost{AuthTs, chal, uid, uid, Kn} + Kn{AuthAc, chal, 0}: 85 bytes."""
        kn = _randkey()
        t = Ticket(RecordNum.AuthTs, chal, uid, uid, kn).pack(hkey)
        return t + Authenticator(RecordNum.AuthAc, chal, 0).pack(kn)

    def _treq(self, tr: Ticketreq):
        akey, hkey = self._key_or_random(tr.authid), self._key_or_random(tr.hostid)
        suid = tr.uid
        if not speaksfor.speaks_for(self.cfg.rules, tr.hostid, tr.uid):
            akey, hkey, suid = _randkey(), _randkey(), ""
            log.info("tr-fail %s@%s(%s) -> %s@%s no speaks for", _printable(tr.uid),
                     _printable(tr.hostid), self.raddr, _printable(tr.uid), _printable(tr.authid))
        kn = _randkey()
        tc = Ticket(RecordNum.AuthTc, tr.chal, tr.uid, suid, kn).pack(hkey)
        ts = Ticket(RecordNum.AuthTs, tr.chal, tr.uid, suid, kn).pack(akey)
        self._reply(ok_reply(tc + ts))
        return
        yield   # a handler is a generator even when it needs no further input

    def _apop(self, tr: Ticketreq):
        kind = "apop" if tr.type == AuthType.AuthApop else "cram"
        r = [secrets.randbits(32) for _ in range(4)]
        chal = f"<{r[0]:x}{r[1]:x}.{r[2]:x}{r[3]:x}@{self.cfg.dom}>".encode()
        self._reply(okvar_reply(chal))
        while self.failures < MAXFAIL:
            tr2 = Ticketreq.unpack((yield TICKREQLEN))
            resp = yield MD5HEXLEN
            if tr2.type != tr.type:
                log.info("%s: protocol botch from %s", kind, self.raddr)
                return False
            # the host key, for the ticket after a good response, is read
            # with the secret (one keyfs round trip); the check is the same
            secret, hkey = self.cfg.store.secret_and_key(tr2.uid, tr2.hostid)
            secret = secret or secrets.token_bytes(16)
            digest = crypt.apop_digest if kind == "apop" else crypt.cram_digest
            if not crypt.hex_matches(digest(chal, secret), resp):
                self._fail(tr2.uid, kind)
                continue
            self._reply(ok_reply(self._ticket_pair(tr2.chal, tr2.uid, hkey or _randkey())))
            self.cfg.store.log(tr2.uid, True)
            log.info("%s-ok %s@%s(%s)", kind, _printable(tr2.uid), _printable(tr2.hostid), self.raddr)
            return True
        return False

    def _chal(self, tr: Ticketreq):
        ukey = self._key_or_random(tr.uid)
        chal = str(secrets.randbelow(100000)).encode()
        self._reply(ok_reply(chal.ljust(NETCHLEN, b"\0")))
        resp = (yield NETCHLEN).split(b"\0", 1)[0].strip()
        if not crypt.hex_matches(crypt.netcrypt(ukey, chal), resp):
            self._fail(tr.uid, "chal")
            return
        self._reply(ok_reply(self._ticket_pair(tr.chal, tr.uid,
                                               self._key_or_random(tr.hostid))))
        self.cfg.store.log(tr.uid, True)
        log.info("chal-ok %s@%s(%s)", _printable(tr.uid), _printable(tr.hostid), self.raddr)

    def _passwd(self, tr: Ticketreq):
        store = self.cfg.store
        ukey = self._key_or_random(tr.uid)
        if not speaksfor.speaks_for(self.cfg.rules, tr.hostid, tr.uid):
            ukey = _randkey()
        kn = _randkey()
        self._reply(ok_reply(Ticket(RecordNum.AuthTp, tr.chal, tr.uid, tr.uid, kn).pack(ukey)))
        while self.failures < MAXFAIL:
            pr = Passwordreq.unpack((yield PASSREQLEN), kn)
            if pr.num != AuthType.AuthPass:
                self._reply(err_reply("protocol botch"))
                return False
            if not secrets.compare_digest(crypt.passtokey(pr.old), ukey):
                self._reply(err_reply("bad password"))
                store.log(tr.uid, False)
                self.failures += 1
                self.cfg.limit.failed(self.raddr)
                continue
            if pr.new and not store.set_key(tr.uid, crypt.passtokey(pr.new)):
                self._reply(err_reply("can't write key"))
                return False
            if pr.changesecret and not store.set_secret(tr.uid, pr.secret.encode()):
                self._reply(err_reply("can't write secret"))
                return False
            self._reply(ok_reply())
            log.info("passwd-ok %s(%s)", _printable(tr.uid), self.raddr)
            return True
        return False


def _recvn(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def serve_conn(sock: socket.socket, cfg: Config) -> None:
    """Drive one Session over a socket; an idle or short read ends it."""
    try:
        peer = sock.getpeername()
        raddr = peer[0] if isinstance(peer, tuple) else "local"
    except OSError:
        raddr = "unknown"
    sock.settimeout(cfg.idle)
    try:
        sess = Session(cfg, raddr)
        while sess.want:
            data = _recvn(sock, sess.want)
            if data is None:
                break
            cfg.limit.admit(raddr)          # an address over its budget waits
            failures = sess.failures
            sock.sendall(sess.feed(data))
            if sess.failures > failures and sess.want:
                time.sleep(cfg.limit.after_failure(sess.failures))
    except (OSError, ValueError) as e:
        log.info("connection from %s ended: %s", raddr, type(e).__name__)
    finally:
        sock.close()


def serve_forever(listener: socket.socket, cfg: Config) -> None:
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve_conn, args=(sock, cfg), daemon=True).start()


def _address(listener: socket.socket, addr: str) -> str:
    host, port = listener.getsockname()[:2]
    return f"tcp!{host}!{port}" if addr.startswith(("tcp!", "net!")) else addr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="authsrv", description="Plan 9 auth server")
    ap.add_argument("-a", metavar="addr", default="tcp!*!567", help="announce address")
    ap.add_argument("-k", metavar="keys", default="keys", help="keyfs service or dial string")
    ap.add_argument("-D", metavar="dom", help="domain in APOP/CRAM challenges (default: this host's)")
    ap.add_argument("-u", metavar="rulesfile", help='"speaks for" rules (ndb: hostid=X uid=...)')
    ap.add_argument("-t", metavar="seconds", type=float, default=DEFAULT_IDLE, help="idle timeout")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="authsrv: %(message)s")
    try:
        cfg = Config(KeyStore(KeyfsFiles(args.k)), args.D or socket.getfqdn(),
                     speaksfor.load(args.u), args.t, GuessLimit(config.current().authsrv_delay_scale))
        listener = announce(args.a)
    except (OSError, Error) as e:
        print(f"authsrv: {e}", file=sys.stderr)
        return 1
    print(_address(listener, args.a), flush=True)   # lets a parent learn a port-0 address
    serve_forever(listener, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
