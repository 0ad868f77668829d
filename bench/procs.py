"""Memory and identity of processes, read from /proc (Linux)."""
from __future__ import annotations

import re
from pathlib import Path


def vmhwm_kb(pid: int) -> int:
    """The process's peak resident set (VmHWM) in KiB; 0 if it is gone."""
    try:
        m = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def pss_kb(pid: int) -> int:
    """The process's proportional set size in KiB (pages shared with other
    processes, e.g. a forked child's with its fork server, counted by
    share); 0 if it is gone."""
    try:
        m = re.search(r"^Pss:\s+(\d+)", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(x) for x in task.read_text().split()]
        except OSError:
            pass
    return out


def descendants(pid: int) -> list[int]:
    """pid and all its live descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out
