"""Lazy compilation (``lazy=True``), what is compiled when: nothing before the
first call, one function per call, addresses that stay the same, the globals
partition, the ``callees`` partition policy, and a partition that cannot link."""

from __future__ import annotations

import ctypes
import signal

import isolated
import pytest
from conftest import RecordingCompiler, cfunc, i64_at, make_tm, parse_ir
from isolated_cases import lazy as lazy_cases

from execution_engine import create_mcjit_compiler

I64 = ctypes.c_int64
PTR = ctypes.c_void_p
POLICIES = pytest.mark.parametrize("policy", ["direct", "stub", "single"])


# -- laziness ----------------------------------------------------------------------

CHAIN = """
declare i64 @nowhere_defined(i64)

define i64 @leaf(i64 %x) {
  %r = add i64 %x, 1
  ret i64 %r
}
define i64 @mid(i64 %x) {
  %r = call i64 @leaf(i64 %x)
  %s = mul i64 %r, 2
  ret i64 %s
}
define i64 @broken(i64 %x) {
  %r = call i64 @nowhere_defined(i64 %x)
  ret i64 %r
}
define i64 @unused(i64 %x) {
  %r = call i64 @mid(i64 %x)
  ret i64 %r
}
define i64 @main(i64 %x) {
entry:
  %big = icmp sgt i64 %x, 1000
  br i1 %big, label %bad, label %check
bad:
  %b = call i64 @broken(i64 %x)
  ret i64 %b
check:
  %pos = icmp sgt i64 %x, 0
  br i1 %pos, label %deep, label %shallow
deep:
  %m = call i64 @mid(i64 %x)
  ret i64 %m
shallow:
  ret i64 -1
}
"""


@POLICIES
def test_nothing_compiled_before_first_call(make_lazy, policy):
    lazy = make_lazy(CHAIN, policy=policy)
    main_address = lazy.engine.get_function_address("main")
    assert main_address
    for name in ("leaf", "mid", "broken", "unused"):
        assert lazy.engine.get_function_address(name)  # stubs, nothing compiled
    assert lazy.compiled() == []
    assert lazy.log == []  # not even the (empty) globals partition


@POLICIES
def test_functions_compile_one_by_one_as_called(make_lazy, policy):
    lazy = make_lazy(CHAIN, policy=policy)
    main = lazy.fn("main", I64, I64)
    assert main(0) == -1
    assert lazy.compiled() == ["main"]  # main's callees were not reached
    assert main(3) == 8
    assert lazy.compiled() == ["main", "mid", "leaf"]
    assert main(4) == 10 and main(-2) == -1
    assert lazy.compiled() == ["main", "mid", "leaf"]  # each compiled once
    assert len(lazy.log) == 3  # one partition each
    assert lazy.engine.stats().compiles == 3


@POLICIES
def test_uncalled_function_that_cannot_link_is_never_an_error(make_lazy, policy):
    lazy = make_lazy(CHAIN, policy=policy)
    lazy.engine.finalize_object()
    assert lazy.engine.get_function_address("broken")  # a stub; not compiled
    assert lazy.fn("main", I64, I64)(5) == 12
    lazy.engine.finalize_object()
    assert "broken" not in lazy.compiled()
    assert "unused" not in lazy.compiled()


IDENTITY = """
@fp = global ptr @leaf
@seen = global ptr null

define i64 @leaf() {
  ret i64 11
}
define ptr @self_addr() {
  store ptr @self_addr, ptr @seen
  ret ptr @self_addr
}
define i1 @is_leaf(ptr %p) {
  %c = icmp eq ptr %p, @leaf
  ret i1 %c
}
define ptr @main_sees_leaf() {
  %r = call i64 @leaf()
  ret ptr @leaf
}
"""


@POLICIES
def test_function_pointer_identity(make_lazy, policy):
    lazy = make_lazy(IDENTITY, policy=policy)
    engine = lazy.engine
    leaf = engine.get_function_address("leaf")
    self_addr = engine.get_function_address("self_addr")
    # The function's own idea of its address equals the engine's.
    assert cfunc(self_addr, PTR)() == self_addr
    assert ctypes.c_void_p.from_address(engine.get_global_value_address("seen")).value == self_addr
    assert engine.get_function_address("self_addr") == self_addr
    # Comparison with the address handed out, before and after leaf is compiled.
    is_leaf = cfunc(engine.get_function_address("is_leaf"), ctypes.c_bool, PTR)
    assert is_leaf(leaf)
    assert "leaf" not in lazy.compiled()
    assert cfunc(engine.get_function_address("main_sees_leaf"), PTR)() == leaf
    assert "leaf" in lazy.compiled()
    assert is_leaf(leaf)
    assert engine.get_function_address("leaf") == leaf  # unchanged by compilation
    # A global initialised with the function's address holds the same address.
    assert ctypes.c_void_p.from_address(engine.get_global_value_address("fp")).value == leaf
    assert cfunc(leaf, I64)() == 11


GLOBALS = """
@g = global i64 42
@arr = global [3 x i32] [i32 1, i32 2, i32 3]
@table = global [2 x ptr] [ptr @leaf, ptr @other]
@msg = constant [6 x i8] c"hello\\00"
@hp = global ptr @hidden

define internal i64 @hidden() {
  ret i64 9
}

define i64 @leaf() {
  ret i64 5
}
define i64 @other() {
  ret i64 6
}
define i64 @bump() {
  %v = load i64, ptr @g
  %n = add i64 %v, 1
  store i64 %n, ptr @g
  ret i64 %n
}
"""


@POLICIES
def test_global_lookup_links_globals_partition_only(make_lazy, policy):
    lazy = make_lazy(GLOBALS, policy=policy)
    engine = lazy.engine
    g = engine.get_global_value_address("g")
    assert i64_at(g) == 42
    assert lazy.compiled() == [] and len(lazy.log) == 1  # the globals partition, no code
    assert list((ctypes.c_int32 * 3).from_address(engine.get_global_value_address("arr"))) == [
        1, 2, 3]
    assert ctypes.string_at(engine.get_global_value_address("msg")) == b"hello"
    table = (ctypes.c_void_p * 2).from_address(engine.get_global_value_address("table"))
    assert table[0] == engine.get_function_address("leaf")
    assert table[1] == engine.get_function_address("other")
    assert len(lazy.log) == 1  # linked once
    assert cfunc(table[1], I64)() == 6  # calling through the table compiles 'other'
    assert lazy.compiled() == ["other"]
    hp = ctypes.c_void_p.from_address(engine.get_global_value_address("hp")).value
    assert cfunc(hp, I64)() == 9  # an internal function's stub, compiled on this call
    assert lazy.compiled() == ["other", "hidden"]
    # Code compiled later uses the same storage.
    assert lazy.fn("bump")() == 43
    assert i64_at(g) == 43 and engine.get_global_value_address("g") == g


# -- failures on first call ----------------------------------------------------------

FAILING = """
declare i64 @missing_symbol_xyz(i64)

define i64 @broken_fn(i64 %x) {
  %r = call i64 @missing_symbol_xyz(i64 %x)
  ret i64 %r
}
define i64 @main(i64 %x) {
  %r = call i64 @broken_fn(i64 %x)
  ret i64 %r
}
"""


@POLICIES
def test_partition_that_cannot_link_aborts_on_first_call(policy):
    outcome = isolated.run(lazy_cases.call_partition_that_cannot_link, policy, FAILING)
    assert outcome.stdout == "calling\n", outcome.stderr
    assert outcome.signal == signal.SIGABRT, outcome.describe()
    assert "compiling function 'broken_fn' on its first call failed" in outcome.stderr
    assert "missing_symbol_xyz" in outcome.stderr


CALLEES_PROGRAM = """
define i64 @leaf(i64 %x) {
  %r = add i64 %x, 1
  ret i64 %r
}
define i64 @mid(i64 %x) {
  %a = call i64 @leaf(i64 %x)
  %b = call i64 @leaf(i64 %a)
  ret i64 %b
}
define i64 @unused(i64 %x) {
  %r = call i64 @missing(i64 %x)
  ret i64 %r
}
declare i64 @missing(i64)
define i64 @top(i64 %x) {
  %a = call i64 @mid(i64 %x)
  %b = call i64 @leaf(i64 %a)
  ret i64 %b
}
"""


def test_callees_partition_compiles_a_function_with_its_callees():
    recorder = RecordingCompiler()
    engine = create_mcjit_compiler(parse_ir(CALLEES_PROGRAM), make_tm(), lazy=True,
                                   partition="callees", compiler=recorder)
    compiled = [sorted(names) for names in recorder.log]
    top = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(engine.get_function_address("top"))
    assert recorder.log == []
    assert top(1) == 4
    # One compile for top and the callees it reaches directly; mid's own callee
    # (leaf) came with top; 'unused' (which could not even link) never compiled.
    compiled = [sorted(names) for names in recorder.log]
    assert compiled == [["leaf", "mid", "top"]]
    assert top(10) == 13 and len(recorder.log) == 1
    engine.close()


def test_unknown_partition_policy_is_refused():
    with pytest.raises(ValueError, match="partition"):
        create_mcjit_compiler(parse_ir(CALLEES_PROGRAM), make_tm(), lazy=True,
                              partition="everything")
