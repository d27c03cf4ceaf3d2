"""ir.call_sites: the single policy's rewrite of direct calls into slot loads."""

from __future__ import annotations

from conftest import parse_ir

from execution_engine.ir.call_sites import SLOT_SUFFIX, call_through_slots


def rewritten(text: str, also=lambda name: False) -> str:
    """The rewrite of ``text``, checked to parse and verify."""
    out = call_through_slots(text, also)
    parse_ir(out)
    return out


def test_call_to_a_defined_function_loads_the_slot_and_calls_through_it():
    out = rewritten("""
define i64 @f(i64 %x) {
  ret i64 %x
}
define i64 @g(i64 %x) {
  %r = call i64 @f(i64 %x)
  ret i64 %r
}
""")
    assert '  %__ee.slot1 = load ptr, ptr @"f.__slot"\n  %r = call i64 %__ee.slot1(i64 %x)' in out
    assert '@"f.__slot" = external global ptr' in out
    assert "call i64 @f(" not in out
    assert SLOT_SUFFIX == ".__slot"


def test_every_call_site_gets_its_own_load_and_each_slot_one_declaration():
    out = rewritten("""
define void @f() {
  ret void
}
define void @g() {
  call void @f()
  tail call void @f()
  ret void
}
""")
    assert out.count('load ptr, ptr @"f.__slot"') == 2
    assert "  call void %__ee.slot1()" in out and "  tail call void %__ee.slot2()" in out
    assert out.count('@"f.__slot" = external global ptr') == 1


def test_internal_private_and_intrinsic_callees_are_left_alone():
    text = """
declare i64 @llvm.smax.i64(i64, i64)
define internal i64 @hidden(i64 %x) {
  ret i64 %x
}
define private i64 @secret(i64 %x) {
  ret i64 %x
}
define i64 @g(i64 %x) {
  %a = call i64 @hidden(i64 %x)
  %b = call i64 @secret(i64 %a)
  %c = call i64 @llvm.smax.i64(i64 %b, i64 0)
  ret i64 %c
}
"""
    assert call_through_slots(text) is text  # nothing to rewrite: the same text


def test_external_callees_are_rewritten_only_when_asked():
    text = """
declare i64 @ext(i64)
declare i64 @other(i64)
define i64 @g(i64 %x) {
  %a = call i64 @ext(i64 %x)
  %b = call i64 @other(i64 %a)
  ret i64 %b
}
"""
    assert call_through_slots(text) is text
    out = rewritten(text, also=lambda name: name == "ext")
    assert "call i64 %__ee.slot1(i64 %x)" in out and "call i64 @other(i64 %a)" in out
    assert '@"ext.__slot"' in out and "other.__slot" not in out


def test_quoted_names_calling_conventions_attributes_and_varargs():
    out = rewritten(r"""
define fastcc i64 @"a b"(i64 %x) {
  ret i64 %x
}
define i32 @vsum(i32 %n, ...) {
  ret i32 %n
}
define noalias ptr @alloc() {
  ret ptr null
}
define i64 @g(i64 %x) {
  %a = call fastcc i64 @"a b"(i64 %x)
  %v = call i32 (i32, ...) @vsum(i32 1, i32 2)
  %p = call noalias ptr @alloc()
  %r = musttail call i64 @g(i64 %a)
  ret i64 %r
}
""")
    assert 'load ptr, ptr @"a b.__slot"' in out and "call fastcc i64 %__ee.slot1(i64 %x)" in out
    assert "call i32 (i32, ...) %__ee.slot2(i32 1, i32 2)" in out
    assert "call noalias ptr %__ee.slot3()" in out
    assert "musttail call i64 %__ee.slot4(i64 %a)" in out  # a recursive call too


def test_invoke_loads_the_slot_in_its_own_block():
    out = rewritten("""
declare i32 @__gxx_personality_v0(...)
define void @thrower() {
  ret void
}
define void @g() personality ptr @__gxx_personality_v0 {
entry:
  invoke void @thrower() to label %ok unwind label %lp
ok:
  ret void
lp:
  %l = landingpad { ptr, i32 } cleanup
  resume { ptr, i32 } %l
}
""")
    assert ('entry:\n  %__ee.slot1 = load ptr, ptr @"thrower.__slot"\n'
            "  invoke void %__ee.slot1() to label %ok") in out


def test_a_function_reference_that_is_not_a_call_is_kept():
    # Taking the address still yields the stub: only calls are rewritten.
    text = """
@fp = global ptr @f
define i64 @f() {
  ret i64 1
}
define ptr @addr() {
  ret ptr @f
}
"""
    assert call_through_slots(text) is text
