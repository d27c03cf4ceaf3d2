"""The modules an engine owns, and the engine's own reference to each.

When a module is added the engine takes a reference of its own to the same
LLVM module, so that the user's ``ModuleRef`` may be closed (``with
llvm.parse_assembly(src) as m: engine.add_module(m)``) without breaking the
engine: a closed owned ModuleRef only detaches the Python object, the LLVM
module lives on, and the engine keeps using its reference. On removal the
engine's reference is detached and ownership returns to the user's; on
:meth:`close` the engine disposes of the modules it still owns.

Iterating the table yields the engine's ModuleRefs, as iterating
llvmlite's ``ExecutionEngine._modules`` does (numba relies on that).
Not thread-safe: the engine's lock guards it.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import llvmlite.binding as llvm

from .layers.base import Handle


def pointer_of(ref: Any) -> int:
    """The address of the LLVM object behind a llvmlite reference."""
    ptr = getattr(ref, "_ptr", None)
    if ptr is None or getattr(ref, "closed", False):
        raise ValueError(f"this {type(ref).__name__} is closed")
    return ctypes.cast(ptr, ctypes.c_void_p).value or 0


class ModuleTable:
    """Owned modules by pointer, with their handles (see the module docstring)."""

    def __init__(self) -> None:
        self._by_pointer: dict[int, tuple[llvm.ModuleRef, llvm.ModuleRef, Handle]] = {}
        self._by_handle: dict[Handle, llvm.ModuleRef] = {}

    def add(self, module: llvm.ModuleRef, handle: Handle) -> llvm.ModuleRef:
        """Take ownership of ``module``; returns the engine's own reference."""
        own = llvm.ModuleRef(module._ptr, module._context)
        own._owned = True
        module._owned = True
        self._by_pointer[pointer_of(module)] = (module, own, handle)
        self._by_handle[handle] = own
        return own

    def handle_of(self, module: llvm.ModuleRef) -> Handle | None:
        entry = self._by_pointer.get(pointer_of(module))
        return entry[2] if entry is not None else None

    def own_reference(self, module: llvm.ModuleRef) -> llvm.ModuleRef | None:
        """The engine's reference to ``module`` (the user's ref), if owned."""
        entry = self._by_pointer.get(pointer_of(module))
        return entry[1] if entry is not None else None

    def user_reference(self, module: llvm.ModuleRef) -> llvm.ModuleRef:
        """The caller's own ModuleRef for the engine's reference ``module`` while
        the caller has not closed it (hooks receive the object that was added);
        ``module`` itself otherwise."""
        entry = self._by_pointer.get(pointer_of(module))
        if entry is not None and entry[1] is module and not entry[0].closed:
            return entry[0]
        return module

    def module_of(self, handle: Handle) -> llvm.ModuleRef | None:
        """The engine's reference to the module added as ``handle``."""
        return self._by_handle.get(handle)

    def release(self, module: llvm.ModuleRef) -> Handle | None:
        """Give ``module`` back to the user; returns its handle (None if not owned)."""
        entry = self._by_pointer.pop(pointer_of(module), None)
        if entry is None:
            return None
        user, own, handle = entry
        del self._by_handle[handle]
        user._owned = False
        own.detach()  # the user's reference owns the LLVM module again
        return handle

    def rekey(self, old: Handle, new: Handle) -> None:
        """The module added as ``old`` is now the set ``new`` (a rebuilt stack)."""
        own = self._by_handle.pop(old)
        self._by_handle[new] = own
        key = pointer_of(own)
        user, ref, _ = self._by_pointer[key]
        self._by_pointer[key] = (user, ref, new)

    def release_handle(self, handle: Handle) -> None:
        """Give the module added as ``handle`` back: to the caller's reference
        while it is open (the LLVM module is freed when the caller drops it),
        else dispose of it now."""
        own = self._by_handle.pop(handle, None)
        if own is None:
            return
        user, _, _ = self._by_pointer.pop(pointer_of(own))
        if user.closed:
            own._owned = False
            own.close()
        else:
            user._owned = False
            own.detach()

    def entries(self) -> list[tuple[llvm.ModuleRef, Handle]]:
        """(engine's reference, handle) for every owned module, in add order."""
        return [(own, handle) for _, own, handle in self._by_pointer.values()]

    def dispose_all(self) -> None:
        """Dispose of every module still owned (the engine is closing)."""
        for user, own, _ in self._by_pointer.values():
            user._owned = False
            user.detach()
            own._owned = False
            own.close()
        self._by_pointer.clear()
        self._by_handle.clear()

    def __iter__(self) -> Iterator[llvm.ModuleRef]:
        return iter([own for _, own, _ in self._by_pointer.values()])

    def __len__(self) -> int:
        return len(self._by_pointer)

    def __contains__(self, module: object) -> bool:
        try:
            return pointer_of(module) in self._by_pointer
        except ValueError:
            return False
