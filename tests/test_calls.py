"""``engine.call`` marshals by the function's IR signature (issue 11, item 5), in
every mode: eager, lazy, remote and remote+lazy. The rules are in
:mod:`execution_engine.ir.signature`."""

from __future__ import annotations

import ctypes
import struct

import pytest
from conftest import compile_ir, parse_ir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution_engine import Signature
from execution_engine.ir import signature

pytest_plugins = ("engine_modes",)  # the mode, make fixtures

TYPED = r"""
define i1 @true1() {
  ret i1 true
}
define i8 @ff8() {
  ret i8 255
}
define i8 @wrap8() {
  %r = add i8 255, 1
  ret i8 %r
}
define i8 @inc8(i8 %x) {
  %r = add i8 %x, 1
  ret i8 %r
}
define i16 @minus2_16() {
  ret i16 -2
}
define i32 @neg() {
  ret i32 -3
}
define i64 @neg64() {
  ret i64 -4
}
define i24 @min24() {
  ret i24 -8388608
}
define i64 @sext8(i8 %x) {
  %r = sext i8 %x to i64
  ret i64 %r
}
define i64 @zext8(i8 %x) {
  %r = zext i8 %x to i64
  ret i64 %r
}
define i64 @zext1(i1 %x) {
  %r = zext i1 %x to i64
  ret i64 %r
}
define i32 @add32(i32 %a, i32 %b) {
  %r = add i32 %a, %b
  ret i32 %r
}
define double @widen(float %x) {
  %r = fpext float %x to double
  ret double %r
}
define float @narrow(double %x) {
  %r = fptrunc double %x to float
  ret float %r
}
define double @mix(i8 %a, float %b, double %c, i32 %d, ptr %e) {
  %a1 = sitofp i8 %a to double
  %b1 = fpext float %b to double
  %d1 = sitofp i32 %d to double
  %e0 = ptrtoint ptr %e to i64
  %e1 = uitofp i64 %e0 to double
  %s1 = fadd double %a1, %b1
  %s2 = fadd double %s1, %c
  %s3 = fadd double %s2, %d1
  %s4 = fadd double %s3, %e1
  ret double %s4
}
define ptr @same(ptr %p) {
  ret ptr %p
}
@stored = global i32 0
define void @store(i32 %v) {
  store i32 %v, ptr @stored
  ret void
}
define i32 @load() {
  %v = load i32, ptr @stored
  ret i32 %v
}
declare void @llvm.va_start(ptr)
declare void @llvm.va_end(ptr)
define i64 @sum(i32 %n, ...) {
entry:
  %ap = alloca [32 x i8], align 16
  call void @llvm.va_start(ptr %ap)
  br label %loop
loop:
  %i = phi i32 [0, %entry], [%i1, %body]
  %acc = phi i64 [0, %entry], [%acc1, %body]
  %done = icmp eq i32 %i, %n
  br i1 %done, label %out, label %body
body:
  %v = va_arg ptr %ap, i64
  %acc1 = add i64 %acc, %v
  %i1 = add i32 %i, 1
  br label %loop
out:
  call void @llvm.va_end(ptr %ap)
  ret i64 %acc
}
define double @fsum(i32 %n, ...) {
entry:
  %ap = alloca [32 x i8], align 16
  call void @llvm.va_start(ptr %ap)
  br label %loop
loop:
  %i = phi i32 [0, %entry], [%i1, %body]
  %acc = phi double [0.0, %entry], [%acc1, %body]
  %done = icmp eq i32 %i, %n
  br i1 %done, label %out, label %body
body:
  %v = va_arg ptr %ap, double
  %acc1 = fadd double %acc, %v
  %i1 = add i32 %i, 1
  br label %loop
out:
  call void @llvm.va_end(ptr %ap)
  ret double %acc
}
"""

UNMARSHALLABLE = r"""
%S = type { i32, i32 }
define { i32, i32 } @pair() {
  ret { i32, i32 } { i32 1, i32 2 }
}
define i32 @first(%S %s) {
  %v = extractvalue %S %s, 0
  ret i32 %v
}
define i32 @lane(<4 x i32> %v) {
  %r = extractelement <4 x i32> %v, i32 0
  ret i32 %r
}
define i128 @wide() {
  ret i128 1
}
define i32 @by_value(ptr byval(%S) %p) {
  %v = load i32, ptr %p
  ret i32 %v
}
define half @tiny() {
  ret half 1.0
}
"""


def f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


# -- results ---------------------------------------------------------------------------


def test_integer_results_are_signed_of_their_width(make):
    engine = make(TYPED)
    assert engine.call("neg") == -3            # was 4294967293
    assert engine.call("neg64") == -4
    assert engine.call("minus2_16") == -2
    assert engine.call("ff8") == -1            # signed reading; & 0xFF for unsigned
    assert engine.call("wrap8") == 0           # what the IR computes
    assert engine.call("inc8", 255) == 0       # the register's upper bits are not read (was 256)
    assert engine.call("inc8", 127) == -128
    assert engine.call("min24") == -(1 << 23)  # odd widths too
    assert engine.call("true1") == 1           # i1 is 0 or 1


def test_float_and_double_results_and_arguments(make):
    engine = make(TYPED)
    assert engine.call("widen", 4.5) == 4.5    # a float parameter gets a float (was 0.0)
    assert engine.call("widen", 0.1) == f32(0.1)
    assert engine.call("widen", 3) == 3.0      # an int converts, as in Python's math
    assert engine.call("narrow", 0.1) == f32(0.1)
    assert engine.call("widen", 4.5, restype=float) == 4.5  # an agreeing restype is fine


def test_mixed_parameters(make):
    engine = make(TYPED)
    assert engine.call("mix", -2, 0.5, 0.25, -100000, 4096) == -2 + 0.5 + 0.25 - 100000 + 4096


def test_integer_arguments_take_either_reading_of_their_width(make):
    engine = make(TYPED)
    assert engine.call("sext8", 200) == -56
    assert engine.call("sext8", -1) == -1
    assert engine.call("zext8", -1) == 255
    assert engine.call("zext8", 255) == 255
    assert engine.call("zext1", True) == 1
    assert engine.call("zext1", 0) == 0
    assert engine.call("add32", 2**31 - 1, 1) == -(2**31)
    assert engine.call("add32", 2**32 - 1, 0) == -1


def test_pointers_are_unsigned_addresses_or_none(make):
    engine = make(TYPED)
    assert engine.call("same", 2**64 - 1) == 2**64 - 1
    assert engine.call("same", None) == 0
    stored = engine.get_global_value_address("stored")
    assert engine.call("same", stored) == stored


def test_void_functions_return_none(make):
    engine = make(TYPED)
    assert engine.call("store", -7) is None
    assert engine.call("load") == -7
    assert engine.call("load", restype=None) is None  # None discards a result


def test_varargs_are_passed_by_default_promotions(make):
    engine = make(TYPED)
    assert engine.call("sum", 0) == 0
    assert engine.call("sum", 3, 1, -2, 2**40) == 2**40 - 1
    assert engine.call("sum", 8, *range(1, 9)) == 36  # some on the stack
    assert engine.call("fsum", 2, 0.5, 0.25) == 0.75


# -- refusals -----------------------------------------------------------------------


def test_wrong_argument_count_names_the_function(make):
    engine = make(TYPED)
    with pytest.raises(TypeError, match=r"'neg' \(i32 \(\)\) takes 0 arguments, got 1"):
        engine.call("neg", 1)
    with pytest.raises(TypeError, match=r"'add32' .* takes 2 arguments, got 1"):
        engine.call("add32", 1)
    with pytest.raises(TypeError, match=r"'sum' .* takes at least 1 argument, got 0"):
        engine.call("sum")


@pytest.mark.parametrize(("name", "args", "error", "words"), [
    ("add32", (1.5, 2), TypeError, ["argument 1 of 'add32'", "i32", "1.5"]),
    ("widen", ("x",), TypeError, ["argument 1 of 'widen'", "float", "'x'"]),
    ("same", ("abc",), TypeError, ["argument 1 of 'same'", "ptr"]),
    ("same", (-1,), OverflowError, ["argument 1 of 'same'", "address"]),
    ("sext8", (256,), OverflowError, ["argument 1 of 'sext8'", "i8", "-128..255"]),
    ("sext8", (-129,), OverflowError, ["'sext8'", "-129"]),
    ("zext1", (2,), OverflowError, ["'zext1'", "i1", "0..1"]),
    ("sum", (1, "x"), TypeError, ["argument 2 of 'sum'"]),
])
def test_wrong_argument_types_and_values_are_refused(make, name, args, error, words):
    engine = make(TYPED)
    with pytest.raises(error) as info:
        engine.call(name, *args)
    for word in words:
        assert word in str(info.value)
    assert engine.call("neg") == -3  # nothing was called, nothing broke


@pytest.mark.parametrize("restype", ["i64", "int", ctypes.c_int64, 0, str, bool])
def test_unknown_restype_lists_what_is_accepted(make, restype):
    engine = make(TYPED)
    address = engine.get_function_address("neg")
    for target in ("neg", address):  # by name (typed) and by address (untyped)
        with pytest.raises(TypeError) as info:
            engine.call(target, restype=restype)
        message = str(info.value)
        assert repr(restype) in message
        for accepted in ("int", "float", "None", "omitted"):
            assert accepted in message


def test_restype_must_agree_with_a_known_signature(make):
    engine = make(TYPED)
    with pytest.raises(TypeError, match="restype=int does not agree with 'widen'.*double"):
        engine.call("widen", 1.0, restype=int)
    with pytest.raises(TypeError, match="restype=float does not agree with 'neg'.*i32"):
        engine.call("neg", restype=float)
    with pytest.raises(TypeError, match="'store'"):
        engine.call("store", 1, restype=int)
    assert engine.call("same", 8, restype=int) == 8  # int agrees with pointers


@pytest.mark.parametrize(("name", "args", "words"), [
    ("pair", (), ["'pair'", "{ i32, i32 }"]),
    ("first", ((1, 2),), ["'first'", "parameter 1", "%S"]),
    ("lane", (0,), ["'lane'", "<4 x i32>"]),
    ("wide", (), ["'wide'", "i128"]),
    ("by_value", (0,), ["'by_value'", "byval"]),
    ("tiny", (), ["'tiny'", "half"]),
])
def test_what_cannot_be_marshalled_is_refused(make, name, args, words):
    engine = make(UNMARSHALLABLE)
    with pytest.raises(TypeError) as info:
        engine.call(name, *args)
    for word in words:
        assert word in str(info.value)


def test_a_variable_cannot_be_called(make):
    engine = make(TYPED)
    with pytest.raises(TypeError, match="'stored' is a global variable"):
        engine.call("stored")


# -- where the signature comes from ---------------------------------------------------


def test_function_signature_reports_the_ir_type(make):
    engine = make(TYPED)
    assert str(engine.function_signature("mix")) == "double (i8, float, double, i32, ptr)"
    assert str(engine.function_signature("sum")) == "i64 (i32, ...)"
    assert isinstance(engine.function_signature("neg"), Signature)
    assert engine.function_signature("no_such_function") is None


OBJECT = r"""
define i32 @oneg() {
  ret i32 -3
}
define double @ohalf(double %x) {
  %r = fmul double %x, 0.5
  ret double %r
}
"""


def test_object_files_and_raw_addresses_keep_the_untyped_rules(make):
    engine = make("define i32 @neg() {\n  ret i32 -3\n}\n")
    engine.add_object_file(compile_ir(OBJECT))
    assert engine.function_signature("oneg") is None
    # No IR: the result is read as a 64-bit integer (the i32's bits), as documented.
    assert engine.call("oneg") & 0xFFFFFFFF == 2**32 - 3
    assert engine.call("ohalf", 3.0, restype=float) == 1.5
    address = engine.get_function_address("neg")
    assert engine.call(address) & 0xFFFFFFFF == 2**32 - 3
    with pytest.raises(TypeError, match=f"argument 1 of '{address:#x}'"):
        engine.call(address, "x")


def test_the_current_definition_decides(make):
    first = "define i32 @f() {\n  ret i32 -1\n}\n"
    second = "define i8 @f() {\n  ret i8 -1\n}\ndefine i32 @other() {\n  ret i32 0\n}\n"
    engine = make(first)
    assert engine.call("f") == -1
    later = parse_ir(second, "later")
    engine.add_module(later)
    assert str(engine.function_signature("f")) == "i8 ()"
    assert engine.call("f") == -1
    engine.remove_module(later)
    assert str(engine.function_signature("f")) == "i32 ()"
    assert engine.call("f") == -1


def test_updated_and_recompiled_functions_keep_their_signature(make):
    engine = make("define i16 @g(i16 %x) {\n  %r = sub i16 0, %x\n  ret i16 %r\n}\n")
    assert engine.call("g", 5) == -5
    engine.update_module(parse_ir(
        "define i16 @g(i16 %x) {\n  %r = sub i16 1, %x\n  ret i16 %r\n}\n", "v2"))
    assert engine.call("g", 5) == -4
    engine.recompile_and_relink_function("g", opt_level=1)
    assert engine.call("g", 5) == -4
    assert str(engine.function_signature("g")) == "i16 (i16)"


# -- the signature parser, without an engine ----------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("i32 (float, ptr, i8, ...)", "i32 (float, ptr, i8, ...)"),
    ("void ()", "void ()"),
    ("ptr addrspace(1) (ptr addrspace(3), i64)", "ptr (ptr, i64)"),
    ("double (...)", "double (...)"),
    ("i1 (i17, i33)", "i1 (i17, i33)"),
])
def test_parse_round_trips(text, expected):
    parsed = signature.parse(text, "f")
    assert str(parsed) == expected
    assert signature.parse(str(parsed), "f") == parsed


@pytest.mark.parametrize("text", ["{ i32, i64 } (i32)", "i32 ({ i32, i32 })",
                                  "i32 ([2 x i32])", "void (<2 x float>)", "i65 ()",
                                  "x86_fp80 ()", "i32 (void)", "i32"])
def test_parse_refuses_what_cannot_be_marshalled(text):
    with pytest.raises(TypeError, match="'victim'"):
        signature.parse(text, "victim")


WIDTHS = [1, 8, 16, 32, 64]
IDENTITIES = "".join(f"define i{w} @id{w}(i{w} %x) {{\n  ret i{w} %x\n}}\n" for w in WIDTHS)


@pytest.fixture
def identities(make):
    return make(IDENTITIES)


@pytest.mark.parametrize("mode", ["eager", "remote"], indirect=True)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # one engine, reused
@given(data=st.data())
def test_integers_round_trip_by_width(identities, data):
    width = data.draw(st.sampled_from(WIDTHS))
    low = 0 if width == 1 else -(1 << (width - 1))
    value = data.draw(st.integers(low, (1 << width) - 1))
    expected = value & 1 if width == 1 else (value + (1 << (width - 1))) % (1 << width) - (
        1 << (width - 1))
    assert identities.call(f"id{width}", value) == expected
