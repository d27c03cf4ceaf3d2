"""Packing: independent sets of one batch share a link, their objects merged
(native/elf_merge.py, linking/link_plan.pack); removal still undefines each
set at once and frees a pack with its last set (issue 12, item 4)."""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import pytest
from conftest import cfunc, compile_ir, make_tm, parse_ir

from execution_engine import create_mcjit_compiler
from execution_engine.linking import link_plan
from execution_engine.native import elf, elf_merge

A = """
@g = global i64 5
@s = private constant [6 x i8] c"hello\\00"
declare i64 @fb(i64)
define i64 @fa(i64 %x) {
  %l = load i64, ptr @g
  %r = add i64 %x, %l
  %c = call i64 @fb(i64 %r)
  ret i64 %c
}
define ptr @str() {
  ret ptr @s
}
"""
B = """
declare i64 @ext(i64)
define internal i64 @helper(i64 %x) {
  %r = mul i64 %x, 3
  ret i64 %r
}
define i64 @fb(i64 %x) {
  %a = call i64 @helper(i64 %x)
  %b = call i64 @ext(i64 %a)
  ret i64 %b
}
define i64 @sw(i64 %x) {
  switch i64 %x, label %d [ i64 0, label %a  i64 1, label %b  i64 2, label %c  i64 3, label %e ]
a:
  ret i64 10
b:
  ret i64 11
c:
  ret i64 12
e:
  ret i64 13
d:
  ret i64 99
}
"""
ONE = """
declare i64 @base(i64)
define i64 @f{i}(i64 %x) {{
  %a = add i64 %x, {i}
  %b = call i64 @base(i64 %a)
  ret i64 %b
}}
"""
BASE = """
define i64 @base(i64 %x) {
  %a = mul i64 %x, 3
  ret i64 %a
}
"""


def test_merged_objects_link_and_run_as_their_parts():
    merged = elf_merge.merge([compile_ir(A), compile_ir(B)])
    assert merged is not None
    obj = elf.ObjectFile(merged)  # valid by the engine's own checks
    defined = obj.defined_globals()
    assert {"fa", "fb", "g", "str", "sw"} <= set(defined)
    assert "fb" not in obj.undefined_globals()  # the reference bound to the definition
    ext = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(lambda x: x + 1)
    lljit = llvm.create_lljit_compiler(make_tm())
    try:
        tracker = (llvm.JITLibraryBuilder().add_object_img(merged)
                   .import_symbol("ext", ctypes.cast(ext, ctypes.c_void_p).value)
                   .export_symbol("fa").export_symbol("str").export_symbol("sw")
                   .link(lljit, "merged"))
        assert cfunc(tracker["fa"], ctypes.c_int64, ctypes.c_int64)(1) == (1 + 5) * 3 + 1
        assert ctypes.string_at(cfunc(tracker["str"], ctypes.c_void_p)()) == b"hello"
        sw = cfunc(tracker["sw"], ctypes.c_int64, ctypes.c_int64)
        assert [sw(i) for i in range(5)] == [10, 11, 12, 13, 99]  # jump table relocated
        tracker.close()
    finally:
        lljit.close()


def test_objects_that_define_one_name_twice_are_not_merged():
    assert elf_merge.merge([compile_ir(B), compile_ir(B)]) is None
    assert elf_merge.merge([compile_ir(A)]) is None  # nothing to merge


def test_comdat_objects_are_not_merged():
    comdat = """
$w = comdat any
define linkonce_odr i64 @w(i64 %x) comdat { ret i64 %x }
define i64 @uses(i64 %x) { %r = call i64 @w(i64 %x)
  ret i64 %r }
"""
    assert elf_merge.merge([compile_ir(comdat), compile_ir(BASE)]) is None


def test_compacted_object_parses_again_on_use():
    obj = elf.ObjectFile(compile_ir(A))
    sections, symbols = list(obj.sections), list(obj.symbols)
    obj.compact()
    assert obj.sections == sections and obj.symbols == symbols


@pytest.fixture
def resident():
    ee = create_mcjit_compiler(parse_ir(BASE), make_tm())
    modules = [parse_ir(ONE.format(i=i)) for i in range(150)]
    for m in modules:
        ee.add_module(m)
    ee.finalize_object()
    yield ee, modules
    ee.close()


def test_many_modules_of_one_finalization_share_few_links(resident):
    ee, modules = resident
    links = ee.stats().linked_resources
    assert links <= 1 + -(-len(modules) // link_plan.PACK_OBJECTS) + 1  # not one per module
    for i in (0, 77, 149):
        assert cfunc(ee.get_function_address(f"f{i}"), ctypes.c_int64, ctypes.c_int64)(5) \
            == (5 + i) * 3


def test_removing_a_packed_module_undefines_it_and_keeps_the_others(resident):
    ee, modules = resident
    before = ee.stats().linked_resources
    ee.remove_module(modules[10])
    assert ee.get_function_address("f10") == 0
    assert cfunc(ee.get_function_address("f11"), ctypes.c_int64, ctypes.c_int64)(1) == 36
    assert ee.stats().linked_resources == before  # its pack still holds others
    for m in modules[:-1]:
        if m is not modules[10]:
            ee.remove_module(m)
    assert ee.stats().linked_resources < before  # a pack leaves with its last set
    assert cfunc(ee.get_function_address("f149"), ctypes.c_int64, ctypes.c_int64)(0) == 447


def test_a_pack_that_fails_to_link_is_linked_set_by_set():
    # One module of the batch needs a symbol nobody defines: the others link.
    ee = create_mcjit_compiler(parse_ir(BASE), make_tm())
    good = [parse_ir(ONE.format(i=i)) for i in range(2 * link_plan.PACK_MIN_GROUPS)]
    bad = parse_ir("declare i64 @nowhere(i64)\n"
                   "define i64 @bad(i64 %x) { %r = call i64 @nowhere(i64 %x)\n ret i64 %r }")
    for m in (*good, bad):
        ee.add_module(m)
    with pytest.raises(Exception, match="nowhere"):
        ee.finalize_object()
    assert cfunc(ee.get_function_address("f2"), ctypes.c_int64, ctypes.c_int64)(1) == 9
    ee.close()


def test_a_small_batch_is_linked_set_by_set():
    ee = create_mcjit_compiler(parse_ir(BASE), make_tm())
    modules = [parse_ir(ONE.format(i=i)) for i in range(link_plan.PACK_MIN_GROUPS - 2)]
    for m in modules:
        ee.add_module(m)
    ee.finalize_object()
    before = ee.stats().linked_resources
    assert before == len(modules) + 1
    ee.remove_module(modules[0])
    assert ee.stats().linked_resources == before - 1  # freed at once
    ee.close()


def test_a_packed_module_is_linked_again_when_a_callee_it_calls_directly_is_swapped():
    # The first swap of a function its module calls directly links that module
    # again through stubs, sharing the first copy's data: inside a pack too.
    caller = """
@count = global i64 0
define i64 @callee(i64 %x) {
  %c = load i64, ptr @count
  %c1 = add i64 %c, 1
  store i64 %c1, ptr @count
  %r = add i64 %x, 1
  ret i64 %r
}
define i64 @caller(i64 %x) {
  %r = call i64 @callee(i64 %x)
  %s = mul i64 %r, 2
  ret i64 %s
}
"""
    ee = create_mcjit_compiler(parse_ir(BASE), make_tm())
    others = [parse_ir(ONE.format(i=i)) for i in range(2 * link_plan.PACK_MIN_GROUPS)]
    for m in (*others, parse_ir(caller)):
        ee.add_module(m)
    ee.finalize_object()
    assert ee.stats().linked_resources < len(others)  # packed
    call = cfunc(ee.get_function_address("caller"), ctypes.c_int64, ctypes.c_int64)
    assert call(1) == 4
    ee.update_module(parse_ir("""
@count = external global i64
define i64 @callee(i64 %x) {
  %c = load i64, ptr @count
  %c1 = add i64 %c, 10
  store i64 %c1, ptr @count
  %r = add i64 %x, 100
  ret i64 %r
}
"""))
    assert call(1) == 202  # the caller's copy reaches the new body
    count = ctypes.c_int64.from_address(ee.get_global_value_address("count"))
    assert count.value == 11  # one counter, shared by both copies and the update
    assert cfunc(ee.get_function_address("f3"), ctypes.c_int64, ctypes.c_int64)(1) == 12
    ee.close()
