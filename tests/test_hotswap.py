"""Hot-swap through the engine's API: update_module, recompile_and_relink_function,
reclamation of replaced bodies, and the stale-pointer abort."""

from __future__ import annotations

import ctypes
import re
import signal
import time

import isolated
import llvmlite.binding as llvm
import pytest
from conftest import cfunc, i64_at, make_tm, parse_ir
from isolated_cases import hotswap as hotswap_cases

from execution_engine import (
    ExecutionEngine,
    SignatureMismatchError,
    SwapNotSupportedError,
    create_mcjit_compiler,
)

I64 = ctypes.c_int64
SWAPPABLE = pytest.mark.parametrize("policy", ["direct", "stub", "single"])


@pytest.fixture
def make_engine():
    """``make_engine(main_ir, *more_ir, policy=..., **options)``: an engine holding
    the parsed modules (finalized), plus the modules; closed after the test."""
    engines: list[ExecutionEngine] = []

    def make(*texts: str, policy: str = "direct", **options):
        modules = [parse_ir(t, f"m{i}") for i, t in enumerate(texts)]
        engine = create_mcjit_compiler(modules[0], make_tm(), redirection=policy, **options)
        for m in modules[1:]:
            engine.add_module(m)
        engine.finalize_object()
        engines.append(engine)
        return engine, modules

    yield make
    for engine in engines:
        engine.close()


def fn(engine: ExecutionEngine, name: str, *argtypes):
    return cfunc(engine.get_function_address(name), I64, *argtypes)


def ret(name: str, value: int) -> str:
    return f"define i64 @{name}() {{\n  ret i64 {value}\n}}\n"


def calls(name: str, callee: str) -> str:
    return f"define i64 @{name}() {{\n  %r = call i64 @{callee}()\n  ret i64 %r\n}}\n"


def slot_target(engine: ExecutionEngine, name: str) -> int:
    """The body the function's pointer slot currently holds."""
    info = engine.function_info(name)
    assert info is not None and info.body is not None
    return info.body


# -- update_module ---------------------------------------------------------------

MAIN = ret("f", 1) + calls("same", "f") + """
@fp = global ptr @f
define i64 @via_pointer() {
  %p = load ptr, ptr @fp
  %r = call i64 %p()
  ret i64 %r
}
"""
OTHER = "declare i64 @f()\n" + calls("other", "f")


@SWAPPABLE
def test_update_reaches_every_caller_and_keeps_function_pointer(make_engine, policy):
    engine, _ = make_engine(MAIN, OTHER, policy=policy)
    before = engine.get_function_address("f")
    old_pointer = cfunc(before, I64)
    assert [old_pointer(), fn(engine, "same")(), fn(engine, "other")()] == [1, 1, 1]
    assert i64_at(engine.get_global_value_address("fp")) == before  # @f in data is the stub too

    engine.update_module(parse_ir(ret("f", 2), "v2"))

    assert engine.get_function_address("f") == before
    assert old_pointer() == 2
    assert fn(engine, "same")() == 2  # caller in the module that defined the old body
    assert fn(engine, "other")() == 2  # caller in another module
    assert fn(engine, "via_pointer")() == 2  # pointer stored in data before the swap
    engine.update_module(parse_ir(ret("f", 3), "v3"))
    assert [old_pointer(), fn(engine, "same")(), fn(engine, "other")()] == [3, 3, 3]


COUNTER = """
@counter = global i64 0
@other = global i64 7
@p = global ptr @counter
define i64 @bump() {
  %v = load i64, ptr @counter
  %n = add i64 %v, 1
  store i64 %n, ptr @counter
  ret i64 %n
}
define i64 @read() {
  %v = load i64, ptr @counter
  ret i64 %v
}
define ptr @get_p() {
  %v = load ptr, ptr @p
  ret ptr %v
}
"""
BUMP_BY_10 = """
@counter = global i64 100
define i64 @bump() {
  %v = load i64, ptr @counter
  %n = add i64 %v, 10
  store i64 %n, ptr @counter
  ret i64 %n
}
"""


@SWAPPABLE
def test_update_keeps_global_storage_and_value(make_engine, policy):
    engine, _ = make_engine(COUNTER, policy=policy)
    address = engine.get_global_value_address("counter")
    bump = fn(engine, "bump")
    assert bump() == 1 and bump() == 2

    engine.update_module(parse_ir(BUMP_BY_10, "v2"))

    assert engine.get_global_value_address("counter") == address
    assert i64_at(address) == 2  # the update's initial value (100) is not applied
    assert bump() == 12  # new body, old storage
    assert fn(engine, "read")() == 12  # old code sees the same storage


@SWAPPABLE
def test_reinitialize_globals_resets_existing_storage(make_engine, policy):
    engine, _ = make_engine(COUNTER, policy=policy)
    address = engine.get_global_value_address("counter")
    bump = fn(engine, "bump")
    bump(), bump()

    engine.update_module(parse_ir(BUMP_BY_10, "v2"), reinitialize_globals=True)

    assert engine.get_global_value_address("counter") == address
    assert i64_at(address) == 100
    assert fn(engine, "read")() == 100  # old code sees the reset value
    assert bump() == 110


@SWAPPABLE
def test_reinitialize_globals_with_pointer_initializer(make_engine, policy):
    engine, _ = make_engine(COUNTER, policy=policy)
    p = engine.get_global_value_address("p")
    counter = engine.get_global_value_address("counter")
    other = engine.get_global_value_address("other")
    assert i64_at(p) == counter
    fn(engine, "bump")()

    engine.update_module(parse_ir("""
        @other = global i64 7
        @counter = global i64 0
        @p = global ptr @other
        """, "v2"), reinitialize_globals=True)

    assert engine.get_global_value_address("p") == p
    assert i64_at(p) == other  # relocated initializer: the engine's existing @other
    assert cfunc(engine.get_function_address("get_p"), ctypes.c_void_p)() == other
    assert engine.get_global_value_address("other") == other and i64_at(other) == 7
    assert i64_at(counter) == 0


@SWAPPABLE
def test_update_adds_new_functions_and_globals(make_engine, policy):
    engine, _ = make_engine(ret("f", 1), policy=policy)
    assert engine.get_function_address("g") == 0
    assert engine.get_global_value_address("h") == 0

    engine.update_module(parse_ir("""
        @h = global i64 40
        declare i64 @f()
        define i64 @g() {
          %v = load i64, ptr @h
          %r = call i64 @f()
          %s = add i64 %v, %r
          ret i64 %s
        }
        """, "v2"))

    assert i64_at(engine.get_global_value_address("h")) == 40
    assert fn(engine, "g")() == 41
    engine.update_module(parse_ir(ret("f", 2), "v3"))
    assert fn(engine, "g")() == 42  # the new function calls f through its stub


SIGNATURES = """
@g = global i64 5
define i64 @f(i64 %x) {
  %r = add i64 %x, 1
  ret i64 %r
}
define i64 @k() {
  ret i64 10
}
"""


@SWAPPABLE
def test_signature_change_raises_and_changes_nothing(make_engine, policy):
    engine, _ = make_engine(SIGNATURES, policy=policy)
    f = fn(engine, "f", I64)
    bad = parse_ir("""
        define i64 @k() {
          ret i64 20
        }
        define i32 @f(i32 %x) {
          ret i32 %x
        }
        define i64 @added() {
          ret i64 1
        }
        """, "bad")
    with pytest.raises(SignatureMismatchError, match="'f'"):
        engine.update_module(bad)
    bad.close()  # still the caller's

    assert f(1) == 2
    assert fn(engine, "k")() == 10  # a valid function of the failed update was not swapped
    assert engine.get_function_address("added") == 0
    engine.update_module(parse_ir(SIGNATURES.replace("add i64 %x, 1", "add i64 %x, 2"), "ok"))
    assert f(1) == 3


@SWAPPABLE
def test_global_type_change_raises(make_engine, policy):
    engine, _ = make_engine(SIGNATURES, policy=policy)
    address = engine.get_global_value_address("g")
    bad = parse_ir("@g = global i32 9\n" + ret("k", 20), "bad")
    with pytest.raises(SignatureMismatchError, match="'g'"):
        engine.update_module(bad)
    bad.close()
    assert engine.get_global_value_address("g") == address and i64_at(address) == 5
    assert fn(engine, "k")() == 10


@SWAPPABLE
def test_remove_update_reverts_to_earlier_definition(make_engine, policy):
    engine, _ = make_engine(ret("f", 1), "declare i64 @f()\n" + calls("other", "f"),
                            policy=policy, grace_period=None)
    stub = engine.get_function_address("f")
    update = parse_ir(ret("f", 2), "v2")
    engine.update_module(update)
    assert fn(engine, "other")() == 2
    engine.remove_module(update)
    assert engine.get_function_address("f") == stub
    assert fn(engine, "other")() == 1 and cfunc(stub, I64)() == 1

    # A recompiled body of the update is undone with it.
    update = parse_ir(ret("f", 3), "v3")
    engine.update_module(update)
    engine.recompile_and_relink_function("f")
    assert fn(engine, "other")() == 3
    engine.remove_module(update)
    assert fn(engine, "other")() == 1


@SWAPPABLE
def test_remove_update_skips_freed_and_keeps_data_defining_updates(make_engine, policy):
    engine, _ = make_engine(ret("f", 1), policy=policy, grace_period=0)
    f = fn(engine, "f")
    # v2 defines only functions: once v3 replaces it, it is freed, so removing
    # v3 reverts to the module added with add_module.
    engine.update_module(parse_ir(ret("f", 2), "v2"))
    v3 = parse_ir(ret("f", 3), "v3")
    engine.update_module(v3)
    engine.remove_module(v3)
    assert f() == 1
    # v4 defines data: it is never freed while it is in the engine.
    engine.update_module(parse_ir("@d = global i64 0\n" + ret("f", 4), "v4"))
    v5 = parse_ir(ret("f", 5), "v5")
    engine.update_module(v5)
    assert f() == 5
    engine.remove_module(v5)
    assert f() == 4


# -- recompile_and_relink_function ----------------------------------------------

PROGRAM = r"""
@count = internal global i64 0
@.str = private unnamed_addr constant [6 x i8] c"hello\00"

define internal i64 @helper(i64 %x) {
  %v = load i64, ptr @count
  %n = add i64 %v, %x
  store i64 %n, ptr @count
  ret i64 %n
}
define i64 @tick() {
  %r = call i64 @helper(i64 1)
  ret i64 %r
}
define i64 @get_count() {
  %v = load i64, ptr @count
  ret i64 %v
}
define i64 @slen() {
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  %p = getelementptr i8, ptr @.str, i64 %i
  %c = load i8, ptr %p
  %i1 = add i64 %i, 1
  %z = icmp eq i8 %c, 0
  br i1 %z, label %done, label %loop
done:
  ret i64 %i
}
define i64 @sum(i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  %s = phi i64 [0, %entry], [%s1, %loop]
  %s1 = add i64 %s, %i
  %i1 = add i64 %i, 1
  %c = icmp ult i64 %i1, %n
  br i1 %c, label %loop, label %done
done:
  ret i64 %s1
}
define i64 @twice_sum(i64 %n) {
  %s = call i64 @sum(i64 %n)
  %r = mul i64 %s, 2
  ret i64 %r
}
"""


@SWAPPABLE
def test_recompile_by_value_and_by_name(make_engine, policy):
    engine, (module,) = make_engine(PROGRAM, policy=policy, grace_period=None)
    stub = engine.get_function_address("sum")
    sum_, twice = fn(engine, "sum", I64), fn(engine, "twice_sum", I64)
    bodies = {slot_target(engine, "sum")}

    body = engine.recompile_and_relink_function(module.get_function("sum"))
    assert body != stub and body not in bodies
    assert slot_target(engine, "sum") == body  # every caller now reaches the new body
    assert cfunc(body, I64, I64)(101) == 5050
    assert sum_(101) == 5050 and twice(101) == 10100
    bodies.add(body)

    body = engine.recompile_and_relink_function("sum")
    assert body != stub and body not in bodies
    assert slot_target(engine, "sum") == body
    assert engine.get_function_address("sum") == stub
    assert sum_(101) == 5050 and twice(101) == 10100


@SWAPPABLE
def test_recompile_after_user_optimises_module(make_engine, policy):
    engine, (module,) = make_engine(PROGRAM, policy=policy)
    tick, slen, sum_ = fn(engine, "tick"), fn(engine, "slen"), fn(engine, "sum", I64)
    assert tick() == 1 and tick() == 2
    tm = make_tm()
    try:
        pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=3))
        pb.getModulePassManager().run(module, pb)
    finally:
        tm.close()
    assert "@helper(" not in str(module)  # the pipeline really changed the IR (inlined)

    for name in ("tick", "sum", "twice_sum"):
        body = engine.recompile_and_relink_function(module.get_function(name))
        assert body != engine.get_function_address(name)
        assert slot_target(engine, name) == body
    assert tick() == 3  # the module's internal counter is shared, not copied
    assert fn(engine, "get_count")() == 3
    assert slen() == 5 and sum_(101) == 5050 and fn(engine, "twice_sum", I64)(10) == 90


@SWAPPABLE
def test_recompile_function_with_return_attribute(make_engine, policy):
    # Return-value attributes must stay on the return type when the header's
    # attribute group (#N) is written out (llvmlite lists them with the function's).
    engine, _ = make_engine("""
        define noundef i64 @inc(i64 noundef %x) nounwind {
          %r = add i64 %x, 1
          ret i64 %r
        }
        """, policy=policy)
    inc = fn(engine, "inc", I64)
    body = engine.recompile_and_relink_function("inc")
    assert slot_target(engine, "inc") == body and inc(41) == 42


@SWAPPABLE
def test_recompile_after_optimisation_adds_return_attribute(make_engine, policy):
    # Clang output and the O3 pipeline put 'noundef' on returns.
    engine, (module,) = make_engine(PROGRAM, policy=policy)
    tm = make_tm()
    try:
        pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=3))
        pb.getModulePassManager().run(module, pb)
    finally:
        tm.close()
    # folded to 'ret i64 5', noundef (and, after in-place code generation, range) inferred
    assert re.search(r"define noundef [^@\n]*i64 @slen\(\)", str(module))
    body = engine.recompile_and_relink_function(module.get_function("slen"))
    assert slot_target(engine, "slen") == body and fn(engine, "slen")() == 5


@SWAPPABLE
def test_recompile_at_opt_levels(make_engine, policy):
    engine, _ = make_engine(PROGRAM, policy=policy)
    sum_ = fn(engine, "sum", I64)
    for level in (0, 3, 0):
        body = engine.recompile_and_relink_function("sum", opt_level=level)
        assert body != engine.get_function_address("sum")
        assert sum_(101) == 5050 and cfunc(body, I64, I64)(1000) == 499500
        assert fn(engine, "twice_sum", I64)(101) == 10100
    with pytest.raises(ValueError, match="opt_level"):
        engine.recompile_and_relink_function("sum", opt_level=4)
    assert sum_(101) == 5050


@SWAPPABLE
def test_recompile_shares_internal_globals_and_helpers(make_engine, policy):
    engine, _ = make_engine(PROGRAM, policy=policy, grace_period=None)
    tick = fn(engine, "tick")
    original = cfunc(slot_target(engine, "tick"), I64)
    assert tick() == 1 and tick() == 2
    first = cfunc(engine.recompile_and_relink_function("tick"), I64)
    assert tick() == 3
    assert original() == 4  # old body (still mapped: grace_period=None) shares @count
    second = cfunc(engine.recompile_and_relink_function("tick", opt_level=3), I64)
    assert first() == 5 and second() == 6 and tick() == 7
    assert fn(engine, "get_count")() == 7


@SWAPPABLE
def test_recompile_function_using_private_string_constant(make_engine, policy):
    engine, _ = make_engine(PROGRAM, policy=policy)
    slen = fn(engine, "slen")
    assert slen() == 5
    body = engine.recompile_and_relink_function("slen")
    assert cfunc(body, I64)() == 5 and slen() == 5
    engine.recompile_and_relink_function("slen", opt_level=0)
    assert slen() == 5


@SWAPPABLE
def test_recompile_internal_function_is_refused(make_engine, policy):
    engine, (module,) = make_engine(PROGRAM, policy=policy)
    with pytest.raises(SwapNotSupportedError, match="helper"):
        engine.recompile_and_relink_function(module.get_function("helper"))
    # By name the engine does not know an external 'helper' at all.
    with pytest.raises((SwapNotSupportedError, KeyError), match="helper"):
        engine.recompile_and_relink_function("helper")
    assert fn(engine, "tick")() == 1


def test_redirection_none_refuses_swaps(make_engine):
    engine, (module,) = make_engine(PROGRAM, policy="none")
    update = parse_ir(ret("tick", 99), "v2")
    with pytest.raises(SwapNotSupportedError, match="redirection='none'"):
        engine.update_module(update)
    update.close()
    with pytest.raises(SwapNotSupportedError):
        engine.recompile_and_relink_function("sum")
    with pytest.raises(SwapNotSupportedError):
        engine.recompile_and_relink_function(module.get_function("sum"))
    assert fn(engine, "tick")() == 1 and fn(engine, "sum", I64)(101) == 5050


# -- memory ----------------------------------------------------------------------

@SWAPPABLE
def test_many_recompiles_stay_bounded(make_engine, policy):
    engine, _ = make_engine(PROGRAM, policy=policy, grace_period=0, session_capacity=8)
    sum_ = fn(engine, "sum", I64)
    stubs = engine.stats().stubs
    max_sessions = max_retired = 0
    for _ in range(200):
        engine.recompile_and_relink_function("sum")
        max_sessions = max(max_sessions, engine.stats().lljit_sessions)
        max_retired = max(max_retired, engine.stats().retired_sets)
    # 200 links at 8 per session: without disposal there would be 25 sessions.
    assert max_sessions <= 3
    assert max_retired <= 1
    assert engine.stats().stubs == stubs
    assert sum_(101) == 5050


@SWAPPABLE
def test_grace_none_frees_only_at_reclaim(make_engine, policy):
    engine, _ = make_engine(PROGRAM, policy=policy, grace_period=None)
    sum_ = fn(engine, "sum", I64)
    bodies = [engine.recompile_and_relink_function("sum") for _ in range(5)]
    # The original module's body stays (add_module'd sets are freed by remove_module
    # only); the first four recompiled bodies are retired.
    assert engine.stats().retired_sets == 4
    for body in bodies:
        assert cfunc(body, I64, I64)(101) == 5050  # retired, not freed: still runnable
    assert engine.reclaim() == 4
    assert engine.stats().retired_sets == 0
    assert engine.reclaim() == 0
    assert sum_(101) == 5050


@SWAPPABLE
def test_default_grace_retires_then_frees(make_engine, policy):
    engine, _ = make_engine(PROGRAM, policy=policy)
    assert engine.options.grace_period == 1.0
    sum_ = fn(engine, "sum", I64)
    bodies = [engine.recompile_and_relink_function("sum") for _ in range(3)]
    assert engine.stats().retired_sets == 2  # not freed at once
    assert cfunc(bodies[0], I64, I64)(101) == 5050
    time.sleep(1.1)
    engine.recompile_and_relink_function("sum")  # a reclamation point past the grace
    assert engine.stats().retired_sets == 1  # only the body replaced just now
    assert sum_(101) == 5050


# -- stale pointers --------------------------------------------------------------

@SWAPPABLE
def test_stale_pointer_aborts_naming_function(policy):
    outcome = isolated.run(hotswap_cases.call_removed_function, policy)
    assert outcome.stdout == "calling\n", outcome.stderr
    assert outcome.signal == signal.SIGABRT, outcome.describe()  # not SIGSEGV
    assert "doomed_fn" in outcome.stderr
    assert "not linked" in outcome.stderr
