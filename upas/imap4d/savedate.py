"""SAVEDATE (RFC 8514): when a message was saved in its mailbox.

Plan 9's `.imp` has no room for it and keeps its format byte for byte, so
the dates live beside it, in `<mailbox>.save.imp` (a name Plan 9's LIST
hides, as it hides `.kw.imp`; names.py refuses mailboxes named `*.save`,
whose shadow file it would be; DELETE and RENAME take it along):

    imap save dates\\n
    <digest:40 hex> <unix time:10>\\n        one per message saved by imap4d

imap4d appends a line for every message APPEND, COPY or MOVE stores
(append.deliver, under the mailbox lock, in the same hold as the message).
Mail delivered by upas (mbappend, deliver) has no line: its save date is
its internal date, the From line's date, which delivery sets to the
moment of saving; so is mail older than this file.  A message is found by
its digest: the last line for a digest wins.

The file is only ever appended to, without fsync: a crash may lose the
last lines (those messages then read as their internal date) or leave a
torn one, which matches no line and is skipped; nothing else depends on
it.  Lines of expunged messages stay (50 bytes each).
"""
from __future__ import annotations

import re
import time

from upas import ns as nsmod
from upas.imap4d.parser import MONTHS

SUFFIX = ".save.imp"
MAGIC = b"imap save dates\n"
_LINE = re.compile(rb"(?m)^([0-9a-f]{40}) (\d{10})$")
_cache: dict[str, tuple[tuple, dict[str, int]]] = {}   # box path -> (stat, table)


def path_of(box_path: str) -> str:
    return box_path + SUFFIX


def record(ns: nsmod.Namespace, box_path: str, digests: list[str],
           when: int | None = None) -> None:
    """Note that the messages with these digests were saved now (the
    caller holds the mailbox's lock), through the name space as every
    other write of the mail directory."""
    if not digests:
        return
    when = int(time.time()) if when is None else when
    lines = b"".join(b"%s %010d\n" % (d.encode(), when) for d in digests)
    path = path_of(box_path)
    # after a torn line (`after`), the new lines start a fresh one; the
    # usual file, begun with MAGIC, takes them in one append (no stat first)
    if ns.append(path, lines, perm=0o600, after=b"\n", prefix=MAGIC) is not None:
        return
    try:
        empty = ns.stat(path).length == 0
    except nsmod.Error:
        empty = True
    ns.append(path, MAGIC + lines if empty else lines, perm=0o600, after=b"\n")


def table(ns: nsmod.Namespace, box_path: str) -> dict[str, int]:
    """digest -> save time, as the file holds it now (read again only
    when it changed)."""
    p = path_of(box_path)
    try:
        st = ns.stat(p)
    except nsmod.Error:
        return {}
    key = (st.length, st.mtime, st.qid)
    hit = _cache.get(box_path)
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        data = ns.read(p)
    except nsmod.Error:
        return {}
    t = {} if not data.startswith(MAGIC) else \
        {d.decode(): int(w) for d, w in _LINE.findall(data)}
    _cache[box_path] = (key, t)
    return t


def date_time(when: int) -> str:
    """An IMAP date-time in the local zone: `06-Dec-2026 20:59:46 +0000`."""
    t = time.localtime(when)
    off = t.tm_gmtoff // 60
    return "%02d-%s-%d %02d:%02d:%02d %s%02d%02d" % (
        t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec,
        "-" if off < 0 else "+", abs(off) // 60, abs(off) % 60)
