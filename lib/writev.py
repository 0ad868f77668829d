"""Sending a list of buffers as they are: writev, no joining copy.

Both the sessions' output (upas/transport/conn.py) and the inline 9P
server's replies (upas/ninep/server.py: a message's header and its data
as two pieces) are lists of buffers; joining them first would copy every
byte once more.
"""
from __future__ import annotations

import os

IOV_MAX = 512              # buffers handed to one writev (POSIX allows >= 16; Linux 1024)


def writev_all(fd: int, chunks: list) -> None:
    """Send the chunks in order, IOV_MAX at a time, the rest of a partly
    written one after it; chunks is consumed (a partly written entry is
    replaced by its rest).  OSError as os.writev raises it."""
    i = 0
    while i < len(chunks):
        batch = chunks[i:i + IOV_MAX]
        n = os.writev(fd, batch)
        for c in batch:
            if n < len(c):
                break
            n -= len(c)
            i += 1
        else:
            continue
        chunks[i] = memoryview(chunks[i])[n:]   # partly written: the rest
