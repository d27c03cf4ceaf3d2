"""The engine's symbol table: which definition of each name is current.

Precedence follows what a static linker and MCJIT do together:

* a strong definition replaces an earlier one (MCJIT accepts a module that
  defines a strong symbol again; lookups then return the later definition),
  unless ``strict`` is set, in which case it raises
  :class:`DuplicateSymbolError`;
* a weak, link-once or common definition never replaces an existing one and
  is replaced by any strong one;
* when the handle that owns the current definition is removed, the most
  recent surviving definition takes over; if none survives the name becomes
  undefined.

Functions are published through their stub: the table binds the stub's slot
to the current body, so every caller - whichever module it lives in, and
whatever address it captured earlier - reaches the current definition.
Data has no stub: a new definition changes what later lookups and later
links see, while code already linked keeps the storage it was linked to.

Thread-safety: every method takes the table's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DuplicateSymbolError
from ..native.stubs import Stub

if TYPE_CHECKING:
    from ..executors.base import StubAllocator

T = TypeVar("T")


def winner(candidates: Iterable[tuple[bool, T]]) -> T | None:
    """The definition that is current among ``candidates``, given oldest first
    as ``(weak, item)``: the newest strong one; if all are weak, the oldest
    (``None`` if there are none). The one rule of precedence (a static
    linker's, which MCJIT follows)."""
    chosen: tuple[T] | None = None  # a 1-tuple: ``None`` is a valid item
    for weak, item in candidates:
        if not weak or chosen is None:
            chosen = (item,)
    return chosen[0] if chosen is not None else None


def conflicts(existing_weak: bool, new_weak: bool) -> bool:
    """Strict mode's rule: two strong definitions of one name conflict."""
    return not existing_weak and not new_weak


@dataclass(eq=False)
class Definition:
    """One definition of ``name`` owned by ``handle``.

    ``address`` is the body (functions) or the storage (data); it is valid
    while the handle's code is linked.
    """

    name: str
    handle: Any
    address: int
    is_function: bool
    weak: bool = False
    origin: str = ""


@dataclass(eq=False, slots=True)
class _Entry:
    definitions: tuple[Definition, ...] = ()  # oldest first; empty costs nothing
    current: Definition | None = None
    stub: Stub | None = None


class SymbolTable:
    """Maps names to definitions and keeps function stubs pointed at bodies."""

    def __init__(self, stubs: StubAllocator, *, strict: bool = False):
        self.stubs = stubs
        self.strict = strict
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._current_count: dict[object, int] = {}
        self._on_superseded: Callable[[Any], None] | None = None

    def set_superseded_listener(self, listener: Callable[[Any], None]) -> None:
        """``listener(handle)`` is called (lock held: it must only take note) when
        a handle's last current definition is replaced by another handle's."""
        self._on_superseded = listener

    # -- definitions -----------------------------------------------------------

    def check(self, definitions: Iterable[Definition]) -> None:
        """Raise :class:`DuplicateSymbolError` if strict mode forbids one of these."""
        if not self.strict:
            return
        with self._lock:
            for d in definitions:
                self.check_name(d.name, d.weak, d.origin, d.handle)

    def check_name(self, name: str, weak: bool, origin: str, handle: object = None) -> None:
        """Strict mode: raise if a new definition of ``name`` conflicts with the
        current one (of another set)."""
        if not self.strict:
            return
        cur = self.current(name)
        if cur is not None and cur.handle is not handle and conflicts(cur.weak, weak):
            raise DuplicateSymbolError(name, cur.origin, origin)

    def define(self, definition: Definition) -> None:
        """Add ``definition``; rebind the name's stub if it became current."""
        with self._lock:
            entry = self._entries.setdefault(definition.name, _Entry())
            entry.definitions += (definition,)
            cur = entry.current
            if cur is None or not definition.weak:
                self._make_current(entry, definition)

    def remove_handle(self, handle: object, names: Iterable[str]) -> None:
        """Forget every definition ``handle`` owns among ``names``."""
        with self._lock:
            for name in names:
                entry = self._entries.get(name)
                if entry is None:
                    continue
                entry.definitions = tuple(d for d in entry.definitions if d.handle is not handle)
                if entry.current is not None and entry.current.handle is handle:
                    self._make_current(entry, winner((d.weak, d) for d in entry.definitions),
                                       removing=handle)
                if not entry.definitions and entry.stub is None:
                    del self._entries[name]  # nothing refers to the name any more

    def move(self, handle: object, name: str, address: int) -> bool:
        """``handle``'s definition of function ``name`` now lives at ``address``
        (its object was linked again); the stub follows if it is current.
        False if ``handle`` does not define ``name``."""
        with self._lock:
            entry = self._entries.get(name)
            for d in () if entry is None else entry.definitions:
                if d.handle is handle and d.is_function:
                    d.address = address
                    if entry is not None and entry.current is d and entry.stub is not None:
                        self.stubs.bind(entry.stub, address)
                    return True
            return False

    def current_count(self, handle: object) -> int:
        """How many names ``handle`` currently defines (0: it is superseded)."""
        return self._current_count.get(handle, 0)

    def _make_current(self, entry: _Entry, definition: Definition | None, *,
                      removing: object = None) -> None:
        previous = entry.current
        entry.current = definition
        if definition is not None:
            self._current_count[definition.handle] = self._current_count.get(
                definition.handle, 0) + 1
        if previous is not None:
            left = self._current_count[previous.handle] - 1
            self._current_count[previous.handle] = left
            if left == 0:
                del self._current_count[previous.handle]
                if self._on_superseded is not None and previous.handle is not removing:
                    self._on_superseded(previous.handle)
        if entry.stub is None:
            return
        if definition is not None and definition.is_function:
            self.stubs.bind(entry.stub, definition.address)
        else:
            self.stubs.unbind(entry.stub)

    # -- stubs -----------------------------------------------------------------

    def stub(self, name: str) -> Stub:
        """The stub for function ``name``, allocated on first request."""
        with self._lock:
            entry = self._entries.setdefault(name, _Entry())
            if entry.stub is None:
                entry.stub = self.stubs.allocate(name)
                if entry.current is not None and entry.current.is_function:
                    self.stubs.bind(entry.stub, entry.current.address)
            return entry.stub

    def has_stub(self, name: str) -> bool:
        entry = self._entries.get(name)
        return entry is not None and entry.stub is not None

    # -- queries ---------------------------------------------------------------

    def current(self, name: str) -> Definition | None:
        entry = self._entries.get(name)
        return entry.current if entry is not None else None

    def address(self, name: str) -> int | None:
        """What a reference to ``name`` resolves to: the stub for a function,
        the storage for data, ``None`` if undefined."""
        entry = self._entries.get(name)
        if entry is None or entry.current is None:
            return None
        if entry.current.is_function and entry.stub is not None:
            return entry.stub.address
        return entry.current.address

    def __len__(self) -> int:
        """How many names are defined now."""
        return sum(1 for e in self._entries.values() if e.current is not None)

    def entry_count(self) -> int:
        """How many names the table keeps anything for (defined, or with a stub)."""
        return len(self._entries)
