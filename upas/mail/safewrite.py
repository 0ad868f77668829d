"""Crash-safe file replacement through the namespace (docs/design.md):
write `<path>.tmp`, fsync, rename it over `<path>`, fsync the directory.
Callers hold the mail lock.  A reader sees the old file or the new one,
never a torn one, whatever happens in between.
"""
from __future__ import annotations

import os
from typing import Iterable

CHUNK = 1 << 16
MODE = 0o600       # mail and what describes it: the owner's only (docs/running.md)


def write_chunks(ns, path: str, chunks: Iterable[bytes], mode: int = MODE) -> None:
    """Replace (or create) `path` with the concatenated chunks."""
    tmp = path + ".tmp"
    real = ns.local_path(tmp)
    if real is None:  # a 9P-mounted store: no rename; one whole write
        ns.write(path, b"".join(chunks))
        return
    try:
        os.unlink(real)         # a crash's tmp: reopened, it would keep its mode
    except FileNotFoundError:
        pass
    fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        for c in chunks:
            view = memoryview(c)
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(real)
        raise
    os.close(fd)
    ns.rename(tmp, path)
    fsync_dir(real)


def fsync_dir(path: str) -> None:
    """Make a rename or creation of host path `path` durable: fsync its
    directory."""
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(ns, path: str, data: bytes, mode: int = MODE) -> None:
    write_chunks(ns, path, [data], mode)


def copy(ns, src: str, dst: str, mode: int = MODE) -> None:
    """Copy `src` to `dst` (replacing it) without holding it all in memory."""
    with ns.open(src, "r") as f:
        write_chunks(ns, dst, iter(lambda: f.read(CHUNK), b""), mode)
