"""LIST and LSUB (docs/spec/servers.md §3.10), with RFC 5258 LIST-EXTENDED's cheap
parts (selection SUBSCRIBED/REMOTE/RECURSIVEMATCH/SPECIAL-USE, RETURN
(SUBSCRIBED CHILDREN SPECIAL-USE), several patterns), CHILDREN (RFC 3348)
and SPECIAL-USE (RFC 6154).

The mail tree is /mail/box/USER: a directory is a `\\Noselect` folder, a
file is a mailbox (`\\Noinferiors`, plus `\\Marked` when its `.imp` is
missing or older than the mailbox, as Plan 9).  INBOX (the file `mbox`)
comes first; names are printed quoted in modified UTF-7.  Files a client
could not name (names.is_listable) are never shown.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import mutf7, names, subscriptions
from .envelope import quote
from .folders import STATUS_ITEMS, status_line
from . import parser as p
from upas import ns as nsmod

MAX_DEPTH = 32  # `*` descends at most this far (a loop guard)
SPECIAL_USE = {"sent": "\\Sent", "drafts": "\\Drafts", "trash": "\\Trash", "junk": "\\Junk"}


class PatternError(Exception):
    """A reference/pattern that names something outside the mail dir."""


@dataclass
class Entry:
    path: str            # relative to the mail dir; "mbox" is the inbox
    isdir: bool
    attrs: list[str]

    @property
    def wire(self) -> str:
        return names.display(self.path)


def pattern_regex(pattern: str, fold: bool = False) -> re.Pattern:
    """`*` matches anything, `%` anything but the separator."""
    rx = "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile(rx + r"\Z", re.S | (re.I if fold else 0))


def combine(ref: str, pattern: str) -> str:
    """The canonical pattern: the reference prefixed to the mailbox pattern."""
    full = pattern if pattern.startswith("/") else ref + pattern
    comps = full.split("/")
    if full.startswith("/") or ".." in comps:
        raise PatternError("illegal mailbox pattern")
    return full


def _start(pattern: str) -> tuple[str, int]:
    """Where to begin walking for `pattern`, and how many levels to descend."""
    wild = min((i for i, c in enumerate(pattern) if c in "%*"), default=len(pattern))
    start = pattern[:wild].rsplit("/", 1)[0] if "/" in pattern[:wild] else ""
    rest = pattern[len(start):].lstrip("/")
    depth = MAX_DEPTH if "*" in rest else rest.count("/") + 1
    return start, depth


class Tree:
    """The user's mail tree as seen through the namespace."""

    def __init__(self, ns, user: str):
        self.ns, self.user = ns, user

    def _dir(self, path: str) -> list[nsmod.Dir]:
        try:
            return self.ns.readdir(names.box_path(self.user, path))
        except nsmod.Error:
            return []

    def _stat(self, path: str) -> nsmod.Dir | None:
        try:
            return self.ns.stat(names.box_path(self.user, path))
        except nsmod.Error:
            return None

    def walk(self, start: str, depth: int):
        """(path, Dir) of every listable entry below `start`, `depth` levels."""
        if depth <= 0:
            return
        for d in self._dir(start):
            path = f"{start}/{d.name}" if start else d.name
            if not names.is_listable(path):
                continue
            yield path, d
            if d.isdir:
                yield from self.walk(path, depth - 1)

    def has_children(self, path: str) -> bool:
        return any(names.is_listable(f"{path}/{d.name}") for d in self._dir(path))

    def entry(self, path: str, d: nsmod.Dir | None = None) -> Entry | None:
        """The Entry for `path`, or None when it does not exist."""
        d = d or self._stat(path)
        if d is None:
            return None
        if d.isdir:
            kids = "\\HasChildren" if self.has_children(path) else "\\HasNoChildren"
            return Entry(path, True, ["\\Noselect", kids])
        attrs = ["\\Noinferiors"]
        imp = self._stat(path + ".imp")
        if imp is None or imp.mtime < d.mtime:
            attrs.append("\\Marked")
        use = SPECIAL_USE.get(path.lower()) if "/" not in path else None
        if use:
            attrs.append(use)
        return Entry(path, False, attrs)

    def match(self, pattern: str) -> list[Entry]:
        """Every entry whose name matches the canonical pattern, INBOX first."""
        out: list[Entry] = []
        if pattern_regex(pattern, fold=True).match(names.INBOX):
            e = self.entry(names.INBOX_FILE)
            if e:
                out.append(e)
        rx = pattern_regex(pattern)
        start, depth = _start(pattern)
        if start and not names.is_listable(start):
            return out
        for path, d in sorted(self.walk(start, depth), key=lambda t: t[0]):
            if path != names.INBOX_FILE and rx.match(path):
                e = self.entry(path, d)
                if e:
                    out.append(e)
        return out


# ---------------------------------------------------------------- commands

@dataclass
class ListArgs:
    ref: str              # decoded from modified UTF-7
    patterns: list[str]
    select: set[str]
    ret: set[str]
    extended: bool
    status: set[str] = field(default_factory=set)   # LIST-STATUS items


def _mailbox_pattern(r: p.Reader) -> bytes:
    return r.astring(extra=b"%*")


def _opts(r: p.Reader) -> set[str]:
    return {w.upper() for w in r.paren_list(r.atom)}


def _decode_pattern(raw: bytes) -> str:
    """A pattern in modified UTF-7; a `&` that does not start a valid
    encoding stands for itself (the grammar allows any list-char, and a
    pattern that cannot name a mailbox just matches nothing)."""
    try:
        return names.decode(raw)
    except (mutf7.DecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


def parse_list(r: p.Reader) -> ListArgs:
    select: set[str] = set()
    extended = False
    if r.peek() == 0x28:
        select, extended = _opts(r), True
        r.sp()
    ref = r.astring()
    r.sp()
    if r.peek() == 0x28:
        patterns, extended = r.paren_list(lambda: _mailbox_pattern(r), empty_ok=False), True
    else:
        patterns = [_mailbox_pattern(r)]
    ret: set[str] = set()
    status: set[str] = set()
    if not r.at_end() and r.peek() == 0x20:
        r.sp()
        if not r.accept(b"RETURN "):
            raise p.ParseError()
        ret, status, extended = *_return_opts(r), True
    known_sel = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
    known_ret = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"}
    if not select <= known_sel or not ret <= known_ret:
        raise p.ParseError()
    if "RECURSIVEMATCH" in select and not select & {"SUBSCRIBED", "SPECIAL-USE"}:
        raise p.ParseError()
    return ListArgs(_decode_pattern(ref), [_decode_pattern(x) for x in patterns], select, ret,
                    extended, status)


def _return_opts(r: p.Reader) -> tuple[set[str], set[str]]:
    """RETURN (...): option atoms, and the items of RFC 5819's STATUS (...)."""
    status: set[str] = set()

    def opt() -> str:
        w = r.atom().upper()
        if w == "STATUS":
            r.sp()
            items = {i.upper() for i in r.paren_list(r.atom, empty_ok=False)}
            if not items <= set(STATUS_ITEMS):
                raise p.ParseError("illegal status item")
            status.update(items)
        return w
    opts = set(r.paren_list(opt))
    return opts, status


def parse_lsub(r: p.Reader) -> ListArgs:
    ref = r.astring()
    r.sp()
    return ListArgs(_decode_pattern(ref), [_decode_pattern(_mailbox_pattern(r))], set(), set(),
                    False)


def _root_line(s, req, ref: str) -> None:
    """An empty pattern: the hierarchy delimiter and the reference's root."""
    root = ref[:ref.index("/") + 1] if "/" in ref else ""
    s.untagged(f"{req.name.upper()} (\\Noselect) \"/\" {quote(names.encode(root))}")
    s.tagged(req, f"OK {req.name}")


def _subscribed(s) -> set[str]:
    return set(subscriptions.read(s.ns, s.user))


def _stored(e: Entry) -> str:
    return names.INBOX if e.path == names.INBOX_FILE else e.path


def _emit(s, req, e: Entry, extra: list[str] = (), ext: str = "") -> None:
    attrs = " ".join(e.attrs + list(extra))
    s.untagged(f"{req.name.upper()} ({attrs}) \"/\" {quote(e.wire)}{ext}")


def _patterns(s, req, args: ListArgs) -> list[str] | None:
    try:
        return [combine(args.ref, pt) for pt in args.patterns]
    except PatternError as e:
        s.tagged(req, f"NO {e}")
        return None


def cmd_list(s, req) -> None:
    args: ListArgs = req.args
    if not args.extended and args.patterns == [""]:
        return _root_line(s, req, args.ref)
    pats = _patterns(s, req, args)
    if pats is None:
        return
    tree = Tree(s.ns, s.user)
    want_sub = "SUBSCRIBED" in args.select or "SUBSCRIBED" in args.ret
    subs = _subscribed(s) if want_sub else set()
    recursive = "RECURSIVEMATCH" in args.select and "SUBSCRIBED" in args.select
    seen: set[str] = set()
    for pat in pats:
        if "SUBSCRIBED" in args.select:
            entries = _subscribed_selection(tree, subs, pat, recursive)
        else:
            entries = [(e, False) for e in tree.match(pat)]
        for e, childinfo in entries:
            if e.path in seen:
                continue
            seen.add(e.path)
            if "SPECIAL-USE" in args.select and not set(e.attrs) & set(SPECIAL_USE.values()):
                continue
            extra = ["\\Subscribed"] if want_sub and _stored(e) in subs else []
            _emit(s, req, e, extra, ' ("CHILDINFO" ("SUBSCRIBED"))' if childinfo else "")
            # RFC 5819 3: no STATUS for a name listed only for its children
            if args.status and not set(e.attrs) & {"\\Noselect", "\\NonExistent"} \
                    and (extra or not childinfo):
                _list_status(s, e, args.status)
    s.ok(req, "completed")


def _subscribed_selection(tree: Tree, subs: set[str], pattern: str,
                          recursive: bool) -> list[tuple[Entry, bool]]:
    """LIST (SUBSCRIBED [RECURSIVEMATCH]): the subscribed names matching,
    existing or not, each with whether it gets CHILDINFO.  With
    RECURSIVEMATCH (RFC 5258 3.5 and its example 9: `LIST (RECURSIVEMATCH
    SUBSCRIBED) "" "*2"`) a name matching the pattern gets CHILDINFO, and
    is listed even when not subscribed itself, when a subscribed name
    below it does not match the pattern (so is not listed itself)."""
    chosen = {e.path: [e, False] for e in _subscribed_entries(tree, subs, pattern)}
    if recursive:
        rx = pattern_regex(pattern)
        for n in subs:
            if n == names.INBOX or rx.match(n):
                continue
            parts = n.split("/")
            for k in range(1, len(parts)):
                parent = "/".join(parts[:k])
                if not rx.match(parent) or not names.is_listable(parent):
                    continue
                if parent not in chosen:
                    chosen[parent] = [tree.entry(parent) or Entry(parent, True, ["\\NonExistent"]),
                                      False]
                chosen[parent][1] = True
    order = sorted(chosen, key=lambda p: (p != names.INBOX_FILE, p))
    return [(chosen[p][0], chosen[p][1]) for p in order]


def _list_status(s, e: Entry, items: set[str]) -> None:
    """RFC 5819: the STATUS of a listed mailbox right after its LIST line;
    a box that cannot be opened just gets no STATUS line."""
    from .mailbox import MailboxError
    try:
        s.untagged(status_line(s, e.path, items, quote(e.wire)))
    except (MailboxError, nsmod.Error) as err:
        s.log(f"list-status {e.path}: {err}")


def _subscribed_entries(tree: Tree, subs: set[str], pattern: str) -> list[Entry]:
    """LSUB and LIST (SUBSCRIBED): subscribed names matching, existing or not."""
    out = []
    rx = pattern_regex(pattern)
    order = sorted(subs, key=lambda n: (n != names.INBOX, n))
    for stored in order:
        if stored == names.INBOX:
            if not pattern_regex(pattern, fold=True).match(names.INBOX):
                continue
            path = names.INBOX_FILE
        else:
            if not rx.match(stored) or not names.is_listable(stored):
                continue
            path = stored
        # a subscribed name that no longer exists: RFC 5258 \NonExistent
        # (LSUB says \Noselect, as Plan 9)
        out.append(tree.entry(path) or Entry(path, False, ["\\NonExistent"]))
    return out


def cmd_lsub(s, req) -> None:
    args: ListArgs = req.args
    if args.patterns == [""]:
        return _root_line(s, req, args.ref)
    pats = _patterns(s, req, args)
    if pats is None:
        return
    tree = Tree(s.ns, s.user)
    subs = _subscribed(s)
    entries = _subscribed_entries(tree, subs, pats[0])
    for e in entries:
        attrs = ["\\Noselect" if a == "\\NonExistent" else a for a in e.attrs]
        _emit(s, req, Entry(e.path, e.isdir, attrs))
    # RFC 3501 6.3.9: with `%`, a level above a subscribed name that the
    # pattern stops at is listed \Noselect
    shown = {e.path for e in entries}
    rx = pattern_regex(pats[0])
    stopped = {n.rsplit("/", k)[0] for n in subs if not rx.match(n)
               for k in range(1, n.count("/") + 1)}
    for parent in sorted(stopped - shown - subs):
        if rx.match(parent) and names.is_listable(parent):
            _emit(s, req, Entry(parent, True, ["\\Noselect"]))
    s.ok(req, "completed")
