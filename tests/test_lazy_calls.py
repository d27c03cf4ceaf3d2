"""Lazy compilation: first calls forwarded through the resolver with their
original arguments (integers, floating point, structs, stack arguments,
varargs), functions that cannot be forwarded, recursion and global mappings."""

from __future__ import annotations

import ctypes

import isolated
import pytest
from isolated_cases import lazy as lazy_cases

I64 = ctypes.c_int64
I32 = ctypes.c_int32
F64 = ctypes.c_double
POLICIES = pytest.mark.parametrize("policy", ["direct", "stub", "single"])


ARGS = r"""
%struct.P = type { i64, double, i32 }

declare void @llvm.va_start.p0(ptr)
declare void @llvm.va_end.p0(ptr)

define i64 @ints(i32 %a, i64 %b, i16 signext %c, i8 zeroext %d) {
  %a1 = sext i32 %a to i64
  %c1 = sext i16 %c to i64
  %d1 = zext i8 %d to i64
  %x = mul i64 %b, 1000
  %s1 = add i64 %a1, %x
  %s2 = add i64 %s1, %c1
  %s3 = add i64 %s2, %d1
  ret i64 %s3
}
define double @dbl(double %a, float %b, double %c) {
  %b1 = fpext float %b to double
  %m = fmul double %a, %b1
  %r = fsub double %m, %c
  ret double %r
}
define double @by_ptr(ptr %p) {
  %f0 = getelementptr %struct.P, ptr %p, i32 0, i32 0
  %f1 = getelementptr %struct.P, ptr %p, i32 0, i32 1
  %f2 = getelementptr %struct.P, ptr %p, i32 0, i32 2
  %a = load i64, ptr %f0
  %b = load double, ptr %f1
  %c = load i32, ptr %f2
  %af = sitofp i64 %a to double
  %cf = sitofp i32 %c to double
  %s = fadd double %af, %b
  %t = fmul double %s, %cf
  store i32 99, ptr %f2
  ret double %t
}
define double @by_val(ptr byval(%struct.P) align 8 %p) {
  %r = call double @by_ptr(ptr %p)
  ret double %r
}
define double @call_by_val() {
  %s = alloca %struct.P
  %f0 = getelementptr %struct.P, ptr %s, i32 0, i32 0
  %f1 = getelementptr %struct.P, ptr %s, i32 0, i32 1
  %f2 = getelementptr %struct.P, ptr %s, i32 0, i32 2
  store i64 3, ptr %f0
  store double 0.5, ptr %f1
  store i32 4, ptr %f2
  %r = call double @by_val(ptr byval(%struct.P) align 8 %s)
  ret double %r
}
define { double, double } @pair(double %a, double %b) {
  %p0 = insertvalue { double, double } undef, double %b, 0
  %p1 = insertvalue { double, double } %p0, double %a, 1
  ret { double, double } %p1
}
define double @call_pair() {
  %p = call { double, double } @pair(double 1.25, double 8.0)
  %x = extractvalue { double, double } %p, 0
  %y = extractvalue { double, double } %p, 1
  %r = fdiv double %x, %y
  ret double %r
}
define i64 @many(i64 %a1, i64 %a2, i64 %a3, i64 %a4, i64 %a5, i64 %a6, i64 %a7, i64 %a8,
                 i64 %a9, i64 %a10) {
  %t2 = mul i64 %a2, 2
  %s2 = add i64 %a1, %t2
  %t3 = mul i64 %a3, 3
  %s3 = add i64 %s2, %t3
  %t4 = mul i64 %a4, 4
  %s4 = add i64 %s3, %t4
  %t5 = mul i64 %a5, 5
  %s5 = add i64 %s4, %t5
  %t6 = mul i64 %a6, 6
  %s6 = add i64 %s5, %t6
  %t7 = mul i64 %a7, 7
  %s7 = add i64 %s6, %t7
  %t8 = mul i64 %a8, 8
  %s8 = add i64 %s7, %t8
  %t9 = mul i64 %a9, 9
  %s9 = add i64 %s8, %t9
  %t10 = mul i64 %a10, 10
  %s10 = add i64 %s9, %t10
  ret i64 %s10
}
define double @many_mixed(double %d1, i64 %i1, double %d2, double %d3, double %d4, double %d5,
                          double %d6, double %d7, double %d8, double %d9, double %d10,
                          i64 %i2, i64 %i3, i64 %i4, i64 %i5, i64 %i6, i64 %i7) {
  %a = fmul double %d9, 100.0
  %b = fmul double %d10, 1000.0
  %c = fadd double %a, %b
  %e = fadd double %c, %d1
  %f = fsub double %e, %d8
  %g = sub i64 %i7, %i1
  %gf = sitofp i64 %g to double
  %r = fadd double %f, %gf
  ret double %r
}
define i32 @vsum(i32 %n, ...) {
entry:
  %ap = alloca [24 x i8], align 8
  call void @llvm.va_start.p0(ptr %ap)
  br label %loop
loop:
  %i = phi i32 [ 0, %entry ], [ %i1, %loop ]
  %acc = phi i32 [ 0, %entry ], [ %acc1, %loop ]
  %v = va_arg ptr %ap, i32
  %k = add i32 %i, 1
  %w = mul i32 %v, %k
  %acc1 = add i32 %acc, %w
  %i1 = add i32 %i, 1
  %done = icmp eq i32 %i1, %n
  br i1 %done, label %exit, label %loop
exit:
  call void @llvm.va_end.p0(ptr %ap)
  ret i32 %acc1
}
define double @vsumd(i32 %n, ...) {
entry:
  %ap = alloca [24 x i8], align 8
  call void @llvm.va_start.p0(ptr %ap)
  br label %loop
loop:
  %i = phi i32 [ 0, %entry ], [ %i1, %loop ]
  %acc = phi double [ 0.0, %entry ], [ %acc1, %loop ]
  %v = va_arg ptr %ap, double
  %acc1 = fadd double %acc, %v
  %i1 = add i32 %i, 1
  %done = icmp eq i32 %i1, %n
  br i1 %done, label %exit, label %loop
exit:
  call void @llvm.va_end.p0(ptr %ap)
  ret double %acc1
}
define i32 @call_vsum() {
  %r = call i32 (i32, ...) @vsum(i32 9, i32 1, i32 2, i32 3, i32 4, i32 5, i32 6, i32 7,
                                 i32 8, i32 9)
  ret i32 %r
}
define double @call_vsumd() {
  %r = call double (i32, ...) @vsumd(i32 10, double 0.5, double 1.0, double 1.5, double 2.0,
                                     double 2.5, double 3.0, double 3.5, double 4.0,
                                     double 4.5, double 5.0)
  ret double %r
}
"""


class P(ctypes.Structure):
    _fields_ = [("a", ctypes.c_int64), ("b", ctypes.c_double), ("c", ctypes.c_int32)]


class Pair(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]


@POLICIES
def test_first_call_integer_arguments(make_lazy, policy):
    lazy = make_lazy(ARGS, policy=policy)
    ints = lazy.fn("ints", I64, I32, I64, ctypes.c_int16, ctypes.c_uint8)
    assert ints(-5, 7, -300, 200) == -5 + 7000 - 300 + 200
    assert lazy.compiled() == ["ints"]
    assert ints(1, 2, 3, 4) == 2008


@POLICIES
def test_first_call_floating_point_arguments(make_lazy, policy):
    lazy = make_lazy(ARGS, policy=policy)
    assert lazy.fn("dbl", F64, F64, ctypes.c_float, F64)(1.5, 4.0, 0.25) == 5.75
    assert lazy.compiled() == ["dbl"]
    assert lazy.fn("dbl", F64, F64, ctypes.c_float, F64)(-2.0, 0.5, 1.0) == -2.0


@POLICIES
def test_first_call_of_function_returning_literal_struct(make_lazy, policy):
    lazy = make_lazy(ARGS, policy=policy)
    pair = lazy.fn("pair", Pair, F64, F64)(1.25, 8.0)  # {double, double} in xmm0:xmm1
    assert (pair.x, pair.y) == (8.0, 1.25)
    assert lazy.compiled() == ["pair"]


@POLICIES
def test_caller_of_function_returning_literal_struct(policy):
    assert isolated.run(lazy_cases.call_pair, policy, ARGS).value == 8.0 / 1.25


@POLICIES
def test_first_call_struct_by_pointer_and_by_value(make_lazy, policy):
    lazy = make_lazy(ARGS, policy=policy)
    p = P(3, 0.5, 4)
    assert lazy.fn("by_ptr", F64, ctypes.POINTER(P))(ctypes.byref(p)) == 14.0
    assert p.c == 99  # written through the pointer
    # byval: the struct is copied onto the stack by the JIT'd caller.
    assert lazy.fn("call_by_val", F64)() == 14.0
    assert lazy.compiled() == ["by_ptr", "call_by_val", "by_val"]


@POLICIES
def test_first_call_stack_arguments(make_lazy, policy):
    lazy = make_lazy(ARGS, policy=policy)
    assert lazy.fn("many", I64, *[I64] * 10)(*range(1, 11)) == sum(
        i * i for i in range(1, 11))
    args = [1.0, 10, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 20, 30, 40, 50, 60, 70]
    kinds = [F64 if isinstance(a, float) else I64 for a in args]
    # 10 doubles (8 in xmm registers, 2 on the stack) and 7 integers (1 on the stack).
    assert lazy.fn("many_mixed", F64, *kinds)(*args) == 9.0 * 100 + 10.0 * 1000 + 1 - 8 + 60
    assert lazy.compiled() == ["many", "many_mixed"]


@POLICIES
def test_first_call_varargs(make_lazy, policy):
    lazy = make_lazy(ARGS, policy=policy)
    # 9 variadic i32 after the count: 5 in registers, 4 on the stack.
    assert lazy.fn("call_vsum", I32)() == sum(k * k for k in range(1, 10))
    # 10 variadic doubles: al carries the xmm count through the resolver.
    assert lazy.fn("call_vsumd", F64)() == 27.5
    assert lazy.compiled() == ["call_vsum", "vsum", "call_vsumd", "vsumd"]
    assert lazy.fn("call_vsum", I32)() == 285


WIDE = """
declare float @llvm.vector.reduce.fadd.v8f32(float, <8 x float>)

define float @vsum8(<8 x float> %v) {
  %r = call float @llvm.vector.reduce.fadd.v8f32(float 0.0, <8 x float> %v)
  ret float %r
}
define preserve_mostcc i64 @pm(i64 %x) {
  %r = add i64 %x, 5
  ret i64 %r
}
define float @use_vsum8() {
  %r = call float @vsum8(<8 x float> <float 1.0, float 2.0, float 3.0, float 4.0,
                                      float 5.0, float 6.0, float 7.0, float 8.0>)
  ret float %r
}
define i64 @use_pm() {
  %r = call preserve_mostcc i64 @pm(i64 37)
  ret i64 %r
}
"""


@POLICIES
def test_unforwardable_functions_compile_when_referenced(make_lazy, policy):
    lazy = make_lazy(WIDE, policy=policy)
    assert lazy.engine.get_function_address("vsum8")
    assert lazy.compiled() == ["vsum8"]  # 256-bit vector argument: compiled at once
    assert lazy.engine.get_function_address("pm")
    assert lazy.compiled() == ["vsum8", "pm"]  # preserve_mostcc: compiled at once
    assert lazy.fn("use_vsum8", ctypes.c_float)() == 36.0
    assert lazy.fn("use_pm")() == 42
    assert lazy.compiled() == ["vsum8", "pm", "use_vsum8", "use_pm"]


RECURSION = """
declare i64 @host_scale(i64)

define i1 @is_even(i64 %n) {
entry:
  %z = icmp eq i64 %n, 0
  br i1 %z, label %yes, label %rec
yes:
  ret i1 true
rec:
  %m = sub i64 %n, 1
  %r = call i1 @is_odd(i64 %m)
  ret i1 %r
}
define i1 @is_odd(i64 %n) {
entry:
  %z = icmp eq i64 %n, 0
  br i1 %z, label %no, label %rec
no:
  ret i1 false
rec:
  %m = sub i64 %n, 1
  %r = call i1 @is_even(i64 %m)
  ret i1 %r
}
define i64 @fact(i64 %n) {
entry:
  %z = icmp sle i64 %n, 1
  br i1 %z, label %base, label %rec
base:
  ret i64 1
rec:
  %m = sub i64 %n, 1
  %r = call i64 @fact(i64 %m)
  %p = mul i64 %r, %n
  ret i64 %p
}
define i64 @scaled_fact(i64 %n) {
  %f = call i64 @fact(i64 %n)
  %s = call i64 @host_scale(i64 %f)
  ret i64 %s
}
"""


@POLICIES
def test_recursion_and_global_mappings(make_lazy, policy):
    lazy = make_lazy(RECURSION, policy=policy)
    host = ctypes.CFUNCTYPE(I64, I64)(lambda v: v * 3)
    lazy.engine.add_global_mapping(lazy.modules[0].get_function("host_scale"),
                                   ctypes.cast(host, ctypes.c_void_p).value)
    is_even = lazy.fn("is_even", ctypes.c_bool, I64)
    assert is_even(7) is False and is_even(10) is True
    assert lazy.compiled() == ["is_even", "is_odd"]
    assert lazy.fn("scaled_fact", I64, I64)(5) == 360
    assert lazy.compiled() == ["is_even", "is_odd", "scaled_fact", "fact"]
