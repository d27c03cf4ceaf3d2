"""PC-relative references to imports out of reach raise instead of aborting the linker."""

from __future__ import annotations

import llvmlite.binding as llvm
import pytest
from conftest import parse_ir

from execution_engine import LinkError, create_mcjit_compiler
from execution_engine.native import elf
from execution_engine.native.elf import reach_error

FAR = """
@far_counter = external dso_local global i64
define i64 @read_far() {
  %v = load i64, ptr @far_counter
  ret i64 %v
}
"""


def small_static_tm() -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine(
        codemodel="small", reloc="static", jit=True)


def test_the_object_records_its_near_imports():
    tm = small_static_tm()
    obj = elf.ObjectFile(tm.emit_object(parse_ir(FAR)))
    bits, _ = obj.near_imports["far_counter"]
    assert bits == 32
    assert reach_error(obj, {"far_counter": 0x1000}, 0x7F00_0000_0000) is not None
    assert reach_error(obj, {"far_counter": 0x7F00_0000_1000}, 0x7F00_0000_0000) is None
    tm.close()


def test_default_jit_code_model_has_no_near_imports():
    tm = llvm.Target.from_default_triple().create_target_machine(jit=True)
    assert elf.ObjectFile(tm.emit_object(parse_ir(FAR))).near_imports == {}
    tm.close()


@pytest.mark.parametrize("remote", [False, True])
def test_far_mapping_raises_and_the_engine_keeps_working(remote):
    module = parse_ir(FAR, "farmod")
    engine = create_mcjit_compiler(parse_ir("define i64 @ok() {\n  ret i64 7\n}", "ok"),
                                   small_static_tm(), remote=remote)
    engine.add_module(module)
    engine.add_global_mapping(module.get_global_variable("far_counter"), 0x1000)
    with pytest.raises(LinkError, match="far_counter"):
        engine.finalize_object()
    engine.remove_module(module)
    assert engine.call("ok") == 7
    engine.close()
