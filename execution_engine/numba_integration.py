"""Freeing numba's dead code: a freed ``CodeLibrary``'s module leaves the engine.

    import execution_engine
    execution_engine.install()          # before numba is imported
    from execution_engine import numba_integration
    numba_integration.enable()

numba adds each finalized ``CodeLibrary``'s module to the engine and never
removes it (its codegen's ``_add_module`` returns no cleanup, because
MCJIT's ``removeModule`` leaked and crashed). :func:`enable` makes that
method hand numba a cleanup, which numba already attaches to the library
with ``weakref.finalize``: when the library is garbage, its module is
*retired*, and removed from the engine - code and data freed - at the next
quiescent point (the next module numba adds, or :func:`collect`), never from
inside a garbage collection that may have interrupted an engine call.

**Never while something links to it.** numba links libraries by copying IR
(``link_in``, shared functions made ``linkonce_odr``) and resolves calls
between recursive dispatchers at run time through ``.numba.unresolved$<name>``
pointers. A retired module is kept while any other module still in the engine
imports a symbol it defines - a declaration, or such a pointer - (every
definer of that name counts, as the linker may have bound either); it is
removed once its last importer has gone. numba's own references (a library
holds those it links in) keep a callee's library alive while its callers live.

Only modules numba adds while this engine is installed are tracked; under
llvmlite's own MCJIT the cleanup stays off, as numba ships it. This module is
the only one of the package that imports numba. Thread safety: one lock
guards the tracker; retiring is safe from any thread and from finalizers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import llvmlite.binding as llvm

from .engine import ExecutionEngine

#: numba's prefix for run-time resolved references (its ``RuntimeLinker``).
UNRESOLVED_PREFIX = ".numba.unresolved$"
_LOCAL = {"internal", "private"}
#: Definitions the linker may bind another module's references to instead of
#: that module's own (numba's environment globals are ``common``).
_MERGED = {"external", "common"}


def _linkage(value: Any) -> str:
    linkage = value.linkage  # llvmlite's Linkage, an IntEnum: str() is its number
    return str(getattr(linkage, "name", linkage))


def _symbols(module: llvm.ModuleRef) -> tuple[set[str], set[str], set[str]]:
    """(names ``module`` defines for others, those of them it defines strongly,
    names it takes from others)."""
    exports: set[str] = set()
    strong: set[str] = set()
    imports: set[str] = set()
    for value in list(module.functions) + list(module.global_variables):
        name = value.name
        if name.startswith(UNRESOLVED_PREFIX):
            imports.add(name[len(UNRESOLVED_PREFIX):])
        elif value.is_declaration:
            imports.add(name)
        elif _linkage(value) not in _LOCAL:
            exports.add(name)
            if _linkage(value) in _MERGED:
                strong.add(name)
    return exports, strong, imports - exports


class ModuleTracker:
    """The modules numba added to one engine, which are retired, and who
    imports what (see the module docstring). Costs grow with the symbols of
    the modules added and removed, not with what the engine holds."""

    def __init__(self, engine: ExecutionEngine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._modules: dict[int, llvm.ModuleRef] = {}
        self._exports: dict[int, set[str]] = {}
        self._imports: dict[int, set[str]] = {}
        self._importers: dict[str, set[int]] = {}
        self._strong: dict[int, set[str]] = {}
        self._definers: dict[str, set[int]] = {}
        self._retired: set[int] = set()
        self.removed = 0

    def track(self, module: llvm.ModuleRef) -> Callable[[], None]:
        """Record ``module`` (just added to the engine); returns its cleanup,
        which retires it. The cleanup holds no reference to numba's library."""
        exports, strong, imports = _symbols(module)
        key = id(module)
        with self._lock:
            self._modules[key] = module
            self._exports[key] = exports
            self._strong[key] = strong
            for name in strong:
                self._definers.setdefault(name, set()).add(key)
            self._imports[key] = imports
            for name in imports:
                self._importers.setdefault(name, set()).add(key)
        return lambda: self.retire(key)

    def retire(self, key: int) -> None:
        """The module's library is garbage: remove it at the next :meth:`collect`."""
        with self._lock:
            if key in self._modules:
                self._retired.add(key)

    def pinned(self, key: int) -> bool:
        """Whether another module still in the engine imports what ``key``
        defines, or a live module defines again an external or ``common``
        symbol ``key`` defines (numba recompiles an unpickled function under
        its old names, and ``common`` definitions are merged: the live one's
        code may use ``key``'s storage)."""
        if any(self._importers.get(name, set()) - {key} for name in self._exports[key]):
            return True
        return any(self._definers[name] - self._retired for name in self._strong[key])

    def collect(self) -> int:
        """Remove every retired module nothing links to (repeatedly: removing
        one may free another); returns how many were removed."""
        removed = 0
        with self._lock:
            progress = True
            while progress:
                progress = False
                for key in [k for k in self._retired if not self.pinned(k)]:
                    self._drop(key)
                    removed += 1
                    progress = True
        self.removed += removed
        return removed

    def _drop(self, key: int) -> None:
        module = self._modules.pop(key)
        self._retired.discard(key)
        self._exports.pop(key)
        for name in self._strong.pop(key):
            definers = self._definers[name]
            definers.discard(key)
            if not definers:
                del self._definers[name]
        for name in self._imports.pop(key):
            users = self._importers.get(name)
            if users is not None:
                users.discard(key)
                if not users:
                    del self._importers[name]
        if not self._engine.closed and module in self._engine._modules:
            self._engine.remove_module(module)

    def retired(self) -> int:
        """How many retired modules are still in the engine (pinned or not yet collected)."""
        with self._lock:
            return len(self._retired)

    def __len__(self) -> int:
        with self._lock:
            return len(self._modules)


_original_add_module: Any = None
_trackers: dict[int, ModuleTracker] = {}
_state_lock = threading.Lock()


def _tracker_for(engine: ExecutionEngine) -> ModuleTracker:
    with _state_lock:
        tracker = _trackers.get(id(engine))
        if tracker is None or tracker._engine is not engine:
            tracker = _trackers[id(engine)] = ModuleTracker(engine)
        return tracker


def _add_module(codegen: Any, module: llvm.ModuleRef) -> Callable[[], None] | None:
    engine = getattr(codegen._engine, "_ee", None)
    tracker = _tracker_for(engine) if isinstance(engine, ExecutionEngine) else None
    if tracker is not None:
        # A quiescent point (numba holds its compiler lock), and before the
        # add: a recompiled function (an unpickled dispatcher) reuses its dead
        # predecessor's symbol names, which must be gone before it arrives.
        tracker.collect()
    cleanup = _original_add_module(codegen, module)
    if cleanup is not None or tracker is None:
        return cleanup
    return tracker.track(module)


def enable() -> None:
    """Make numba's JIT codegen free the modules of dead libraries. Idempotent.
    Imports numba; call :func:`execution_engine.install` before numba is
    first imported, or numba keeps llvmlite's MCJIT and nothing changes."""
    global _original_add_module
    from numba.core import codegen

    with _state_lock:
        if _original_add_module is None:
            _original_add_module = codegen.JITCPUCodegen._add_module
            codegen.JITCPUCodegen._add_module = _add_module


def disable() -> None:
    """Stop tracking new modules (those tracked already stay tracked). Idempotent."""
    global _original_add_module
    from numba.core import codegen

    with _state_lock:
        if _original_add_module is not None:
            codegen.JITCPUCodegen._add_module = _original_add_module
            _original_add_module = None


def tracker(engine: ExecutionEngine) -> ModuleTracker:
    """The tracker of ``engine`` (numba's: ``codegen._engine._ee``)."""
    return _tracker_for(engine)


def collect() -> int:
    """Remove every retired module nothing links to, in every tracked engine."""
    with _state_lock:
        trackers = list(_trackers.values())
    return sum(t.collect() for t in trackers)
