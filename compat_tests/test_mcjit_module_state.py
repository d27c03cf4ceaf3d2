"""What clients read back from the engine's modules, compared with stock MCJIT:
code generation's rewrites visible in the module after finalization (numba's
``inspect_llvm`` and its debug-info tests rely on it) and ``_modules``
iterating ModuleRefs (numba's parfors tests do)."""

from __future__ import annotations

import llvmlite.binding as llvm
import pytest

from execution_engine import create_mcjit_compiler
from execution_engine.compile_service.pool import resolve_worker_count

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()

# A no-op cast and an empty block: code generation removes both.
REWRITTEN_BY_CODEGEN = """
define i64 @f(ptr %p, i1 %c) {
entry:
  %q = bitcast ptr %p to ptr
  br i1 %c, label %empty, label %done
empty:
  br label %done
done:
  %v = load i64, ptr %q
  ret i64 %v
}
"""


def _module(name: str = "m") -> llvm.ModuleRef:
    module = llvm.parse_assembly(REWRITTEN_BY_CODEGEN)
    module.name = name
    return module


def _instructions(module: llvm.ModuleRef) -> int:
    fn = module.get_function("f")
    return sum(1 for block in fn.blocks for _ in block.instructions)


def _finalized(create, **options) -> llvm.ModuleRef:
    module = _module()
    tm = llvm.Target.from_default_triple().create_target_machine(jit=True)
    engine = create(module, tm, **options)
    engine.finalize_object()
    assert engine.get_function_address("f")
    return module, engine


@pytest.mark.skipif(resolve_worker_count(None) > 0, reason=(
    "compile workers (EXECUTION_ENGINE_COMPILE_WORKERS) compile a copy sent as bitcode: "
    "the module is not rewritten in place (docs/architecture.md)"))
def test_codegen_rewrites_are_visible_as_after_stock_mcjit():
    before = _instructions(_module())
    stock_module, stock = _finalized(llvm.create_mcjit_compiler)
    ours_module, ours = _finalized(create_mcjit_compiler)
    assert _instructions(stock_module) < before  # what numba sees under MCJIT
    assert _instructions(ours_module) == _instructions(stock_module)
    assert str(ours_module) == str(stock_module)
    ours.close()


def test_compile_in_place_false_leaves_the_module_as_written():
    written = str(_module())
    module, engine = _finalized(create_mcjit_compiler, compile_in_place=False)
    assert str(module) == written
    engine.close()


@pytest.mark.parametrize("lazy", [False, True])
def test_modules_iterates_module_refs_as_llvmlite_does(lazy):
    module = _module("first")
    tm = llvm.Target.from_default_triple().create_target_machine(jit=True)
    engine = create_mcjit_compiler(module, tm, lazy=lazy)
    second = llvm.parse_assembly("define i64 @g() {\n  ret i64 1\n}")
    second.name = "second"
    engine.add_module(second)
    names = sorted(m.name for m in engine._modules)  # numba iterates this private set
    assert names == ["first", "second"]
    assert all(isinstance(m, llvm.ModuleRef) for m in engine._modules)
    engine.close()
