"""Calls run beside the caller's, in one helper thread a process keeps:
Namespace.together's syncs that wait in one journal commit (an APPEND's
mailbox and `.imp`).

A bare thread woken by a lock, not a ThreadPoolExecutor: an APPEND's
submit, Future and Condition cost the session ~0.1 ms of CPU and of wall
time, two lock operations a few microseconds (docs/performance.md, Round 4,
ninth part).  The thread is the process's (made at first use: a fork
server's children each make their own) and serves one caller at a time;
a second thread calling meanwhile runs its calls itself, in turn.
"""
from __future__ import annotations

import _thread
import os
from typing import Callable

Call = Callable[[], object]


class _Helper:
    """One thread that runs a batch of calls each time it is woken."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.busy = _thread.allocate_lock()         # held by the caller served
        self.go = _thread.allocate_lock()           # released: a batch to run
        self.done = _thread.allocate_lock()         # released: the batch ran
        self.go.acquire()
        self.done.acquire()
        self.calls: list[Call] = []
        self.outcomes: list[tuple[bool, object]] = []
        self.broken = False         # a wait cut short: the next caller makes another
        _thread.start_new_thread(self._loop, ())

    def _loop(self) -> None:
        while True:
            self.go.acquire()
            self.outcomes = [_outcome(c) for c in self.calls]
            self.done.release()

    def run(self, first: Call, rest: list[Call]) -> list[tuple[bool, object]]:
        """The outcomes of first (run here) and rest (in the thread, in
        turn, meanwhile); the caller holds `busy`."""
        self.calls = rest
        self.go.release()
        mine = _outcome(first)
        try:
            self.done.acquire()
        except BaseException:       # a signal's handler raised: the batch may still run
            self.broken = True
            raise
        self.calls = []
        return [mine, *self.outcomes]


def _outcome(call: Call) -> tuple[bool, object]:
    """(True, result) or (False, what it raised)."""
    try:
        return True, call()
    except BaseException as e:      # noqa: BLE001 -- raised by run() after all ran
        return False, e


_helper: list[_Helper] = []
_made = _thread.allocate_lock()


def _get() -> _Helper | None:
    """This process's helper; None if no thread can be had."""
    with _made:
        if not _helper or _helper[0].pid != os.getpid() or _helper[0].broken:
            try:
                _helper[:] = [_Helper()]
            except RuntimeError:
                return None
        return _helper[0]


def run(first: Call, rest: list[Call]) -> list[object]:
    """The results of first, run in this thread, and of rest, run meanwhile
    in the helper thread (in turn, or here after first if it is serving
    another thread).  Every call runs; the first error (first's, then
    rest's in order) is raised after all have."""
    h = _get()
    if h is not None and h.busy.acquire(False):
        try:
            outcomes = h.run(first, rest)
        finally:
            h.busy.release()
    else:
        outcomes = [_outcome(c) for c in (first, *rest)]
    for ok, value in outcomes:
        if not ok:
            raise value  # type: ignore[misc]
    return [value for _, value in outcomes]
