"""Lazy compilation and the C/C++ runtime: static constructors in priority
order, C++ exceptions unwinding through lazily compiled frames."""

from __future__ import annotations

import isolated
import pytest
from conftest import i64_at
from isolated_cases import lazy as lazy_cases

POLICIES = pytest.mark.parametrize("policy", ["direct", "stub", "single"])


# -- static constructors -----------------------------------------------------------

CTORS = """
@log = global i64 0
@llvm.global_ctors = appending global [3 x { i32, ptr, ptr }] [
  { i32, ptr, ptr } { i32 65535, ptr @c_late, ptr null },
  { i32, ptr, ptr } { i32 101, ptr @c_first, ptr null },
  { i32, ptr, ptr } { i32 200, ptr @c_internal, ptr null }]

define void @push(i64 %d) {
  %v = load i64, ptr @log
  %m = mul i64 %v, 10
  %n = add i64 %m, %d
  store i64 %n, ptr @log
  ret void
}
define void @c_first() {
  call void @push(i64 1)
  ret void
}
define internal void @c_internal() {
  call void @push(i64 2)
  ret void
}
define void @c_late() {
  call void @push(i64 5)
  ret void
}
define void @never() {
  call void @push(i64 9)
  ret void
}
"""
MORE_CTORS = """
declare void @push(i64)
@llvm.global_ctors = appending global [2 x { i32, ptr, ptr }] [
  { i32, ptr, ptr } { i32 300, ptr @c_other, ptr null },
  { i32, ptr, ptr } { i32 300, ptr @c_other2, ptr null }]

define internal void @c_other() {
  call void @push(i64 3)
  ret void
}
define internal void @c_other2() {
  call void @push(i64 4)
  ret void
}
"""


@POLICIES
def test_static_constructors_run_in_priority_order(make_lazy, policy):
    lazy = make_lazy(CTORS, MORE_CTORS, policy=policy)
    assert lazy.compiled() == []
    lazy.engine.run_static_constructors()
    assert i64_at(lazy.engine.get_global_value_address("log")) == 12345
    compiled = lazy.compiled()
    assert "never" not in compiled
    assert sorted(compiled) == sorted(["c_first", "push", "c_internal", "c_other", "c_other2",
                                       "c_late"])
    lazy.engine.run_static_constructors()  # each module is constructed once
    assert i64_at(lazy.engine.get_global_value_address("log")) == 12345


# -- C++ exceptions through lazily compiled frames ----------------------------------

EXCEPTIONS = """
@_ZTIi = external constant ptr
declare ptr @__cxa_allocate_exception(i64)
declare void @__cxa_throw(ptr, ptr, ptr)
declare i32 @__gxx_personality_v0(...)
declare ptr @__cxa_begin_catch(ptr)
declare void @__cxa_end_catch()
declare i32 @llvm.eh.typeid.for(ptr)

define void @thrower(i32 %v) {
  %e = call ptr @__cxa_allocate_exception(i64 4)
  store i32 %v, ptr %e
  call void @__cxa_throw(ptr %e, ptr @_ZTIi, ptr null)
  unreachable
}
define i32 @middle(i32 %v) {
  %big = icmp sgt i32 %v, 1000
  br i1 %big, label %done, label %throw
throw:
  call void @thrower(i32 %v)
  br label %done
done:
  ret i32 -2
}
define i32 @main(i32 %v) personality ptr @__gxx_personality_v0 {
entry:
  %r = invoke i32 @middle(i32 %v) to label %ok unwind label %lp
ok:
  ret i32 %r
lp:
  %lpad = landingpad { ptr, i32 } catch ptr @_ZTIi
  %exn = extractvalue { ptr, i32 } %lpad, 0
  %sel = extractvalue { ptr, i32 } %lpad, 1
  %tid = call i32 @llvm.eh.typeid.for(ptr @_ZTIi)
  %match = icmp eq i32 %sel, %tid
  br i1 %match, label %catch, label %resume
catch:
  %p = call ptr @__cxa_begin_catch(ptr %exn)
  %val = load i32, ptr %p
  call void @__cxa_end_catch()
  %r2 = add i32 %val, 1
  ret i32 %r2
resume:
  resume { ptr, i32 } %lpad
}
"""


@POLICIES
def test_cxx_exception_through_lazily_compiled_frames(policy):
    outcome = isolated.run(lazy_cases.cxx_exceptions, policy, EXCEPTIONS)
    assert outcome.value == [[42, -2, 7], 3]  # main(41, 2000, 6); one compile per function
