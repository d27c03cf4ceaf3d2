"""Observability: what the engine did, as events, and the tools that see JIT'd code.

* :mod:`.events`: the event types and :class:`EventHub` (delivery contract);
* :mod:`.symbols`: a linked object's functions as (name, start, size) records;
* :mod:`.perf_map`: ``/tmp/perf-<pid>.map`` for ``perf report``;
* :mod:`.jitdump`: ``jit-<pid>.dump`` for ``perf inject --jit``;
* :mod:`.gdb_jit`: GDB's JIT interface, naming bodies as their authors did.

The perf and GDB writers are event listeners (callables taking one event).
"""

from .events import (
    CodeFreed,
    CodeRange,
    Event,
    EventHub,
    EventListenerWarning,
    ExecutorEvent,
    FunctionSwapped,
    LazyCompiled,
    Listener,
    ObjectLinked,
)
from .symbols import code_ranges, display_name, stub_ranges

__all__ = [
    "CodeFreed",
    "CodeRange",
    "Event",
    "EventHub",
    "EventListenerWarning",
    "ExecutorEvent",
    "FunctionSwapped",
    "LazyCompiled",
    "Listener",
    "ObjectLinked",
    "code_ranges",
    "display_name",
    "stub_ranges",
]
