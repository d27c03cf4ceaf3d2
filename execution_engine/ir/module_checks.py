"""Checks a module must pass before any LLVM code generation sees it.

The llvmlite wheel's LLVM has assertions enabled, so a module with another
target's data layout, or IR that does not verify, can abort the process
inside code generation. These checks raise instead, naming the module.
"""

from __future__ import annotations

import llvmlite.binding as llvm

from ..errors import InvalidModuleError, TargetMismatchError


def module_label(module: llvm.ModuleRef) -> str:
    return f"module '{module.name}'"


def check_module(module: llvm.ModuleRef, target_machine: llvm.TargetMachine, *,
                 verify: bool = True) -> None:
    """Raise unless ``module`` verifies and suits ``target_machine``.

    ``verify=False`` skips the verifier (a walk of the whole module): lazy
    engines verify each partition before compiling it instead."""
    if not isinstance(module, llvm.ModuleRef):
        raise TypeError(f"expected a llvmlite ModuleRef, got {type(module).__name__}")
    if module.closed:
        raise ValueError("module is closed")
    _ensure_asm_parser()
    if verify:
        try:
            module.verify()
        except RuntimeError as exc:
            raise InvalidModuleError(f"{module_label(module)} is invalid: {exc}") from None
    triple = module.triple
    if triple and _arch(triple) != _arch(target_machine.triple):
        raise TargetMismatchError(
            f"{module_label(module)} targets '{triple}' but the engine's target machine "
            f"is '{target_machine.triple}'"
        )
    layout = module.data_layout
    expected = str(target_machine.target_data)
    if layout and layout != expected:
        raise TargetMismatchError(
            f"{module_label(module)} has data layout '{layout}' but the engine's target "
            f"machine uses '{expected}'"
        )


_asm_parser_ready = False


def _ensure_asm_parser() -> None:
    """Initialize the native assembly parser (idempotent).

    Code generation of inline assembly without it is a fatal error ("Inline
    asm not supported by this streamer because we don't have an asm parser
    for this target") - and callers easily forget
    ``llvm.initialize_native_asmparser()``, which MCJIT also needs for it.
    """
    global _asm_parser_ready
    if not _asm_parser_ready:
        llvm.initialize_native_asmparser()
        _asm_parser_ready = True


def _arch(triple: str) -> str:
    arch = triple.split("-", 1)[0]
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def check_not_owned(module: llvm.ModuleRef) -> None:
    """A module another engine owns will be disposed of by that engine."""
    if not isinstance(module, llvm.ModuleRef):
        raise TypeError(f"expected a llvmlite ModuleRef, got {type(module).__name__}")
    if getattr(module, "_owned", False):
        raise ValueError(f"{module_label(module)} is owned by another engine; "
                         "remove it from that engine first")
