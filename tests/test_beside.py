"""upas/beside.py: the calls Namespace.together runs beside the caller's
(an APPEND's mailbox and .imp syncs): each call's result in order, every
call run before the first error is raised, another thread's calls run
while the helper serves one, and a forked child's own helper thread."""
from __future__ import annotations

import os
import threading

import pytest

from upas import beside


def test_results_in_order_and_in_the_helper_thread():
    here = threading.get_ident()
    where: list[int] = []

    def mark(v):
        def call():
            where.append(threading.get_ident())
            return v
        return call
    assert beside.run(mark("a"), [mark("b"), mark("c")]) == ["a", "b", "c"]
    others = [w for w in where if w != here]
    assert where.count(here) == 1 and len(set(others)) == 1 and len(others) == 2
    assert beside.run(mark(1), []) == [1]


def test_every_call_runs_and_the_first_error_is_raised():
    ran: list[str] = []

    def fail(name):
        def call():
            ran.append(name)
            raise OSError(name)
        return call

    def ok():
        ran.append("ok")
        return 1
    with pytest.raises(OSError, match="second"):
        beside.run(ok, [fail("second"), fail("third")])
    assert sorted(ran) == ["ok", "second", "third"]
    ran.clear()
    with pytest.raises(OSError, match="first"):
        beside.run(fail("first"), [fail("other")])
    assert sorted(ran) == ["first", "other"]
    assert beside.run(ok, [ok]) == [1, 1]          # the helper still serves


def test_a_second_caller_while_the_helper_is_busy():
    inside, leave = threading.Event(), threading.Event()

    def slow():
        inside.set()
        assert leave.wait(10)
        return "slow"
    got: list = []
    t = threading.Thread(target=lambda: got.append(beside.run(lambda: "first", [slow])))
    t.start()
    assert inside.wait(10)
    # the helper is taken: these run in this thread, in turn
    me = threading.get_ident()
    assert beside.run(lambda: threading.get_ident(), [lambda: threading.get_ident()]) == [me, me]
    leave.set()
    t.join(10)
    assert got == [["first", "slow"]]


def test_a_forked_child_makes_its_own_helper():
    assert beside.run(lambda: 0, [lambda: 1]) == [0, 1]     # the parent's exists
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ok = beside.run(lambda: os.getpid(), [lambda: os.getpid()]) == [os.getpid()] * 2
            os.write(w, b"y" if ok else b"n")
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"y"
    os.close(r)
    os.waitpid(pid, 0)
