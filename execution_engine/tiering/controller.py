"""TierUpController: the engine's tier-up component.

It decides which bodies are counted (``CountingStubs.counts``: a function
whose current body was compiled below the policy's high level and can be
recompiled), and runs one thread per engine (``execution_engine-tier-up``)
that, every ``interval`` seconds while anything is counted, reads the
counters and promotes the functions whose count reached the threshold:

1. under the engine's lock: cut the partition of the hot functions of each
   module from its current IR (:meth:`~..hotswap.HotSwap.cut`; for one
   function, the partition ``recompile_and_relink_function`` compiles), so
   functions hot together are compiled and laid out together;
2. off the lock: optimise at the high level and compile at that level - in a
   compile worker of the shared pool when the engine has ``compile_workers``
   (and its target machine's creation arguments are known), else on this
   thread (llvmlite serialises LLVM calls, so an API call that compiles at
   the same time waits for one LLVM call at a time, never for the whole
   promotion);
3. under the engine's lock: link the object as the functions' new bodies
   (:meth:`~..hotswap.HotSwap.link_object`) unless a body it was cut from
   is no longer current (a function was swapped, recompiled or its module
   removed meanwhile: the result is discarded, and the others, still hot,
   are promoted at the next poll). The symbol table then points
   the stub's slot straight at the new body; the low-tier body is retired
   under the reclamation rule like any replaced one.

JIT'd code never waits for any of this: it keeps running the low-tier body
until the slot changes. Exactly one body per function wins: promotions are
made by the one thread and linked under the engine's lock after checking
the body they replace is current. A function that cannot be recompiled (no
IR: an object file's; a local reached through a stub) or whose promotion
failed to compile stops being counted. Removing a module unbinds its stubs,
which takes its functions out of the count.

Lifetime: the thread starts with the engine and sleeps while nothing is
counted; :meth:`TierUpController.close` (the engine's close) stops it, and
the thread frees the machines and pipelines it made when it leaves. Every
controller still running is stopped and waited for at interpreter exit.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import llvmlite.binding as llvm

from .. import process_exit, target_spec
from ..errors import ExecutionEngineError
from ..ir.optimise import Optimiser
from ..ir.parse import parse_partition
from ..linking.symbols import Definition
from ..native.stubs import Stub
from .policy import TierUp

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ..compile_service.pool import CompilePool
    from ..hotswap import HotSwap, Recompile
    from ..options import EngineOptions
    from ..stack import Stack

# What cutting a function's partition raises for one that cannot be recompiled.
_CANNOT_CUT = (ExecutionEngineError, KeyError, NameError, TypeError, ValueError)


@dataclass(frozen=True)
class TierUpCounts:
    """Tier-up's part of :class:`~..introspection.EngineStats`."""

    counted: int = 0  # functions counted now (at the low tier)
    promotions: int = 0  # bodies recompiled at the high level and swapped in
    pending: int = 0  # promotions being compiled now
    discarded: int = 0  # promotions whose function changed or left meanwhile
    failures: int = 0  # promotions that failed to compile (the function stays low)
    seconds: float = 0.0  # time spent compiling promotions, off the callers' path


class NoTierUp:
    """The component of an engine without tier-up (a null object)."""

    def counts(self) -> TierUpCounts:
        return TierUpCounts()

    def describe(self, name: str) -> tuple[int | None, int | None]:
        return None, None

    def close(self) -> None:
        pass


NO_TIER_UP = NoTierUp()


class TierUpController:
    """Promotes hot functions of one stack (see the module docstring).

    ``lock()`` is the engine's lock; ``after_swap()`` is what the engine does
    after a swap (flush slot writes, poll the reclamation rule);
    ``on_compiled(handle, data, seconds)`` records a compile in the engine's
    counters.
    """

    def __init__(self, policy: TierUp, stack: Stack, swap: HotSwap, *,
                 lock: Callable[[], AbstractContextManager[None]],
                 after_swap: Callable[[], None],
                 target_machine: llvm.TargetMachine, workers: int = 0):
        assert stack.counting is not None
        self.policy = policy
        self._stack = stack
        self._stubs = stack.counting
        self._swap = swap
        self._lock = lock
        self._after_swap = after_swap
        spec = target_spec.spec_of(target_machine)
        self._high_spec = None if spec is None else spec.replace(opt_level=policy.high)
        # The thread's machine: made from the spec when it is first needed;
        # without a spec, from the user's machine now (the engine closes it).
        machines = _Machines(None if spec is not None else target_spec.with_opt_level(
            target_machine, target_spec.traits(target_machine), policy.high))
        self._pool: CompilePool | None = None
        if workers and self._high_spec is not None:
            from ..compile_service.pool import shared_pool

            self._pool = shared_pool(workers)
        self._ineligible: weakref.WeakSet[Definition] = weakref.WeakSet()
        self._promoted_calls: dict[int, int] = {}  # stub id -> calls counted before promotions
        self._counts = TierUpCounts()
        self._counts_lock = threading.Lock()
        self._poll_lock = threading.Lock()  # counters are read under it; close takes it
        self._closed = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._stubs.counts = self._counted
        self._stubs.on_counted = self._wake.set
        # The thread holds the controller only while it works (an engine
        # dropped without close() is still collected, which stops the thread).
        self._thread = threading.Thread(
            target=_serve, args=(weakref.ref(self), machines, self._stop, self._wake,
                                 policy.interval),
            daemon=True, name="execution_engine-tier-up")
        weakref.finalize(self, _signal, self._stop, self._wake)
        self._thread.start()

    # -- the rule ------------------------------------------------------------------

    def _counted(self, stub: Stub) -> bool:
        """Whether the body ``stub`` is being bound to (the current definition)
        is counted: compiled below the high level and recompilable."""
        current = self._stack.symbols.current(stub.name)
        if current is None or not current.is_function or current in self._ineligible:
            return False
        level = self._swap.level_of(current.handle)
        return level is None or level < self.policy.high

    # -- introspection ---------------------------------------------------------------

    def counts(self) -> TierUpCounts:
        with self._counts_lock:
            counts = self._counts
        return _replace(counts, counted=self._stubs.counted_count())

    def describe(self, name: str) -> tuple[int | None, int | None]:
        """``(tier, calls)`` of function ``name`` (engine's lock held): the level
        its current body was compiled at and the calls counted at the low tier."""
        symbols = self._stack.symbols
        current = symbols.current(name)
        if not symbols.has_stub(name) or current is None or not current.is_function:
            return None, None
        stub = symbols.stub(name)
        level = self._swap.level_of(current.handle)
        counted = self._stubs.calls(stub) if self._stubs.is_counted(stub) else 0
        calls = self._promoted_calls.get(stub.id, 0) + (counted or 0)
        return (self.policy.low if level is None else level), calls

    # -- the thread --------------------------------------------------------------------

    def _poll(self, machines: _Machines) -> bool:
        """One round of the thread: read the counters, promote what is hot.
        Returns whether anything is still counted."""
        with self._poll_lock:
            if self._closed:
                return False
            hot = self._stubs.hot(self.policy.threshold)
        if hot:
            self._promote(hot, lambda job: self._compile_here(job, machines))
        return bool(self._stubs.counted_count())

    def _compile_here(self, job: Recompile, machines: _Machines) -> bytes:
        optimiser, machine = machines.at(self._new_machine)
        module = parse_partition(job.text, job.handle.name)
        try:
            optimiser.run(module, self.policy.high)
            return self._stack.compile_layer.compiler.compile(module, machine,
                                                              label=job.handle.name)
        finally:
            module.close()

    def _new_machine(self) -> llvm.TargetMachine:
        assert self._high_spec is not None
        return self._high_spec.create()

    def _promote(self, hot: list[Stub], compile_here: Callable[[Recompile], bytes]) -> None:
        """Promote ``hot``: the functions of one module that are hot together
        are compiled as one partition, so their bodies sit side by side as in
        the module (a promoted body alone in its object starts on a page of
        its own; hot functions all at one page offset slowed a hot loop by
        10-16 % here) and see each other's definitions when optimised. A group
        that fails is promoted again function by function."""
        with self._lock():
            if self._closed:
                return
            jobs = self._cut([stub for stub in hot if self._stubs.is_counted(stub)])
            self._add(pending=sum(len(stubs) for stubs, _ in jobs))
        futures: list[Future[bytes] | None] = [None] * len(jobs)
        if self._pool is not None:
            assert self._high_spec is not None
            futures = [self._pool.submit(job.text, self._high_spec, job.handle.name,
                                         optimize=self.policy.high, verify=False)
                       for _, job in jobs]
        for (stubs, job), future in zip(jobs, futures, strict=True):
            started = time.perf_counter()
            try:
                data = compile_here(job) if future is None else future.result()
            except Exception:  # noqa: BLE001 - a user's compiler may raise anything
                self._failed(stubs, job, compile_here)
                continue
            if self._stop.is_set():
                return
            if not self._link(stubs, job, data, time.perf_counter() - started):
                self._failed(stubs, job, compile_here)

    def _cut(self, stubs: list[Stub]) -> list[tuple[list[Stub], Recompile]]:
        """The partitions promoting ``stubs``, one per module (engine's lock
        held); a function that cannot be recompiled stops being counted."""
        if not stubs:
            return []
        by_name = {stub.name: stub for stub in stubs}
        try:
            jobs = self._swap.cut(list(by_name), "promoted")
        except _CANNOT_CUT:
            if len(stubs) == 1:
                self._give_up(stubs[0])
                return []
            return [job for stub in stubs for job in self._cut([stub])]
        return [([by_name[name] for name in job.names], job) for job in jobs]

    def _failed(self, stubs: list[Stub], job: Recompile,
                compile_here: Callable[[Recompile], bytes]) -> None:
        """A promotion that failed to compile or link: a group is tried again
        function by function; a single function stays at the low tier."""
        with self._lock():
            self._add(pending=-len(stubs), failures=len(stubs) if len(stubs) == 1 else 0)
            still = [stub for stub, definition in zip(stubs, job.definitions, strict=True)
                     if self._stack.symbols.current(stub.name) is definition]
            if len(stubs) == 1:
                for stub in still:
                    self._give_up(stub)
                return
        for stub in still:
            self._promote([stub], compile_here)

    def _link(self, stubs: list[Stub], job: Recompile, data: bytes, seconds: float) -> bool:
        """Link a compiled promotion; False if linking it failed."""
        with self._lock():
            if self._closed:
                return True
            calls = [self._stubs.calls(stub) or 0 for stub in stubs]
            try:
                linked = self._swap.link_object(job, data, self.policy.high)
            except ExecutionEngineError:
                return False
            if linked:
                for stub, counted in zip(stubs, calls, strict=True):
                    self._promoted_calls[stub.id] = self._promoted_calls.get(stub.id, 0) + counted
                    self._stubs.reset(stub)
                on_compiled = self._stack.compile_layer.on_compiled
                if on_compiled is not None:
                    on_compiled(job.handle, data, seconds)
                self._after_swap()
            self._add(pending=-len(stubs), promotions=len(stubs) if linked else 0,
                      discarded=0 if linked else len(stubs), seconds=seconds)
            return True

    def _give_up(self, stub: Stub) -> None:
        """Stop counting ``stub``'s current body (engine's lock held)."""
        current = self._stack.symbols.current(stub.name)
        if current is not None:
            self._ineligible.add(current)
        self._stubs.rebind_direct(stub)
        self._stubs.reset(stub)

    def _add(self, **deltas: float) -> None:
        with self._counts_lock:
            counts = self._counts
            self._counts = _replace(counts, **{k: getattr(counts, k) + v
                                               for k, v in deltas.items()})

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Stop promoting (engine's lock held, before the stubs are freed): no
        counter is read and no promotion is linked afterwards. Does not wait for
        a compile in flight; its result is dropped."""
        with self._poll_lock:
            self._closed = True
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to leave (after :meth:`close`)."""
        self._thread.join(timeout)


def _replace(counts: TierUpCounts, **changes: float) -> TierUpCounts:
    return replace(counts, **changes)  # type: ignore[arg-type]


class _Machines:
    """The thread's own target machine and pipelines (made on first use, freed
    when the thread leaves; never shared with the engine's lock holders)."""

    def __init__(self, machine: llvm.TargetMachine | None = None) -> None:
        self._machine = machine
        self._made: tuple[Optimiser, llvm.TargetMachine] | None = None

    def at(self, create: Callable[[], llvm.TargetMachine]
           ) -> tuple[Optimiser, llvm.TargetMachine]:
        if self._made is None:
            machine = self._machine or create()
            self._made = (Optimiser(machine), machine)
        return self._made

    def close(self) -> None:
        if self._made is not None:
            self._made[0].close()
        machine = self._made[1] if self._made is not None else self._machine
        if machine is not None:
            machine.close()
        self._made = self._machine = None


def _serve(ref: weakref.ref[TierUpController], machines: _Machines, stop: threading.Event,
           wake: threading.Event, interval: float) -> None:
    """The tier-up thread: every ``interval`` while something is counted, one
    round of the controller (if it still exists)."""
    me = (stop, wake, threading.current_thread())
    _running.add(me)
    try:
        while not stop.is_set():
            wake.wait()
            if stop.wait(interval):
                break
            controller = ref()
            if controller is None:
                break
            more = controller._poll(machines)
            del controller
            wake.clear()
            if more:
                wake.set()
    finally:
        machines.close()
        _running.discard(me)


def _signal(stop: threading.Event, wake: threading.Event) -> None:
    stop.set()
    wake.set()


def tier_up_component(options: EngineOptions, stack: Stack, swap: HotSwap, *,
                      lock: Callable[[], AbstractContextManager[None]],
                      after_swap: Callable[[], None],
                      target_machine: llvm.TargetMachine) -> TierUpController | NoTierUp:
    """The engine's tier-up component for ``options`` (:data:`NO_TIER_UP` if none)."""
    if options.tier_up is None:
        return NO_TIER_UP
    return TierUpController(options.tier_up, stack, swap, lock=lock, after_swap=after_swap,
                            target_machine=target_machine, workers=options.compile_workers)


_running: set[tuple[threading.Event, threading.Event, threading.Thread]] = set()


def stop_threads(timeout: float = 5.0) -> None:
    """Stop every tier-up thread of the process and wait for each (up to
    ``timeout`` seconds): no promotion is inside LLVM afterwards. Run at
    interpreter exit; the command line calls it before leaving through C
    ``exit()``. Engines keep working, without promotions."""
    threads = list(_running)
    for stop, wake, _ in threads:
        _signal(stop, wake)
    for _, _, thread in threads:
        thread.join(timeout)


process_exit.on_exit(stop_threads)
