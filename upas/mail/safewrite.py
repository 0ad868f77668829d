"""Crash-safe file replacement through the namespace (docs/design.md):
write `<path>.tmp`, fsync, rename it over `<path>`, fsync the directory.
Callers hold the mail lock.  A reader sees the old file or the new one,
never a torn one, whatever happens in between.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

CHUNK = 1 << 16
MODE = 0o600       # mail and what describes it: the owner's only (docs/running.md)


def write_chunks(ns, path: str, chunks: Iterable[bytes], mode: int = MODE,
                 later: list[Callable[[], None]] | None = None) -> None:
    """Replace (or create) `path` with the concatenated chunks.  `later`:
    the directory's fsync, which makes the rename durable, is put there
    instead of run; the caller runs it before it tells anyone the file is
    replaced (after its next file's sync: on a journalled file system the
    two then wait for one commit; mailbox.py, docs/decisions.md)."""
    tmp = path + ".tmp"
    real = ns.local_path(tmp)
    if real is None:  # a store's file server (upas/boxfs.py)
        _write_chunks_9p(ns, tmp, path, chunks, mode)
        return
    with host_tmp(real, mode) as fd:
        for c in chunks:
            view = memoryview(c)
            while view:
                view = view[os.write(fd, view):]
    ns.rename(tmp, path)
    if later is None:
        fsync_dir(real)
    else:
        later.append(lambda: fsync_dir(real))


@contextmanager
def host_tmp(real: str, mode: int) -> Iterator[int]:
    """A new host file `real` (a tmp beside the file it will replace) open
    for writing with exactly `mode`: fsynced and closed when the block
    ends, removed when it raises."""
    try:
        os.unlink(real)         # a crash's tmp: reopened, it would keep its mode
    except FileNotFoundError:
        pass
    fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)     # not narrowed by the umask
        yield fd
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(real)
        raise
    os.close(fd)


def _write_chunks_9p(ns, tmp: str, path: str, chunks: Iterable[bytes], mode: int) -> None:
    """The same over 9P: create (truncating a crash's tmp), write, Plan 9's
    sync wstat, and the rename a Twstat of the name (boxfs makes it
    durable)."""
    ns.create(tmp, mode)
    try:
        with ns.open(tmp, "w") as f:
            for c in chunks:
                f.write(c)
        ns.write_at(tmp, [], sync=True)
    except BaseException:
        try:
            ns.remove(tmp)
        except Exception:   # noqa: BLE001 -- the error that matters is raised
            pass
        raise
    ns.rename(tmp, path)


def fsync_dir(path: str) -> None:
    """Make a rename or creation of host path `path` durable: fsync its
    directory."""
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(ns, path: str, data: bytes, mode: int = MODE,
            later: list[Callable[[], None]] | None = None) -> None:
    write_chunks(ns, path, [data], mode, later)


def copy(ns, src: str, dst: str, mode: int = MODE) -> None:
    """Copy `src` to `dst` (replacing it) without holding it all in memory."""
    with ns.open(src, "r") as f:
        write_chunks(ns, dst, iter(lambda: f.read(CHUNK), b""), mode)
