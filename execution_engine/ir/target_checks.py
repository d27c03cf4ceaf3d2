"""Intrinsics LLVM's code generator would abort on, found before it runs.

Instruction selection ends the process (``LLVM ERROR: Cannot select``, or
type legalisation's ``Do not know how to split``) on two kinds of calls that
verify: an intrinsic of another target (``llvm.aarch64.*`` on x86-64), and
an AVX-512 intrinsic in code compiled for a machine without ``avx512f``.
:func:`check_intrinsics` refuses both with a :class:`CompileError` naming
the intrinsic, at the cost of one walk over the module's function list
(about 6 us a function: under 0.5 % of compiling it), so it runs where code
is about to be generated in this process, not on a cache hit.

What it cannot see is left to the compile service (``compile_workers``),
where a fatal error ends a worker, not the host: inline asm the assembler
rejects, and an AVX-512 intrinsic in a module some function of which asks
for AVX-512 itself (``"target-features"``), which is legitimate code that
checks the CPU first.
"""

from __future__ import annotations

import llvmlite.binding as llvm

from ..errors import CompileError
from ..target_spec import spec_of

# The first name component of target-specific intrinsics, by target.
TARGET_PREFIXES = frozenset({
    "aarch64", "amdgcn", "arm", "bpf", "dx", "hexagon", "loongarch", "mips", "nvvm",
    "ppc", "r600", "riscv", "s390", "spv", "ve", "wasm", "x86", "xcore",
})
_OWN_PREFIXES = {"x86_64": {"x86"}, "i386": {"x86"}, "i686": {"x86"},
                 "aarch64": {"aarch64"}, "arm64": {"aarch64"}}
# CPU names that promise no AVX-512 (LLVM's generic x86-64 levels below v4).
_GENERIC_X86 = frozenset({"", "generic", "x86-64", "x86-64-v2", "x86-64-v3"})


def check_intrinsics(module: llvm.ModuleRef, target_machine: llvm.TargetMachine, *,
                     label: str) -> None:
    """Raise :class:`CompileError` if ``module`` calls an intrinsic that
    ``target_machine`` cannot select (see the module docstring)."""
    arch = target_machine.triple.split("-", 1)[0]
    own = _OWN_PREFIXES.get(arch)
    if own is None:
        return  # a target this engine does not know the intrinsics of
    avx512 = None
    for fn in module.functions:
        name = fn.name
        if not name.startswith("llvm.") or not fn.is_declaration:
            continue
        prefix = name.split(".", 2)[1]
        if prefix in TARGET_PREFIXES and prefix not in own:
            raise CompileError(label, "", detail=(
                f"intrinsic '{name}' belongs to another target than {arch} "
                "(LLVM would abort selecting it)"))
        if avx512 is None and name.startswith("llvm.x86.avx512"):
            avx512 = name
    if avx512 is not None and not _has_avx512(target_machine) and not _asks_for_avx512(module):
        raise CompileError(label, "", detail=(
            f"intrinsic '{avx512}' needs AVX-512 (avx512f), which the target machine does "
            "not have (LLVM would abort legalising it); create the target machine with the "
            "host's CPU and features, or give the calling function "
            "\"target-features\"=\"+avx512f\""))


def _has_avx512(target_machine: llvm.TargetMachine) -> bool:
    """Whether the machine has avx512f; True when that cannot be known."""
    spec = spec_of(target_machine)
    if spec is None:
        return True
    features = spec.features.split(",")
    if "+avx512f" in features:
        return True
    if "-avx512f" in features:
        return False
    return spec.cpu not in _GENERIC_X86


def _asks_for_avx512(module: llvm.ModuleRef) -> bool:
    return any(b"avx512" in attributes for fn in module.functions if not fn.is_declaration
               for attributes in fn.attributes)
