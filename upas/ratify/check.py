"""What an SMTP server asks ratfs, through the namespace (upas/smtp/spam.c).

    is_trusted(ns, "10.1.2.3")              -> bool
    ip_action(ns, "10.1.2.3")               -> "allow" | "block" | ...
    classify(ns, peer, sender, helo)        -> "trusted" | an action

Every question is a file test under /mail/ratify, so the same code works
with ratfs mounted over 9P or with a plain directory bound there.
"""
from __future__ import annotations

from upas.ns import Namespace

ROOT = "/mail/ratify"
ORDER = ("allow", "block", "deny", "dial", "delay")   # smtpd's order; first hit wins


def _ip(peer: str) -> str:
    """`ip!port` or `ip` -> ip (as pop3's -r handling)."""
    return peer.split("!", 1)[0]


def _exists(ns: Namespace, path: str) -> bool:
    return ns.exists(path)


def is_trusted(ns: Namespace, peer: str) -> bool:
    ip = _ip(peer)
    return bool(ip) and "/" not in ip and _exists(ns, f"{ROOT}/trusted/{ip}")


def _action(ns: Namespace, kind: str, name: str) -> str:
    if not name:
        return "allow"
    for action in ORDER:
        if _exists(ns, f"{ROOT}/{action}/{kind}/{name}"):
            return action
    return "allow"


def ip_action(ns: Namespace, peer: str) -> str:
    ip = _ip(peer)
    return "allow" if "/" in ip else _action(ns, "ip", ip)


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


def classify(ns: Namespace, peer: str, sender: str = "", helo: str = "") -> str:
    """smtpd's verdict for MAIL FROM: trusted peers skip the account check;
    an IP action other than allow wins; else the sender's account action."""
    if is_trusted(ns, peer):
        return "trusted"
    action = ip_action(ns, peer)
    if action != "allow":
        return action
    return _action(ns, "account", sender_path(sender, helo))
