"""IRTransformLayer: rewrites each module just before it is compiled.

The transform (a policy's, e.g. the ``SINGLE`` redirection policy's
call-site rewrite) runs when the set is emitted, so it sees the engine as it
is then. It returns a new module the layer owns; the user's module is never
changed, and object-cache hooks below still receive the user's module
(``AddOptions.source``).

Thread-safety: the layer's lock serialises every method.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace

import llvmlite.binding as llvm

from ..policies import IRTransform
from .base import DEFAULT, AddOptions, Handle, Layer


class IRTransformLayer:
    """Applies ``transform`` to every module on its way down."""

    def __init__(self, base: Layer, transform: IRTransform):
        self.base = base
        self.transform = transform
        self._lock = threading.RLock()
        self._pending: dict[Handle, tuple[llvm.ModuleRef, AddOptions]] = {}
        self._rewritten: dict[Handle, llvm.ModuleRef] = {}  # queued below, closed once done

    def add(self, handle: Handle, module: llvm.ModuleRef,
            options: AddOptions = DEFAULT) -> Handle:
        with self._lock:
            self._pending[handle] = (module, options)
        return handle

    def emit(self, handles: Iterable[Handle] | None = None) -> None:
        with self._lock:
            chosen = list(self._pending) if handles is None else [
                h for h in handles if h in self._pending]
            try:
                for handle in chosen:
                    module, options = self._pending[handle]
                    new = self.transform(module)
                    del self._pending[handle]
                    self._rewritten[handle] = new
                    self.base.add(handle, new, replace(
                        options, in_place=True, source=options.source or module))
                self.base.emit(None if handles is None else list(handles))
            finally:
                for handle in [h for h in self._rewritten if not self.base.is_pending(h)]:
                    self._rewritten.pop(handle).close()

    def is_pending(self, handle: Handle) -> bool:
        return handle in self._pending or self.base.is_pending(handle)

    def pending(self) -> list[Handle]:
        with self._lock:
            return list(self._pending) + self.base.pending()

    def remove(self, handle: Handle) -> None:
        with self._lock:
            self._pending.pop(handle, None)
            self.base.remove(handle)
            rewritten = self._rewritten.pop(handle, None)
            if rewritten is not None:
                rewritten.close()

    def find_symbol(self, name: str) -> int | None:
        return self.base.find_symbol(name)

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        return self.base.find_symbol_in(handle, name)
