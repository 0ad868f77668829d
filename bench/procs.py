"""Peak memory of processes, read from /proc (Linux)."""
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


def descendants(pid: int) -> list[int]:
    """pid and all its live descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(x) for x in task.read_text().split()]
            except OSError:
                pass
    return out
