"""Factotum attributes: the syntax of a key, a template, a `start` line.

An attribute list is what factotum's `key`, `delkey` and `start` carry and
what its rpc `attr` reply gives (docs/spec/fs-auth.md §2.2): rc-quoted
tokens `name=value`, `name?` (must be present) and bare `name` (present,
empty value).  Names starting with `!` are private: they are kept apart
from the public attributes and never printed.  Used by factotum itself
(auth/factotum) and by its clients (lib/factotum.py), as libauth's
attribute code is by both in Plan 9.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from lib.rcquote import quote, tokenize

__all__ = ["Attr", "DEFAULT", "IGNORED", "NAMEVAL", "QUERY", "del_attr", "find",
           "format_attrs", "matches", "parse_attr", "parse_attrs", "quote", "set_attrs",
           "show_attrs", "sort_attrs", "tokenize"]

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
