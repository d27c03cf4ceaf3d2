"""Lazy compilation: linkage kinds across partitions and modules (aliases,
common symbols, comdats, weak and link-once definitions, variables that refer
to each other, private/internal/unnamed symbols shared between partitions,
block addresses)."""

from __future__ import annotations

import ctypes

import isolated
import pytest
from conftest import cfunc, i64_at, parse_ir
from isolated_cases import lazy as lazy_cases

I64 = ctypes.c_int64
PTR = ctypes.c_void_p
POLICIES = pytest.mark.parametrize("policy", ["direct", "stub", "single"])


ALIASES = """
@answer = global i64 42
@answer.alias = alias i64, ptr @answer

define i64 @read() {
  %v = load i64, ptr @answer.alias
  ret i64 %v
}
@read.alias = alias i64 (), ptr @read

define i64 @main() {
  %v = call i64 @read.alias()
  %w = load i64, ptr @answer.alias
  %s = add i64 %v, %w
  ret i64 %s
}
"""

ALIAS_USER = """
declare i64 @read.alias()
@answer.alias = external global i64

define i64 @other() {
  %v = call i64 @read.alias()
  %w = load i64, ptr @answer.alias
  %s = mul i64 %v, %w
  ret i64 %s
}
"""


@POLICIES
def test_aliases_used_inside_their_module(make_lazy, policy):
    lazy = make_lazy(ALIASES, policy=policy)
    assert lazy.fn("main")() == 84
    assert lazy.compiled() == ["main", "read"]
    answer = lazy.engine.get_global_value_address("answer")
    ctypes.c_int64.from_address(answer).value = 50
    assert lazy.fn("main")() == 100  # the variable alias is the same storage


@POLICIES
def test_alias_addresses_can_be_looked_up(make_lazy, policy):
    lazy = make_lazy(ALIASES, policy=policy)
    engine = lazy.engine
    assert engine.get_global_value_address("answer.alias") == engine.get_global_value_address(
        "answer")
    read_alias = engine.get_function_address("read.alias")
    assert read_alias and cfunc(read_alias, I64)() == 42


@POLICIES
def test_aliases_referenced_from_another_module(policy):
    # In a process of its own: an unresolved alias aborted it on the first call.
    assert isolated.run(lazy_cases.call_other, policy, ALIASES, ALIAS_USER).value == 1764


COMMON = """
@c = common global i64 0
define void @set{i}(i64 %v) {{
  store i64 %v, ptr @c
  ret void
}}
define i64 @get{i}() {{
  %v = load i64, ptr @c
  ret i64 %v
}}
define ptr @addr{i}() {{
  ret ptr @c
}}
"""


@POLICIES
def test_common_symbols_are_one_variable(make_lazy, policy):
    lazy = make_lazy(COMMON.format(i=0), COMMON.format(i=1), policy=policy)
    lazy.fn("set1", None, I64)(17)
    assert lazy.fn("get0")() == 17
    lazy.fn("set0", None, I64)(23)
    assert lazy.fn("get1")() == 23
    c = lazy.engine.get_global_value_address("c")
    assert lazy.fn("addr0", PTR)() == lazy.fn("addr1", PTR)() == c
    assert i64_at(c) == 23


COMDAT = """
$shared_fn = comdat any
@calls = common global i64 0

define linkonce_odr i64 @shared_fn() comdat {{
  %v = load i64, ptr @calls
  %n = add i64 %v, 1
  store i64 %n, ptr @calls
  ret i64 %n
}}
define ptr @fn_addr{i}() {{
  ret ptr @shared_fn
}}
define i64 @call{i}() {{
  %r = call i64 @shared_fn()
  ret i64 %r
}}
"""


@POLICIES
def test_comdat_any_functions_resolve_to_one_definition(make_lazy, policy):
    lazy = make_lazy(COMDAT.format(i=0), COMDAT.format(i=1), policy=policy)
    assert lazy.fn("call1")() == 1
    assert lazy.fn("call0")() == 2  # the same counter
    fn_addr = lazy.engine.get_function_address("shared_fn")
    assert lazy.fn("fn_addr0", PTR)() == lazy.fn("fn_addr1", PTR)() == fn_addr
    assert cfunc(fn_addr, I64)() == 3
    assert lazy.compiled().count("shared_fn") == 1


COMDAT_VARIABLE = """
$shared_var = comdat any
@shared_var = linkonce_odr global i64 5, comdat, align 8

define i64 @get{i}() {{
  %v = load i64, ptr @shared_var
  ret i64 %v
}}
"""


@POLICIES
def test_comdat_variables_resolve_to_one_definition(policy):
    outcome = isolated.run(lazy_cases.comdat_variable, policy, COMDAT_VARIABLE.format(i=0),
                           COMDAT_VARIABLE.format(i=1))
    assert outcome.value == [5, [9, 9]]  # the initial value; then get0(), get1() after a store


WEAK = """
@wv = weak global i64 {value}

define weak i64 @w() {{
  ret i64 {value}
}}
define linkonce_odr i64 @lo() {{
  ret i64 100
}}
define ptr @w_addr{i}() {{
  ret ptr @w
}}
define ptr @lo_addr{i}() {{
  ret ptr @lo
}}
define ptr @wv_addr{i}() {{
  ret ptr @wv
}}
define i64 @call{i}() {{
  %a = call i64 @w()
  %b = call i64 @lo()
  %v = load i64, ptr @wv
  %s = add i64 %a, %b
  %t = mul i64 %s, 1000
  %r = add i64 %t, %v
  ret i64 %r
}}
"""


@POLICIES
@pytest.mark.parametrize("first", [0, 1])
def test_weak_and_linkonce_odr_resolve_to_one_definition(make_lazy, policy, first):
    lazy = make_lazy(WEAK.format(i=0, value=10), WEAK.format(i=1, value=20), policy=policy)
    second = 1 - first
    a = lazy.fn(f"call{first}")()
    assert lazy.fn(f"call{second}")() == a  # both modules see the same definitions
    engine = lazy.engine
    w, lo = engine.get_function_address("w"), engine.get_function_address("lo")
    assert lazy.fn("w_addr0", PTR)() == lazy.fn("w_addr1", PTR)() == w
    assert lazy.fn("lo_addr0", PTR)() == lazy.fn("lo_addr1", PTR)() == lo
    wv = engine.get_global_value_address("wv")
    assert lazy.fn("wv_addr0", PTR)() == lazy.fn("wv_addr1", PTR)() == wv
    assert lazy.compiled().count("w") == 1 and lazy.compiled().count("lo") == 1


@POLICIES
def test_weak_variable_winner_does_not_depend_on_first_use(make_lazy, policy):
    values = []
    for first in (0, 1):
        lazy = make_lazy(WEAK.format(i=0, value=10), WEAK.format(i=1, value=20), policy=policy)
        values.append(i64_at(lazy.fn(f"wv_addr{first}", PTR)()))
    assert values[0] == values[1]


STRONG = """
define i64 @f() {
  ret i64 1
}
define i64 @use0() {
  %r = call i64 @f()
  ret i64 %r
}
"""
WEAK_LATER = """
define weak i64 @f() {
  ret i64 2
}
define i64 @use1() {
  %r = call i64 @f()
  ret i64 %r
}
"""


@POLICIES
def test_later_weak_function_does_not_replace_strong_one(make_lazy, policy):
    lazy = make_lazy(STRONG, WEAK_LATER, policy=policy)
    assert lazy.fn("use1")() == 1
    assert lazy.fn("use0")() == 1


STRONG_LATER = """
define i64 @f() {
  ret i64 3
}
"""


@POLICIES
def test_a_module_added_after_a_first_call_takes_over_only_with_a_strong_definition(
        make_lazy, policy):
    """As the linker (and the eager engine) decide: a later strong definition
    replaces a body compiled already, a later weak one does not; removing the
    later module brings the earlier body back."""
    lazy = make_lazy(STRONG, policy=policy)
    assert lazy.fn("use0")() == 1  # f compiled from m0
    weak = parse_ir(WEAK_LATER, "weak")
    lazy.engine.add_module(weak)
    assert lazy.fn("use1")() == 1 and lazy.fn("use0")() == 1
    strong = parse_ir(STRONG_LATER, "strong")
    lazy.engine.add_module(strong)
    assert lazy.fn("use0")() == 3 and lazy.fn("use1")() == 3
    assert lazy.engine.call("f") == 3
    lazy.engine.remove_module(strong)
    assert lazy.fn("use0")() == 1 and lazy.engine.call("f") == 1


CYCLE_A = """
@b = external global ptr
@a = global ptr @b
"""
CYCLE_B = """
@a = external global ptr
@b = global ptr @a
"""


@POLICIES
def test_variables_referring_to_each_other_across_modules(make_lazy, policy):
    lazy = make_lazy(CYCLE_A, CYCLE_B, policy=policy)
    a = lazy.engine.get_global_value_address("a")
    b = lazy.engine.get_global_value_address("b")
    assert ctypes.c_void_p.from_address(a).value == b
    assert ctypes.c_void_p.from_address(b).value == a


LOCALS = r"""
@counter = internal global i64 100
@calls = private global i64 0
@.msg = private unnamed_addr constant [3 x i8] c"ok\00"

define private i64 @0() {
  %v = load i64, ptr @calls
  %n = add i64 %v, 1
  store i64 %n, ptr @calls
  ret i64 %n
}
define internal void @bump(i64 %d) {
  %v = load i64, ptr @counter
  %n = add i64 %v, %d
  store i64 %n, ptr @counter
  ret void
}
define i64 @inc_a{suffix}() {
  call void @bump(i64 1)
  %t = call i64 @0()
  ret i64 %t
}
define i64 @inc_b{suffix}() {
  call void @bump(i64 10)
  %t = call i64 @0()
  ret i64 %t
}
define i64 @get{suffix}() {
  %v = load i64, ptr @counter
  %c = load i8, ptr @.msg
  %cz = zext i8 %c to i64
  %r = mul i64 %v, 1000
  %s = add i64 %r, %cz
  ret i64 %s
}
"""


@POLICIES
def test_private_and_internal_symbols_shared_across_partitions(make_lazy, policy):
    lazy = make_lazy(LOCALS.replace("{suffix}", ""), LOCALS.replace("{suffix}", "_m1"),
                     policy=policy)
    assert lazy.fn("inc_a")() == 1
    assert lazy.fn("inc_b")() == 2  # one private @calls, one unnamed @0 for both
    assert lazy.fn("get")() == 111 * 1000 + ord("o")  # one internal @counter, bumped by both
    # The other module's locals of the same names are its own.
    assert lazy.fn("inc_b_m1")() == 1
    assert lazy.fn("get_m1")() == 110 * 1000 + ord("o")
    assert lazy.fn("inc_a")() == 3
    compiled = lazy.compiled()
    assert compiled.count("bump") == 2 and compiled.count("anon.0") == 2  # once per module
    assert lazy.engine.get_global_value_address("counter") == 0  # internal: not exported


UNNAMED_VARIABLE = """
@0 = internal global i64 0
@1 = private constant i64 7
@named = global i64 1

define i64 @inc_a() {
  %v = load i64, ptr @0
  %n = add i64 %v, 1
  store i64 %n, ptr @0
  ret i64 %n
}
define i64 @inc_b() {
  %v = load i64, ptr @0
  %k = load i64, ptr @1
  %n = add i64 %v, %k
  store i64 %n, ptr @0
  ret i64 %n
}
"""


@POLICIES
def test_unnamed_variables_shared_across_partitions(policy):
    outcome = isolated.run(lazy_cases.unnamed_variables, policy, UNNAMED_VARIABLE)
    assert outcome.value == [1, [1, 8, 9]]  # @named; then inc_a(), inc_b(), inc_a()


INTERPRETER = r"""
@table = internal constant [4 x ptr] [ptr blockaddress(@run, %op_inc),
                                      ptr blockaddress(@run, %op_dbl),
                                      ptr blockaddress(@run, %op_dec),
                                      ptr blockaddress(@run, %op_halt)]
@prog = private constant [8 x i8] c"\00\00\01\01\02\00\01\03"

define i64 @run(ptr %code) {
entry:
  %acc = alloca i64
  %pc = alloca i64
  store i64 0, ptr %acc
  store i64 0, ptr %pc
  br label %dispatch
dispatch:
  %i = load i64, ptr %pc
  %opp = getelementptr i8, ptr %code, i64 %i
  %op = load i8, ptr %opp
  %opx = zext i8 %op to i64
  %next = add i64 %i, 1
  store i64 %next, ptr %pc
  %slot = getelementptr [4 x ptr], ptr @table, i64 0, i64 %opx
  %target = load ptr, ptr %slot
  indirectbr ptr %target, [label %op_inc, label %op_dbl, label %op_dec, label %op_halt]
op_inc:
  %a = load i64, ptr %acc
  %a1 = add i64 %a, 1
  store i64 %a1, ptr %acc
  br label %dispatch
op_dbl:
  %b = load i64, ptr %acc
  %b1 = mul i64 %b, 2
  store i64 %b1, ptr %acc
  br label %dispatch
op_dec:
  %c = load i64, ptr %acc
  %c1 = sub i64 %c, 1
  store i64 %c1, ptr %acc
  br label %dispatch
op_halt:
  %r = load i64, ptr %acc
  ret i64 %r
}
define i64 @main() {
  %r = call i64 @run(ptr @prog)
  ret i64 %r
}
"""


def _interpret(code: bytes) -> int:
    acc = 0
    for op in code:
        if op == 3:
            return acc
        acc = (acc + 1, acc * 2, acc - 1)[op]
    raise AssertionError("no halt")


@POLICIES
def test_computed_goto_interpreter(make_lazy, policy):
    lazy = make_lazy(INTERPRETER, policy=policy)
    assert lazy.fn("main")() == _interpret(b"\0\0\1\1\2\0\1\3") == 16
    code = b"\0\1\0\1\0\1\2\3"
    run = lazy.fn("run", I64, ctypes.c_char_p)
    assert run(code) == _interpret(code) == 13
    assert lazy.compiled().count("run") == 1


@POLICIES
def test_computed_goto_interpreter_called_first(make_lazy, policy):
    lazy = make_lazy(INTERPRETER, policy=policy)
    code = b"\0\1\0\1\0\1\2\3"
    run = lazy.fn("run", I64, ctypes.c_char_p)
    assert run(code) == 13
    assert lazy.fn("main")() == 16
    assert run(b"\0\0\0\3") == 3


@POLICIES
def test_computed_goto_interpreter_compiled_once_when_called_first(make_lazy, policy):
    lazy = make_lazy(INTERPRETER, policy=policy)
    assert lazy.fn("run", I64, ctypes.c_char_p)(b"\0\0\1\3") == 4
    assert lazy.compiled().count("run") == 1
