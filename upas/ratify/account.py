"""Matching a bang path `dom1!dom2!...!user` against ratfs account patterns.

    domain, domain!        the domain anywhere among the path's domains
    domain!*               the domain is the last hop
    *.domain (any form)    that domain and its subdomains
    !user, *!user          that user in any domain
    domain!user            that user with the domain as last hop
    user*                  (in the user part) a prefix match
"""
from __future__ import annotations

from .rules import SUBCHAR

MAXDOMS = 10   # at most this many domains are taken from a path


def split_path(path: str) -> tuple[list[str], str]:
    """Domains and user of a bang path; '/' is compared as '#'."""
    parts = path.replace("/", SUBCHAR).split("!")
    doms = parts[:-1][:MAXDOMS]
    user = "!".join(parts[len(doms):])
    return doms, user


def domain_matches(pathdom: str, spec: str) -> bool:
    if spec.startswith("*.") and len(spec) > 2:
        suffix = spec[2:]
        return pathdom == suffix or pathdom.endswith("." + suffix)
    return pathdom == spec


def user_matches(pathuser: str, spec: str) -> bool:
    if spec.endswith("*"):
        return pathuser.startswith(spec[:-1])
    return pathuser == spec


def account_matches(pattern: str, path: str) -> bool:
    doms, user = split_path(path)
    dom, bang, userspec = pattern.partition("!")
    if userspec in ("", "*"):
        if userspec == "*":           # domain!*: only the last hop
            return bool(doms) and domain_matches(doms[-1], dom)
        return any(domain_matches(d, dom) for d in doms)
    if not user_matches(user, userspec):
        return False
    if dom in ("", "*"):
        return True
    return bool(doms) and domain_matches(doms[-1], dom)


def first_match(patterns: list[str], path: str) -> str | None:
    """The first pattern (in file order) that accepts path, as ratfs answers."""
    for p in patterns:
        if account_matches(p, path):
            return p
    return None
