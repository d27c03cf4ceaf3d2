"""Memory growth measured in a fresh interpreter (asserted by tests/test_memory_growth.py)."""

from __future__ import annotations

import ctypes
import gc
import os

import llvmlite.binding as llvm

import execution_engine

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()

MODULE = """
@counter = global i64 0
define i64 @g(i64 %x) {
  %a = mul i64 %x, 7
  ret i64 %a
}
define i64 @f(i64 %x) {
  %c = load i64, ptr @counter
  %c1 = add i64 %c, 1
  store i64 %c1, ptr @counter
  %a = call i64 @g(i64 %x)
  %r = add i64 %a, %c1
  ret i64 %r
}
"""
NEW_NAME = """
declare i64 @g(i64)
define i64 @fn{i}(i64 %x) {{
  %a = call i64 @g(i64 %x)
  ret i64 %a
}}
"""


def _rss_kb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


def _engine() -> execution_engine.ExecutionEngine:
    tm = llvm.Target.from_default_triple().create_target_machine(jit=True, opt=2)
    ee = execution_engine.create_mcjit_compiler(llvm.parse_assembly(MODULE), tm, grace_period=0)
    ee.finalize_object()
    return ee


def recompile_growth(opt_level: int | None, warmup: int, calls: int) -> float:
    """KB of RSS per ``recompile_and_relink_function('f', opt_level=...)``."""
    ee = _engine()
    for _ in range(warmup):
        ee.recompile_and_relink_function("f", opt_level=opt_level)
    gc.collect()
    before = _rss_kb()
    for _ in range(calls):
        ee.recompile_and_relink_function("f", opt_level=opt_level)
    gc.collect()
    f = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(ee.get_function_address("f"))
    assert f(1) == 8  # g(1) + the counter, now 1
    return (_rss_kb() - before) / calls


def new_name_growth(warmup: int, cycles: int) -> float:
    """KB of RSS per add_module / call / remove_module of a function with a new name."""
    ee = _engine()

    def cycle(i: int) -> None:
        module = llvm.parse_assembly(NEW_NAME.format(i=i))
        ee.add_module(module)
        ee.finalize_object()
        fn = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(ee.get_function_address(f"fn{i}"))
        assert fn(3) == 21
        ee.remove_module(module)
        module.close()

    for i in range(warmup):
        cycle(i)
    gc.collect()
    before = _rss_kb()
    for i in range(warmup, warmup + cycles):
        cycle(i)
    gc.collect()
    return (_rss_kb() - before) / cycles
