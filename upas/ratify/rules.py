"""The ratfs control-file language: canonical lines, CIDR names, account patterns.

Both /mail/lib/blocked (the classification) and smtpd.conf (only its
`ournets` lines) are read with the same line rules as ratfs and smtpd:
`#` starts a comment, `\\` escapes the next character, tokens are split on
blanks and commas, and everything is lower-cased.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

SUBCHAR = "#"                     # stands for '/' in file names
ACTIONS = ("allow", "delay", "block", "dial", "deny")   # root listing order
KEYWORDS = {"allow": "allow", "accept": "allow", "block": "block",
            "deny": "deny", "dial": "dial", "relay": "delay", "delay": "delay"}
# Account patterns that would match everybody; ratfs refuses them at load.
DANGEROUS = frozenset({"*", "!", "*!", "!*", "*!*"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CidrError(ValueError):
    """A name that is not an address or ADDR#BITS."""


def tokens(line: str) -> list[str]:
    """Split one line as ratfs's getline does; [] for blank/comment lines."""
    out: list[str] = []
    cur: list[str] = []
    chars = iter(line.rstrip("\n"))
    for c in chars:
        if c == "\\":
            c = next(chars, "\\")
        elif c == "#":
            break
        elif c in " \t,":
            if cur:
                out.append("".join(cur))
                cur = []
            continue
        cur.append(c.lower())
    if cur:
        out.append("".join(cur))
    return out


def subslash(name: str) -> str:
    """File names cannot hold '/', so ratfs writes it as '#'."""
    return name.replace("/", SUBCHAR)


def parse_cidr(spec: str) -> Network:
    """ADDR/BITS or ADDR#BITS; without BITS, Bell's minimal mask for IPv4.

    Bell builds the mask from the dotted parts written: one or two parts
    give /16 (never a class A), three /24, four /32.  Missing trailing parts
    are zero, so `135.104` is 135.104.0.0/16.  IPv6 without BITS is a host.
    """
    spec = spec.strip().replace(SUBCHAR, "/")
    addr, slash, bits = spec.partition("/")
    try:
        if ":" in addr:
            return ipaddress.IPv6Network(f"{addr}/{bits or 128}", strict=False)
        parts = addr.split(".")
        if not slash:
            filled = [p for p in parts if p != ""]
            bits = str(max(16, 8 * len(filled)))
            if len(filled) > 4 or len(filled) != len(parts):
                raise ValueError(addr)
            addr = ".".join(filled + ["0"] * (4 - len(filled)))
        if not bits.isdigit():
            raise ValueError(bits)
        return ipaddress.IPv4Network(f"{addr}/{bits}", strict=False)
    except ValueError as e:
        raise CidrError(f"bad cidr: {spec}") from e


def parse_addr(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address part of a walked name (`10.1.2.3`, `10.1.2.3#32`, `!port` cut)."""
    name = name.split(SUBCHAR, 1)[0].split("!", 1)[0]
    try:
        addr = ipaddress.ip_address(name)
    except ValueError as e:
        raise CidrError(f"bad address: {name}") from e
    # an IPv4 peer seen through an IPv6 socket is the IPv4 peer
    return getattr(addr, "ipv4_mapped", None) or addr


def parse_trusted_name(name: str) -> Network:
    """A name created in trusted/.  pop3 and imap4d always write
    `<peer>#32`, the IPv4 host mask; for an IPv6 peer that would trust a
    /32 of the IPv6 space, so there #32 means the host (/128)."""
    net = parse_cidr(name)
    if net.version == 6 and name.endswith(SUBCHAR + "32"):
        addr = parse_addr(name)
        return ipaddress.ip_network(addr)
    return net


@dataclass
class IpEntry:
    name: str          # as listed: the control-file text with '/' as '#'
    net: Network


@dataclass
class Classification:
    """What the control file says: per action, IP ranges and account patterns."""
    ip: dict[str, list[IpEntry]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    account: dict[str, list[str]] = field(default_factory=lambda: {a: [] for a in ACTIONS})


def parse_ctl(text: str) -> Classification:
    """Parse /mail/lib/blocked.  Unknown keywords and bad entries are skipped."""
    cl = Classification()
    for line in text.splitlines():
        toks = tokens(line)
        if not toks:
            continue
        accounts = toks[0].startswith("*")
        if accounts:
            toks[0] = toks[0][1:]
            if not toks[0]:             # "* block": blank after the star
                toks = toks[1:]
        if not toks or toks[0] not in KEYWORDS:
            continue
        action = KEYWORDS[toks[0]]
        for value in toks[1:]:
            if accounts:
                if value not in DANGEROUS:
                    cl.account[action].append(subslash(value))
            else:
                try:
                    cl.ip[action].append(IpEntry(subslash(value), parse_cidr(value)))
                except CidrError:
                    continue
    for entries in cl.ip.values():
        entries.sort(key=lambda e: (e.net.version, int(e.net.network_address)))
    return cl


def parse_ournets(text: str) -> list[IpEntry]:
    """The `ournets` values of smtpd.conf: permanently trusted ranges."""
    nets: list[IpEntry] = []
    for line in text.splitlines():
        toks = tokens(line)
        if toks[:1] != ["ournets"]:
            continue
        for value in toks[1:]:
            try:
                nets.append(IpEntry(subslash(value), parse_cidr(value)))
            except CidrError:
                continue
    return nets


def longest_match(entries: list, addr) -> object | None:
    """The entry whose range holds addr with the most specific mask (the last
    such one on a tie, i.e. the newest); None when nothing holds it."""
    best = None
    for e in entries:
        net = e.net
        if net.version == addr.version and addr in net:
            if best is None or net.prefixlen >= best.net.prefixlen:
                best = e
    return best
