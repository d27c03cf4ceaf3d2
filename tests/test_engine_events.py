"""The engine's event API: what is reported, when, and that listeners cannot
hurt the engine."""

from __future__ import annotations

import ctypes
import threading
import warnings

import pytest
from conftest import make_tm, parse_ir

from execution_engine import ExecutorCrashedError, create_mcjit_compiler
from execution_engine.observe import (
    CodeFreed,
    EventListenerWarning,
    ExecutorEvent,
    FunctionSwapped,
    LazyCompiled,
    ObjectLinked,
)

PROGRAM = """
define i64 @f(i64 %x) {
  %y = mul i64 %x, 2
  ret i64 %y
}
define i64 @g(i64 %x) {
  %y = call i64 @f(i64 %x)
  ret i64 %y
}
"""
NEW_F = "define i64 @f(i64 %x) {\n  %y = mul i64 %x, 3\n  ret i64 %y\n}\n"


def test_linked_swapped_and_freed_are_reported():
    events: list = []
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "prog"), make_tm(), grace_period=0)
    engine.add_event_listener(events.append)
    engine.finalize_object()
    linked = [e for e in events if isinstance(e, ObjectLinked)]
    assert len(linked) == 1 and linked[0].module == "module 'prog'"
    assert {r.name for r in linked[0].functions} >= {"f", "g"}
    assert all(r.size > 0 for r in linked[0].functions)
    assert linked[0].compile_seconds > 0
    old_body = engine.function_info("f").body
    update = parse_ir(NEW_F, "v2")
    engine.update_module(update)
    swaps = [e for e in events if isinstance(e, FunctionSwapped)]
    assert swaps == [FunctionSwapped("f", old_body, engine.function_info("f").body)]
    engine.remove_module(update)
    freed = [e for e in events if isinstance(e, CodeFreed)]
    assert any(e.module == "update module 'v2'" for e in freed)
    engine.close()
    assert any(e.module == "module 'prog'" for e in events if isinstance(e, CodeFreed))


def test_lazy_first_calls_are_reported_once():
    events: list = []
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "prog"), make_tm(), lazy=True)
    engine.add_event_listener(events.append)
    g = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(engine.get_function_address("g"))
    assert g(4) == 8 and g(5) == 10
    lazy = [e for e in events if isinstance(e, LazyCompiled)]
    assert [e.name for e in lazy] == ["g", "f"]
    assert all(e.module == "module 'prog'" and e.seconds > 0 for e in lazy)
    engine.close()


def test_a_failing_listener_is_reported_and_the_engine_carries_on():
    seen: list = []

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    engine = create_mcjit_compiler(parse_ir(PROGRAM, "prog"), make_tm())
    engine.add_event_listener(broken)
    engine.add_event_listener(seen.append)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert engine.call("g", 21) == 42
    assert any(issubclass(w.category, EventListenerWarning) for w in caught)
    assert any(isinstance(e, ObjectLinked) for e in seen)  # the others still get it
    engine.remove_event_listener(broken)
    with pytest.raises(ValueError):
        engine.remove_event_listener(broken)
    engine.close()


def test_listeners_run_outside_the_engine_lock():
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "prog"), make_tm())
    answers: list[int] = []

    def from_another_thread(event: object) -> None:
        # Would deadlock (and time out) if the engine's lock were held here.
        worker = threading.Thread(target=lambda: answers.append(engine.stats().modules))
        worker.start()
        worker.join(10)

    engine.add_event_listener(from_another_thread)
    engine.finalize_object()
    assert answers == [1]
    engine.close()


def test_nothing_is_observed_without_listeners():
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "prog"), make_tm())
    assert engine._stack.redirection.observer is None  # no event is even built
    listener = [].append
    engine.add_event_listener(listener)
    assert engine._stack.redirection.observer is not None
    engine.remove_event_listener(listener)
    assert engine._stack.redirection.observer is None
    engine.close()


def test_enable_jit_events_registers_code_for_perf():
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "prog"), make_tm())
    assert engine.enable_jit_events() is True
    assert engine.enable_jit_events() is True  # idempotent
    engine.finalize_object()
    import os

    with open(f"/tmp/perf-{os.getpid()}.map") as f:
        names = f.read()
    assert " f\n" in names and " g\n" in names
    engine.close()


CRASHY = """
define void @crash() {
  store volatile i64 1, ptr null
  ret void
}
define i64 @ok() {
  ret i64 7
}
"""


def test_executor_crash_and_restart_are_reported():
    events: list = []
    engine = create_mcjit_compiler(parse_ir(CRASHY, "crashy"), make_tm(), remote=True)
    engine.add_event_listener(events.append)
    with pytest.raises(ExecutorCrashedError):
        engine.call("crash")
    engine.restart_executor()
    assert engine.call("ok") == 7
    kinds = [e.kind for e in events if isinstance(e, ExecutorEvent)]
    assert kinds == ["crash", "restart"]
    engine.close()
