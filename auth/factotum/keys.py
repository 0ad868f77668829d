"""Factotum keys: the attribute syntax, templates and the key ring.

An attribute list is what `key`, `delkey` and `start` carry (docs/spec/fs-auth.md
§2.2): rc-quoted tokens `name=value`, `name?` (must be present) and bare
`name` (present, empty value).  Names starting with `!` are private: they
are kept apart from the public attributes and never printed.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable

from lib.rcquote import quote, tokenize

# The kinds of attribute (libauth's AttrNameval, AttrQuery, AttrDefault).
NAMEVAL, QUERY, DEFAULT = "=", "?", ":="

# Attributes a key need only match when it has them (util.c `ignored`).
IGNORED = ("role", "disabled")


@dataclass
class Attr:
    name: str
    value: str = ""
    kind: str = NAMEVAL

    def __str__(self) -> str:
        if self.kind == QUERY:
            return quote(self.name) + "?"
        return quote(self.name) + self.kind + quote(self.value)


def parse_attr(token: str) -> Attr:
    eq = token.find("=")
    if eq < 0:
        if token.endswith("?"):
            return Attr(token[:-1], "", QUERY)
        return Attr(token)
    if eq > 0 and token[eq - 1] == ":":
        return Attr(token[:eq - 1], token[eq + 1:], DEFAULT)
    return Attr(token[:eq], token[eq + 1:])


def parse_attrs(text: str) -> list[Attr]:
    """_parseattr: a quoted attribute list."""
    return [parse_attr(t) for t in tokenize(text)]


def format_attrs(attrs: Iterable[Attr]) -> str:
    """%A: the list as it would be written back."""
    return " ".join(str(a) for a in attrs)


def show_attrs(attrs: Iterable[Attr]) -> str:
    """%A for replies and logs: a private value never appears (`!name?`)."""
    return " ".join(quote(a.name) + "?" if a.name.startswith("!") else str(a) for a in attrs)


def find(attrs: Iterable[Attr], name: str) -> str | None:
    """_strfindattr: the value of the first name=value attribute."""
    for a in attrs:
        if a.name == name and a.kind != QUERY:
            return a.value
    return None


def set_attrs(a: list[Attr], b: Iterable[Attr]) -> list[Attr]:
    """setattrs: add b's attributes to a, replacing values a already has."""
    for new in b:
        if new.kind == QUERY and any(x.name == new.name for x in a):
            continue
        where = [i for i, x in enumerate(a) if x.name == new.name]
        if not where:
            a.append(Attr(new.name, new.value, new.kind))
            continue
        # New objects, not edits: callers copy lists that share Attrs.
        a[where[0]] = Attr(new.name, new.value, NAMEVAL)
        for i in reversed(where[1:]):
            del a[i]
    return a


def del_attr(attrs: Iterable[Attr], name: str) -> list[Attr]:
    return [a for a in attrs if a.name != name]


def sort_attrs(attrs: Iterable[Attr]) -> list[Attr]:
    return sorted(attrs, key=lambda a: a.name)


def _has(pub: list[Attr], priv: list[Attr], name: str) -> bool:
    return any(a.name == name for a in pub) or any(a.name == name for a in priv)


def _has_value(pub: list[Attr], priv: list[Attr], name: str, value: str) -> bool:
    return any(a.name == name and a.value == value for a in (*pub, *priv))


def matches(pattern: Iterable[Attr], pub: list[Attr], priv: list[Attr] = ()) -> bool:
    """matchattr: does a key with these attributes satisfy the pattern?"""
    priv = list(priv)
    for p in pattern:
        kind = DEFAULT if p.name in IGNORED else p.kind
        if kind == QUERY and not _has(pub, priv, p.name):
            return False
        if kind == NAMEVAL and not _has_value(pub, priv, p.name, p.value):
            return False
        if kind == DEFAULT and _has(pub, priv, p.name) and not _has_value(pub, priv, p.name, p.value):
            return False
    return True


class CtlError(Exception):
    """A ctl write that failed; the text is Plan 9's."""


@dataclass
class Key:
    attrs: list[Attr]                  # public; proto first
    priv: list[Attr]                   # names start with '!'
    data: bytes | None = None          # protocol's derived secret (p9sk1 DES key)
    successes: int = 0

    @property
    def proto(self) -> str:
        return find(self.attrs, "proto") or ""

    def get(self, name: str) -> str | None:
        return find(self.priv if name.startswith("!") else self.attrs, name)

    def listing(self) -> str:
        """The ctl line: public attributes, then private names only."""
        hidden = " ".join(quote(a.name) + "?" for a in self.priv)
        return f"key {format_attrs(self.attrs)} {hidden}\n"


class NoKey(Exception):
    """findkey failed: `template` set means ask for a key (needkey)."""

    def __init__(self, message: str, template: str | None):
        super().__init__(message)
        self.template = template


@dataclass
class Keyring:
    """The keys factotum holds.  Thread-safe: conversations run in parallel."""
    keys: list[Key] = field(default_factory=list)
    # proto name -> validator that fills Key.data or raises CtlError;
    # a proto missing here does not take keys.
    addkey: dict[str, Callable[[Key], None]] = field(default_factory=dict)
    known: Callable[[str], bool] = lambda name: True
    lock: threading.RLock = field(default_factory=threading.RLock)

    def ctl(self, line: str) -> None:
        """One ctl write (rpc.c ctlwrite); raises CtlError with Plan 9 text."""
        if line.startswith("#") or line == "":
            return
        nl = line.find("\n")
        if nl >= 0:
            if line[nl + 1:] != "":
                raise CtlError("multiline write not allowed")
            line = line[:nl]
        verb, _, rest = line.partition(" ")
        if verb == "key":
            self.add(parse_attrs(rest))
        elif verb == "delkey":
            self.delete(parse_attrs(rest))
        elif verb == "debug":
            pass
        else:
            raise CtlError("unknown verb")

    def add(self, attrs: list[Attr]) -> None:
        protos = [a.value for a in attrs if a.name == "proto"]
        if not protos:
            raise CtlError("key without protos")
        rest = [a for a in attrs if a.name != "proto"]
        pub = [a for a in rest if not a.name.startswith("!")]
        priv = [a for a in rest if a.name.startswith("!")]
        error = None
        for proto in protos:
            try:
                self._add_one(proto, pub, priv)
            except CtlError as e:
                error = e
        if error:
            raise error

    def _add_one(self, proto: str, pub: list[Attr], priv: list[Attr]) -> None:
        if not self.known(proto):
            raise CtlError(f"unknown proto {proto}")
        check = self.addkey.get(proto)
        if check is None:
            raise CtlError(f"proto {proto} doesn't take keys")
        key = Key([Attr("proto", proto)] + [Attr(a.name, a.value, a.kind) for a in pub],
                  [Attr(a.name, a.value, a.kind) for a in priv])
        check(key)
        with self.lock:
            for i, old in enumerate(self.keys):
                if matches(key.attrs, old.attrs) and matches(old.attrs, key.attrs):
                    self.keys[i] = key
                    return
            self.keys.append(key)

    def delete(self, pattern: list[Attr]) -> None:
        if any(a.name.startswith("!") and a.kind != QUERY for a in pattern):
            raise CtlError("only !private? patterns are allowed for private fields")
        with self.lock:
            keep = [k for k in self.keys if not matches(pattern, k.attrs, k.priv)]
            if len(keep) == len(self.keys):
                raise CtlError("found no keys to delete")
            self.keys[:] = keep

    def listing(self) -> str:
        with self.lock:
            return "".join(k.listing() for k in self.keys)

    def find(self, attrs: Iterable[Attr] = (), template: str = "", skip: int = 0,
             use_disabled: bool = False) -> Key:
        """findkey: the first key matching attrs and the template.

        Raises NoKey; its template (for `needkey`) is set when the patterns
        ask for something (`name?`) and no key matched at all.
        """
        attr0, attr1 = list(attrs), parse_attrs(template)
        proto = find(attr0, "proto") or find(attr1, "proto")
        if proto is not None and not self.known(proto):
            raise NoKey(f"unknown protocol {proto}", None)
        nmatch = 0
        with self.lock:
            for k in self.keys:
                if k.get("disabled") is not None and not use_disabled:
                    continue
                if matches(attr0, k.attrs, k.priv) and matches(attr1, k.attrs, k.priv):
                    nmatch += 1
                    if nmatch > skip:
                        return k
        message = f"no key matches {show_attrs(attr0)} {show_attrs(attr1)}"
        if not any(a.kind == QUERY for a in (*attr0, *attr1)):
            raise NoKey(message, None)
        wanted = sort_attrs(a for a in (*attr0, *attr1) if a.name not in IGNORED)
        raise NoKey(message, show_attrs(wanted) if nmatch == 0 else "")

    def disable(self, key: Key) -> None:
        """disablekey: mark a key the AS rejected on first use."""
        with self.lock:
            if key.get("disabled") is None:
                key.attrs.append(Attr("disabled", "by.factotum"))
