"""compile_workers=N: engines compile in worker processes, where LLVM's fatal
errors end a worker, not the host, and raise CompileError here."""

from __future__ import annotations

import llvmlite.binding as llvm
import pytest
from conftest import parse_ir

from execution_engine import CompileError, EngineOptions, create_mcjit_compiler

GOOD = """
define i64 @f(i64 %x) {
  %y = mul i64 %x, 7
  ret i64 %y
}
"""
# What only LLVM can detect, and what kills a process that compiles it.
FATAL = {
    "rejected inline asm": """define void @bad_asm() {
      call void asm sideeffect "bogus_instruction %eax", ""()
      ret void
    }""",
    "another target's intrinsic": """declare i64 @llvm.aarch64.get.fpcr()
    define i64 @read_fpcr() {
      %v = call i64 @llvm.aarch64.get.fpcr()
      ret i64 %v
    }""",
    "an AVX-512 intrinsic without the feature": """
    declare <16 x float> @llvm.x86.avx512.sqrt.ps.512(<16 x float>, i32)
    define <16 x float> @sqrt16(<16 x float> %x) {
      %v = call <16 x float> @llvm.x86.avx512.sqrt.ps.512(<16 x float> %x, i32 4)
      ret <16 x float> %v
    }""",
}


def generic_tm() -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine(jit=True)


def test_workers_compile_what_runs_here():
    engine = create_mcjit_compiler(parse_ir(GOOD, "good"), generic_tm(), compile_workers=1)
    assert engine.options.compile_workers == 1
    assert engine.call("f", 6) == 42
    assert engine.stats().compiles == 1
    engine.close()


@pytest.mark.parametrize("case", sorted(FATAL))
def test_a_fatal_llvm_error_is_a_compile_error_and_the_engine_carries_on(case):
    engine = create_mcjit_compiler(parse_ir(GOOD, "good"), generic_tm(), compile_workers=1)
    bad = parse_ir(FATAL[case], "bad")
    engine.add_module(bad)
    with pytest.raises(CompileError, match="bad") as info:
        engine.finalize_object()
    assert "LLVM" in str(info.value) or "error" in str(info.value)
    engine.remove_module(bad)
    assert engine.call("f", 2) == 14  # the host and the engine are unharmed
    engine.close()


def test_worker_count_is_validated_and_read_from_the_environment(monkeypatch):
    with pytest.raises(ValueError, match="compile_workers"):
        EngineOptions(compile_workers=-1)
    assert EngineOptions(compile_workers="auto").compile_workers >= 1
    monkeypatch.setenv("EXECUTION_ENGINE_COMPILE_WORKERS", "1")
    assert EngineOptions.from_keywords().compile_workers == 1
    monkeypatch.setenv("EXECUTION_ENGINE_COMPILE_WORKERS", "0")
    assert EngineOptions.from_keywords().compile_workers == 0


@pytest.mark.slow
def test_a_hundred_worker_deaths_in_a_row_through_one_engine():
    engine = create_mcjit_compiler(parse_ir(GOOD, "good"), generic_tm(), compile_workers=1)
    assert engine.call("f", 1) == 7
    for i in range(100):
        bad = parse_ir(FATAL["rejected inline asm"], f"bad{i}")
        engine.add_module(bad)
        with pytest.raises(CompileError, match=f"bad{i}") as info:
            engine.finalize_object()
        assert "bogus_instruction" in str(info.value)  # LLVM's own message, from the worker
        engine.remove_module(bad)
    more = parse_ir("define i64 @g(i64 %x) {\n  %y = add i64 %x, 1\n  ret i64 %y\n}\n", "more")
    engine.add_module(more)
    assert engine.call("g", 41) == 42 and engine.call("f", 3) == 21
    assert engine.stats().modules == 2
    engine.close()
