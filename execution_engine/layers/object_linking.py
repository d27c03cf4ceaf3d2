"""ObjectLinkingLayer: links relocatable objects into memory with LLVM's JIT linker.

Objects are linked by RuntimeDyld through llvmlite's ORC ``LLJIT``: every
:meth:`add` becomes one JIT library ("dylib") holding one resource, and
:meth:`remove` disposes that resource, which unmaps the code and data and
deregisters the unwind tables. Nothing is resolved by LLJIT itself: the
caller hands every import to :meth:`add` as an absolute address, so the
engine alone decides what a name means (global mappings, then the engine's
own definitions, then the process).

llvmlite never deletes a JIT library's bookkeeping (about 3-10 KB per link),
so a long-lived LLJIT leaks in proportion to the number of links. This layer
therefore links into a *session* (one LLJIT) for at most
``session_capacity`` links, then opens a fresh one; a retired session is
disposed - returning all of that bookkeeping - as soon as the last resource
linked into it is removed.

Thread-safety: the layer's lock serialises adds and removes.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import llvmlite.binding as llvm

from ..errors import LinkError
from ..native.pages import PageBlock


@dataclass(eq=False)
class _Session:
    jit: llvm.LLJIT
    links: int = 0
    live: int = 0


@dataclass(eq=False)
class LinkedResource:
    """Memory of one link. ``exports`` maps each requested name to its address.

    The addresses stay valid until the resource is passed to
    :meth:`ObjectLinkingLayer.remove`.
    """

    name: str
    exports: dict[str, int]
    _tracker: llvm.ResourceTracker | None = field(default=None, repr=False)
    _session: _Session | None = field(default=None, repr=False)


def newest_export(resources: Iterable[LinkedResource], name: str) -> int | None:
    """Address of ``name`` in the last of ``resources`` that exports it."""
    for resource in reversed(list(resources)):
        if name in resource.exports:
            return resource.exports[name]
    return None


class ObjectLinkingLayer:
    """Links sets of objects, one removable resource per set."""

    def __init__(self, target_machine: llvm.TargetMachine, *, session_capacity: int = 256):
        self._target_machine = target_machine
        self._capacity = session_capacity
        self._lock = threading.Lock()
        self._session: _Session | None = None
        self._sessions: list[_Session] = []
        self._counter = 0
        self._resources: dict[int, LinkedResource] = {}

    def add(
        self,
        objects: Sequence[bytes],
        imports: Mapping[str, int],
        exports: Sequence[str],
        *,
        name: str = "",
    ) -> LinkedResource:
        """Link ``objects`` together as one resource.

        ``imports`` must give an address for every symbol the objects
        reference and do not define (weak references may map to 0);
        ``exports`` lists the defined symbols whose addresses are wanted.
        Raises :class:`LinkError` with LLVM's message if the linker fails;
        the layer is unchanged then.
        """
        with self._lock:
            session = self._current_session()
            self._counter += 1
            builder = llvm.JITLibraryBuilder()
            for blob in objects:
                builder.add_object_img(blob)
            for sym, addr in imports.items():
                builder.import_symbol(sym, addr)
            for sym in exports:
                builder.export_symbol(sym)
            lib = f"ee{self._counter}"
            session.links += 1
            try:
                tracker = builder.link(session.jit, lib)
            except RuntimeError as exc:
                self._retire_if_idle(session)
                raise LinkError(f"linking {name or lib} failed: {exc}") from None
            session.live += 1
            resource = LinkedResource(
                name or lib, {s: tracker[s] for s in exports}, tracker, session
            )
            self._resources[id(resource)] = resource
            return resource

    def remove(self, resource: LinkedResource) -> None:
        """Free ``resource``'s memory. Its addresses become invalid."""
        with self._lock:
            tracker, session = resource._tracker, resource._session
            if tracker is None or session is None:
                return
            resource._tracker = resource._session = None
            del self._resources[id(resource)]
            tracker.close()
            session.live -= 1
            self._retire_if_idle(session)

    def find_symbol(self, name: str) -> int | None:
        """Address of ``name`` in the most recently linked resource exporting it."""
        with self._lock:
            return newest_export(self._resources.values(), name)

    @staticmethod
    def find_symbol_in(resource: LinkedResource, name: str) -> int | None:
        return resource.exports.get(name)

    @staticmethod
    def near_address() -> int:
        """An address next to where the next link's memory will be mapped (the
        linker's memory manager maps anonymous memory, as this probe does)."""
        probe = PageBlock(1)
        try:
            return probe.address
        finally:
            probe.release()

    @staticmethod
    def copy(dst: int, src: int, size: int) -> None:
        """Copy ``size`` bytes of linked memory (e.g. initial values)."""
        ctypes.memmove(dst, src, size)

    def close(self) -> None:
        """Free every resource and session."""
        with self._lock:
            for session in self._sessions:
                session.jit.close()
            self._sessions.clear()
            self._resources.clear()
            self._session = None

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    @property
    def resource_count(self) -> int:
        """How many links are in memory now."""
        return len(self._resources)

    def _current_session(self) -> _Session:
        if self._session is None or self._session.links >= self._capacity:
            previous = self._session
            self._session = _Session(llvm.create_lljit_compiler(self._target_machine))
            self._sessions.append(self._session)
            if previous is not None:
                self._retire_if_idle(previous)
        return self._session

    def _retire_if_idle(self, session: _Session) -> None:
        if session.live == 0 and session is not self._session:
            session.jit.close()
            self._sessions.remove(session)
