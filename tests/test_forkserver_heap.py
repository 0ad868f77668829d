"""A spare's heap made ahead (upas/forkserver.py _malloc_keeps and
_touch_heap): a block its session then allocates and writes comes from
memory the spare already wrote, without page faults of the session's
(counted by the kernel: getrusage's minor faults).  glibc only."""
from __future__ import annotations

import os
import platform
import resource

import pytest

from upas import forkserver

MB = 1 << 20

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")


def _faults_in_child(ahead: bool) -> int:
    """Minor page faults of allocating and writing 2 MB in a forked
    child, the heap made ahead there first or not."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if ahead:
                forkserver._malloc_keeps(4 * MB)
                forkserver._touch_heap(4 * MB)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            block = b"x" * (2 * MB)             # malloc'd, then written
            after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            os.write(w, b"%d %d" % (after - before, len(block)))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        got = f.read()
    os.waitpid(pid, 0)
    return int(got.split()[0])


def test_a_block_the_spare_touched_ahead_takes_no_page_faults():
    pages = 2 * MB // resource.getpagesize()
    assert _faults_in_child(ahead=False) >= pages // 2      # a fresh block: a fault a page
    assert _faults_in_child(ahead=True) < pages // 10
