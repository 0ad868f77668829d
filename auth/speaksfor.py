"""The auth server's "speaks for" rules, a small ndb file like /lib/ndb/auth.

    hostid=upas
        uid=!sys uid=*

A record starts on a line beginning with a non-blank; indented lines
continue it; `#` starts a comment. For the first record whose hostid is the
speaker: `uid=!u` forbids u outright, `uid=*` or `uid=u` allows. Anyone
speaks for themselves.
"""
from __future__ import annotations

Record = list[tuple[str, str]]


def parse(text: str) -> list[Record]:
    records: list[Record] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        if not line.strip():
            continue
        pairs = [tuple(w.split("=", 1)) if "=" in w else (w, "") for w in line.split()]
        if line[0] in " \t" and records:
            records[-1].extend(pairs)
        else:
            records.append(list(pairs))
    return records


def load(path: str | None) -> list[Record]:
    if not path:
        return []
    with open(path, encoding="utf-8") as f:
        return parse(f.read())


def speaks_for(rules: list[Record], speaker: str, user: str) -> bool:
    if speaker == user:
        return True
    rec = next((r for r in rules if ("hostid", speaker) in r), None)
    if rec is None:
        return False
    ok = False
    for attr, val in rec:
        if attr != "uid":
            continue
        if val == "!" + user:
            return False
        if val == "*" or val == user:
            ok = True
    return ok
