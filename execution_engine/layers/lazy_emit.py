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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llvmlite.binding as llvm

from .base import Handle
from .ir_compile import IRCompileLayer


@dataclass(eq=False)
class _Held:
    defines: Callable[[str], bool]
    build: Callable[[], llvm.ModuleRef | None]
    options: dict[str, Any] = field(default_factory=dict)


class LazyEmitLayer:
    """Defers emitting a set to the IRCompileLayer until a symbol of it is needed."""

    def __init__(self, base: IRCompileLayer):
        self.base = base
        self._lock = threading.RLock()
        self._held: dict[Handle, _Held] = {}

    def add(self, handle: Handle, defines: Callable[[str], bool],
            build: Callable[[], llvm.ModuleRef | None], **options: Any) -> Handle:
        """Hold a set: ``defines(name)`` says what it defines; ``build()`` makes its
        module (or None if it turns out empty); ``options`` go to the base's add."""
        with self._lock:
            self._held[handle] = _Held(defines, build, options)
        return handle

    def emit(self, handles: list[Handle]) -> None:
        """Emit those of ``handles`` still held, together (one batch, so that sets
        that need each other's symbols link as one)."""
        with self._lock:
            batch = [(h, self._held.pop(h)) for h in handles if h in self._held]
            built: list[tuple[Handle, _Held, llvm.ModuleRef]] = []
            added: list[Handle] = []
            try:
                for handle, held in batch:
                    module = held.build()
                    if module is not None:
                        built.append((handle, held, module))
                for handle, held, module in built:
                    self.base.add(handle, module, owned=True, **held.options)
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

    def held(self) -> list[Handle]:
        """The held sets, oldest first."""
        with self._lock:
            return list(self._held)

    def find_symbol(self, name: str) -> int | None:
        with self._lock:
            wanted = [h for h, held in self._held.items() if held.defines(name)]
            if wanted:
                self.emit(wanted)
        return self.base.find_symbol(name)

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        with self._lock:
            held = self._held.get(handle)
            if held is not None and held.defines(name):
                self.emit([handle])
        return self.base.find_symbol_in(handle, name)

    def remove(self, handle: Handle) -> None:
        with self._lock:
            self._held.pop(handle, None)
        self.base.remove(handle)
