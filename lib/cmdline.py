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
