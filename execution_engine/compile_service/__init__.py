"""Compile service: LLVM code generation in worker processes.

* :mod:`.worker` - the worker process (one llvmlite per process): IR text or
  bitcode plus a :class:`~execution_engine.target_spec.TargetSpec` in, object
  bytes out;
* :mod:`.pool` - :class:`CompilePool`, workers shared by every engine of the
  process, and :func:`shared_pool`;
* :mod:`.partition` - :func:`split_module`, a module cut into K partitions
  that compile apart and link together.

LLVM's fatal errors (``report_fatal_error``, the assembler's ``exit(1)``,
assertion failures) end a worker, never the host: the request it was serving
raises :class:`~execution_engine.errors.CompileError` with LLVM's message.
"""

from .partition import Split, split, split_module
from .pool import CompilePool, resolve_worker_count, shared_pool, start_workers

__all__ = ["CompilePool", "Split", "resolve_worker_count", "shared_pool", "split",
           "split_module", "start_workers"]
