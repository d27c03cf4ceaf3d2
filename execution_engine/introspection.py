"""What an engine can tell about itself (typed, public, cheap).

:meth:`ExecutionEngine.stats` and :meth:`ExecutionEngine.function_info`
return these snapshots; they are plain values, valid when taken.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .linking.symbols import SymbolTable
    from .stack import Stack
    from .tiering.controller import TierUpCounts


@dataclass(frozen=True)
class EngineStats:
    """Counts of what the engine holds and has done.

    Holdings: ``modules`` added and not removed, ``object_files`` added,
    ``defined_symbols`` (names with a current definition), ``stubs``
    allocated, ``linked_sets`` (sets whose code is in memory),
    ``linked_resources`` (links of the executor), ``lljit_sessions``
    (in-process LLJIT instances), ``pending_sets`` (added, not linked yet),
    ``retired_sets`` (replaced code waiting for the reclamation rule),
    ``recompiled_bodies`` alive. Work: ``compiles`` (fresh IR compiles, cache
    hits excluded), ``compile_seconds``, ``object_bytes`` compiled,
    ``swaps`` (update_module and recompile_and_relink_function calls that
    succeeded), ``relinks`` (objects linked again with every call through
    stubs: under ``redirection="direct"`` the first replacement of a function
    an object calls directly does it, once per object), and, with a
    persistent cache, ``cache_hits`` and ``cache_misses`` (this engine's
    lookups). Tier-up (0 without it):
    ``tier_up_counted`` (functions counted now, at the low tier),
    ``tier_up_promotions`` (hot functions recompiled at the high level and
    swapped in), ``tier_up_pending`` (promotions compiling now),
    ``tier_up_discarded`` (promotions dropped because the function changed or
    left meanwhile), ``tier_up_failures`` (promotions that failed to compile),
    ``tier_up_seconds`` (compile time of promotions, off the callers' path).
    A lazy engine compiling ahead (:mod:`.layers.background`):
    ``background_batches`` (partitions sent to the workers),
    ``background_functions`` (functions compiled ahead and linked),
    ``background_waits`` (first calls that waited for their partition),
    ``background_discarded`` (partitions dropped: their functions changed,
    left or were compiled meanwhile), ``background_failures`` (partitions that
    failed to compile).
    """

    modules: int
    object_files: int
    defined_symbols: int
    stubs: int
    linked_sets: int
    linked_resources: int
    lljit_sessions: int
    pending_sets: int
    retired_sets: int
    recompiled_bodies: int
    compiles: int
    compile_seconds: float
    object_bytes: int
    swaps: int
    cache_hits: int = 0
    cache_misses: int = 0
    relinks: int = 0
    tier_up_counted: int = 0
    tier_up_promotions: int = 0
    tier_up_pending: int = 0
    tier_up_discarded: int = 0
    tier_up_failures: int = 0
    tier_up_seconds: float = 0.0
    background_batches: int = 0
    background_functions: int = 0
    background_waits: int = 0
    background_discarded: int = 0
    background_failures: int = 0


@dataclass(frozen=True)
class FunctionInfo:
    """Where a function stands: ``stub`` (the address callers get), ``slot``
    (its pointer slot), ``body`` (what the slot points at; ``None`` while it
    is not compiled or its module was removed). Under the ``NONE`` redirection
    policy functions have no stub: ``stub`` and ``slot`` are ``None`` and
    ``body`` is the function's address. With tier-up, ``tier`` is the
    optimisation level the current body was compiled at (the policy's low
    level until promoted) and ``calls`` the calls counted at the low tier
    (promoted code is not counted); both ``None`` without tier-up."""

    name: str
    stub: int | None
    slot: int | None
    body: int | None
    tier: int | None = None
    calls: int | None = None


@dataclass
class WorkCounters:
    """The engine's running totals (thread-safe)."""

    compiles: int = 0
    compile_seconds: float = 0.0
    object_bytes: int = 0
    swaps: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def compiled(self, data: bytes, seconds: float) -> None:
        with self._lock:
            self.compiles += 1
            self.compile_seconds += seconds
            self.object_bytes += len(data)

    def swapped(self) -> None:
        with self._lock:
            self.swaps += 1


def collect_stats(stack: Stack, work: WorkCounters, *, tier_up: TierUpCounts,
                  **held: int) -> EngineStats:
    """An :class:`EngineStats` of ``stack`` and ``work``; ``held`` gives what
    only the engine knows (modules, object_files, retired_sets,
    recompiled_bodies), ``tier_up`` the tier-up component's counts."""
    linker = stack.executor.linker
    layer = stack.compile_layer
    backends = [layer.compiler] + ([layer.local] if layer.local is not layer.compiler else [])
    hits = sum(getattr(backend, "hits", 0) for backend in backends)
    background = getattr(stack.top, "background", None)
    ahead = background.counts if background is not None else None
    misses = sum(getattr(backend, "misses", 0) for backend in backends)
    return EngineStats(
        defined_symbols=len(stack.symbols), stubs=len(stack.stubs),
        linked_sets=stack.redirection.linked_count(), linked_resources=linker.resource_count,
        lljit_sessions=linker.session_count, pending_sets=len(stack.top.pending()),
        compiles=work.compiles - hits, compile_seconds=work.compile_seconds,
        object_bytes=work.object_bytes, swaps=work.swaps, cache_hits=hits,
        cache_misses=misses, relinks=stack.redirection.relinks,
        tier_up_counted=tier_up.counted,
        tier_up_promotions=tier_up.promotions, tier_up_pending=tier_up.pending,
        tier_up_discarded=tier_up.discarded, tier_up_failures=tier_up.failures,
        tier_up_seconds=tier_up.seconds,
        **({} if ahead is None else dict(
            background_batches=ahead.batches, background_functions=ahead.functions,
            background_waits=ahead.waited, background_discarded=ahead.discarded,
            background_failures=ahead.failed)), **held)


def describe_function(symbols: SymbolTable, name: str,
                      tier: tuple[int | None, int | None] = (None, None)) -> FunctionInfo | None:
    """Where function ``name`` stands (see :class:`FunctionInfo`); ``tier`` is
    tier-up's ``(tier, calls)`` for it."""
    current = symbols.current(name)
    if not symbols.has_stub(name):
        if current is None or not current.is_function:
            return None
        return FunctionInfo(name, None, None, current.address, *tier)
    stub = symbols.stub(name)
    return FunctionInfo(name, stub.address, stub.slot,
                        stub.target() if stub.is_bound() else None, *tier)
