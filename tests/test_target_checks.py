"""ir.target_checks: intrinsics LLVM would abort on are refused before code generation."""

from __future__ import annotations

import llvmlite.binding as llvm
import pytest
from conftest import parse_ir

from execution_engine import CompileError, LazyCompileError, create_mcjit_compiler
from execution_engine.ir.target_checks import check_intrinsics

AVX512 = """
declare <16 x float> @llvm.x86.avx512.sqrt.ps.512(<16 x float>, i32)
define <16 x float> @sqrt16(<16 x float> %x) {attrs} {{
  %v = call <16 x float> @llvm.x86.avx512.sqrt.ps.512(<16 x float> %x, i32 4)
  ret <16 x float> %v
}}
"""


def machine(**options) -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine(jit=True, **options)


def foreign(name: str, type_: str = "i64") -> str:
    return (f"declare {type_} @{name}()\n"
            f"define {type_} @f() {{\n  %v = call {type_} @{name}()\n  ret {type_} %v\n}}\n")


@pytest.mark.parametrize("name, type_", [
    ("llvm.aarch64.get.fpcr", "i64"), ("llvm.arm.get.fpscr", "i32"), ("llvm.ppc.mftbu", "i32"),
    ("llvm.nvvm.read.ptx.sreg.tid.x", "i32")])
def test_another_targets_intrinsic_is_refused_naming_it(name, type_):
    with pytest.raises(CompileError, match=name.replace(".", r"\.")) as info:
        check_intrinsics(parse_ir(foreign(name, type_)), machine(), label="module 'm'")
    assert "module 'm'" in str(info.value)


def test_own_and_generic_intrinsics_pass():
    text = foreign("llvm.x86.rdtsc") + (
        "declare i64 @llvm.ctpop.i64(i64)\n"
        "define i64 @g(i64 %x) {\n  %v = call i64 @llvm.ctpop.i64(i64 %x)\n  ret i64 %v\n}\n")
    check_intrinsics(parse_ir(text), machine(), label="m")


def test_an_avx512_intrinsic_on_a_generic_machine_is_refused():
    with pytest.raises(CompileError, match="avx512f"):
        check_intrinsics(parse_ir(AVX512.format(attrs="")), machine(), label="m")
    with pytest.raises(CompileError, match="avx512f"):
        check_intrinsics(parse_ir(AVX512.format(attrs="")),
                         machine(cpu="x86-64-v3", features="-avx512f"), label="m")


@pytest.mark.parametrize("options", [{"features": "+avx512f"}, {"cpu": "skylake-avx512"}])
def test_an_avx512_intrinsic_passes_where_the_machine_may_have_it(options):
    check_intrinsics(parse_ir(AVX512.format(attrs="")), machine(**options), label="m")


def test_a_function_that_asks_for_avx512_itself_is_left_alone():
    text = AVX512.format(attrs="#0") + 'attributes #0 = { "target-features"="+avx512f" }\n'
    check_intrinsics(parse_ir(text), machine(), label="m")


@pytest.mark.parametrize("lazy", [False, True])
def test_the_engine_refuses_it_and_keeps_working(lazy):
    engine = create_mcjit_compiler(parse_ir("define i64 @good() {\n  ret i64 42\n}\n"),
                                   machine(), lazy=lazy)
    engine.finalize_object()
    bad = parse_ir(foreign("llvm.aarch64.get.fpcr"), "foreign")
    engine.add_module(bad)
    # Lazily, the first call from Python raises LazyCompileError with this cause.
    with pytest.raises(LazyCompileError if lazy else CompileError,
                       match="llvm.aarch64.get.fpcr"):
        engine.finalize_object() if not lazy else engine.call("f")
    engine.remove_module(bad)
    assert engine.call("good") == 42
    engine.close()
