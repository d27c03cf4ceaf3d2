"""Compile backends: what turns an IR module into relocatable object bytes.

The IRCompileLayer decides *what* to compile (clones, the engine's own
rewrites); a backend decides *where*: :class:`InProcessCompiler` runs the
target machine's code generator in this process, under llvmlite's lock.
A backend receives a module it may consume (code generation rewrites the IR
it compiles) and returns bytes; it raises an
:class:`~execution_engine.errors.ExecutionEngineError` naming ``label`` on
failure.

Compiling several modules at once (a finalization with many modules, or
one big module cut into partitions) goes through :func:`submit_all`: a
backend that can overlap work (the compile workers) implements
``submit_all`` itself; any other compiles each unit in turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import llvmlite.binding as llvm

from .errors import InvalidObjectError
from .ir.target_checks import check_intrinsics

Objects = list[bytes]


@dataclass(frozen=True)
class CompileUnit:
    """One module to compile for :func:`submit_all`.

    ``module`` may be consumed (code generation rewrites it); ``label`` names
    it in errors. ``prefix``: if not None, the backend may cut the module into
    partitions compiled apart, whose objects together define what the module
    defines; its internal symbols then become hidden globals named ``prefix +
    name`` (``prefix + "anon.N"`` for ``@N``). None: one object, as ``compile``.
    ``text``: the module's text as the caller will want it anyway, printed on
    the first call and kept (printing costs in proportion to the module, so a
    backend that needs the text - for a cache key, a cut, a worker - asks
    for it here rather than printing its own copy); None: print it yourself.
    """

    module: llvm.ModuleRef
    target_machine: llvm.TargetMachine
    label: str
    prefix: str | None = None
    text: Callable[[], str] | None = None

    def module_text(self) -> str:
        """The module's text, shared with the caller when it offered it."""
        return self.text() if self.text is not None else str(self.module)


class ConcurrentBackend(Protocol):
    """A backend that compiles several units at the same time."""

    def submit_all(self, units: Sequence[CompileUnit]) -> list[Future[Objects]]:
        """Start compiling every unit; one future per unit, in order, whose result
        is the unit's objects (one, or one per partition). Every unit's module
        has been read (or compiled) when this returns: the caller may then
        change or close it. A future raises what ``compile`` would."""


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


def submit_all(backend: CompileBackend, units: Sequence[CompileUnit]) -> list[Future[Objects]]:
    """``backend.submit_all(units)`` if the backend has it, else each unit compiled
    now by ``backend.compile`` (see :class:`ConcurrentBackend` for the contract)."""
    concurrent = getattr(backend, "submit_all", None)
    if concurrent is not None:
        futures: list[Future[Objects]] = concurrent(units)
        return futures

    def compile_one(unit: CompileUnit) -> Callable[[], Objects]:
        return lambda: [backend.compile(unit.module, unit.target_machine, label=unit.label)]

    return [done(compile_one(unit)) for unit in units]


class Finished(Future[Objects]):
    """A future finished when made: ``seconds`` is what computing it took."""

    seconds = 0.0


def done(compute: Callable[[], Objects]) -> Finished:
    """A finished future holding ``compute()``'s result or its exception."""
    future = Finished()
    started = time.perf_counter()
    try:
        future.set_result(compute())
    except Exception as exc:  # noqa: BLE001 - handed to whoever waits on the future
        future.set_exception(exc)
    future.seconds = time.perf_counter() - started
    return future
