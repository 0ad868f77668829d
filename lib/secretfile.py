"""Files that hold secrets (keys, passwords, a TLS private key): readable
and writable by their owner alone, whatever the umask or an older file's
mode said (docs/running.md)."""
from __future__ import annotations

import os

MODE = 0o600


def write(path: str | os.PathLike[str], data: bytes) -> None:
    """Create or truncate `path`, owner-only, and write `data` to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, MODE)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), MODE)     # a file already there keeps its mode
        f.write(data)
