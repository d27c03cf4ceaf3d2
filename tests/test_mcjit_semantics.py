"""Where this engine and stock llvmlite MCJIT differ on purpose, or now agree
(issue 11, item 8). Each test runs the same scenario on both; the README's
API table states each difference and its reason."""

from __future__ import annotations

import ctypes
import sys
import warnings

import llvmlite.binding as llvm
import llvmlite.binding.executionengine as stock
import pytest
from conftest import make_tm, parse_ir
from engine_modes import MODES

from execution_engine import ExecutionEngine, ObjectCacheWarning, TargetMismatchError

pytest_plugins = ("engine_modes",)  # the mode, make fixtures

FIRST = r"""
define i64 @f() {
  ret i64 1
}
define i64 @call_first() {
  %r = call i64 @f()
  ret i64 %r
}
"""
SECOND = r"""
define i64 @f() {
  ret i64 2
}
define i64 @call_second() {
  %r = call i64 @f()
  ret i64 %r
}
"""


def mcjit(*texts: str) -> llvm.ExecutionEngine:
    """Stock llvmlite MCJIT holding the modules (never this engine's drop-in)."""
    modules = [parse_ir(t, f"m{i}") for i, t in enumerate(texts)]
    engine = stock.create_mcjit_compiler(modules[0], make_tm())
    assert not isinstance(engine, ExecutionEngine)
    for module in modules[1:]:
        engine.add_module(module)
    return engine


def run_i64(engine: llvm.ExecutionEngine, name: str) -> int:
    address = engine.get_function_address(name)
    assert address, name
    return int(ctypes.CFUNCTYPE(ctypes.c_int64)(address)())


# -- a strong symbol defined again in a later module ----------------------------------


@pytest.mark.parametrize("finalize_first", [False, True], ids=["lookup", "finalize-then-lookup"])
def test_duplicate_definitions(make, finalize_first):
    # MCJIT: which definition a lookup returns depends on when code was
    # generated (a lookup compiles the first module defining the name; after
    # finalize_object the last one emitted wins, in an order that follows
    # pointer hashes beyond four modules), and each module's own callers
    # keep calling its own definition.
    reference = mcjit(FIRST, SECOND)
    if finalize_first:
        reference.finalize_object()
    assert run_i64(reference, "f") == (2 if finalize_first else 1)
    assert run_i64(reference, "call_first") == 1
    assert run_i64(reference, "call_second") == 2
    # Here: always the later strong definition, for lookups and for every
    # caller (they call through the stub); removing it brings the first back.
    engine = make(FIRST, SECOND)
    if finalize_first:
        engine.finalize_object()
    assert engine.call("f") == 2
    assert engine.call("call_first") == 2
    assert engine.call("call_second") == 2


# -- run_static_constructors twice ------------------------------------------------------

COUNTED = r"""
@runs = global i64 0
@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }]
    [{ i32, ptr, ptr } { i32 65535, ptr @ctor, ptr null }]
define void @ctor() {
  %v = load i64, ptr @runs
  %w = add i64 %v, 1
  store i64 %w, ptr @runs
  ret void
}
define i64 @get_runs() {
  %v = load i64, ptr @runs
  ret i64 %v
}
"""
COUNTED_TOO = COUNTED.replace("@runs", "@runs2").replace("@ctor", "@ctor2").replace(
    "@get_runs", "@get_runs2")


def test_static_constructors_run_once_per_module(make):
    reference = mcjit(COUNTED)
    reference.finalize_object()
    reference.run_static_constructors()
    reference.run_static_constructors()
    assert run_i64(reference, "get_runs") == 2  # MCJIT runs them again
    # Here each module is constructed once: a second call constructs only
    # the modules added since (the REPL pattern: add, construct, call).
    engine = make(COUNTED)
    engine.run_static_constructors()
    engine.run_static_constructors()
    assert engine.call("get_runs") == 1
    engine.add_module(parse_ir(COUNTED_TOO, "later"))
    engine.run_static_constructors()
    assert (engine.call("get_runs"), engine.call("get_runs2")) == (1, 1)


# -- a module for another architecture ---------------------------------------------------

FOREIGN = "define i32 @seven() {\n  ret i32 7\n}\n"


def _foreign_module() -> llvm.ModuleRef:
    module = llvm.parse_assembly(FOREIGN)
    host = llvm.get_process_triple()
    module.triple = ("aarch64-unknown-linux-gnu" if host.startswith("x86_64")
                     else "x86_64-unknown-linux-gnu")
    return module


def test_a_module_for_another_architecture(mode):
    # MCJIT silently compiles it for the host and runs it.
    reference = stock.create_mcjit_compiler(_foreign_module(), make_tm())
    reference.finalize_object()
    assert ctypes.CFUNCTYPE(ctypes.c_int32)(reference.get_function_address("seven"))() == 7
    # Here it is refused, naming the triple: IR written for another target
    # bakes in that target's ABI decisions, so running it on the host is not
    # safe in general (the command line retargets programs explicitly, as
    # lli does).
    module = _foreign_module()
    with pytest.raises(TargetMismatchError) as info:
        ExecutionEngine(module, make_tm(), **MODES[mode]).close()
    assert module.triple in str(info.value)


# -- an object-cache hook that raises ---------------------------------------------------

LATER = "define i64 @g() {\n  ret i64 5\n}\n"


def _raising(calls: list[str], what: str):
    def hook(*args):
        calls.append(what)
        raise ValueError(f"{what} hook broke")
    return hook


def test_a_raising_notify_hook_is_reported_and_the_engine_carries_on(make, monkeypatch):
    # MCJIT: the exception is printed (an unraisable exception of the ctypes
    # callback) once per compiled module and everything keeps working.
    reported: list[BaseException] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: reported.append(args.exc_value))
    calls: list[str] = []
    reference = mcjit(FIRST)
    reference.set_object_cache(_raising(calls, "notify"), None)
    assert run_i64(reference, "f") == 1
    reference.add_module(parse_ir(LATER, "later"))
    assert run_i64(reference, "g") == 5
    assert run_i64(reference, "f") == 1
    assert len(calls) == 2 and [str(e) for e in reported] == ["notify hook broke"] * 2
    monkeypatch.undo()
    # Here: reported as an ObjectCacheWarning, once per compile, and lookups
    # carry on (they used to re-raise until the hook was removed).
    calls.clear()
    engine = make(FIRST)
    engine.set_object_cache(_raising(calls, "notify"), None)
    with pytest.warns(ObjectCacheWarning, match="notify hook raised ValueError") as caught:
        assert engine.call("f") == 1
        engine.add_module(parse_ir(LATER, "later"))
        assert engine.call("g") == 5
        assert engine.call("f") == 1
        assert engine.get_function_address("f") != 0
    assert len(caught) == len(calls) >= 2
    assert engine.stats().pending_sets == 0


def test_a_raising_getbuffer_hook_is_reported_and_the_module_compiled(make, monkeypatch):
    reported: list[BaseException] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: reported.append(args.exc_value))
    calls: list[str] = []
    reference = mcjit(FIRST)
    reference.set_object_cache(None, _raising(calls, "getbuffer"))
    assert run_i64(reference, "f") == 1
    assert calls == ["getbuffer"] and len(reported) == 1
    monkeypatch.undo()
    calls.clear()
    engine = make(FIRST)
    engine.set_object_cache(None, _raising(calls, "getbuffer"))
    with pytest.warns(ObjectCacheWarning, match="getbuffer hook raised ValueError"):
        assert engine.call("f") == 1
        assert engine.call("call_first") == 1  # lazily: another compile, another report
    assert calls


def test_a_hook_warning_can_be_made_an_error(make):
    engine = make(FIRST)
    engine.set_object_cache(_raising([], "notify"), None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ObjectCacheWarning)
        with pytest.raises(ObjectCacheWarning):
            engine.call("f")
    engine.set_object_cache(None, None)
    assert engine.call("f") == 1
