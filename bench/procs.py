"""Memory and identity of processes, read from /proc (Linux)."""
from __future__ import annotations

import os
import re
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


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


def ppid(pid: int) -> int:
    """The process's parent (0 if it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _children_map() -> dict[int, list[int]]:
    """Every live process's children, found by their parent (a child is
    listed under the thread that started it in /proc/PID/task/*/children,
    and moves when that thread ends)."""
    out: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            out.setdefault(ppid, []).append(int(d.name))
    return out


def children(pid: int) -> list[int]:
    return _children_map().get(pid, [])


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) of pid and its live descendants, with
    the children each has waited for: what a server's processes have
    spent so far, sessions that ended included once reaped."""
    total = 0
    for p in descendants(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(x) for x in f[11:15])      # utime stime cutime cstime
    return total / _TICK


def descendants(pid: int) -> list[int]:
    """pid and all its live descendants."""
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out
