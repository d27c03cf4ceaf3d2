"""LazyEmitLayer: holds a set back until one of its symbols is asked for.

A held set is described by a predicate (does it define this name?) and a
builder that produces its IR module when needed, so that holding costs
nothing: the module text is not even built until the first request. On the
first :meth:`find_symbol` of a name the set defines, the set is built and
handed to the layer below (compiled and linked), and the address returned.

Thread-safety: the layer's lock serialises everything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import llvmlite.binding as llvm

from .base import DEFAULT, AddOptions, Handle, Layer


@dataclass(frozen=True, eq=False)
class DeferredModule:
    """A module not built yet: ``defines(name)`` says what it will define;
    ``build()`` makes it (a module the layer then owns and closes, or None if
    it turns out empty)."""

    defines: Callable[[str], bool]
    build: Callable[[], llvm.ModuleRef | None]


@dataclass(frozen=True, eq=False)
class _Held:
    unit: DeferredModule
    options: AddOptions


class LazyEmitLayer:
    """Defers emitting a set to the layer below until a symbol of it is needed."""

    def __init__(self, base: Layer):
        self.base = base
        self._lock = threading.RLock()
        self._held: dict[Handle, _Held] = {}

    def add(self, handle: Handle, unit: DeferredModule, options: AddOptions = DEFAULT) -> Handle:
        """Hold ``unit`` until one of its symbols is needed or it is emitted."""
        with self._lock:
            self._held[handle] = _Held(unit, options)
        return handle

    def emit(self, handles: Iterable[Handle] | None = None) -> None:
        """Emit those of ``handles`` still held (all if ``None``), together (one
        batch, so that sets that need each other's symbols link as one)."""
        with self._lock:
            wanted = list(self._held) if handles is None else list(handles)
            batch = [(h, self._held.pop(h)) for h in wanted if h in self._held]
            built: list[tuple[Handle, _Held, llvm.ModuleRef]] = []
            added: list[Handle] = []
            try:
                for handle, held in batch:
                    module = held.unit.build()
                    if module is not None:
                        built.append((handle, held, module))
                for handle, held, module in built:
                    self.base.add(handle, module, replace(held.options, in_place=True))
                    added.append(handle)
                self.base.emit(added)
            except BaseException:
                linked = {h for h in added if not self.base.is_pending(h)}
                for handle, held in batch:
                    if handle not in linked:  # failed: hold it again, as it was
                        self.base.remove(handle)
                        self._held[handle] = held
                raise
            finally:
                for _, _, module in built:
                    module.close()

    def is_held(self, handle: Handle) -> bool:
        return handle in self._held

    def is_pending(self, handle: Handle) -> bool:
        """Queued below (held sets are not pending: emitting all does not build them)."""
        return self.base.is_pending(handle)

    def pending(self) -> list[Handle]:
        return self.base.pending()

    def find_symbol(self, name: str) -> int | None:
        with self._lock:
            wanted = [h for h, held in self._held.items() if held.unit.defines(name)]
            if wanted:
                self.emit(wanted)
        return self.base.find_symbol(name)

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        with self._lock:
            held = self._held.get(handle)
            if held is not None and held.unit.defines(name):
                self.emit([handle])
        return self.base.find_symbol_in(handle, name)

    def remove(self, handle: Handle) -> None:
        with self._lock:
            self._held.pop(handle, None)
        self.base.remove(handle)
