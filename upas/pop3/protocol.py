"""The POP3 session of Plan 9's upas/pop3, without any I/O.

The driver feeds bytes to a `LineSplitter`, hands each line to
`Session.handle`, and carries out the events it gets back: `bytes` to send,
`Sleep` (the failed-login delay), `StartTLS` (after the `+OK` is flushed) and
`Close`.  The session reaches mail through a `Mailbox` and logins through an
`Authenticator`, both injected, so every reply can be tested without a socket.

Reply texts are docs/spec/servers.md §2 word for word; where docs/decisions.md fixes a
bug (CRLF doubling, NUL truncation, overlong lines) the fix is here.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol, Sequence, Union

from lib import username
from upas.loginfail import FIRST_DELAY, MAX_DELAY, MAX_FAILURES
from upas.ns import cleanname
from upas.transport.events import Close, Event, Sleep, StartTLS

MAXLINE = 1024          # Plan 9's command buffer: a line may hold 1023 bytes
MAXREPLY = 1023         # one formatted reply text, as vseprint into buf[1024]
BOXPATH_MAX = 256 - 7   # "/mail/box/ARG" is cut so that "/mbox" still fits
GUESSER_AT = 3
IMPLEMENTATION = "upas-py-pop3"


# ---------------------------------------------------------------- collaborators
class AuthError(Exception):
    """A login or challenge failed; the text is factotum's reason."""


class MailboxError(Exception):
    """The mailbox could not be read or written; the text follows `-ERR `.
    `code` is the RFC 2449 response code that fits, if any (IN-USE)."""

    def __init__(self, text: str, code: str = ""):
        super().__init__(text)
        self.code = code


class HostError(Exception):
    """The user's name space could not be built."""


@dataclass
class MessageInfo:
    """One POP message: its upasfs number, UIDL digest and size in octets."""
    fsnum: int
    digest: str
    size: int
    deleted: bool = False
    purged: bool = False   # deleted by SYNC: gone from upasfs for good
    uidl: str = ""         # the unique-id: the digest, unique_ids() for copies


def unique_ids(digests: Sequence[str]) -> list[str]:
    """UIDLs unique within the maildrop (RFC 1939 7) when byte-identical
    messages share a digest: the first copy keeps the plain digest (Plan
    9's UIDL, so what clients recorded stays valid), the n-th copy in
    mailbox order gets `DIGEST.n`.  An id stays while the copies before
    it stay (docs/decisions.md)."""
    seen: dict[str, int] = {}
    out = []
    for d in digests:
        n = seen[d] = seen.get(d, 0) + 1
        out.append(d if n == 1 else f"{d}.{n}")
    return out


class Challenge(Protocol):
    chal: str  # the text sent to the client, e.g. "<1a2b.3c4d@dom>"

    def respond(self, user: str, response: str) -> str:
        """Check `response` for `user`: the name factotum authenticated
        (its cuid); raise AuthError on failure."""

    def close(self) -> None:
        """Drop the conversation (a later challenge replaces this one)."""


class Authenticator(Protocol):
    def challenge(self, proto: str = "apop") -> Challenge:
        """A new server-role challenge of `proto` (apop or cram)."""


class Mailbox(Protocol):
    messages: Sequence[MessageInfo]

    def open_raw(self, fsnum: int) -> Iterable[bytes]:
        """Open message `fsnum`'s raw file (raise MailboxError); its chunks.
        (A mailbox may also have `prefetch()`, called while the session
        waits for the client, and `peek_next()`: the raw bytes open_raw is
        expected to give next, if it holds them now, as one bytes object
        (see Session.idle).)"""

    def delete(self, fsnums: Sequence[int]) -> None:
        """Remove these messages from the mailbox file (raise MailboxError)."""


class Guard(Protocol):
    """The peer address's attempts across sessions (upas/loginfail.py)."""

    refusal: str        # why begin() refused

    def begin(self) -> float | None:
        """Seconds to wait before checking this attempt; None: refuse it."""

    def succeeded(self) -> None:
        """The attempt was a login: take it back."""

    def failed(self) -> None:
        """The attempt was wrong: count it."""


class Host(Protocol):
    def login(self, user: str) -> None:
        """Become `user`: build the user's name space (raise HostError)."""

    def open_mailbox(self, box: str) -> Mailbox:
        """Load /mail/box/.../mbox through upasfs (raise MailboxError)."""

    def ratify(self, peer: str) -> None:
        """Trust `peer` for SMTP relay; failures are silent."""

    def syslog(self, text: str) -> None:
        """One line for the pop3 system log."""


# ---------------------------------------------------------------- framing
class Overlong:
    """Stands for a command line that exceeded MAXLINE and was discarded."""


OVERLONG = Overlong()


class LineSplitter:
    """Cuts input bytes into command lines: CRLF or LF ends a line, a lone CR
    is data.  A line longer than the limit is discarded whole (docs/decisions.md)
    and reported once as OVERLONG."""

    def __init__(self, limit: int = MAXLINE - 1):
        self.limit = limit
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[Union[bytes, Overlong]]:
        self._buf += data
        out: list[Union[bytes, Overlong]] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self.limit + 1:   # +1: room for a CR
                    self._discarding = True
                    del self._buf[:-1]                # keep a possible CR
                return out
            line = bytes(self._buf[:nl])
            del self._buf[:nl + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if self._discarding or len(line) > self.limit:
                self._discarding = False
                out.append(OVERLONG)
            else:
                out.append(line)

    def eof(self) -> list[bytes]:
        """At end of input an unterminated line still counts, as in Plan 9."""
        line, self._buf = bytes(self._buf), bytearray()
        if self._discarding or not line:
            return []
        return [line[:self.limit]]

    def discard(self) -> None:
        """Drop buffered input (plaintext pipelined after STLS is not trusted)."""
        self._buf.clear()
        self._discarding = False


def atoi(arg: bytes) -> int:
    """C atoi as Plan 9 pop3 uses it: junk reads as 0, the number stops at the
    first non-digit.  Overlong digit runs are clamped (no bignum work)."""
    s = arg.lstrip(b" \t\r\n\v\f")
    sign = 1
    if s[:1] in (b"+", b"-"):
        sign = -1 if s[:1] == b"-" else 1
        s = s[1:]
    n = 0
    for i, c in enumerate(s):
        if not 48 <= c <= 57:
            break
        if i >= 19:
            return sign * (2**63 - 1)
        n = n * 10 + (c - 48)
    return sign * n


def split_arg(line: bytes) -> tuple[bytes, bytes]:
    """Command word up to the first blank; the rest after skipping blanks."""
    i = 0
    while i < len(line) and line[i] not in b" \t":
        i += 1
    word, rest = line[:i], line[i:]
    return word, rest.lstrip(b" \t")


# ---------------------------------------------------------------- message bodies
_DOT_LINE = re.compile(rb"\n\.")


class DotStuffer:
    """Turns raw message bytes into POP3 multi-line data, streaming: each
    line ends in exactly one CRLF (no CR doubling), a leading `.` is doubled,
    every byte including NUL passes through (docs/decisions.md)."""

    def __init__(self) -> None:
        self._bol = True      # the next byte starts a line
        self._cr = False      # a CR held back: it may pair with the next LF

    def feed(self, data: bytes) -> bytes:
        if self._cr:
            data = b"\r" + data
            self._cr = False
        if not data:
            return b""
        if data.endswith(b"\r"):
            data = data[:-1]
            self._cr = True
        # a one-byte test (memchr) first: the two-byte searches of replace
        # cost several times more, and most mail has no CR; the dots are
        # stuffed before the line ends grow, and only where a line starts
        # with one (a regular expression finds none in half the time `in`
        # or replace take, and nearly every message has dots, few at the
        # start of a line)
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        if _DOT_LINE.search(data):
            data = data.replace(b"\n.", b"\n..")
        out = data.replace(b"\n", b"\r\n")
        if self._bol and out.startswith(b"."):
            out = b"." + out
        if data:
            self._bol = data.endswith(b"\n")
        if self._cr:
            self._bol = False
        return out

    def end(self) -> bytes:
        """The unterminated last line gets its CRLF; then the final `.`."""
        out = b"\r" if self._cr else b""
        self._cr = False
        if out or not self._bol:
            out += b"\r\n"
        self._bol = True
        return out + b".\r\n"


def stuffed(data: bytes) -> bytes:
    """A whole message's multi-line data, the final "." line included."""
    st = DotStuffer()
    return st.feed(data) + st.end()


def top_cut(chunks: Iterable[bytes], body_lines: int) -> Iterator[bytes]:
    """The raw bytes TOP sends: header lines through the first empty line
    (a bare CRLF counts as empty), then `body_lines` lines of the body."""
    in_header, left = True, body_lines
    cur_len, cur_head = 0, b""    # the current line so far: length, first bytes
    for chunk in chunks:
        pos = 0
        while in_header or left > 0:
            nl = chunk.find(b"\n", pos)
            if nl < 0:
                cur_head = (cur_head + chunk[pos:pos + 2])[:2]
                cur_len += len(chunk) - pos
                break
            total = cur_len + nl - pos
            head = (cur_head + chunk[pos:min(nl, pos + 2)])[:2]
            if in_header:
                in_header = not (total == 0 or (total == 1 and head == b"\r"))
            else:
                left -= 1
            cur_len, cur_head = 0, b""
            pos = nl + 1
        else:
            if pos:
                yield chunk[:pos]
            return
        yield chunk


# ---------------------------------------------------------------- the session
def apop_digest(chal: str, secret: bytes) -> str:
    """MD5(challenge || secret) in hex: how PASS turns a password into APOP."""
    return hashlib.md5(chal.encode() + secret).hexdigest()


class Session:
    """One POP3 conversation (docs/spec/servers.md §2)."""

    def __init__(self, auth: Authenticator, host: Host, *,
                 allow_clear: bool = False, tls_cert: bool = False,
                 peer: str | None = None, preauth_box: str | None = None,
                 extensions: bool = False, delay_scale: float = 1.0,
                 debug: Callable[[bytes], None] | None = None,
                 guard: Guard | None = None):
        self.auth, self.guard, self.host = auth, guard, host
        self.allow_clear, self.tls_cert, self.peer = allow_clear, tls_cert, peer
        self.preauth_box, self.extensions = preauth_box, extensions
        self.delay_scale, self._debug = delay_scale, debug
        self.tls = self.loggedin = False
        self.user = self.box = ""
        self.chal: Challenge | None = None
        self.mbox: Mailbox | None = None
        self.msgs: Sequence[MessageInfo] = []
        self.tries = 0
        self.delay = FIRST_DELAY
        self._sasl: Callable[[bytes], Iterator[Event]] | None = None
        # (raw, its multi-line data, the final "." included): the next
        # message stuffed while the client was reading the last (idle)
        self._ready: tuple[bytes, bytes] | None = None

    # -- replies -------------------------------------------------------
    def _line(self, text: Union[str, bytes]) -> bytes:
        if isinstance(text, str):
            text = text.encode("utf-8", "surrogateescape")
        text = text[:MAXREPLY]
        if self._debug:
            self._debug(b"-> " + text + b"\n")
        return text + b"\r\n"

    def ok(self, text: Union[str, bytes] = "") -> bytes:
        if isinstance(text, str):
            text = text.encode("utf-8", "surrogateescape")
        return self._line(b"+OK " + text if text else b"+OK")

    def err(self, text: Union[str, bytes], code: str = "") -> bytes:
        if isinstance(text, str):
            text = text.encode("utf-8", "surrogateescape")
        if code and self.extensions:
            text = f"[{code}] ".encode() + text
        return self._line(b"-ERR " + text)

    # -- entry points ----------------------------------------------------
    def start(self) -> list[Event]:
        """The `-a` load (before the greeting, as Plan 9), then the greeting."""
        if self.preauth_box is not None:
            self.loggedin = True
            self.box = self.preauth_box
            try:
                self._load(self.preauth_box)
            except MailboxError as e:
                return [self.err(str(e)), Close()]
        try:
            self.chal = self.auth.challenge("apop")
        except AuthError:
            return [self.err("auth server not responding, try later"), Close()]
        return [self.ok(f"POP3 server ready {self.chal.chal}")]

    def overlong(self) -> list[Event]:
        if self._debug:
            self._debug(b"<overlong line discarded>\n")
        return [self.err("line too long")]

    def handle(self, line: bytes) -> Iterator[Event]:
        """Events answering one command line (its terminator removed)."""
        if self._sasl is not None:
            step, self._sasl = self._sasl, None
            self._log_input(b"<sasl response>")
            yield from step(line)
            return
        word, arg = split_arg(line)
        self._log_input(line, word)
        if not line:   # an empty line ends the session: no reply, no deletions
            yield Close()
            return
        cmd = COMMANDS.get(word.lower())
        if cmd is None or (cmd.extension and not self.extensions):
            yield self.err(b"unknown command " + word)
            return
        if cmd.needauth and not self.loggedin:
            yield self.err(word + b" requires authentication")
            return
        if cmd.most is not None and len(arg.split()) > cmd.most:
            # RFC 1939 gives each command its arguments; more is a mistake,
            # not a request to act on the first ones (Plan 9 ignored them)
            yield self.err(b"too many arguments to " + word)
            return
        yield from cmd.run(self, arg, word)

    def tls_started(self) -> None:
        self.tls = True

    def _log_input(self, line: bytes, word: bytes = b"") -> None:
        if not self._debug:
            return
        if word.lower() == b"pass":
            line = word + b" ****"   # never a password in the debug file
        elif word.lower() == b"auth":
            mech, initial = split_arg(split_arg(line)[1])
            line = word + b" " + mech + (b" ****" if initial else b"")
        self._debug(line + b"\n")

    # -- mailbox -------------------------------------------------------
    def _load(self, box: str) -> None:
        self.mbox = self.host.open_mailbox(box)
        self.msgs = list(self.mbox.messages)
        for m, uidl in zip(self.msgs, unique_ids([m.digest for m in self.msgs])):
            m.uidl = uidl

    def _live(self) -> list[MessageInfo]:
        return [m for m in self.msgs if not m.deleted]

    def _msg(self, arg: bytes) -> MessageInfo | None:
        """Message `atoi(arg)`, or None: out of range or marked deleted."""
        n = atoi(arg)
        if n < 1 or n > len(self.msgs) or self.msgs[n - 1].deleted:
            return None
        return self.msgs[n - 1]

    def idle(self) -> None:
        """The driver waits for the client: a mailbox that can read ahead
        (FsMailbox.prefetch) does so meanwhile."""
        prefetch = getattr(self.mbox, "prefetch", None)
        if prefetch is not None:
            prefetch()
        # and turns the next message into its multi-line data now, while the
        # client reads the last one, rather than after it asks; kept with
        # the very raw object it came from, so used only for those bytes
        peek = getattr(self.mbox, "peek_next", None)
        raw = peek() if peek is not None else None
        if raw is not None and not (self._ready and self._ready[0] is raw):
            self._ready = (raw, stuffed(raw))

    def _sync(self) -> bytes:
        if not self.loggedin or self.mbox is None:
            return self.ok()
        marked = [m for m in self.msgs if m.deleted]
        if marked:
            try:
                self.mbox.delete([m.fsnum for m in marked])
            except MailboxError as e:
                return self.err(str(e))
            for m in marked:
                m.purged = True
        return self.ok()

    def _send_body(self, chunks: Iterable[bytes]) -> Iterator[Event]:
        ready, self._ready = self._ready, None
        if ready and type(chunks) is list and len(chunks) == 1 and chunks[0] is ready[0]:
            yield ready[1]
            if self._debug:
                self._debug(b"-> .\n")
            return
        stuffer = DotStuffer()
        try:
            for chunk in chunks:
                out = stuffer.feed(chunk)
                if out:
                    yield out
        except MailboxError:
            # after +OK an -ERR is impossible; a short message ended by "."
            # would be taken as whole, so drop the connection instead.
            yield Close()
            return
        yield stuffer.end()
        if self._debug:
            self._debug(b"-> .\n")

    def _open(self, m: MessageInfo) -> Iterable[bytes] | None:
        try:
            return self.mbox.open_raw(m.fsnum) if self.mbox else None
        except MailboxError:
            return None

    # -- logins --------------------------------------------------------
    def _setuser(self, arg: bytes) -> bytes | None:
        """Plan 9 setuser: an error reply, or None with user and box set."""
        name = arg.decode("utf-8", "surrogateescape")
        box = ("/mail/box/" + name).encode("utf-8", "surrogateescape")[:BOXPATH_MAX - 1]
        box_s = box.decode("utf-8", "surrogateescape")
        if not username.valid(name) or cleanname(box_s) != box_s:
            return self.err("bad mailbox name")
        self.box = box_s + "/mbox"
        self.user = name.split("/", 1)[0]
        return None

    def _dologin(self, response: str, chal: Challenge | None) -> Iterator[Event]:
        wait = self.guard.begin() if self.guard is not None else 0.0
        if wait is None:            # this address has guessed enough for now
            refusal = self.guard.refusal
            if self.tries >= MAX_FAILURES:
                yield self.err(f"authentication failed: {refusal}; server exiting", "AUTH")
                yield Close()
                return
            self.tries += 1
            yield self.err(refusal, "SYS/TEMP")
            return
        if wait:
            yield Sleep(wait)
        try:
            if chal is None:
                raise AuthError("no challenge")
            # the name factotum vouches for is the one we become (Plan 9's
            # auth_chuid); it can only differ from the one given if the
            # chain read that otherwise
            if chal.respond(self.user, response) != self.user:
                raise AuthError("authenticated as another user")
        except AuthError as e:
            if self.guard is not None:
                self.guard.failed()
            if self.tries >= MAX_FAILURES:
                yield self.err(f"authentication failed: {e}; server exiting", "AUTH")
                yield Close()
                return
            self.tries += 1
            if self.tries == GUESSER_AT:
                self.host.syslog(f"likely password guesser from {self.peer or 'unknown'}")
            self.delay = min(self.delay * 2, MAX_DELAY)
            yield Sleep(self.delay * self.delay_scale)
            yield self.err("authentication failed", "AUTH")
            return
        self._drop_challenge()
        if self.guard is not None:
            self.guard.succeeded()
        try:
            self.host.login(self.user)
        except HostError as e:
            yield self.err(f"newns failed: {e}; server exiting")
            yield Close()
            return
        self.loggedin = True
        self.host.syslog(f"user {self.user} logged in")
        if self.peer:
            self.host.ratify(self.peer)
        try:
            self._load(self.box)
        except MailboxError as e:
            yield self.err(str(e), e.code)
            yield Close()
            return
        yield self.ok(f"mailbox is {self.box}")

    def _drop_challenge(self) -> None:
        if self.chal is not None:
            self.chal.close()
            self.chal = None

    def _clear_ok(self) -> bool:
        return self.allow_clear or self.tls

    def _password_login(self, password: bytes) -> Iterator[Event]:
        self._drop_challenge()
        try:
            self.chal = self.auth.challenge("apop")
        except AuthError:
            yield self.err("couldn't get apop challenge")
            return
        yield from self._dologin(apop_digest(self.chal.chal, password), self.chal)


# ---------------------------------------------------------------- commands
@dataclass(frozen=True)
class Command:
    run: Callable[[Session, bytes, bytes], Iterator[Event]]
    needauth: bool = False
    extension: bool = False   # RFC 5034 AUTH: only with extensions enabled
    most: int | None = 0      # arguments it takes at most (None: the rest is one)


def _apop(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    if s.loggedin:
        yield s.err("already authenticated")
        return
    user, resp = split_arg(arg)
    bad = s._setuser(user)
    if bad:
        yield bad
        return
    yield from s._dologin(resp.decode("latin-1"), s.chal)


def _capa(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    lines = [s.ok(), s._line("TOP")]
    if s._clear_ok():
        lines.append(s._line("USER"))
    lines += [s._line("PIPELINING"), s._line("UIDL")]
    if s.tls_cert and not s.tls:        # only when STLS can succeed (docs/decisions.md)
        lines.append(s._line("STLS"))
    if s.extensions:
        mechs = "CRAM-MD5 PLAIN" if s._clear_ok() else "CRAM-MD5"
        lines += [s._line(f"SASL {mechs}"), s._line("RESP-CODES"),
                  s._line("AUTH-RESP-CODE"), s._line(f"IMPLEMENTATION {IMPLEMENTATION}")]
    lines.append(s._line("."))
    yield b"".join(lines)


def _numbered(s: Session, arg: bytes, cmd: str):
    """The message that DELE, RETR or TOP names, or the -ERR text."""
    if not arg:
        return None, f"{cmd} requires a message number"
    m = s._msg(arg)
    return (m, None) if m is not None else (None, "no such message")


def _dele(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    m, err = _numbered(s, arg, "DELE")
    if err:
        yield s.err(err)
        return
    m.deleted = True
    yield s.ok(f"message {atoi(arg)} deleted")


def _list(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    if arg:
        m = s._msg(arg)
        yield s.ok(f"{atoi(arg)} {m.size}") if m else s.err("no such message")
        return
    live = s._live()
    total = sum(m.size for m in live)
    out = [s.ok(f"+{len(live)} message{'' if len(live) == 1 else 's'} ({total} octets)")]
    out += [s._line(f"{i} {m.size}") for i, m in enumerate(s.msgs, 1) if not m.deleted]
    out.append(s._line("."))
    yield b"".join(out)


def _noop(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    yield s.ok()


def _pass(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    if s.loggedin:
        yield s.err("already authenticated")
        return
    if not s._clear_ok():
        yield s.err("password in the clear disallowed")
        return
    yield from s._password_login(arg)


def _quit(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    yield s._sync()
    yield Close()


def _rset(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    for m in s.msgs:
        if not m.purged:   # what SYNC removed from the file cannot come back
            m.deleted = False
    yield s.ok()


def _send_message(s: Session, m: MessageInfo, cut: Callable[[Iterable[bytes]], Iterable[bytes]]
                  ) -> Iterator[Event]:
    """RETR's and TOP's answer: +OK and the message as `cut` leaves it, or
    -ERR when it went from upasfs since the listing."""
    chunks = s._open(m)
    if chunks is None:
        yield s.err("message disappeared")
        return
    yield s.ok()
    yield from s._send_body(cut(chunks))


def _retr(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    m, err = _numbered(s, arg, "RETR")
    if err:
        yield s.err(err)
        return
    yield from _send_message(s, m, lambda chunks: chunks)


def _stat(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    live = s._live()
    yield s.ok(f"{len(live)} {sum(m.size for m in live)}")


def _stls(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    if s.tls:
        yield s.err("tls already started")
    elif not s.tls_cert:
        yield s.err("don't have any tls credentials")
    else:
        yield s.ok()
        yield StartTLS()


def _syncc(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    yield s._sync()


def _top(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    m, err = _numbered(s, arg, "TOP")
    if err:
        yield s.err(err)
        return
    _, count = split_arg(arg)
    if not count:
        yield s.err("TOP requires a line count")
        return
    nlines = atoi(count)
    if nlines < 0:
        yield s.err("bad args to TOP")
        return
    yield from _send_message(s, m, lambda chunks: top_cut(chunks, nlines))


def _uidl(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    if arg:
        m = s._msg(arg)
        yield s.ok(f"{atoi(arg)} {m.uidl}") if m else s.err("no such message")
        return
    out = [s.ok()]
    out += [s._line(f"{i} {m.uidl}") for i, m in enumerate(s.msgs, 1) if not m.deleted]
    out.append(s._line("."))
    yield b"".join(out)


def _user(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    if s.loggedin:
        yield s.err("already authenticated")
    elif not arg:
        yield s.err("USER requires argument")
    else:
        yield s._setuser(arg) or s.ok()


# -- RFC 5034 AUTH (extensions only) ------------------------------------
def _auth(s: Session, arg: bytes, word: bytes) -> Iterator[Event]:
    if s.loggedin:
        yield s.err("already authenticated")
        return
    mech, initial = split_arg(arg)
    mech = mech.upper()
    if mech == b"CRAM-MD5" and not initial:
        try:
            chal = s.auth.challenge("cram")
        except AuthError:
            yield s.err("auth server not responding, try later")
            return
        s._sasl = lambda line: _cram_step(s, chal, line)
        yield s._line(b"+ " + base64.b64encode(chal.chal.encode()))
    elif mech == b"PLAIN" and s._clear_ok():
        if initial:
            yield from _plain_step(s, initial)
        else:
            s._sasl = lambda line: _plain_step(s, line)
            yield s._line("+ ")
    else:
        yield s.err("unsupported authentication mechanism")


def _sasl_decode(line: bytes) -> bytes | None:
    if line == b"*":
        return None
    try:
        return base64.b64decode(line, validate=True)
    except ValueError:
        return None


def _cram_step(s: Session, chal: Challenge, line: bytes) -> Iterator[Event]:
    try:
        data = _sasl_decode(line)
        if data is None:
            yield s.err("authentication cancelled" if line == b"*" else "bad base64")
            return
        user, _, digest = data.rpartition(b" ")
        bad = s._setuser(user) if user else s.err("bad mailbox name")
        if bad:
            yield bad
            return
        yield from s._dologin(digest.decode("latin-1"), chal)
    finally:
        chal.close()


def _plain_step(s: Session, line: bytes) -> Iterator[Event]:
    data = _sasl_decode(line)
    parts = data.split(b"\0") if data is not None else []
    if len(parts) != 3:
        yield s.err("authentication cancelled" if line == b"*" else "bad base64")
        return
    authz, authc, password = parts
    if authz and authz != authc:
        yield s.err("authorization identity must equal authentication identity", "AUTH")
        return
    bad = s._setuser(authc)
    if bad:
        yield bad
        return
    yield from s._password_login(password)


# the arguments at most: RFC 1939 (RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
# AUTH, Plan 9's SYNC); PASS takes the rest of the line (RFC 1939 7), and
# USER too (Plan 9: `USER name/sub`, a mailbox name with blanks)
COMMANDS: dict[bytes, Command] = {
    b"apop": Command(_apop, most=2),
    b"auth": Command(_auth, extension=True, most=2),
    b"capa": Command(_capa),
    b"dele": Command(_dele, needauth=True, most=1),
    b"list": Command(_list, needauth=True, most=1),
    b"noop": Command(_noop),
    b"pass": Command(_pass, most=None),
    b"quit": Command(_quit),
    b"rset": Command(_rset),
    b"retr": Command(_retr, needauth=True, most=1),
    b"stat": Command(_stat, needauth=True),
    b"stls": Command(_stls),
    b"sync": Command(_syncc, needauth=True),
    b"top": Command(_top, needauth=True, most=2),
    b"uidl": Command(_uidl, needauth=True, most=1),
    b"user": Command(_user, most=None),       # `USER name/sub` may hold blanks
}
