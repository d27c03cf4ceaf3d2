"""ThreadLocalStorage: the IRCompileLayer's policy for thread-local variables.

The JIT linker cannot allocate TLS. A module whose compiled object defines
or refers to thread-local storage (found from the object's section and
symbol tables, so modules without TLS cost nothing) is lowered
(:func:`~.ir.thread_local.lower`: each variable becomes a control block
holding its initial image; each access a call of the runtime) and compiled
again; the runtime (:mod:`.native.tls_runtime`) lives in the executor's
process and gives every thread its own copy on first touch.

Ownership: the policy records, per set, the array of control blocks the set
defines; :meth:`release` (the set is removed) and :meth:`close` (the engine
is closed) have the executor's runtime free every thread's copy of them,
while the set's memory is still mapped. A thread's copies are freed when it
exits. Thread-safety: the IRCompileLayer's lock serialises calls.
"""

from __future__ import annotations

from collections.abc import Callable

import llvmlite.binding as llvm

from .errors import ExecutionEngineError, ThreadLocalError
from .executors.base import Executor
from .ir.signature import parse as parse_signature
from .ir.thread_local import lower
from .layers.base import Handle
from .native import elf
from .native.tls_runtime import RELEASE_ALL

# release(blocks, count): free every thread's copies of those control blocks
Release = Callable[[int, int], None]
Find = Callable[[Handle, str], "int | None"]

RELEASE_SIGNATURE = parse_signature("void (ptr, i64)", RELEASE_ALL)


class ThreadLocalStorage:
    """Lowers thread-local variables for one engine (see the module docstring)."""

    def __init__(self, release: Release):
        self._release = release
        self._sets: dict[Handle, tuple[str, int]] = {}  # handle -> (blocks array, count)

    @staticmethod
    def needed(objects: list[bytes]) -> bool:
        """Whether any of ``objects`` uses thread-local storage."""
        return any(elf.uses_thread_local(data) for data in objects)

    def lower(self, handle: Handle, module: llvm.ModuleRef) -> llvm.ModuleRef:
        """A new module (the caller owns it): ``module`` lowered; what it
        defines is recorded for ``handle``. :class:`ThreadLocalError` names
        what cannot be lowered."""
        lowered = lower(module, handle.name)
        try:
            new = llvm.parse_assembly(lowered.text)
        except RuntimeError as exc:  # the lowering misread a construct
            raise ThreadLocalError(f"{handle.name}: its thread-local variables could not be "
                                   f"lowered: {str(exc).strip()}") from None
        new.name = module.name
        if lowered.vars_name is not None:
            self._sets[handle] = (lowered.vars_name, lowered.count)
        return new

    def release(self, handle: Handle, find: Find) -> None:
        """Free every thread's copy of the variables ``handle`` defines."""
        entry = self._sets.pop(handle, None)
        if entry is None:
            return
        blocks = find(handle, entry[0])
        if blocks:
            self._release(blocks, entry[1])

    def close(self, find: Find) -> None:
        """Release every set's variables (the engine is closing)."""
        for handle in list(self._sets):
            try:
                self.release(handle, find)
            except ExecutionEngineError:  # a dead remote executor: its process is gone
                self._sets.pop(handle, None)



def executor_release(executor: Executor) -> Release:
    """The ``release`` that calls the runtime in ``executor``'s process."""

    def release(blocks: int, count: int) -> None:
        address = executor.resolve_process(RELEASE_ALL)
        if address:
            executor.call(address, RELEASE_SIGNATURE, (blocks, count),
                          running="releasing thread-local storage")

    return release
