"""The MCJIT API through ``create_mcjit_compiler``, on the themes of LLVM's MCJIT
unit tests (multiple modules, object cache, global mappings, removal) and of
how llvmlite and numba use the engine."""

from __future__ import annotations

import ctypes
import itertools
import subprocess
import sys
import textwrap

import llvmlite.binding as llvm
import pytest
from llvmlite.binding import executionengine, object_file

import execution_engine
from execution_engine import (
    DuplicateSymbolError,
    EngineClosedError,
    UnresolvedSymbolError,
    create_mcjit_compiler,
)

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()

I64, F64 = ctypes.c_int64, ctypes.c_double


def make_tm(opt: int = 2) -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine(opt=opt)


def parse(text: str, name: str) -> llvm.ModuleRef:
    module = llvm.parse_assembly(textwrap.dedent(text))
    module.name = name
    module.verify()
    return module


def call(address: int, *args: int, restype=I64, argtype=I64):
    assert address, "null function address"
    return ctypes.CFUNCTYPE(restype, *[argtype] * len(args))(address)(*args)


def engine_with(*modules: llvm.ModuleRef, opt: int = 2):
    engine = create_mcjit_compiler(modules[0], make_tm(opt))
    for module in modules[1:]:
        engine.add_module(module)
    return engine


@pytest.fixture
def empty_engine():
    engine = create_mcjit_compiler(parse("", "empty"), make_tm())
    yield engine
    engine.close()


A = """
declare i64 @b(i64)
define i64 @a(i64 %x) {
  %r = call i64 @b(i64 %x)
  %s = mul i64 %r, 2
  ret i64 %s
}
"""
B = """
declare i64 @c(i64)
define i64 @b(i64 %x) {
  %r = call i64 @c(i64 %x)
  %s = add i64 %r, 1
  ret i64 %s
}
"""
C = """
@factor = global i64 3
define i64 @c(i64 %x) {
  %f = load i64, ptr @factor
  %r = mul i64 %x, %f
  ret i64 %r
}
"""
SOURCES = {"A": A, "B": B, "C": C}


# -- multiple modules ---------------------------------------------------------

@pytest.mark.parametrize("order", list(itertools.permutations("ABC")),
                         ids=lambda o: "".join(o))
def test_dependent_modules_in_any_order(order):
    with engine_with(*(parse(SOURCES[n], n) for n in order)) as engine:
        engine.finalize_object()
        assert call(engine.get_function_address("a"), 5) == 32
        assert call(engine.get_function_address("b"), 5) == 16
        assert ctypes.c_int64.from_address(engine.get_global_value_address("factor")).value == 3


def test_function_pointer_identity_across_modules(empty_engine):
    empty_engine.add_module(parse(C, "C"))
    empty_engine.add_module(parse("""
        declare i64 @c(i64)
        @factor = external global i64
        define ptr @addr_of_c() {
          ret ptr @c
        }
        define ptr @addr_of_factor() {
          ret ptr @factor
        }
    """, "taker"))
    f = empty_engine.get_function_address("c")
    assert call(empty_engine.get_function_address("addr_of_c"), restype=ctypes.c_void_p) == f
    assert call(empty_engine.get_function_address("addr_of_factor"),
                restype=ctypes.c_void_p) == empty_engine.get_global_value_address("factor")


def test_later_module_resolves_earlier_undefined_symbol(empty_engine):
    empty_engine.add_module(parse("""
        declare i64 @f(i64)
        define i64 @use_f(i64 %x) {
          %r = call i64 @f(i64 %x)
          ret i64 %r
        }
    """, "A"))
    with pytest.raises(UnresolvedSymbolError) as info:
        empty_engine.finalize_object()
    assert info.value.missing == {"module 'A'": ["f"]}
    assert "module 'A': f" in str(info.value)
    assert isinstance(info.value, RuntimeError)  # what MCJIT raises
    empty_engine.add_module(parse("""
        define i64 @f(i64 %x) {
          %r = sub i64 %x, 1
          ret i64 %r
        }
    """, "B"))
    empty_engine.finalize_object()
    assert call(empty_engine.get_function_address("use_f"), 10) == 9


def test_remove_and_re_add_module(empty_engine):
    c, b = parse(C, "C"), parse(B, "B")
    empty_engine.add_module(c)
    empty_engine.add_module(b)
    assert call(empty_engine.get_function_address("b"), 2) == 7
    text = str(c)
    empty_engine.remove_module(c)
    assert c._owned is False and not c.closed and str(c) == text
    assert empty_engine.get_function_address("c") == 0
    assert empty_engine.get_global_value_address("factor") == 0
    with pytest.raises(KeyError):
        empty_engine.remove_module(c)
    empty_engine.add_module(c)
    assert c._owned is True
    assert call(empty_engine.get_function_address("c"), 2) == 6
    assert call(empty_engine.get_function_address("b"), 4) == 13
    empty_engine.remove_module(b)
    empty_engine.remove_module(c)
    assert empty_engine.get_function_address("b") == 0
    c.close()
    b.close()


def test_adding_a_module_twice_is_a_key_error(empty_engine):
    module = parse(C, "C")
    empty_engine.add_module(module)
    with pytest.raises(KeyError):
        empty_engine.add_module(module)


def test_later_strong_definition_wins_and_removal_restores(empty_engine):
    v1 = parse("@d = global i64 1\ndefine i64 @v() {\n  ret i64 1\n}\n", "v1")
    use = parse("declare i64 @v()\ndefine i64 @use_v() {\n  %r = call i64 @v()\n"
                "  ret i64 %r\n}\n", "use")
    empty_engine.add_module(v1)
    empty_engine.add_module(use)
    d1 = empty_engine.get_global_value_address("d")
    assert call(empty_engine.get_function_address("use_v")) == 1
    v2 = parse("@d = global i64 2\ndefine i64 @v() {\n  ret i64 2\n}\n", "v2")
    empty_engine.add_module(v2)
    empty_engine.finalize_object()
    d2 = empty_engine.get_global_value_address("d")
    assert d2 != d1 and ctypes.c_int64.from_address(d2).value == 2
    assert call(empty_engine.get_function_address("v")) == 2
    assert call(empty_engine.get_function_address("use_v")) == 2
    empty_engine.remove_module(v2)
    assert empty_engine.get_global_value_address("d") == d1
    assert call(empty_engine.get_function_address("v")) == 1
    assert call(empty_engine.get_function_address("use_v")) == 1


WEAK_DATA = """
@shared = weak global i64 {init}
define i64 @get_{tag}() {{
  %v = load i64, ptr @shared
  ret i64 %v
}}
define void @set_{tag}(i64 %x) {{
  store i64 %x, ptr @shared
  ret void
}}
"""


def test_weak_global_is_shared_between_modules_finalized_together(empty_engine):
    empty_engine.add_module(parse(WEAK_DATA.format(init=1, tag="a"), "wa"))
    empty_engine.add_module(parse(WEAK_DATA.format(init=2, tag="b"), "wb"))
    empty_engine.finalize_object()
    call(empty_engine.get_function_address("set_a"), 40)
    assert call(empty_engine.get_function_address("get_b")) == 40


def test_weak_global_is_shared_with_an_earlier_finalized_module(empty_engine):
    empty_engine.add_module(parse(WEAK_DATA.format(init=1, tag="a"), "wa"))
    empty_engine.finalize_object()
    empty_engine.add_module(parse(WEAK_DATA.format(init=2, tag="b"), "wb"))
    assert call(empty_engine.get_function_address("get_b")) == 1
    call(empty_engine.get_function_address("set_b"), 41)
    assert call(empty_engine.get_function_address("get_a")) == 41


def test_data_cycle_between_modules(empty_engine):
    empty_engine.add_module(parse("""
        @a = global i64 10
        @b = external global i64
        define i64 @read_b() {
          %v = load i64, ptr @b
          ret i64 %v
        }
    """, "ma"))
    empty_engine.add_module(parse("""
        @b = global i64 20
        @a = external global i64
        define i64 @read_a() {
          %v = load i64, ptr @a
          ret i64 %v
        }
    """, "mb"))
    assert call(empty_engine.get_function_address("read_a")) == 10
    assert call(empty_engine.get_function_address("read_b")) == 20


# -- object cache ---------------------------------------------------------------

def test_object_cache_round_trip():
    notified = []
    c = parse(C, "C")
    with create_mcjit_compiler(c, make_tm()) as first:
        first.set_object_cache(lambda module, data: notified.append((module, data)))
        assert notified == []
        first.finalize_object()  # fires synchronously, inside finalize_object
        assert len(notified) == 1 and notified[0][0] is c
        data = notified[0][1]
        assert isinstance(data, bytes) and data[:4] == b"\x7fELF"
        assert call(first.get_function_address("c"), 7) == 21

    asked = []
    stand_in = parse("", "cached C")

    def getbuffer(module):
        asked.append(module)
        return data

    renotified = []
    with create_mcjit_compiler(stand_in, make_tm()) as second:
        second.set_object_cache(lambda m, d: renotified.append(m), getbuffer)
        second.finalize_object()
        assert asked == [stand_in] and renotified == []
        assert call(second.get_function_address("c"), 7) == 21
        factor = second.get_global_value_address("factor")
        assert ctypes.c_int64.from_address(factor).value == 3


def test_lookup_finalizes_by_itself():
    notified = []
    with create_mcjit_compiler(parse(C, "C"), make_tm()) as engine:
        engine.set_object_cache(lambda module, data: notified.append(module))
        assert ctypes.c_int64.from_address(engine.get_global_value_address("factor")).value == 3
        assert len(notified) == 1
        engine.add_module(parse(B, "B"))
        assert call(engine.get_function_address("b"), 1) == 4
        assert len(notified) == 2
        assert engine.get_function_address("no_such_function") == 0


# -- global mappings ---------------------------------------------------------------

def test_global_mapping_to_ctypes_callback(empty_engine):
    module = parse("""
        declare i64 @host(i64)
        @host_data = external global i64
        define i64 @jit(i64 %x) {
          %r = call i64 @host(i64 %x)
          %d = load i64, ptr @host_data
          %s = add i64 %r, %d
          ret i64 %s
        }
    """, "user")
    host = ctypes.CFUNCTYPE(I64, I64)(lambda x: x * 7)
    host_data = ctypes.c_int64(1000)
    empty_engine.add_module(module)  # mapped after add_module, before finalize
    host_address = ctypes.cast(host, ctypes.c_void_p).value
    empty_engine.add_global_mapping(module.get_function("host"), host_address)
    empty_engine.add_global_mapping(module.get_global_variable("host_data"),
                                    ctypes.addressof(host_data))
    empty_engine.finalize_object()
    assert call(empty_engine.get_function_address("jit"), 3) == 1021
    host_data.value = 5
    assert call(empty_engine.get_function_address("jit"), 3) == 26
    assert empty_engine.get_function_address("host") == host_address


def test_global_mapping_rejects_foreign_values(empty_engine):
    stranger = parse("declare i64 @host(i64)\n", "not added")
    with pytest.raises(ValueError, match="not in this engine"):
        empty_engine.add_global_mapping(stranger.get_function("host"), 1234)


# -- static constructors -------------------------------------------------------

def _structor_module(name: str, entries: list[tuple[str, int, int]]) -> llvm.ModuleRef:
    """``entries``: (kind, priority, value recorded) in table order."""
    text = "declare void @record(i64)\n"
    for kind in ("ctor", "dtor"):
        chosen = [(p, v) for k, p, v in entries if k == kind]
        items = ", ".join(f"{{ i32, ptr, ptr }} {{ i32 {p}, ptr @{name}_{v}, ptr null }}"
                          for p, v in chosen)
        text += (f"@llvm.global_{kind}s = appending global [{len(chosen)} x "
                 f"{{ i32, ptr, ptr }}] [{items}]\n")
    for _, _, v in entries:
        text += (f"define internal void @{name}_{v}() {{\n  call void @record(i64 {v})\n"
                 "  ret void\n}\n")
    return parse(text, name)


def test_static_constructors_and_destructors_order(empty_engine):
    recorded = []
    record = ctypes.CFUNCTYPE(None, I64)(recorded.append)
    first = _structor_module("m1", [("ctor", 200, 1), ("ctor", 100, 2), ("ctor", 100, 3),
                                    ("dtor", 100, 4), ("dtor", 200, 5)])
    second = _structor_module("m2", [("ctor", 100, 6), ("ctor", 65535, 7), ("dtor", 300, 8)])
    for module in (first, second):
        empty_engine.add_module(module)
        empty_engine.add_global_mapping(module.get_function("record"),
                                        ctypes.cast(record, ctypes.c_void_p).value)
    empty_engine.run_static_constructors()
    assert recorded == [2, 3, 6, 1, 7]
    empty_engine.run_static_constructors()  # each module is constructed once
    assert recorded == [2, 3, 6, 1, 7]
    del recorded[:]
    empty_engine.run_static_destructors()
    assert recorded == [8, 5, 4]


CTOR_IN_LATER_MODULE = textwrap.dedent("""
    import ctypes, llvmlite.binding as llvm
    from execution_engine import create_mcjit_compiler
    llvm.initialize_native_target(); llvm.initialize_native_asmprinter()
    tm = llvm.Target.from_default_triple().create_target_machine()
    a = llvm.parse_assembly(
        "@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] "
        "[{ i32, ptr, ptr } { i32 65535, ptr @init_b, ptr null }]\\n"
        "declare void @init_b()\\n")
    b = llvm.parse_assembly(
        "@flag = global i64 0\\n"
        "define void @init_b() {\\n  store i64 42, ptr @flag\\n  ret void\\n}\\n")
    engine = create_mcjit_compiler(a, tm)
    engine.add_module(b)
    engine.finalize_object()
    engine.run_static_constructors()
    print(ctypes.c_int64.from_address(engine.get_global_value_address("flag")).value)
""")


def test_constructor_defined_in_a_later_module():
    proc = subprocess.run([sys.executable, "-c", CTOR_IN_LATER_MODULE], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "42"


# -- target machines -----------------------------------------------------------------

PROGRAM = """
define double @poly(double %x) {
  %x2 = fmul double %x, %x
  %t = fmul double %x2, 3.0
  %u = fadd double %t, %x
  %r = fsub double %u, 0.5
  ret double %r
}
define i64 @sum_squares(i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc2, %loop ]
  %sq = mul i64 %i, %i
  %acc2 = add i64 %acc, %sq
  %next = add i64 %i, 1
  %done = icmp sge i64 %next, %n
  br i1 %done, label %exit, label %loop
exit:
  ret i64 %acc2
}
"""
PROGRAM_USER = """
declare i64 @sum_squares(i64)
declare double @poly(double)
define i64 @both(i64 %n) {
  %s = call i64 @sum_squares(i64 %n)
  %f = sitofp i64 %n to double
  %p = call double @poly(double %f)
  %q = fptosi double %p to i64
  %r = add i64 %s, %q
  ret i64 %r
}
"""


def test_optimisation_levels_agree():
    results = []
    for opt in (0, 3):
        with engine_with(parse(PROGRAM_USER, "user"), parse(PROGRAM, "lib"), opt=opt) as e:
            poly = e.get_function_address("poly")
            results.append((
                [call(e.get_function_address("both"), n) for n in (1, 10, 100)],
                [call(poly, x, restype=F64, argtype=F64) for x in (0.0, 1.5, -2.25)],
            ))
    assert results[0] == results[1]
    assert results[0][0][1] == 285 + 309  # sum of squares below 10, plus int(poly(10))


# -- misc API ------------------------------------------------------------------------

def test_target_data_is_stable(empty_engine):
    td = empty_engine.target_data
    assert td is empty_engine.target_data
    assert str(td) == str(make_tm().target_data)


def test_context_manager():
    module, tm = parse(C, "C"), make_tm()
    with create_mcjit_compiler(module, tm) as engine:
        assert isinstance(engine, execution_engine.ExecutionEngine)
        assert call(engine.get_function_address("c"), 2) == 6
    assert engine.closed and module.closed and tm.closed
    with pytest.raises(EngineClosedError):
        engine.get_function_address("c")
    with pytest.raises(ctypes.ArgumentError):  # what llvmlite raises after close
        engine.finalize_object()
    with pytest.raises(RuntimeError):
        engine.__enter__()
    engine.close()  # idempotent


def test_module_is_not_transformed_by_the_engine():
    module = parse("""
        @counter = internal global i64 0
        @llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [
          { i32, ptr, ptr } { i32 65535, ptr @init, ptr null }]
        define internal void @init() {
          store i64 5, ptr @counter
          ret void
        }
        define linkonce_odr i64 @helper(i64 %x) {
          %c = load i64, ptr @counter
          %r = add i64 %x, %c
          ret i64 %r
        }
        define i64 @entry(i64 %x) {
          %r = call i64 @helper(i64 %x)
          ret i64 %r
        }
    """, "user")
    tm = make_tm()

    def snapshot():
        return tm.emit_assembly(module), str(module), module.as_bitcode()

    before = snapshot()  # (emit_assembly itself sets the module's data layout)
    assert before == snapshot()
    with create_mcjit_compiler(module, tm) as engine:
        engine.finalize_object()
        engine.run_static_constructors()
        assert call(engine.get_function_address("entry"), 1) == 6
        after = snapshot()
        assert after[0] == before[0]
        assert after[1] == before[1]
        assert after[2] == before[2]


# -- install -------------------------------------------------------------------------

def _llvmlite_entry_points():
    return (llvm.create_mcjit_compiler, llvm.ExecutionEngine,
            executionengine.create_mcjit_compiler, executionengine.ExecutionEngine,
            object_file.ObjectFileRef.__dict__["from_data"],
            object_file.ObjectFileRef.__dict__["from_path"])


def test_install_and_uninstall_swap_llvmlite_names():
    original = _llvmlite_entry_points()
    assert original[0] is not execution_engine.create_mcjit_compiler
    execution_engine.install()
    try:
        execution_engine.install()  # idempotent
        assert llvm.create_mcjit_compiler is execution_engine.create_mcjit_compiler
        assert llvm.ExecutionEngine is execution_engine.ExecutionEngine
        assert executionengine.create_mcjit_compiler is execution_engine.create_mcjit_compiler
        assert executionengine.ExecutionEngine is execution_engine.ExecutionEngine
        with llvm.create_mcjit_compiler(parse(C, "C"), make_tm()) as engine:
            assert isinstance(engine, execution_engine.ExecutionEngine)
            assert call(engine.get_function_address("c"), 1) == 3
    finally:
        execution_engine.uninstall()
    assert _llvmlite_entry_points() == original
    execution_engine.uninstall()  # idempotent
    assert _llvmlite_entry_points() == original


def test_installed_context_manager_restores():
    original = _llvmlite_entry_points()
    with execution_engine.installed():
        assert llvm.ExecutionEngine is execution_engine.ExecutionEngine
        with execution_engine.installed():
            pass
        assert llvm.ExecutionEngine is execution_engine.ExecutionEngine  # outer still active
    assert _llvmlite_entry_points() == original


def test_unbound_method_calling_style():
    """numba captures ``ll.ExecutionEngine.<method>`` and calls it unbound."""
    with execution_engine.installed():
        ee_class = llvm.ExecutionEngine
        add_module, remove_module = ee_class.add_module, ee_class.remove_module
        finalize, get_fn = ee_class.finalize_object, ee_class.get_function_address
        get_gv, set_cache = ee_class.get_global_value_address, ee_class.set_object_cache
        mapping = ee_class.add_global_mapping
        empty = parse("", "empty")
        engine = llvm.create_mcjit_compiler(empty, make_tm())
    try:
        assert isinstance(engine, ee_class)
        seen = []
        set_cache(engine, lambda m, d: seen.append(m), None)
        c, b = parse(C, "C"), parse(B, "B")
        add_module(engine, c)
        add_module(engine, b)
        finalize(engine)
        assert seen == [empty, c, b]
        assert call(get_fn(engine, "b"), 2) == 7
        assert ctypes.c_int64.from_address(get_gv(engine, "factor")).value == 3
        user = parse("declare i64 @ext()\ndefine i64 @u() {\n  %r = call i64 @ext()\n"
                     "  ret i64 %r\n}\n", "u")
        add_module(engine, user)
        ext = ctypes.CFUNCTYPE(I64)(lambda: 17)
        mapping(engine, user.get_function("ext"), ctypes.cast(ext, ctypes.c_void_p).value)
        assert call(get_fn(engine, "u")) == 17
        remove_module(engine, b)
        assert get_fn(engine, "b") == 0 and b._owned is False
    finally:
        ee_class.close(engine)
    assert engine.closed


def test_strict_mode_rejects_a_second_strong_definition():
    with create_mcjit_compiler(parse(C, "C"), make_tm(), strict=True) as engine:
        engine.finalize_object()
        again = parse(C.replace("i64 3", "i64 4"), "C again")
        engine.add_module(again)
        with pytest.raises(DuplicateSymbolError, match="'c'|'factor'"):
            engine.finalize_object()
        engine.remove_module(again)
        assert call(engine.get_function_address("c"), 1) == 3


def test_strict_duplicate_in_a_batch_does_not_stop_the_good_modules():
    first = parse("define i64 @dup() {\n  ret i64 1\n}\n", "first")
    engine = create_mcjit_compiler(first, make_tm(), strict=True)
    engine.finalize_object()
    engine.add_module(parse("define i64 @dup() {\n  ret i64 2\n}\n", "second"))
    engine.add_module(parse("define i64 @good() {\n  ret i64 7\n}\n", "good"))
    with pytest.raises(DuplicateSymbolError, match="dup"):
        engine.finalize_object()
    assert call(engine.get_function_address("good")) == 7
    assert call(engine.get_function_address("dup")) == 1
    engine.close()
