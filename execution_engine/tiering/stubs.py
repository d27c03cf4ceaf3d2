"""CountingStubs: a stub allocator that puts counted functions behind
counting trampolines.

It wraps the executor's :class:`~..native.stubs.StubManager` (same
interface, :class:`~..executors.base.StubAllocator`), so whatever binds a
stub - the symbol table when a definition becomes current, lazy
compilation, a swap, a removal - passes through it. When a stub is bound to
a body, ``counts(stub)`` (the tier-up controller's rule) decides where the
slot points:

* counted: the slot points at the stub's counting trampoline
  (:mod:`..native.counters`), whose target cell holds the body;
* not counted (a promoted body; one that cannot be recompiled): the slot
  points straight at the body, as without tier-up.

``target_of`` (and so ``Stub.target()``) answers with the body either way.
Unbinding (a removed function) routes the slot to the resolver again, which
also takes the function out of the count.

Thread-safety: the object's lock guards its tables; writes to cells and
slots are aligned 8-byte stores (cell first, then slot, so a thread that
sees the trampoline also sees its target).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..native.counters import CountingTrampolines
from ..native.stubs import Stub, StubManager


class CountingStubs:
    """See the module docstring. Owns the trampolines; closes the wrapped manager."""

    def __init__(self, inner: StubManager):
        self._inner = inner
        self.trampolines = CountingTrampolines()
        self._lock = threading.Lock()
        self._counter_of: dict[int, int] = {}  # stub id -> trampoline index
        self._stub_of: list[Stub] = []  # by trampoline index
        self._counted: set[int] = set()  # trampoline indices routed through now
        # counts(stub): whether the body ``stub`` is being bound to is counted.
        self.counts: Callable[[Stub], bool] = lambda stub: False
        # on_counted(): a function started being counted (wakes the poller).
        self.on_counted: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._inner)

    def allocate(self, name: str) -> Stub:
        stub = self._inner.allocate(name)
        stub.manager = self  # Stub.target() asks us: the body, not the trampoline
        return stub

    def bind(self, stub: Stub, target: int) -> None:
        if not self.counts(stub):
            self._uncount(stub)
            self._inner.bind(stub, target)
            return
        with self._lock:
            index = self._counter_of.get(stub.id)
            if index is None:
                index = self._counter_of[stub.id] = self.trampolines.allocate()
                self._stub_of.append(stub)
            self._counted.add(index)
        self.trampolines.set_target(index, target)
        self._inner.bind(stub, self.trampolines.address(index))
        if self.on_counted is not None:
            self.on_counted()

    def unbind(self, stub: Stub) -> None:
        self._uncount(stub)
        self._inner.unbind(stub)

    def rebind_direct(self, stub: Stub) -> None:
        """Stop counting ``stub``: its slot points at its body directly."""
        index = self._counter_of.get(stub.id)
        if index is None:
            return
        with self._lock:
            if index not in self._counted:
                return
            self._counted.discard(index)
        self._inner.bind(stub, self.trampolines.target(index))

    def _uncount(self, stub: Stub) -> None:
        index = self._counter_of.get(stub.id)
        if index is not None:
            with self._lock:
                self._counted.discard(index)

    def target_of(self, stub: Stub) -> int:
        target = self._inner.target_of(stub)
        index = self._counter_of.get(stub.id)
        if index is not None and target == self.trampolines.address(index):
            return self.trampolines.target(index)
        return target

    def flush(self) -> None:
        self._inner.flush()

    # -- counts ------------------------------------------------------------------

    def is_counted(self, stub: Stub) -> bool:
        index = self._counter_of.get(stub.id)
        return index is not None and index in self._counted

    def calls(self, stub: Stub) -> int | None:
        """Calls counted since the stub was last reset, or None if it never was counted."""
        index = self._counter_of.get(stub.id)
        return None if index is None else self.trampolines.count(index)

    def reset(self, stub: Stub) -> None:
        index = self._counter_of.get(stub.id)
        if index is not None:
            self.trampolines.reset(index)

    def counted_count(self) -> int:
        """How many functions are counted now."""
        return len(self._counted)

    def hot(self, threshold: int) -> list[Stub]:
        """Counted stubs whose count reached ``threshold``. Counters left over
        from functions no longer counted are reset, so they are not read again."""
        found = []
        for index in self.trampolines.at_least(threshold):
            with self._lock:
                counted = index in self._counted
                stub = self._stub_of[index]
            if counted:
                found.append(stub)
            else:
                self.trampolines.reset(index)
        return found

    def close(self) -> None:
        """Unmap the stubs and the trampolines; no code may run through them after."""
        self._inner.close()
        self.trampolines.close()
        with self._lock:
            self._counted.clear()
