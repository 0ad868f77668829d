"""Factotum keys and the key ring; the attribute syntax they are written
in is lib/attrs.py (shared with factotum's clients)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable

from lib.attrs import (IGNORED, QUERY, Attr, find, format_attrs, matches, parse_attrs, quote,
                       show_attrs, sort_attrs)


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
