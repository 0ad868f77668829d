"""What an SMTP server asks ratfs, through the namespace (upas/smtp/spam.c).

    is_trusted(ns, "10.1.2.3")              -> bool
    ip_action(ns, "10.1.2.3")               -> "allow" | "block" | ...
    classify(ns, peer, sender, helo)        -> "trusted" | an action

With ratfs mounted on /mail/ratify every question is a walk, as smtpd's
access(2) calls are.  When /mail/ratify is a plain directory instead (no
ratfs running; pop3 and imap4d then create plain files there), the same
answers come from reading the directories: names are CIDR ranges
(`10.1.2.3#32`) or account patterns, and a trusted file expires two hours
after it was last (re)created, as ratfs's temporary entries do.
"""
from __future__ import annotations

import time

from upas import ns as nsmod

from . import rules
from .account import account_matches
from .tables import TIMEOUT

ROOT = "/mail/ratify"
ORDER = ("allow", "block", "deny", "dial", "delay")   # smtpd's order; first hit wins


def _ip(peer: str) -> str:
    """`ip!port` or `ip` -> ip (as pop3's -r handling)."""
    return peer.split("!", 1)[0]


def _is_plain(ns: nsmod.Namespace) -> bool:
    try:
        return ns.local_path(ROOT) is not None
    except nsmod.Error:
        return False


def _scan(ns: nsmod.Namespace, directory: str, holds, max_age: float | None = None) -> bool:
    """Does some entry of a plain directory hold the question?"""
    try:
        entries = ns.readdir(directory)
    except nsmod.Error:
        return False
    now = time.time()
    return any(holds(d.name) for d in entries
               if max_age is None or now - d.mtime < max_age)


def _holds_ip(ip: str):
    try:
        addr = rules.parse_addr(ip)
    except rules.CidrError:
        return lambda name: False

    def holds(name: str) -> bool:
        try:
            return addr in rules.parse_trusted_name(name)
        except rules.CidrError:
            return False
    return holds


def _valid_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..")


def is_trusted(ns: nsmod.Namespace, peer: str) -> bool:
    ip = _ip(peer)
    if not _valid_name(ip):
        return False
    if _is_plain(ns):
        return _scan(ns, f"{ROOT}/trusted", _holds_ip(ip), max_age=TIMEOUT)
    return ns.exists(f"{ROOT}/trusted/{ip}")


def _action(ns: nsmod.Namespace, kind: str, name: str) -> str:
    if not _valid_name(name):
        return "allow"
    plain = _is_plain(ns)
    for action in ORDER:
        directory = f"{ROOT}/{action}/{kind}"
        if plain:
            holds = _holds_ip(name) if kind == "ip" else (
                lambda pattern: account_matches(pattern, name))
            if _scan(ns, directory, holds):
                return action
        elif ns.exists(f"{directory}/{name}"):
            return action
    return "allow"


def ip_action(ns: nsmod.Namespace, peer: str) -> str:
    return _action(ns, "ip", _ip(peer))


def sender_path(sender: str, helo: str = "") -> str:
    """The lower-cased bang path smtpd classifies: user@dom -> dom!user;
    a path with neither `!` nor `@` is taken as coming from the HELO domain."""
    s = sender.strip().strip("<>").lower()
    if "!" not in s and "@" in s:
        user, _, dom = s.rpartition("@")
        s = f"{dom}!{user}"
    elif "!" not in s and helo:
        s = f"{helo.lower()}!{s}"
    return s.replace("/", "#")


def classify(ns: nsmod.Namespace, peer: str, sender: str = "", helo: str = "") -> str:
    """smtpd's verdict for MAIL FROM: trusted peers skip the account check;
    an IP action other than allow wins; else the sender's account action."""
    if is_trusted(ns, peer):
        return "trusted"
    action = ip_action(ns, peer)
    if action != "allow":
        return action
    return _action(ns, "account", sender_path(sender, helo))
