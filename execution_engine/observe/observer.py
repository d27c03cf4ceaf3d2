"""CodeObserver: turns what the RedirectionLayer links and frees into events.

The engine attaches one to its RedirectionLayer while anybody listens
(:class:`~execution_engine.layers.redirection.LinkObserver`); it queues
:class:`ObjectLinked`, :class:`FunctionSwapped` and :class:`CodeFreed` on the
engine's :class:`EventHub` under the layer's lock, and the engine flushes the
hub once its own lock is released. It remembers the code ranges of every
linked resource so a free can say what went.

Thread-safety: called under the engine's lock.
"""

from __future__ import annotations

from collections.abc import Callable

from ..layers.base import Handle
from ..layers.object_linking import LinkedResource
from ..native import elf
from .events import CodeFreed, CodeRange, EventHub, FunctionSwapped, ObjectLinked
from .symbols import code_ranges, stub_ranges


class CodeObserver:
    """See the module docstring. ``compile_info(handle)`` gives (seconds,
    opt level, cache hit) of the compile that produced a set's object."""

    def __init__(self, hub: EventHub,
                 compile_info: Callable[[Handle], tuple[float, int, bool]] | None = None):
        self.hub = hub
        self._compile_info = compile_info
        self._live: dict[int, tuple[str, list[CodeRange]]] = {}  # id(resource) -> label, code
        self._stubs_seen: set[tuple[int, str]] = set()

    def linked(self, resource: LinkedResource, handle: Handle, obj: elf.ObjectFile,
               section_bases: dict[int, int], stubs: list[tuple[str, int]],
               swapped: list[tuple[str, int, int]]) -> None:
        ranges = code_ranges(obj, section_bases)
        entry = self._live.setdefault(id(resource), (handle.name, []))
        entry[1].extend(ranges)
        fresh = [(n, a) for n, a in stubs if (a, n) not in self._stubs_seen]
        self._stubs_seen.update((a, n) for n, a in fresh)
        seconds, opt_level, cache_hit = (self._compile_info(handle) if self._compile_info
                                         else (0.0, -1, False))
        self.hub.queue(ObjectLinked(handle.name, tuple(ranges), tuple(stub_ranges(fresh)),
                                    seconds, opt_level, cache_hit))
        for name, old, new in swapped:
            self.hub.queue(FunctionSwapped(name, old, new))

    def freed(self, resource: LinkedResource) -> None:
        found = self._live.pop(id(resource), None)
        if found is not None:
            self.hub.queue(CodeFreed(found[0], tuple(found[1])))

    def all_freed(self) -> None:
        """The engine closed: everything it linked is gone."""
        for label, ranges in self._live.values():
            self.hub.queue(CodeFreed(label, tuple(ranges)))
        self._live.clear()
