"""target_spec (probed traits): a target machine's ELF machine, relocation and code model."""

from __future__ import annotations

import platform
from types import SimpleNamespace

import llvmlite.binding as llvm
import pytest

from execution_engine.native import elf
from execution_engine.target_spec import TargetTraits, machine_of, traits, with_opt_level

HOST_X86_64 = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                                 reason="code models are probed on an x86-64 host")


def host_tm(**options) -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine(**options)


@pytest.mark.parametrize("triple, machine", [
    ("x86_64-unknown-linux-gnu", elf.EM_X86_64),
    ("aarch64-unknown-linux-gnu", elf.EM_AARCH64),
    ("arm64-apple-darwin23.0.0", elf.EM_AARCH64),
])
def test_machine_of_reads_the_triple(triple, machine):
    assert machine_of(SimpleNamespace(triple=triple)) == machine


def test_machine_of_the_host_matches_its_objects():
    tm = host_tm()
    module = llvm.parse_assembly("define void @f() {\n  ret void\n}\n")
    module.triple = tm.triple
    obj = elf.ObjectFile(bytes(tm.emit_object(module)), machine=machine_of(tm))
    assert obj.defined_globals()["f"].is_function


@HOST_X86_64
@pytest.mark.parametrize("reloc", ["pic", "static"])
@pytest.mark.parametrize("codemodel", ["small", "large"])
def test_traits_find_what_the_machine_was_created_with(reloc, codemodel):
    found = traits(host_tm(reloc=reloc, codemodel=codemodel, jit=True))
    assert found == TargetTraits(pic=reloc == "pic", code_model=codemodel)
    assert found.reloc() == reloc


@HOST_X86_64
def test_the_jit_target_machine_uses_the_large_code_model():
    assert traits(host_tm(jit=True)).code_model == "large"


@HOST_X86_64
@pytest.mark.parametrize("reloc, codemodel", [("pic", "small"), ("static", "large")])
def test_with_opt_level_keeps_the_traits(reloc, codemodel):
    tm = host_tm(reloc=reloc, codemodel=codemodel, jit=True, opt=0)
    t = traits(tm)
    again = with_opt_level(tm, t, 3)
    assert traits(again) == t and again.triple == tm.triple
    assert str(again.target_data) == str(tm.target_data)


def test_traits_are_values():
    assert TargetTraits(True, "small") == TargetTraits(True, "small")
    assert TargetTraits(False, "large").reloc() == "static"
    with pytest.raises(AttributeError):
        TargetTraits(True, "small").pic = False  # type: ignore[misc]
