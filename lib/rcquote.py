"""rc-style quoting, as Plan 9's %q and tokenize(2): a word holding a blank,
a control character or a quote is written '...' with '' for a quote.

Factotum's attribute lists and upasfs's ctl commands (`open PATH NAME`)
are both read this way, so both writers quote with this module."""
from __future__ import annotations


def needs_quote(s: str) -> bool:
    """rc quoting rule (docs/spec/fs-auth.md §0): empty, blank, control character or '."""
    return s == "" or any(c <= " " or c in "'\x7f" for c in s)


def quote(s: str) -> str:
    """Format like Plan 9's %q."""
    if not needs_quote(s):
        return s
    return "'" + s.replace("'", "''") + "'"


def tokenize(s: str) -> list[str]:
    """Split on blanks and undo rc quoting (Plan 9 tokenize)."""
    out: list[str] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in " \t\r\n":
            i += 1
        if i >= n:
            return out
        tok: list[str] = []
        quoted = False
        while i < n:
            c = s[i]
            if quoted:
                if c == "'":
                    if i + 1 < n and s[i + 1] == "'":
                        tok.append("'")
                        i += 1
                    else:
                        quoted = False
                else:
                    tok.append(c)
            elif c in " \t\r\n":
                break
            elif c == "'":
                quoted = True
            else:
                tok.append(c)
            i += 1
        out.append("".join(tok))
