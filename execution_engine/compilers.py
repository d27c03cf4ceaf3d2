"""Compile backends: what turns an IR module into relocatable object bytes.

The IRCompileLayer decides *what* to compile (clones, the engine's own
rewrites); a backend decides *where*: :class:`InProcessCompiler` runs the
target machine's code generator in this process, under llvmlite's lock.
A backend receives a module it may consume (code generation rewrites the IR
it compiles) and returns bytes; it raises an
:class:`~execution_engine.errors.ExecutionEngineError` naming ``label`` on
failure.
"""

from __future__ import annotations

from typing import Protocol

import llvmlite.binding as llvm

from .errors import InvalidObjectError
from .ir.target_checks import check_intrinsics


class CompileBackend(Protocol):
    """Turns IR into object bytes (thread-safe)."""

    def compile(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine, *,
                label: str) -> bytes:
        """Object bytes for ``module`` as ``target_machine`` compiles it."""


class InProcessCompiler:
    """``TargetMachine.emit_object`` in this process (the default backend),
    after refusing the intrinsics LLVM would abort on (``ir.target_checks``)."""

    def compile(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine, *,
                label: str) -> bytes:
        check_intrinsics(module, target_machine, label=label)
        try:
            return bytes(target_machine.emit_object(module))
        except RuntimeError as exc:
            raise InvalidObjectError(f"code generation failed for {label}: {exc}") from None
