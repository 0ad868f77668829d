"""IMAP command parsing, sans-I/O.

Two layers:

* ``Framer`` turns the byte stream into commands.  A line ending in a
  literal marker ``{n}`` (or LITERAL+ ``{n+}``) is reported as a
  ``LiteralEvent``; the session answers ``accept()`` (and sends
  ``+ Ready for literal data`` for a synchronising literal) or ``refuse()``.
  A complete command is a ``CommandEvent`` whose ``parts`` alternate line
  text and literal data: ``[text0, lit0, text1, ..., textN]``.  Line and
  literal sizes are bounded; nothing larger is ever buffered.
* ``Reader`` walks those parts with the strict grammar of Plan 9's imap4d
  (one space between arguments, nothing after the last), and the argument
  parsers below it build fetch attributes, search keys, flags and sets.
  Errors raise ``ParseError`` carrying the Plan 9 message text.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from typing import Callable, TypeVar

T = TypeVar("T")

MAX_NUMBER = 2**32 - 1
STAR = MAX_NUMBER + 1      # `*` in a set: the highest number (resolved later)
SAVED = STAR + 1           # `$` (RFC 5182): the set is the last SEARCH ... RETURN (SAVE)
SAVED_SET = [(SAVED, SAVED)]

SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent")
_SYSFLAG = {f.lower(): f for f in SYSTEM_FLAGS}

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = {m.lower(): i + 1 for i, m in enumerate(MONTHS)}


class ParseError(Exception):
    """A syntax error; ``msg`` is the text after ``<tag> BAD <cmd> ``."""

    def __init__(self, msg: str = "bad syntax"):
        super().__init__(msg)
        self.msg = msg


# ---------------------------------------------------------------- framing

@dataclass
class CommandEvent:
    parts: list[bytes]


@dataclass
class LiteralEvent:
    parts: list[bytes]       # the command so far; the last text ends in {n}
    size: int
    sync: bool               # False for LITERAL+ {n+}


@dataclass
class TooLongEvent:
    prefix: bytes            # the first bytes of the discarded line


_LITERAL_AT_END = re.compile(rb"\{(\d{1,10})(\+?)\}$")


class Framer:
    """Assemble commands from bytes, pausing at each literal for a decision."""

    def __init__(self, max_line: int = 65536, max_literal: int = 64 << 20):
        self.max_line = max_line
        self.max_literal = max_literal
        self.buf = bytearray()
        self.parts: list[bytes] = []
        self.pending: LiteralEvent | None = None
        self.literal_need = 0        # bytes of an accepted literal still to come
        self.skip = 0                # bytes of a refused LITERAL+ to throw away
        self.discarding = False      # dropping the rest of an overlong line

    def feed(self, data: bytes) -> None:
        self.buf += data

    def accept(self) -> None:
        """Take the pending literal: its bytes become the next part."""
        assert self.pending is not None
        self.literal_need = self.pending.size
        self.pending = None

    def refuse(self) -> None:
        """Refuse the pending literal; the command is dropped.  A LITERAL+
        literal is already on its way, so its bytes and the rest of its
        command line are read and thrown away."""
        assert self.pending is not None
        if not self.pending.sync:
            self.skip = self.pending.size
            self.discarding = True
        self.pending = None
        self.parts = []

    def discard(self) -> None:
        """Forget every byte fed and any command half read (STARTTLS: what
        came in the clear after it is not to be trusted)."""
        self.buf.clear()
        self.parts = []
        self.pending = None
        self.literal_need = self.skip = 0
        self.discarding = False

    def readline(self) -> bytes | None:
        """A raw line (AUTHENTICATE responses, IDLE's DONE), or None if
        no complete line is buffered.  Overlong lines are cut at max_line."""
        i = self.buf.find(b"\n")
        if i < 0:
            if len(self.buf) > self.max_line:
                line = bytes(self.buf[:self.max_line])
                del self.buf[:self.max_line]
                self.discarding = True
                return line
            return None
        line = bytes(self.buf[:i])
        del self.buf[:i + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def next_event(self) -> CommandEvent | LiteralEvent | TooLongEvent | None:
        """The next event, or None when more bytes are needed."""
        if self.pending is not None:
            return self.pending
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                del self.buf[:n]
                self.skip -= n
                if self.skip:
                    return None
            if self.literal_need:
                if len(self.buf) < self.literal_need:
                    return None
                self.parts.append(bytes(self.buf[:self.literal_need]))
                del self.buf[:self.literal_need]
                self.literal_need = 0
            i = self.buf.find(b"\n")
            if i < 0:
                if len(self.buf) > self.max_line and not self.discarding:
                    prefix = bytes(self.buf[:64])
                    self.buf.clear()
                    self.parts = []
                    self.discarding = True
                    return TooLongEvent(prefix)
                if self.discarding:
                    self.buf.clear()
                return None
            line = bytes(self.buf[:i])
            del self.buf[:i + 1]
            if self.discarding:
                self.discarding = False
                continue
            if len(line) > self.max_line:
                self.parts = []
                return TooLongEvent(line[:64])
            if line.endswith(b"\r"):
                line = line[:-1]
            self.parts.append(line)
            m = _LITERAL_AT_END.search(line)
            if m and int(m.group(1)) <= MAX_NUMBER:
                self.pending = LiteralEvent(list(self.parts), int(m.group(1)),
                                            not m.group(2))
                return self.pending
            parts, self.parts = self.parts, []
            return CommandEvent(parts)


# ---------------------------------------------------------------- reading

_TAG_EXCLUDED = set(b'+(){%*"\\')
_ATOM_EXCLUDED = set(b'(){%*"\\')


class Reader:
    """A cursor over a command's parts with the strict imap4d grammar."""

    def __init__(self, parts: list[bytes]):
        self.parts = parts
        self.i = 0
        self.pos = 0

    # -- low level
    @property
    def text(self) -> bytes:
        return self.parts[self.i]

    def peek(self) -> int | None:
        """The next byte, or None at the end of a line part."""
        return self.text[self.pos] if self.pos < len(self.text) else None

    def at_end(self) -> bool:
        return self.i == len(self.parts) - 1 and self.pos == len(self.text)

    def end(self) -> None:
        if not self.at_end():
            raise ParseError()

    def sp(self) -> None:
        self.expect(b" ")

    def expect(self, s: bytes) -> None:
        if self.text[self.pos:self.pos + len(s)] != s:
            raise ParseError()
        self.pos += len(s)

    def accept(self, s: bytes) -> bool:
        """Consume S (case-insensitively) if it comes next."""
        if self.text[self.pos:self.pos + len(s)].upper() == s.upper():
            self.pos += len(s)
            return True
        return False

    def _run(self, ok: Callable[[int], bool]) -> bytes:
        start = self.pos
        t = self.text
        while self.pos < len(t) and ok(t[self.pos]):
            self.pos += 1
        return t[start:self.pos]

    # -- tokens
    def tag(self) -> str:
        t = self._run(lambda c: 0x21 <= c <= 0x7e and c not in _TAG_EXCLUDED)
        if not t:
            raise ParseError()
        return t.decode("ascii")

    def atom(self, extra: bytes = b"") -> str:
        t = self._run(lambda c: (0x21 <= c <= 0x7e and c not in _ATOM_EXCLUDED)
                      or c in extra)
        if not t:
            raise ParseError()
        return t.decode("ascii")

    def fetch_word(self) -> str:
        """An atom that stops at `[`, `]` and `<` (fetch attribute names)."""
        t = self._run(lambda c: 0x21 <= c <= 0x7e and c not in _ATOM_EXCLUDED
                      and c not in b"[]<")
        if not t:
            raise ParseError("illegal fetch attribute")
        return t.decode("ascii")

    def number(self, nonzero: bool = False) -> int:
        d = self._run(lambda c: 0x30 <= c <= 0x39)
        if not d:
            raise ParseError()
        n = int(d)
        if n > MAX_NUMBER:
            raise ParseError("number out of range")
        if nonzero and n == 0:
            raise ParseError()
        return n

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        t = self.text
        while True:
            if self.pos >= len(t):
                raise ParseError()
            c = t[self.pos]
            self.pos += 1
            if c == 0x22:
                return bytes(out)
            if c == 0x5c:
                if self.pos >= len(t) or t[self.pos] not in b'\\"':
                    raise ParseError()
                c = t[self.pos]
                self.pos += 1
            elif c == 0 or c >= 0x80 or c in b"\r\n":
                raise ParseError()
            out.append(c)

    def literal(self) -> bytes:
        m = _LITERAL_AT_END.match(self.text, self.pos)
        if not m or m.end() != len(self.text):
            # `{` with junk, or a number too long to be a literal
            d = re.match(rb"\{(\d+)\+?\}$", self.text[self.pos:])
            if d and int(d.group(1)) > MAX_NUMBER:
                raise ParseError("number out of range")
            raise ParseError()
        if int(m.group(1)) > MAX_NUMBER or self.i + 2 >= len(self.parts):
            raise ParseError("number out of range" if int(m.group(1)) > MAX_NUMBER
                             else "bad syntax")
        data = self.parts[self.i + 1]
        self.i += 2
        self.pos = 0
        return data

    def string(self) -> bytes:
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7b:
            return self.literal()
        raise ParseError()

    def astring(self, extra: bytes = b"") -> bytes:
        c = self.peek()
        if c in (0x22, 0x7b):
            return self.string()
        return self.atom(extra).encode("ascii")

    def nstring_or_atom_text(self) -> str:
        """An astring decoded as UTF-8 (search patterns, header names)."""
        return self.astring().decode("utf-8", "replace")

    def paren_list(self, item: Callable[[], T], empty_ok: bool = True) -> list[T]:
        """`(item SP item ...)`."""
        self.expect(b"(")
        out: list[T] = []
        if self.peek() == 0x29:
            if not empty_ok:
                raise ParseError()
            self.pos += 1
            return out
        while True:
            out.append(item())
            if self.peek() == 0x29:
                self.pos += 1
                return out
            self.sp()

    # -- compound arguments
    def seqset(self, star_ok: bool = True) -> list[tuple[int, int]]:
        """A sequence set as sorted (lo, hi) ranges; `*` is STAR; `$`
        alone (RFC 5182's seq-last-command) is SAVED_SET."""
        if self.peek() == 0x24:
            self.pos += 1
            return list(SAVED_SET)
        ranges = []
        while True:
            lo = self._seqnum(star_ok)
            hi = lo
            if self.peek() == 0x3a:
                self.pos += 1
                hi = self._seqnum(star_ok)
            ranges.append((min(lo, hi), max(lo, hi)))
            if self.peek() != 0x2c:
                return ranges
            self.pos += 1

    def _seqnum(self, star_ok: bool) -> int:
        if self.peek() == 0x2a:
            if not star_ok:
                raise ParseError()
            self.pos += 1
            return STAR
        return self.number(nonzero=True)

    def flag(self) -> str:
        """A flag: a system flag (canonical case) or a keyword atom
        (docs/decisions.md: keywords are stored, not refused)."""
        word = self._run(lambda c: 0x21 <= c <= 0x7e and c not in _ATOM_EXCLUDED
                         and c != 0x5d or c == 0x5c)
        if not word:
            raise ParseError()
        name = word.decode("ascii")
        if name.startswith("\\"):
            f = _SYSFLAG.get(name.lower())
            if f is None:
                raise ParseError("flag not supported")
            return f
        if "\\" in name:
            raise ParseError()
        return name

    def flag_list(self) -> list[str]:
        """`(flags...)` or a bare space-separated flag sequence."""
        if self.peek() == 0x28:
            return self.paren_list(self.flag)
        if self.peek() is None:
            raise ParseError("no flags given")
        flags = [self.flag()]
        while self.peek() == 0x20:
            self.pos += 1
            flags.append(self.flag())
        return flags

    def date(self) -> tuple[int, int, int]:
        """`d-Mon-yyyy`, optionally quoted: (year, month, day)."""
        quoted = self.peek() == 0x22
        if quoted:
            self.pos += 1
        raw = self._run(lambda c: c not in b' )"')
        if quoted:
            self.expect(b'"')
        m = re.fullmatch(rb"(\d{1,2})-([A-Za-z]{3})-(\d{4})", raw)
        if not m or m.group(2).decode().lower() not in _MONTH:
            raise ParseError("bad date format")
        y, mo, d = int(m.group(3)), _MONTH[m.group(2).decode().lower()], int(m.group(1))
        if not 1 <= d <= calendar.monthrange(y, mo)[1]:
            raise ParseError("bad date format")
        return (y, mo, d)

    def date_time(self) -> int:
        """RFC 3501 date-time `"dd-Mon-yyyy hh:mm:ss +zzzz"` (space-padded
        day allowed) as a Unix time.  Bad ones: `illegal date format`."""
        s = self.quoted()
        m = re.fullmatch(rb"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)", s)
        if not m or m.group(2).decode().lower() not in _MONTH:
            raise ParseError("illegal date format")
        d, mo, y = int(m.group(1)), _MONTH[m.group(2).decode().lower()], int(m.group(3))
        hh, mm, ss = int(m.group(4)), int(m.group(5)), int(m.group(6))
        if not (1 <= d <= calendar.monthrange(y, mo)[1] and hh < 24 and mm < 60 and ss < 61):
            raise ParseError("illegal date format")
        off = (int(m.group(8)) * 60 + int(m.group(9))) * 60
        if m.group(7) == b"-":
            off = -off
        return calendar.timegm((y, mo, d, hh, mm, ss)) - off


# ---------------------------------------------------------------- fetch

@dataclass(frozen=True)
class Section:
    part: tuple[int, ...] = ()
    text: str = ""                    # "", HEADER, HEADER.FIELDS[.NOT], TEXT, MIME
    fields: tuple[str, ...] = ()

    def label(self) -> str:
        spec = ".".join(map(str, self.part))
        if self.text:
            spec = (spec + "." if spec else "") + self.text
        if self.fields:
            spec += " (" + " ".join('"%s"' % f for f in self.fields) + ")"
        return spec


@dataclass(frozen=True)
class FetchAtt:
    name: str                               # FLAGS, UID, BODY[], RFC822, ...
    section: Section | None = None          # for BODY[...]
    partial: tuple[int, int] | None = None  # (start, count)
    peek: bool = False


_SIMPLE_ATTS = ("ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER",
                "RFC822.SIZE", "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID")
MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


def fetch_atts(r: Reader) -> list[FetchAtt]:
    """`ALL`/`FAST`/`FULL`, one attribute, or a parenthesised list."""
    if r.peek() == 0x28:
        return r.paren_list(lambda: fetch_att(r), empty_ok=False)
    save = r.pos
    word = r.fetch_word().upper()
    if word in MACROS and r.peek() != 0x5b:
        return [FetchAtt(n) for n in MACROS[word]]
    r.pos = save
    return [fetch_att(r)]


def fetch_att(r: Reader) -> FetchAtt:
    word = r.fetch_word().upper()
    if word in ("BODY", "BODY.PEEK") and r.peek() == 0x5b:
        r.pos += 1
        sec = section(r)
        partial = None
        if r.peek() == 0x3c:
            r.pos += 1
            start = r.number()
            r.expect(b".")
            count = r.number(nonzero=True)
            r.expect(b">")
            partial = (start, count)
        return FetchAtt("BODY[]", sec, partial, word == "BODY.PEEK")
    if word in _SIMPLE_ATTS:
        return FetchAtt(word)
    raise ParseError("illegal fetch attribute")


def section(r: Reader) -> Section:
    """After `[`: a section spec and its `]`."""
    part: list[int] = []
    text = ""
    fields: tuple[str, ...] = ()
    try:
        while r.peek() is not None and 0x30 <= r.peek() <= 0x39:
            part.append(r.number(nonzero=True))
            if r.peek() != 0x2e:
                break
            r.pos += 1
            if not (r.peek() is not None and 0x30 <= r.peek() <= 0x39):
                break
        if r.peek() != 0x5d:
            word = r._run(lambda c: c not in b" ]").decode("ascii", "replace").upper()
            if word in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
                r.sp()
                fields = tuple(f.decode("ascii") for f in r.paren_list(r.astring, empty_ok=False))
            elif word not in ("HEADER", "TEXT", "MIME") or (word == "MIME" and not part):
                raise ParseError("illegal fetch section text")
            text = word
        elif part and r.text[r.pos - 1] == 0x2e:
            raise ParseError("illegal fetch section text")
        r.expect(b"]")
    except (ParseError, UnicodeDecodeError) as e:
        msg = e.msg if isinstance(e, ParseError) and e.msg == "number out of range" else \
            "illegal fetch section text"
        raise ParseError(msg) from None
    return Section(tuple(part), text, fields)


# ---------------------------------------------------------------- search

@dataclass
class Key:
    """A search key: op is AND, OR, NOT, ALL, FLAG, KEYWORD, HEADER, BODY,
    TEXT, ADDR (FROM/TO/CC/BCC), SUBJECT, DATE, SENTDATE, SIZE, SEQ, UID,
    WITHIN (OLDER/YOUNGER)."""
    op: str
    args: tuple = ()
    kids: list["Key"] = field(default_factory=list)


_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "RECENT": ("\\Recent", True), "SEEN": ("\\Seen", True),
    "UNSEEN": ("\\Seen", False),
}
_DATE_KEYS = {"BEFORE": ("DATE", "<"), "ON": ("DATE", "="), "SINCE": ("DATE", ">="),
              "SENTBEFORE": ("SENTDATE", "<"), "SENTON": ("SENTDATE", "="),
              "SENTSINCE": ("SENTDATE", ">=")}


RETURN_OPTIONS = ("MIN", "MAX", "ALL", "COUNT", "SAVE")    # RFC 4731, RFC 5182


def search_return(r: Reader) -> tuple[str, ...] | None:
    """`RETURN (opt ...) SP` (RFC 4731) if it comes next: the options
    (`RETURN ()` is ALL); None if there is none."""
    if not r.accept(b"RETURN "):
        return None

    def option() -> str:
        w = r.atom().upper()
        if w not in RETURN_OPTIONS:
            raise ParseError("unknown search return option")
        return w
    opts = tuple(dict.fromkeys(r.paren_list(option)))
    r.sp()
    return opts or ("ALL",)


def search_program(r: Reader) -> tuple[str | None, Key, tuple[str, ...] | None]:
    """`[RETURN (opts) SP] [CHARSET c SP] key *(SP key)` -> (charset or
    None, AND key, return options or None)."""
    ret = search_return(r)
    charset = None
    save = (r.i, r.pos)
    if r.accept(b"CHARSET "):
        charset = r.astring().decode("ascii", "replace")
        r.sp()
    elif (r.i, r.pos) != save:
        r.i, r.pos = save
    return charset, search_keys(r), ret


def search_keys(r: Reader) -> Key:
    """`key *(SP key)` as one AND key (SORT and THREAD: after the charset)."""
    keys = [search_key(r)]
    while r.peek() == 0x20:
        r.pos += 1
        keys.append(search_key(r))
    return Key("AND", kids=keys)


MAX_SEARCH_NESTING = 256     # `(`, NOT and OR inside one another (docs/decisions.md)


@dataclass
class _Open:
    """A search key whose operands are still being read: `(` (until `)`),
    NOT (one operand) or OR (two)."""
    op: str
    want: int | None                # operands wanted; None: until `)`
    got: int = 0
    kids: list[Key] = field(default_factory=list)


def search_key(r: Reader) -> Key:
    """One search key.  Read without recursion, with an explicit stack of
    the keys still open, so that nesting costs no Python stack; nesting
    deeper than MAX_SEARCH_NESTING is refused.  An OR operand that is an OR
    joins it (OR is associative): a long OR chain is one flat OR."""
    stack: list[_Open] = []
    while True:
        c = r.peek()
        if c == 0x28:
            r.pos += 1
            _push(stack, _Open("AND", None))
            continue
        key = _simple_key(r)
        if isinstance(key, _Open):
            r.sp()
            _push(stack, key)
            continue
        while True:                     # hand the key to the keys open
            if not stack:
                return key
            top = stack[-1]
            top.got += 1
            top.kids += key.kids if top.op == key.op == "OR" else [key]
            if top.want is None:        # `(`: keys until `)`
                if r.peek() == 0x20:
                    r.pos += 1
                    break
                r.expect(b")")
            elif top.got < top.want:
                r.sp()
                break
            stack.pop()
            key = Key(top.op, kids=top.kids)


def _push(stack: list[_Open], k: _Open) -> None:
    if len(stack) >= MAX_SEARCH_NESTING:
        raise ParseError("search program nested too deeply")
    stack.append(k)


def _simple_key(r: Reader) -> Key | _Open:
    """A key without operands, or the _Open of a NOT or OR."""
    c = r.peek()
    if c is not None and 0x30 <= c <= 0x39:
        return Key("SEQ", (r.seqset(),))
    if c in (0x2a, 0x24):              # `*`, `$` (RFC 5182)
        return Key("SEQ", (r.seqset(),))
    try:
        word = r.atom().upper()
    except ParseError:
        raise ParseError("illegal search key") from None
    if word in ("ALL",):
        return Key("ALL")
    if word == "NEW":
        return Key("AND", kids=[Key("FLAG", ("\\Recent", True)), Key("FLAG", ("\\Seen", False))])
    if word == "OLD":
        return Key("FLAG", ("\\Recent", False))
    if word in _FLAG_KEYS:
        return Key("FLAG", _FLAG_KEYS[word])
    if word in ("KEYWORD", "UNKEYWORD"):
        r.sp()
        f = r.flag()
        return Key("FLAG" if f.startswith("\\") else "KEYWORD", (f, word == "KEYWORD"))
    if word == "NOT":
        return _Open("NOT", 1)
    if word == "OR":
        return _Open("OR", 2)
    if word in ("FROM", "TO", "CC", "BCC"):
        r.sp()
        return Key("ADDR", (word.lower(), r.nstring_or_atom_text()))
    if word in ("SUBJECT", "BODY", "TEXT"):
        r.sp()
        return Key(word, (r.nstring_or_atom_text(),))
    if word == "HEADER":
        r.sp()
        name = r.nstring_or_atom_text()
        r.sp()
        return Key("HEADER", (name, r.nstring_or_atom_text()))
    if word in _DATE_KEYS:
        r.sp()
        op, cmp = _DATE_KEYS[word]
        return Key(op, (cmp, r.date()))
    if word in ("LARGER", "SMALLER"):
        r.sp()
        return Key("SIZE", (">" if word == "LARGER" else "<", r.number()))
    if word == "UID":
        r.sp()
        return Key("UID", (r.seqset(),))
    if word in ("OLDER", "YOUNGER"):          # RFC 5032 (WITHIN)
        r.sp()
        return Key("WITHIN", (word == "OLDER", r.number(nonzero=True)))
    raise ParseError("illegal search key")


# ---------------------------------------------------------------- commands

class HeadError(ParseError):
    """A command head that does not parse; `tag` is the tag if that much
    was read (the replies differ: docs/spec/servers.md §3.3)."""

    def __init__(self, msg: str, tag: str | None = None):
        super().__init__(msg)
        self.tag = tag


def command_head(r: Reader) -> tuple[str, str]:
    """`tag SP name`: what every command line starts with."""
    try:
        tag = r.tag()
    except ParseError as e:
        raise HeadError(e.msg) from None
    try:
        r.sp()
        return tag, r.atom()
    except ParseError as e:
        raise HeadError(e.msg, tag) from None


def uid_command(r: Reader) -> str:
    """After `UID`: SP and the name of the command it modifies."""
    r.sp()
    return r.atom()
