"""WorkerCompiler: the compile backend that sends IR to the compile workers.

A :class:`~execution_engine.compilers.CompileBackend` (option
``compile_workers=N``): each module is sent, as bitcode, with the target
machine's recorded creation arguments
(:func:`~execution_engine.target_spec.spec_of`) to a worker of the process's
shared pool, which compiles it in its own llvmlite. LLVM's fatal errors then
end a worker, not the host: the compile raises
:class:`~execution_engine.errors.CompileError` with LLVM's message, naming the
module and (when it defines few) its functions. A target machine whose
creation arguments are unknown (made before ``execution_engine`` was
imported) cannot be reproduced in a worker: its modules compile in process,
as every module does once the process is leaving (the exit hooks of
:mod:`..process_exit` have closed the pools; a program's atexit handler may
still call a lazy function for the first time).

:meth:`WorkerCompiler.submit_all` compiles a batch at the same time on every
worker: modules go out largest first, and a big module (a unit that allows
it) is cut into partitions (:mod:`.partition`) where :mod:`.schedule` says
that shortens the batch (counted: ``cut_modules``, ``partitions``). A cut
whose partition the worker cannot parse (a construct the text splitter
misreads) is compiled again whole, and counted (``split_fallbacks``).
Thread-safety: as the pool's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import llvmlite.binding as llvm

from .. import process_exit
from ..compilers import CompileBackend, CompileUnit, InProcessCompiler, Objects, done
from ..errors import InvalidModuleError
from ..ir.extract import ExtractionError
from ..target_spec import TargetSpec, spec_of
from . import schedule
from .partition import Split, split
from .pool import CompilePool, shared_pool

_NAMED_FUNCTIONS = 3  # a label lists this many functions, then counts the rest


class WorkerCompiler:
    """Compiles in the shared pool's worker processes (see the module docstring)."""

    reads_text = True  # for a cut: see CompileUnit.text

    def __init__(self, workers: int, fallback: CompileBackend | None = None,
                 pool: CompilePool | None = None, *, start: bool = True):
        """``pool``: default the process's shared pool, whose workers start in the
        background now, or (``start=False``: behind a cache, whose hits need no
        worker) on the first compile."""
        self.workers = workers
        self.fallback: CompileBackend = fallback if fallback is not None else InProcessCompiler()
        self._pool = pool if pool is not None or not start else shared_pool(workers)
        self.cut_modules = self.partitions = self.split_fallbacks = 0
        self._lock = threading.Lock()

    @property
    def pool(self) -> CompilePool:
        if self._pool is None:
            self._pool = shared_pool(self.workers)
        return self._pool

    def compile(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine, *,
                label: str) -> bytes:
        spec = _worker_spec(target_machine)
        if spec is None:
            return self.fallback.compile(module, target_machine, label=label)
        return self.pool.compile(module, spec, _label(label, _defined_names(module)),
                                 verify=False)

    def submit_all(self, units: Sequence[CompileUnit]) -> list[Future[Objects]]:
        """See :class:`~execution_engine.compilers.ConcurrentBackend`."""
        jobs = [_Unit(unit, _worker_spec(unit.target_machine)) for unit in units]
        remote = [job for job in jobs if job.spec is not None]
        splittable = [job.unit.prefix is not None and self.workers > 1 for job in remote]
        functions = [_count_defined(job.unit.module) if ok else 0
                     for job, ok in zip(remote, splittable, strict=True)]
        candidates = schedule.cut_candidates(functions, self.workers, splittable)
        # Costs compare within a batch: all from bitcode, or (every module may be
        # cut, so each is printed anyway) all from text.
        from_text = all(candidates)
        for job, candidate in zip(remote, candidates, strict=True):
            if candidate:
                job.text = job.unit.module_text()
            if not from_text:
                job.payload = bytes(job.unit.module.as_bitcode())
            job.cost = (len(job.text or "") / schedule.TEXT_PER_BITCODE if from_text
                        else len(job.payload))
        counts = schedule.partition_counts([job.cost for job in remote], functions,
                                           self.workers, splittable=candidates)
        pieces: list[_Piece] = []
        for job, count in zip(remote, counts, strict=True):
            pieces += self._pieces(job, count)
        for i in schedule.largest_first([p.cost for p in pieces]):
            piece = pieces[i]
            piece.future = self.pool.submit(piece.payload, piece.job.target, piece.label,
                                            verify=False)
        for job in remote:
            job.result = self._gather(job)
        for job in jobs:  # in process, while the workers compile
            if job.spec is None:
                unit = job.unit
                job.result = done(lambda unit=unit: [self.fallback.compile(  # type: ignore[misc]
                    unit.module, unit.target_machine, label=unit.label)])
        return [job.future for job in jobs]

    def _pieces(self, job: _Unit, count: int) -> list[_Piece]:
        """What is sent for ``job``: ``count`` partitions, or the module whole."""
        module, label = job.unit.module, job.unit.label
        if count > 1:
            assert job.unit.prefix is not None and job.text is not None
            try:
                parts = split(job.text, count, prefix=job.unit.prefix)
            except ExtractionError:
                parts = None
            if parts is not None and len(parts.texts) > 1:
                n = len(parts.texts)
                with self._lock:
                    self.cut_modules += 1
                    self.partitions += n
                cost = schedule.piece_cost(job.cost, n)
                job.pieces = [
                    _Piece(job, text, _label(f"{label} (partition {i + 1} of {n})",
                                             *_functions_of(parts, i)), cost)
                    for i, text in enumerate(parts.texts)]
                return job.pieces
        if not job.payload:
            job.payload = job.text or b""
        job.pieces = [_Piece(job, job.payload, _label(label, _defined_names(module)),
                             schedule.piece_cost(job.cost, 1))]
        return job.pieces

    def _gather(self, job: _Unit) -> Future[Objects]:
        """One future for the unit's pieces: their objects in order, or the first
        error; a cut the worker could not parse is compiled again whole."""
        result: Future[Objects] = Future()
        pieces = job.pieces
        left = [len(pieces)]
        lock = threading.Lock()

        def finished(_: Future[bytes]) -> None:
            with lock:
                left[0] -= 1
                if left[0]:
                    return
            errors = [p.future.exception() for p in pieces if p.future is not None]
            error = next((e for e in errors if e is not None), None)
            if error is None:
                result.set_result([p.future.result() for p in pieces if p.future is not None])
            elif len(pieces) > 1 and isinstance(error, InvalidModuleError):
                with self._lock:
                    self.split_fallbacks += 1
                whole = self.pool.submit(job.text or b"", job.target, job.unit.label,
                                         verify=False)
                whole.add_done_callback(lambda f: _copy(f, result))
            else:
                result.set_exception(error)

        for piece in pieces:
            assert piece.future is not None
            piece.future.add_done_callback(finished)
        return result


@dataclass(eq=False)
class _Unit:
    unit: CompileUnit
    spec: TargetSpec | None
    payload: str | bytes = b""  # the module's bitcode (or text) when sent whole
    text: str | None = None  # the module's text when it may be cut
    cost: float = 0.0
    pieces: list[_Piece] = field(default_factory=list)
    result: Future[Objects] | None = None

    @property
    def target(self) -> TargetSpec:
        assert self.spec is not None
        return self.spec

    @property
    def future(self) -> Future[Objects]:
        assert self.result is not None
        return self.result


@dataclass(eq=False)
class _Piece:
    job: _Unit
    payload: str | bytes
    label: str
    cost: float
    future: Future[bytes] | None = None


def _worker_spec(target_machine: llvm.TargetMachine) -> TargetSpec | None:
    """What a worker needs to reproduce ``target_machine``; None: compile in
    process (the machine's arguments are unknown, or the process is leaving
    and its pools are closed)."""
    return None if process_exit.quiesced() else spec_of(target_machine)


def _copy(source: Future[bytes], target: Future[Objects]) -> None:
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result([source.result()])


def _count_defined(module: llvm.ModuleRef) -> int:
    return sum(not fn.is_declaration for fn in module.functions)


def _defined_names(module: llvm.ModuleRef) -> list[str] | None:
    """The names of ``module``'s defined functions if it has few, else None."""
    names = []
    for fn in module.functions:
        if not fn.is_declaration:
            names.append(fn.name)
            if len(names) > _NAMED_FUNCTIONS:
                return None
    return names


def _functions_of(parts: Split, index: int) -> tuple[list[str], int]:
    """The first few functions partition ``index`` defines, by their names in the
    module, and how many it defines."""
    names = parts.defines[index][:min(parts.functions[index], _NAMED_FUNCTIONS)]
    return [parts.renamed.get(name, name) for name in names], parts.functions[index]


def _label(label: str, functions: list[str] | None, count: int | None = None) -> str:
    """``label`` naming the functions compiled: the first few of ``functions``,
    then how many more of ``count`` (default: as many as listed)."""
    if not functions:
        return label
    count = len(functions) if count is None else count
    shown = ", ".join(f"'{name}'" for name in functions[:_NAMED_FUNCTIONS])
    more = count - min(len(functions), _NAMED_FUNCTIONS)
    word = "function" if count == 1 else "functions"
    return f"{label}, {word} {shown}" + (f" and {more} more" if more > 0 else "")
