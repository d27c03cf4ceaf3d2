"""WorkerCompiler: the compile backend that sends IR to the compile workers.

A :class:`~execution_engine.compilers.CompileBackend` (option
``compile_workers=N``): each module is sent, as bitcode, with the target
machine's recorded creation arguments
(:func:`~execution_engine.target_spec.spec_of`) to a worker of the process's
shared pool, which compiles it in its own llvmlite. LLVM's fatal errors then
end a worker, not the host: the compile raises
:class:`~execution_engine.errors.CompileError` with LLVM's message. A target
machine whose creation arguments are unknown (made before ``execution_engine``
was imported) cannot be reproduced in a worker: its modules compile in
process. Thread-safety: as the pool's.
"""

from __future__ import annotations

import llvmlite.binding as llvm

from ..compilers import CompileBackend, InProcessCompiler
from ..target_spec import spec_of
from .pool import shared_pool


class WorkerCompiler:
    """Compiles in the shared pool's worker processes (see the module docstring)."""

    def __init__(self, workers: int, fallback: CompileBackend | None = None):
        self.workers = workers
        self.fallback: CompileBackend = fallback if fallback is not None else InProcessCompiler()
        self.pool = shared_pool(workers)  # starts the workers in the background

    def compile(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine, *,
                label: str) -> bytes:
        spec = spec_of(target_machine)
        if spec is None:
            return self.fallback.compile(module, target_machine, label=label)
        return self.pool.compile(module, spec, label, verify=False)
