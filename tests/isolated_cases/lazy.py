"""Lazy-compilation cases that need a process of their own (asserted by the
tests/test_lazy_*.py files): calls that stop the process on purpose, and
programs that once aborted it. The IR texts come from the tests as arguments."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

import llvmlite.binding as llvm

import execution_engine
from execution_engine import ExecutionEngine

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()


def lazy_engine(policy: str, *texts: str) -> tuple[ExecutionEngine, list[llvm.ModuleRef]]:
    """A lazy engine (redirection ``policy``) holding ``texts`` as modules m0, m1, ..."""
    tm = llvm.Target.from_default_triple().create_target_machine()
    modules = []
    for i, text in enumerate(texts):
        module = llvm.parse_assembly(text)
        module.name = f"m{i}"
        modules.append(module)
    engine = execution_engine.create_mcjit_compiler(modules[0], tm, lazy=True,
                                                    redirection=policy)
    for module in modules[1:]:
        engine.add_module(module)
    return engine, modules


def fn(engine: ExecutionEngine, name: str, restype: Any = ctypes.c_int64,
       *argtypes: Any) -> Any:
    address = engine.get_function_address(name)
    assert address, name
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


def call_pair(policy: str, ir: str) -> float:
    engine, _ = lazy_engine(policy, ir)
    return float(fn(engine, "call_pair", ctypes.c_double)())


def call_other(policy: str, a: str, b: str) -> int:
    # Once aborted on the first call: the alias of the other module was unresolved.
    engine, _ = lazy_engine(policy, a, b)
    return int(fn(engine, "other")())


def comdat_variable(policy: str, a: str, b: str) -> tuple[int, list[int]]:
    engine, _ = lazy_engine(policy, a, b)
    v = engine.get_global_value_address("shared_var")
    initial = ctypes.c_int64.from_address(v).value
    ctypes.c_int64.from_address(v).value = 9
    return initial, [fn(engine, "get0")(), fn(engine, "get1")()]


def unnamed_variables(policy: str, ir: str) -> tuple[int, list[int]]:
    engine, _ = lazy_engine(policy, ir)
    named = engine.get_global_value_address("named")
    initial = ctypes.c_int64.from_address(named).value
    return initial, [fn(engine, "inc_a")(), fn(engine, "inc_b")(), fn(engine, "inc_a")()]


def cxx_exceptions(policy: str, ir: str) -> tuple[list[int], int]:
    """main(v) for three values, and how many compiles the engine did."""
    llvm.load_library_permanently(ctypes.util.find_library("stdc++"))
    engine, _ = lazy_engine(policy, ir)
    main = fn(engine, "main", ctypes.c_int32, ctypes.c_int32)
    return [main(41), main(2000), main(6)], engine.stats().compiles


def remove_update_never_called(policy: str, base: str, new_text: str) -> list[int]:
    """main() before an update and after the update is removed again (the
    updated f never called in between): once the second call aborted."""
    engine, _ = lazy_engine(policy, base)
    main = fn(engine, "main")
    results = [main()]
    new = llvm.parse_assembly(new_text)
    engine.update_module(new)  # unbinds f's stub: the next call compiles the new f
    engine.remove_module(new)  # ... but the new f is never called
    results.append(main())
    return results


def call_removed_function(policy: str, called: bool, ir: str) -> None:
    """Call ``doomed_fn`` through its address after its module was removed
    (after calling it first if ``called``): the process must stop."""
    engine, modules = lazy_engine(policy, ir)
    doomed = fn(engine, "doomed_fn")
    if called:
        assert doomed() == 7
    engine.remove_module(modules[0])
    assert engine.get_function_address("doomed_fn") == 0
    print("calling", flush=True)
    doomed()
    print("returned", flush=True)


def call_partition_that_cannot_link(policy: str, ir: str) -> None:
    """main(1) calls broken_fn, whose partition cannot link: the process must stop."""
    engine, _ = lazy_engine(policy, ir)
    engine.finalize_object()
    main = fn(engine, "main", ctypes.c_int64, ctypes.c_int64)
    assert engine.get_function_address("broken_fn")
    engine.run_static_constructors()
    print("calling", flush=True)
    main(1)
    print("returned", flush=True)
