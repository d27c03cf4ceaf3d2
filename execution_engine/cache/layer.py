"""CachingCompiler: a compile step with a persistent object store in front.

It sits between the IRCompileLayer, which prepares the module it will
compile (clone, engine rewrites), and whatever turns that module into object
bytes (``TargetMachine.emit_object`` in process, or a worker process). A hit
returns the stored bytes without compiling; a miss compiles, stores and
returns the fresh bytes. Either way the caller gets the same bytes the
compile step would give.

:class:`CachingCompiler` wraps a plain ``compile(module) -> bytes``;
:class:`CachingBackend` is the same thing shaped as a
:class:`~execution_engine.compilers.CompileBackend`, wrapping another one.
"""

from __future__ import annotations

from collections.abc import Callable

import llvmlite.binding as llvm

from ..compilers import CompileBackend
from .keys import module_ir, object_key
from .stats import CacheStats
from .store import ObjectStore

Compile = Callable[[llvm.ModuleRef], bytes]


class CachingCompiler:
    """``compile(module) -> bytes`` served from ``store`` when it can be.

    ``target``: the description of the target machine ``compile`` uses
    (triple, CPU, features, optimisation level, relocation and code model);
    it is part of every key, so one store can serve several targets.
    ``extra``: any further input of ``compile`` that changes its output.
    ``store=None`` passes every call straight to ``compile``.

    The key is taken from the module *before* ``compile`` runs (LLVM's code
    generator changes the module it compiles). The module stays the
    caller's: it is read, never kept. Errors of ``compile`` propagate and
    nothing is stored; the store itself never raises. Thread-safe if
    ``compile`` is.
    """

    def __init__(self, compile: Compile, store: ObjectStore | None, target: str, *,
                 extra: str = ""):
        self.compile = compile
        self.store = store
        self.target = target
        self.extra = extra

    def __call__(self, module: llvm.ModuleRef) -> bytes:
        """Object bytes for ``module``, exactly as it will be compiled."""
        if self.store is None:
            return self.compile(module)
        return self.get_or_compile(module_ir(module), lambda: self.compile(module))

    def get_or_compile(self, ir: bytes | str, compile: Callable[[], bytes]) -> bytes:
        """The object for ``ir`` (text or bitcode of what ``compile()`` compiles):
        stored bytes on a hit; on a miss ``compile()``'s bytes, then stored.
        For callers that hold the IR already (e.g. text sent to a worker)."""
        if self.store is None:
            return compile()
        key = object_key(ir, self.target, extra=self.extra)
        data = self.store.get(key)
        if data is None:
            data = bytes(compile())
            self.store.put(key, data)
        return data

    def stats(self) -> CacheStats:
        """The store's counters (all zero without a store)."""
        return self.store.stats() if self.store is not None else CacheStats()


class CachingBackend:
    """A :class:`~execution_engine.compilers.CompileBackend` with a store in front.

    ``describe(target_machine)`` gives the target description that goes into
    each key (it must name everything about the machine that changes code:
    triple, CPU, features, optimisation level, relocation and code model).
    Contracts as :class:`CachingCompiler`; thread-safe if ``inner`` and
    ``describe`` are.
    """

    def __init__(self, inner: CompileBackend, store: ObjectStore | None,
                 describe: Callable[[llvm.TargetMachine], str], *, extra: str = ""):
        self.inner = inner
        self.store = store
        self.describe = describe
        self.extra = extra

    def compile(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine, *,
                label: str) -> bytes:
        """Object bytes for ``module`` as ``target_machine`` compiles it."""
        caching = CachingCompiler(
            lambda m: self.inner.compile(m, target_machine, label=label), self.store,
            self.describe(target_machine), extra=self.extra)
        return caching(module)

    def stats(self) -> CacheStats:
        """The store's counters (all zero without a store)."""
        return self.store.stats() if self.store is not None else CacheStats()
