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

import os
import threading
from collections.abc import Callable

import llvmlite.binding as llvm

from ..compilers import CompileBackend
from ..target_spec import spec_of
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
    triple, CPU, features, optimisation level, relocation and code model), or
    ``None`` when that is not known: then nothing is cached for that machine.
    ``hits``/``misses`` count this backend's lookups (an engine's own, where
    the store's statistics are the whole process's). Contracts as
    :class:`CachingCompiler`; thread-safe if ``inner`` and ``describe`` are.
    """

    def __init__(self, inner: CompileBackend, store: ObjectStore | None,
                 describe: Callable[[llvm.TargetMachine], str | None], *, extra: str = ""):
        self.inner = inner
        self.store = store
        self.describe = describe
        self.extra = extra
        self.hits = self.misses = 0

    def compile(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine, *,
                label: str) -> bytes:
        """Object bytes for ``module`` as ``target_machine`` compiles it."""
        target = self.describe(target_machine) if self.store is not None else None
        if target is None or self.store is None:
            return self.inner.compile(module, target_machine, label=label)
        key = object_key(module_ir(module), target, extra=self.extra)
        data = self.store.get(key)
        if data is not None:
            self.hits += 1
            return data
        self.misses += 1
        data = bytes(self.inner.compile(module, target_machine, label=label))
        self.store.put(key, data)
        return data

    def stats(self) -> CacheStats:
        """The store's counters (all zero without a store)."""
        return self.store.stats() if self.store is not None else CacheStats()


_stores: dict[str, ObjectStore] = {}
_stores_lock = threading.Lock()


def shared_store(directory: str | os.PathLike[str]) -> ObjectStore:
    """The process's one store for ``directory`` (every engine using that
    directory shares it, and its statistics are flushed once, at exit)."""
    key = os.path.abspath(os.fspath(directory))
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = ObjectStore(key)
        return store


def flush_shared_stores() -> None:
    """Record the shared stores' statistics now (for a process about to leave
    through C ``exit()``, which skips Python's exit handlers)."""
    with _stores_lock:
        stores = list(_stores.values())
    for store in stores:
        store.flush_stats()


def describe_target(target_machine: llvm.TargetMachine) -> str | None:
    """The cache-key description of ``target_machine``: its creation arguments
    (:func:`~execution_engine.target_spec.spec_of`), or ``None`` if unknown
    (made before ``execution_engine`` was imported), so that a key never lies."""
    spec = spec_of(target_machine)
    return None if spec is None else spec.describe()
