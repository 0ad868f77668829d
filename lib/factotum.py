"""The factotum client the servers use: libauth's auth_* calls in Python.

Factotum is found as libauth finds it: an explicit address, else the dial
string in $factotum, else the service `factotum` posted in $NAMESPACE.  It
works with our auth.factotum (Plan 9's conversations) and with
plan9port's, which differs in three: it tells the verdict on a response
(`ok ok` or `ok bad ...`) before `done`, its p9cr server wants the user
written before it gives the challenge, and its apop/cram client gives the
user before the response.  Each call tells the two apart by the replies
(a `phase` where Plan 9 answers, an `ok` where Plan 9 says `done`), so
either factotum works without being named.

How the mail servers use it::

    # pop3: the APOP greeting, then the APOP command
    c = auth_challenge("proto=apop role=server")
    send(f"+OK POP3 server ready {c.chal}")
    try:
        ai = auth_response(c, user, digest_hex)      # AuthInfo; ai.cuid == user
    except AuthError as e:
        ...                                           # c still usable: retry later
    c.close()

    # imap4d AUTHENTICATE CRAM-MD5: base64(c.chal) is the challenge
    c = auth_challenge("proto=cram role=server")
    ai = auth_response(c, user, digest_hex.lower())

    # imap4d -c (p9cr): show c.chal, the next LOGIN's password is the answer
    c = auth_challenge(f"proto=p9cr role=server user={quote(user)}")
    ai = auth_response(c, resp=answer)

    # cleartext (-p): check a password against the APOP secret
    c = auth_challenge("proto=apop role=server")
    ai = auth_response(c, user, hashlib.md5(c.chal.encode() + pw).hexdigest())

Failures are exceptions: FactotumError (an `error` reply; AuthError for a
rejected login), NeedKey (factotum has no key; `.template` says which),
FactotumUnavailable (no factotum to talk to).
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Callable

from lib.attrs import parse_attrs, quote, tokenize
from auth.records import AuthInfo
from upas import config, ninep
from upas.ninep import codec

AUTH_RPC_MAX = 4096            # libauth's AuthRpcMax: reply buffer size

__all__ = ["AUTH_RPC_MAX", "AuthError", "AuthInfo", "BadKey", "Chalstate", "FactotumError",
           "FactotumUnavailable", "NeedKey", "PhaseError", "Rpc", "auth_challenge",
           "auth_getuserpasswd", "auth_proxy", "auth_respond", "auth_response",
           "auth_userpasswd", "factotum_address", "p9cr_response", "quote"]


class FactotumError(Exception):
    """An `error` reply (or a broken conversation); str() is factotum's text."""


class AuthError(FactotumError):
    """The other party's response was rejected (wrong secret, unknown user...)."""


class NeedKey(FactotumError):
    """`needkey`: factotum holds no key matching `template`."""

    def __init__(self, template: str):
        super().__init__(f"needkey {template}")
        self.template = template


class BadKey(FactotumError):
    """`badkey` (plan9port): a key was rejected."""


class PhaseError(FactotumError):
    """`phase`: the conversation was driven in the wrong direction."""


class FactotumUnavailable(FactotumError):
    """No factotum could be reached."""


def factotum_address(addr: str | None = None) -> str:
    """Where factotum is: addr, else $factotum, else the service `factotum`."""
    return addr or config.current().factotum or "factotum"


class Rpc:
    """One open of factotum's `rpc`: an independent conversation.

    `call(verb, data)` writes one request and reads one reply; it returns
    (status, data) for `ok`, `done` and `toosmall`, and raises for the rest.
    `getkey(template)` may add a key (via ctl) so that the call is retried.
    """

    def __init__(self, addr: str | None = None,
                 getkey: Callable[[str], bool] | None = None):
        where = factotum_address(addr)
        self.getkey = getkey
        ahead = _take_ahead(where)
        if ahead is not None:
            self.client, self.file = ahead
            return
        try:
            self.client = ninep.Client.dial(where)
            self.file = self.client.open("rpc", "rw")
        except (OSError, ninep.Error) as e:
            if getattr(self, "client", None):
                self.client.close()
            raise FactotumUnavailable(f"cannot open factotum rpc at {where}: {e}") from None

    def call(self, verb: str, data: bytes | str = b"") -> tuple[str, bytes]:
        request = _request(verb, data)
        while True:
            got = self._answer(self._exchange(request), retry=True)
            if got is not None:
                return got

    def call_many(self, calls: list[tuple[str, bytes | str]]) -> list[tuple[str, bytes] | FactotumError]:
        """call() of each (verb, data), all in one round trip to a factotum
        of ours (walks_pipelined: it answers a connection's requests in
        order, so each reply is the one call() would have had, the calls
        made one after another): each one's (status, data), or the
        FactotumError it got.  Only where walks_pipelined; a lost
        connection raises FactotumUnavailable."""
        mux, fid = self.client.mux, self.file.fid
        msgs = [m for verb, data in calls for m in
                (codec.Twrite(0, fid, 0, _request(verb, data)), codec.Tread(0, fid, 0, AUTH_RPC_MAX))]
        out: list[tuple[str, bytes] | FactotumError] = []
        try:
            sent = mux.start_many(msgs)
            for wrote, read in zip(sent[::2], sent[1::2]):
                try:
                    out.append(self._answer(self._collect(wrote, read), retry=False))
                except ninep.Hungup:
                    raise
                except ninep.Error as e:
                    out.append(FactotumError(str(e)))
                except FactotumError as e:
                    out.append(e)
        except (OSError, ninep.Hungup) as e:
            raise FactotumUnavailable(f"factotum rpc: {e}") from None
        return out

    def _answer(self, reply: bytes, retry: bool) -> tuple[str, bytes] | None:
        """A reply's (status, data), or the exception for it; None when
        getkey added the key asked for (retry: the call is made again)."""
        word, _, arg = reply.partition(b" ")
        status = word.decode("ascii", "replace")
        if status in ("ok", "done", "toosmall"):
            return status, arg
        if status == "needkey":
            template = arg.decode("utf-8", "replace")
            if retry and self.getkey is not None and self.getkey(template):
                return None
            raise NeedKey(template)
        text = arg.decode("utf-8", "replace")
        if status == "error":
            raise FactotumError(text)
        if status == "badkey":
            raise BadKey(text)
        if status == "phase":
            raise PhaseError(text)
        raise FactotumError(f"bad factotum rpc response: {reply[:64]!r}")

    def _exchange(self, request: bytes) -> bytes:
        try:
            if self.client.walks_pipelined:
                return self._pipelined(request)
            self.file.write(request)
            return self.file.read(AUTH_RPC_MAX)
        except ninep.Error as e:
            raise FactotumError(str(e)) from None
        except OSError as e:
            raise FactotumUnavailable(f"factotum rpc: {e}") from None

    def _pipelined(self, request: bytes) -> bytes:
        """The write and its read in one round trip, to a factotum of ours
        (walks_pipelined: it answers a connection's requests in order).
        A read answered before the write (an older, threaded server of
        ours: "no rpc pending") is asked again; a failed write's error is
        the answer, its read's reply dropped."""
        mux, fid = self.client.mux, self.file.fid
        wrote, read = mux.start_many([codec.Twrite(0, fid, 0, request),
                                      codec.Tread(0, fid, 0, AUTH_RPC_MAX)])
        return self._collect(wrote, read)

    def _collect(self, wrote, read) -> bytes:
        """The reply to a verb's Twrite and Tread sent together (see
        _pipelined)."""
        mux = self.client.mux
        try:
            mux.finish(wrote, codec.Rwrite)
        except BaseException:
            mux.finish_quietly(read)
            raise
        try:
            return mux.finish(read, codec.Rread).data
        except ninep.Error as e:
            if str(e) != "no rpc pending":
                raise
        return self.file.read(AUTH_RPC_MAX)

    def attrs(self) -> dict[str, str]:
        """`attr`: the conversation's attributes (start's plus what was learned)."""
        _, data = self.call("attr")
        return {a.name: a.value for a in parse_attrs(data.decode("utf-8", "replace"))}

    def authinfo(self) -> AuthInfo:
        _, data = self.call("authinfo")
        try:
            return AuthInfo.unpack(data)
        except ValueError:
            raise FactotumError("bad auth info from factotum") from None

    def close(self) -> None:
        # to ours no Tclunk: hanging up ends the conversation (a 9P server
        # clunks a connection's fids when it goes), one round trip sooner;
        # others get the libauth client's requests as they were
        if not self.client.walks_pipelined:
            try:
                self.file.close()
            except (OSError, ninep.Error):
                pass
        self.client.close()

    def __enter__(self) -> "Rpc":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- a conversation opened ahead ---------------------------------------------

AHEAD_TIMEOUT = 2.0     # seconds factotum may take to answer the dial made ahead
_ahead: tuple[str, ninep.Client, ninep.File] | None = None


def open_ahead(addr: str | None = None) -> None:
    """Dial factotum and open its `rpc` now, for this process's first
    conversation: a fork server's spare does it before its connection
    comes (upas/forkserver.py), so a login does not wait for the dial,
    the attach and the open (~1.5 ms).  Nothing of a user is in it until
    `start`.  Only a factotum of ours, on a local socket: it answers
    quickly or not at all, and ends a conversation when its connection
    goes, so one never used costs it nothing.  Failures are silent: the
    conversation is then dialled when it is needed, as before."""
    global _ahead
    where = factotum_address(addr)
    try:
        sock = ninep.dial(where) if _local(where) else None
    except (OSError, ninep.Error):
        return
    if sock is None:
        return
    client = None
    try:
        sock.settimeout(AHEAD_TIMEOUT)
        client = ninep.Client(sock)
        if client.walks_pipelined:
            f = client.open("rpc", "rw")
            sock.settimeout(None)
            _ahead, client = (where, client, f), None
    except (OSError, ninep.Error):
        pass
    finally:
        if client is not None:
            client.close()
        elif _ahead is None:
            sock.close()


def _local(where: str) -> bool:
    """A posted service or a unix socket: connecting does not wait."""
    return "!" not in where or where.startswith("unix!")


def _take_ahead(where: str) -> tuple[ninep.Client, ninep.File] | None:
    """The conversation open_ahead made, if it is for `where` and factotum
    has not hung up on it since (a factotum restarted while the spare
    waited); once only."""
    global _ahead
    if _ahead is None:
        return None
    (addr, client, f), _ahead = _ahead, None
    if addr == where and ninep.still_open(client.mux.sock):
        return client, f
    client.close()
    return None


def _request(verb: str, data: bytes | str) -> bytes:
    """An rpc request: the verb, and its data after a space."""
    if isinstance(data, str):
        data = data.encode()
    return verb.encode() + (b" " + data if data else b"")


def _start(attrs: str, addr: str | None, getkey=None) -> Rpc:
    rpc = Rpc(addr, getkey)
    try:
        rpc.call("start", attrs)
    except BaseException:
        rpc.close()
        raise
    return rpc


@dataclass
class Chalstate:
    """A server-side challenge in progress (libauth's Chalstate).

    `chal` is what to show the client: the APOP/CRAM `<...@dom>` string, or
    the p9cr decimal number.  The conversation stays open until a
    successful auth_response or close(); a failed response may be retried.
    """
    rpc: Rpc | None
    chal: str
    user: str | None = None
    resp: str | bytes | None = None
    proto: str = ""

    def close(self) -> None:
        if self.rpc is not None:
            self.rpc.close()
            self.rpc = None


def auth_challenge(attrs: str, addr: str | None = None) -> Chalstate:
    """Start a server-role conversation and get the challenge.

    attrs e.g. "proto=apop role=server", "proto=cram role=server" or
    "proto=p9cr role=server user=glenda" (quote values with quote()).
    """
    given = {a.name: a.value for a in parse_attrs(attrs)}
    rpc = Rpc(addr)
    try:
        if rpc.client.walks_pipelined:
            chal = _started_at_once(rpc, attrs)
        else:
            rpc.call("start", attrs)
            try:
                _, chal = rpc.call("read")
            except PhaseError:
                # plan9port's p9cr server reads the user before it asks the AS
                # for a challenge (Plan 9's takes it from start)
                if not given.get("user"):
                    raise
                rpc.call("write", given["user"])
                _, chal = rpc.call("read")
    except BaseException:
        rpc.close()
        raise
    # plan9port sends p9cr's challenge NUL-padded to 16 bytes
    chal = chal.split(b"\0", 1)[0]
    return Chalstate(rpc, chal.decode("utf-8", "replace"), proto=given.get("proto", ""))


def _started_at_once(rpc: Rpc, attrs: str) -> bytes:
    """`start` and the read of the challenge in one round trip, to a
    factotum of ours (a read after a failed start is refused, `no current
    protocol`): the challenge, or the first failure."""
    for got in rpc.call_many([("start", attrs), ("read", b"")]):
        if isinstance(got, FactotumError):
            raise got
    return got[1]


def auth_response(c: Chalstate, user: str | None = None,
                  resp: str | bytes | None = None) -> AuthInfo:
    """Give factotum the client's answer; the AuthInfo on success.

    user: the name the client gave (apop, cram).  p9cr names the user in
    auth_challenge's start, so a user given here is not sent for p9cr.
    resp: the hex digest (apop, cram: 32 digits) or the p9cr response.
    A rejected answer raises AuthError and leaves `c` open for another try;
    any other failure closes it.
    """
    user = c.user if user is None else user
    resp = c.resp if resp is None else resp
    if c.rpc is None:
        raise FactotumError("auth_response: connection not open")
    if not resp:
        raise FactotumError("auth_response: nil response")
    if c.rpc.client.walks_pipelined:
        return _response_at_once(c, user if c.proto != "p9cr" else None, resp)
    try:
        if user is not None and c.proto != "p9cr":
            c.rpc.call("write", user)
    except FactotumError:
        c.close()                      # out of phase with factotum
        raise
    try:
        c.rpc.call("write", resp)
    except FactotumUnavailable:
        c.close()
        raise
    except FactotumError as e:
        raise AuthError(str(e)) from None    # Plan 9: rejected at the write
    try:
        status, arg = _finished(c.rpc)
        if status == "ok":                   # plan9port: the verdict, then done
            if arg != b"ok":
                verdict = arg.decode("utf-8", "replace")
                raise AuthError(verdict[4:] if verdict.startswith("bad ") else verdict)
            status, arg = _finished(c.rpc)
        if status != "done":
            raise FactotumError(f"factotum protocol botch {status} {arg[:32]!r}")
        info = c.rpc.authinfo()
    except AuthError:
        raise                                # c stays open for another try
    except BaseException:
        c.close()
        raise
    c.close()
    return info


def _response_at_once(c: Chalstate, user: str | None, resp: str | bytes) -> AuthInfo:
    """auth_response to a factotum of ours, its verbs in one round trip:
    the user's write, the response's, the read that says done, authinfo.
    Each reply is what it would have been one by one, and means the same:
    a failed user write ends the conversation; a refused response leaves
    it open for another try (the read and authinfo after it changed
    nothing: a phase error and `authentication unfinished`)."""
    verbs: list[tuple[str, bytes | str]] = [("write", user)] if user is not None else []
    verbs += [("write", resp), ("read", b""), ("authinfo", b"")]
    try:
        got = c.rpc.call_many(verbs)
    except FactotumError:
        c.close()
        raise
    first = got.pop(0) if user is not None else None
    if isinstance(first, FactotumError):
        c.close()                      # out of phase with factotum
        raise first
    wrote, done, info = got
    if isinstance(wrote, FactotumError):
        raise AuthError(str(wrote)) from None    # Plan 9: rejected at the write
    try:
        if isinstance(done, FactotumError) and str(done) != "protocol finished":
            raise done
        if not isinstance(done, FactotumError) and done[0] != "done":
            raise FactotumError(f"factotum protocol botch {done[0]} {done[1][:32]!r}")
        if isinstance(info, FactotumError):
            raise info
        ai = AuthInfo.unpack(info[1])
    except ValueError:
        c.close()
        raise FactotumError("bad auth info from factotum") from None
    except BaseException:
        c.close()
        raise
    c.close()
    return ai


def _finished(rpc: Rpc) -> tuple[str, bytes]:
    """A read after the response: `done`, or plan9port's verdict (`ok ok`,
    `ok bad ...`), or its `error protocol finished`, which its rpc.c
    gives when the conversation ends successfully around the read (the
    verdict's reply then overwritten, or the read still pending): taken
    as done, since that text follows only a protocol that succeeded."""
    try:
        return rpc.call("read")
    except FactotumError as e:
        if str(e) != "protocol finished":
            raise
        return "done", b""


def auth_respond(chal: str | bytes, attrs: str, addr: str | None = None,
                 getkey: Callable[[str], bool] | None = None) -> tuple[str, str]:
    """Client role of apop/cram: (response, user) for a server's challenge.

    attrs e.g. "proto=apop role=client server=mail.example.com".  CRAM
    responses come back upper-case (%H), as Plan 9's factotum gives them
    (plan9port's gives APOP's upper-case too).  Plan 9's factotum answers
    the response and is then done (the user is among its attributes);
    plan9port's answers the user, then the response, then waits for the
    server's verdict, which is not known here: the conversation is closed.
    """
    with _start(attrs, addr, getkey) as rpc:
        rpc.call("write", chal)
        _, first = rpc.call("read")
        status, second = rpc.call("read")
        if status == "ok":
            return second.decode("ascii", "replace"), first.decode("utf-8", "replace")
        user = rpc.attrs().get("user", "")
    return first.decode("ascii", "replace"), user


def p9cr_response(chal: str, password: str) -> str:
    """The netkey answer to a p9cr challenge: the decimal challenge,
    zero-filled to 8 bytes, DES-encrypted under passtokey(password); the
    first 4 bytes as 8 lower-case hex digits (`12345`, `password` ->
    `7d682065`)."""
    if not chal.strip().isdigit():
        raise FactotumError(f"bad p9cr challenge {chal!r}")
    # DES (pycryptodome, via cffi) is imported only here: every pop3 and
    # imap4d connection is a new process, and the apop/cram roles never need it
    from auth import crypt
    return crypt.netkey_response(crypt.passtokey(password), chal)


def auth_userpasswd(user: str, password: str, addr: str | None = None) -> AuthInfo:
    """Check a user's Plan 9 password through p9cr (Bell/p9p libauth)."""
    c = auth_challenge(f"proto=p9cr role=server user={quote(user)}", addr)
    try:
        resp = p9cr_response(c.chal, password)
    except FactotumError:
        c.close()
        raise
    return auth_response(c, resp=resp)


def auth_getuserpasswd(attrs: str, addr: str | None = None,
                       getkey: Callable[[str], bool] | None = None) -> tuple[str, str]:
    """The pass protocol: (user, password) of a key such as
    `proto=pass service=imap server=mail.example.com`."""
    if "role=" not in attrs:
        attrs += " role=client"      # plan9port's factotum requires it
    with _start(attrs, addr, getkey) as rpc:
        _, data = rpc.call("read")
    fields = tokenize(data.decode("utf-8", "replace"))
    if len(fields) != 2:
        raise FactotumError("bad factotum rpc response")
    return fields[0], fields[1]


def _recv(sock: socket.socket, n: int) -> bytes:
    data = sock.recv(n)
    if not data:
        raise FactotumError("auth_proxy short read")
    return data


def auth_proxy(sock: socket.socket, attrs: str, addr: str | None = None,
               getkey: Callable[[str], bool] | None = None) -> AuthInfo:
    """Run a protocol (p9any, p9sk1) with the peer on sock, factotum doing
    the work (fauth_proxy): data factotum reads goes to the peer; when
    factotum wants input it says how much (toosmall) and we read it."""
    with _start(attrs, addr, getkey) as rpc:
        while True:
            try:
                status, data = rpc.call("read")
            except PhaseError:
                _feed(rpc, sock)
                continue
            if status == "done":
                return rpc.authinfo()
            if status == "ok":
                sock.sendall(data)
                continue
            raise FactotumError(f"auth_proxy rpc: {status}")


def _feed(rpc: Rpc, sock: socket.socket) -> None:
    """Write what the peer sent, reading more while factotum says toosmall."""
    buf = b""
    while True:
        status, arg = rpc.call("write", buf) if buf else rpc.call("write")
        if status != "toosmall":
            return
        want = int(arg or b"0")
        if want > AUTH_RPC_MAX or want <= len(buf):
            raise FactotumError(f"auth_proxy: toosmall {want}")
        buf += _recv(sock, want - len(buf))
