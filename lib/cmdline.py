"""Command lines the Plan 9 way: flags parsed as getopt(3) does, and on a
bad one the usage line on stderr and exit status 1 (ARGBEGIN and usage())."""
from __future__ import annotations

import getopt
import sys


def flags(argv: list[str], optstring: str, usage: str) -> list[tuple[str, str]] | None:
    """The flags of a command that takes nothing but flags; None once the
    usage line is printed for a bad flag or an argument (the caller then
    exits 1)."""
    try:
        opts, args = getopt.getopt(argv, optstring)
    except getopt.GetoptError:
        args = ["?"]
    if args:
        print(usage.rstrip("\n"), file=sys.stderr)
        return None
    return opts


def assign(target: object, opts: list[tuple[str, str]], switches: dict[str, str],
           values: dict[str, str]) -> list[tuple[str, str]]:
    """Set target's attribute for each flag of a table: True for a switch,
    the flag's value for the others; the flags neither table names, left
    for the caller (those that want checking or a conversion)."""
    rest = []
    for flag, val in opts:
        if flag in switches:
            setattr(target, switches[flag], True)
        elif flag in values:
            setattr(target, values[flag], val)
        else:
            rest.append((flag, val))
    return rest
