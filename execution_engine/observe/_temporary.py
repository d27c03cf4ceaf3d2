"""TEMPORARY (issue 16, branch ``observe``): events from a hook, until the
engine's ``add_event_listener`` exists.

:func:`enable` points the RedirectionLayer's process-wide ``code_observer``
hook at a function that turns what it sees into :class:`ObjectLinked`,
:class:`FunctionSwapped` and :class:`CodeFreed` events on one process-wide
:class:`EventHub`. Unlike the real event API it delivers them while the
layer's lock is held, knows nothing of compile time, opt level or cache
hits, and serves in-process engines only (a remote executor's code is in
another process). The engine's event API replaces this module.
"""

from __future__ import annotations

import threading
from typing import Any

from ..layers import object_linking, redirection
from .events import CodeFreed, CodeRange, EventHub, FunctionSwapped, Listener, ObjectLinked
from .symbols import code_ranges, stub_ranges

hub = EventHub()
_lock = threading.Lock()
_live: dict[int, tuple[Any, str, list[CodeRange]]] = {}  # id(resource) -> resource, label, code
_stubs_seen: set[tuple[int, str]] = set()
_original_close = object_linking.ObjectLinkingLayer.close


def enable(*listeners: Listener, perf_map: bool = False, jitdump: bool = False,
           gdb: bool = False) -> EventHub:
    """Start observing every engine of this process; add ``listeners`` and
    the named writers to the hub, which is returned."""
    for listener in listeners:
        hub.add(listener)
    if perf_map:
        from .perf_map import perf_map as process_map

        hub.add(process_map())
    if jitdump:
        from .jitdump import jit_dump

        hub.add(jit_dump())
    if gdb:
        from .gdb_jit import GdbJitListener

        hub.add(GdbJitListener())
    redirection.code_observer = _observe
    object_linking.ObjectLinkingLayer.close = _close  # type: ignore[method-assign]
    return hub


def disable() -> None:
    """Stop observing and drop every listener."""
    redirection.code_observer = None
    object_linking.ObjectLinkingLayer.close = _original_close  # type: ignore[method-assign]
    for listener in hub.listeners:
        hub.remove(listener)
    with _lock:
        _live.clear()
        _stubs_seen.clear()


def _observe(kind: str, resource: Any, *rest: Any) -> None:
    if not hub.active:
        return
    if kind == "linked":
        label, obj, bases, stubs, swapped = rest
        ranges = code_ranges(obj, bases)
        with _lock:
            entry = _live.setdefault(id(resource), (resource, label, []))
            entry[2].extend(ranges)
            fresh = [(n, a) for n, a in stubs if (a, n) not in _stubs_seen]
            _stubs_seen.update((a, n) for n, a in fresh)
        hub.queue(ObjectLinked(label, tuple(ranges), tuple(stub_ranges(fresh))))
        for name, old, new in swapped:
            hub.queue(FunctionSwapped(name, old, new))
    elif kind == "freed":
        with _lock:
            found = _live.pop(id(resource), None)
        if found is not None:
            hub.queue(CodeFreed(found[1], tuple(found[2])))
    hub.flush()


def _close(self: object_linking.ObjectLinkingLayer) -> None:
    resources = list(self._resources.values())
    _original_close(self)
    for resource in resources:
        _observe("freed", resource)
