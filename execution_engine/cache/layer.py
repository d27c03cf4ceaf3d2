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

A module the backend cut into partitions (:func:`~..compilers.submit_all`)
gives several objects whose promoted locals carry the unit's prefix: they
are stored together, under a key that includes the prefix, and used only
by a unit with the same IR and prefix (the command line adds the same
modules in the same order, so its prefixes repeat from run to run).
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import llvmlite.binding as llvm

from .. import process_exit
from ..compilers import CompileBackend, CompileUnit, Objects, done, submit_all
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

    reads_text = True  # for its keys: see CompileUnit.text

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

    def submit_all(self, units: Sequence[CompileUnit]) -> list[Future[Objects]]:
        """Hits at once; the misses passed on together to the inner backend
        (:func:`~..compilers.submit_all`) and stored as they finish."""
        results: list[Future[Objects] | None] = [None] * len(units)
        misses: list[tuple[int, str | None, str | None]] = []
        for i, unit in enumerate(units):
            target = self.describe(unit.target_machine) if self.store is not None else None
            if target is None or self.store is None:
                misses.append((i, None, None))
                continue
            # the text when the caller prints it anyway (one print, not print + bitcode)
            ir = unit.module_text() if unit.text is not None else module_ir(unit.module)
            key = object_key(ir, target, extra=self.extra)
            data = self.store.get(key)
            objects = None if data is None else [data]
            cut_key = None
            if objects is None and unit.prefix is not None:
                cut_key = object_key(ir, target, extra=f"{self.extra}\0cut, prefix {unit.prefix}")
                packed = self.store.get(cut_key)
                objects = None if packed is None else _unpack(packed)
            if objects is not None:
                self.hits += 1
                results[i] = done(lambda objects=objects: objects)  # type: ignore[misc]
            else:
                self.misses += 1
                misses.append((i, key, cut_key))
        futures = submit_all(self.inner, [units[i] for i, _, _ in misses])
        for (i, whole_key, cut), future in zip(misses, futures, strict=True):
            if whole_key is not None:
                # a future that finishes once the objects are stored (a compile that
                # finished already, in process, is stored now and kept as it is)
                stored: Future[Objects] = future if future.done() else Future()
                future.add_done_callback(self._storer(whole_key, cut, stored))
                future = stored
            results[i] = future
        return [f for f in results if f is not None]

    def _storer(self, key: str, cut_key: str | None,
                stored: Future[Objects]) -> Callable[[Future[Objects]], None]:
        """A callback that stores a finished compile's objects, then hands the
        outcome on to ``stored`` (it runs in whichever thread finished it)."""

        def store(future: Future[Objects]) -> None:
            error = future.exception()
            if error is None:
                objects = future.result()
                if self.store is not None and len(objects) == 1:
                    self.store.put(key, bytes(objects[0]))
                elif self.store is not None and cut_key is not None:
                    self.store.put(cut_key, _pack(objects))
            if stored is future:
                return
            if error is not None:
                stored.set_exception(error)
            else:
                stored.set_result(objects)

        return store

    def stats(self) -> CacheStats:
        """The store's counters (all zero without a store)."""
        return self.store.stats() if self.store is not None else CacheStats()


_PACKED = b"EEOBJS\x00\x01"


def _pack(objects: Objects) -> bytes:
    """Several objects as one stored payload: magic, count, lengths, bytes."""
    head = _PACKED + struct.pack(f">I{len(objects)}Q", len(objects), *map(len, objects))
    return head + b"".join(objects)


def _unpack(payload: bytes) -> Objects | None:
    """The objects of a :func:`_pack` payload (None if it is not one)."""
    if not payload.startswith(_PACKED) or len(payload) < len(_PACKED) + 4:
        return None
    (count,) = struct.unpack_from(">I", payload, len(_PACKED))
    start = len(_PACKED) + 4 + 8 * count
    if count < 2 or len(payload) < start:
        return None
    lengths = struct.unpack_from(f">{count}Q", payload, len(_PACKED) + 4)
    if start + sum(lengths) != len(payload):
        return None
    objects = []
    for length in lengths:
        objects.append(payload[start:start + length])
        start += length
    return objects


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


@process_exit.on_exit_service
def flush_shared_stores() -> None:
    """Record the shared stores' statistics now (an exit hook: C ``exit()``
    skips Python's exit handlers)."""
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
