"""Facts about a TargetMachine: its ELF machine, and what it was configured
with (relocation and code model), found by compiling a probe.

llvmlite does not expose a target machine's relocation or code model. The
engine needs both: position-independent code binds calls between
``dso_local`` functions of one module directly (so they must be made
interposable before compiling, or a swap would not reach them), and a
second target machine at another optimisation level must match the first.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.binding as llvm

from ..native import elf

_PROBE = """
@d = dso_local global i32 0
define dso_local i32 @callee() {
  %v = load i32, ptr @d
  ret i32 %v
}
define dso_local i32 @caller() {
  %r = call i32 @callee()
  ret i32 %r
}
"""


@dataclass(frozen=True)
class TargetTraits:
    pic: bool
    code_model: str  # "large" or "small"

    def reloc(self) -> str:
        return "pic" if self.pic else "static"


def machine_of(target_machine: llvm.TargetMachine) -> int:
    """The ELF machine (``e_machine``) of the objects ``target_machine`` emits."""
    arch = target_machine.triple.split("-", 1)[0]
    return elf.EM_AARCH64 if arch in ("aarch64", "arm64") else elf.EM_X86_64


def traits(target_machine: llvm.TargetMachine) -> TargetTraits:
    """Relocation and code model of ``target_machine`` (costs one small compile)."""
    module = llvm.parse_assembly(_PROBE)
    module.triple = target_machine.triple
    module.data_layout = str(target_machine.target_data)
    obj = elf.ObjectFile(target_machine.emit_object(module), machine=machine_of(target_machine))
    names = {s.name for s in obj.sections}
    large = ".ltext" in names
    # Static code refers to 'callee' by symbol; PIC code through a local alias.
    symbolic = any(
        obj.symbols[sym].name == "callee"
        for rela in obj.sections if rela.type == elf.SHT_RELA
        for sym in _relocation_symbols(obj, rela)
    )
    return TargetTraits(pic=not symbolic, code_model="large" if large else "small")


def _relocation_symbols(obj: elf.ObjectFile, rela: elf.Section) -> list[int]:
    words = memoryview(obj.data[rela.offset: rela.offset + rela.size]).cast("Q")
    return [words[k + 1] >> 32 for k in range(0, len(words), 3)]


def with_opt_level(target_machine: llvm.TargetMachine, t: TargetTraits,
                   opt_level: int) -> llvm.TargetMachine:
    """A target machine like ``target_machine`` (traits ``t``, host CPU) at ``opt_level``."""
    return llvm.Target.from_triple(target_machine.triple).create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
        opt=opt_level, reloc=t.reloc(), codemodel=t.code_model, jit=True)
