"""BackgroundCompiler: a lazy engine compiles ahead in its compile workers.

ORC's speculation, as a component the CompileOnDemandLayer owns (made by
:func:`background_component` from the engine's
:class:`~execution_engine.policies.BackgroundPolicy`). Once a lazy module
has had ``start_after`` first calls, its functions are *queued*: first the
functions that compiled code refers to (the callees of what ran, in the
order they were reached, whatever module defines them), then the rest of
the module. One thread per engine (``execution_engine-background``) cuts
queued functions into partitions (batches of functions compiled together),
sends them to the shared compile pool as IR text, and links each object
when it arrives, so that the functions' stubs point at their bodies before
anybody calls them. JIT'd code keeps running meanwhile; the thread takes
the engine's lock only to cut and to link.

Exactly one body per function: a function is *reserved* by the partition it
was cut into until that partition is linked or given up. A first call of a
reserved function waits for its partition (the worker is compiling it
already) and links it itself; a first call of a function only queued
compiles it as today, and the queue skips it later. A partition is linked
only if every function it defines is still uncompiled and still defined by
the module it was cut from (no removal, update or earlier body meanwhile);
otherwise the result is discarded and its functions compile on their next
first call. A partition that fails to compile is given up too; its
functions are then compiled in the workers (not in process) on their first
call, so that an error LLVM can only report by dying is a ``CompileError``.

Limits: nothing is compiled ahead for a machine that makes PIC (its
partitions would need the interposable rewrite the IR layer applies), for a
target machine whose creation arguments are unknown (a worker cannot
reproduce it), or when object-cache hooks are set (they see every module).

Lifetime and thread-safety: the thread starts with the first queued
function and ends at :meth:`BackgroundCompiler.close` (the engine's close)
or :func:`stop_threads` (before a C ``exit()``); every method is called
with the engine's lock held except :meth:`close`.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import process_exit
from ..errors import ExecutionEngineError
from ..policies import BackgroundPolicy
from ..target_spec import TargetSpec

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ..compile_service.pool import CompilePool

_WAIT = 0.5  # seconds the thread sleeps when nothing happens


@dataclass(eq=False)
class _Queue:
    """What is queued of one module: callees reached (best first), then the rest."""

    source: Any
    hot: deque[str] = field(default_factory=deque)
    rest: deque[str] = field(default_factory=deque)


@dataclass(eq=False)
class Batch:
    """A partition cut for the background: the engine names it defines, its
    text, and the compile in flight."""

    source: Any  # the CompileOnDemandLayer's record of the module
    defines: list[str]
    text: str
    label: str
    future: Future[bytes] | None = None
    ready: threading.Event = field(default_factory=threading.Event)  # cut (and sent, or not)
    sent: float = 0.0
    done: bool = False  # linked, discarded or failed: no longer reserves anything


@dataclass
class BackgroundCounts:
    """The background's part of the engine's statistics."""

    batches: int = 0  # partitions sent to the workers
    linked: int = 0  # partitions linked
    functions: int = 0  # functions compiled ahead and linked
    waited: int = 0  # first calls that waited for their partition
    discarded: int = 0  # partitions whose functions changed meanwhile
    failed: int = 0  # partitions that failed to compile
    seconds: float = 0.0  # compile time in the workers (wall, per partition)


class Host:
    """What the background asks of the CompileOnDemandLayer (engine's lock held)."""

    def queue_order(self, source: Any) -> list[str]:
        """Every function of ``source`` that may be compiled ahead, in module order.
        Called without the engine's lock; ``source`` cannot leave meanwhile."""
        raise NotImplementedError

    def wanted(self, source: Any, name: str) -> bool:
        """Whether ``name`` is still to be compiled from ``source``."""
        raise NotImplementedError

    def size(self, source: Any, name: str) -> int:
        """About how much IR text function ``name`` of ``source`` is."""
        raise NotImplementedError

    def cut_apart(self, source: Any, names: list[str]) -> tuple[str, list[str]]:
        """A partition defining ``names``: its text and the names it defines.
        Called without the engine's lock; ``source`` cannot leave meanwhile."""
        raise NotImplementedError

    def link(self, batch: Batch, data: bytes, seconds: float) -> bool:
        """Link ``batch``'s object if all it defines is still wanted; whether it was."""
        raise NotImplementedError


class BackgroundCompiler:
    """See the module docstring."""

    def __init__(self, policy: BackgroundPolicy, pool: Callable[[], CompilePool],
                 spec: TargetSpec, workers: int,
                 lock: Callable[[], AbstractContextManager[None]],
                 transform: Callable[[str], str] | None = None,
                 hooked: Callable[[], bool] = lambda: False):
        self.policy = policy
        self._hooked = hooked  # object-cache hooks are set: nothing is compiled ahead
        self._pool = pool
        self._spec = spec
        self._limit = policy.batches_in_flight(workers)
        self._lock = lock
        self._transform = transform
        self.host: Host | None = None
        self.counts = BackgroundCounts()
        self._first_calls: dict[int, int] = {}  # id(source) -> first calls seen
        self._started: set[int] = set()
        # Per module (by id): the callees reached, then the rest of the module.
        self._queues: dict[int, _Queue] = {}
        self._reserved: dict[tuple[int, str], Batch] = {}
        self._isolated: set[tuple[int, str]] = set()  # compile these in workers
        self._in_flight: list[Batch] = []
        self._to_cut: deque[Batch] = deque()  # chosen, for the thread to cut and send
        self._to_list: deque[Any] = deque()  # modules whose rest the thread lists
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- what the layer tells --------------------------------------------------

    def compiled(self, source: Any, callees: list[tuple[Any, str]], *, first_call: bool) -> None:
        """``source`` compiled a partition (a first call when ``first_call``)
        that refers to lazy functions ``callees`` (``(source, name)``)."""
        if self._closed or self._hooked():
            return
        if first_call:
            key = id(source)
            calls = self._first_calls[key] = self._first_calls.get(key, 0) + 1
            if calls >= self.policy.start_after and key not in self._started:
                self._started.add(key)
                assert self.host is not None
                self._to_list.append(source)  # listed by the thread, off the caller's path
        if self._started:
            for callee_source, name in callees:
                self._queue(callee_source).hot.append(name)
            self._ensure_thread()
            self._wake.set()

    def _queue(self, source: Any) -> _Queue:
        queue = self._queues.get(id(source))
        if queue is None:
            queue = self._queues[id(source)] = _Queue(source)
        return queue

    def _busy(self) -> bool:
        return bool(self._in_flight or self._to_list) or any(
            q.hot or q.rest for q in self._queues.values())

    def list_rest(self, source: Any) -> None:
        """List the rest of ``source`` (printing it once, without the engine's
        lock), then queue it under the lock."""
        assert self.host is not None
        try:
            names = self.host.queue_order(source)
        except ExecutionEngineError:
            return  # removed meanwhile
        with self._lock():
            if id(source) in self._started:
                self._queue(source).rest.extend(names)

    def reserved(self, source: Any, name: str) -> Batch | None:
        """The partition in flight that defines ``name`` of ``source``, if any."""
        batch = self._reserved.get((id(source), name))
        return None if batch is None or batch.done else batch

    def isolated(self, source: Any, name: str) -> bool:
        """Whether ``name``'s background partition failed: compile it in a worker."""
        return (id(source), name) in self._isolated

    def claim(self, batch: Batch) -> None:
        """A first call needs a function of ``batch``: wait for it and link it
        now (or give it up, if it failed or is stale). Engine's lock held."""
        self.counts.waited += 1
        self._finish(batch)

    def forget(self, source: Any) -> None:
        """``source`` left the engine: nothing of it is queued or reserved."""
        key = id(source)
        self._first_calls.pop(key, None)
        self._started.discard(key)
        self._queues.pop(key, None)
        for reserved in [k for k in self._reserved if k[0] == key]:
            del self._reserved[reserved]
        self._isolated = {k for k in self._isolated if k[0] != key}
        # batches in flight are discarded when they arrive (their source is gone)

    # -- the thread ------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=_serve, args=(weakref.ref(self), self._stop,
                                                                 self._wake),
                                            name="execution_engine-background", daemon=True)
            _running.add(self)
            self._thread.start()

    def pump(self) -> None:
        """Link every partition that arrived and choose (and reserve) the next
        ones, which the thread then cuts and sends without the lock
        (:meth:`send`). Engine's lock held: called after every first call
        (JIT'd code that keeps calling new functions keeps the lock busy) and
        by the thread whenever it has something to link or to choose."""
        if self._closed or self.host is None:
            return
        for arrived in list(self._in_flight):
            if arrived.ready.is_set() and (arrived.future is None or arrived.future.done()):
                self._finish(arrived)
        while len(self._in_flight) < self._limit:
            batch = self._next_batch()
            if batch is None:
                break
            self._to_cut.append(batch)
            self._wake.set()

    def needs_pump(self) -> bool:
        """Whether :meth:`pump` has anything to do (read without the lock)."""
        in_flight = list(self._in_flight)
        if any(b.ready.is_set() and (b.future is None or b.future.done()) for b in in_flight):
            return True
        return len(in_flight) < self._limit and any(
            q.hot or q.rest for q in list(self._queues.values()))

    def _next_batch(self) -> Batch | None:
        """The next partition: functions of one module, its callees reached
        first (modules in the order their work was queued), reserved."""
        host = self.host
        assert host is not None
        most, most_bytes = self.policy.batch_limit(self.counts.batches)
        while True:
            queue = next((q for q in self._queues.values() if q.hot or q.rest), None)
            if queue is None:
                return None
            source = queue.source
            chosen: list[str] = []
            seen: set[str] = set()
            size = 0
            for names in (queue.hot, queue.rest):
                while names and len(chosen) < most and size < most_bytes:
                    name = names.popleft()
                    if name in seen or not self._free(source, name) or not host.wanted(
                            source, name):
                        continue
                    chosen.append(name)
                    seen.add(name)
                    size += host.size(source, name)
            if not queue.hot and not queue.rest:
                # the dict keeps insertion order: a module's turn comes back when it has work
                del self._queues[id(source)]
            if not chosen:
                continue
            batch = Batch(source, chosen, "", f"background partition of {source.handle.name}, "
                          f"{len(chosen)} function{'s' if len(chosen) != 1 else ''} "
                          f"('{chosen[0]}'{', ...' if len(chosen) > 1 else ''})")
            for name in chosen:
                self._reserved[(id(source), name)] = batch
            self._in_flight.append(batch)
            self.counts.batches += 1
            return batch

    def _free(self, source: Any, name: str) -> bool:
        key = (id(source), name)
        batch = self._reserved.get(key)
        return (batch is None or batch.done) and key not in self._isolated

    def send(self, batch: Batch) -> None:
        """Cut ``batch`` and send it to a worker; without the engine's lock
        (the module's cut lock keeps it from leaving meanwhile)."""
        host = self.host
        assert host is not None
        try:
            try:
                text, defines = host.cut_apart(batch.source, batch.defines)
            except ExecutionEngineError:
                return  # batch.future stays None: given up when finished
            if defines != batch.defines:
                return
            if self._transform is not None:
                text = self._transform(text)
            batch.text = text
            batch.sent = time.perf_counter()
            future = self._pool().submit(text, self._spec, batch.label, verify=False)
            future.add_done_callback(lambda _: self._wake.set())
            batch.future = future
        finally:
            batch.ready.set()

    def _finish(self, batch: Batch) -> None:
        """Wait for ``batch``, then link it or give it up (engine's lock held)."""
        if batch.done:
            return
        assert self.host is not None
        if not batch.ready.is_set():
            try:
                self._to_cut.remove(batch)  # not taken by the thread yet: cut it here
            except ValueError:
                pass  # being cut by the thread, which does not need the engine's lock
            else:
                self.send(batch)
        batch.ready.wait()
        if batch.future is None:  # could not be cut together: one by one, first
            batch.done = True
            self._in_flight.remove(batch)
            for name in batch.defines:
                if self._reserved.get((id(batch.source), name)) is batch:
                    del self._reserved[(id(batch.source), name)]
            if len(batch.defines) > 1 and self.host.wanted(batch.source, batch.defines[0]):
                queue = self._queue(batch.source)
                queue.hot.extendleft(reversed(batch.defines[1:]))
                self._queue(batch.source).rest.appendleft(batch.defines[0])
            return
        try:
            data = batch.future.result()
        except ExecutionEngineError:
            data = None
            self.counts.failed += 1
        seconds = time.perf_counter() - batch.sent
        batch.done = True
        if batch in self._in_flight:
            self._in_flight.remove(batch)
        key = id(batch.source)
        for name in batch.defines:
            if self._reserved.get((key, name)) is batch:
                del self._reserved[(key, name)]
            if data is None:
                self._isolated.add((key, name))
        if data is None:
            return
        if self.host.link(batch, data, seconds):
            self.counts.linked += 1
            self.counts.functions += len(batch.defines)
            self.counts.seconds += seconds
        else:
            self.counts.discarded += 1

    # -- lifetime --------------------------------------------------------------

    def close(self) -> None:
        """Stop the thread (results still in flight are dropped)."""
        self._closed = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        _running.discard(self)

    def idle(self, timeout: float = 60.0) -> bool:
        """Wait (without the engine's lock) until nothing is queued or in flight;
        whether that happened within ``timeout`` seconds. For tests and benchmarks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock():
                busy = self._busy()
            if not busy:
                return True
            self._wake.set()
            time.sleep(0.005)
        return False


def _serve(ref: weakref.ref[BackgroundCompiler], stop: threading.Event,
           wake: threading.Event) -> None:
    while not stop.is_set():
        wake.clear()
        component = ref()
        if component is None:
            return
        try:
            if component._to_cut:
                component.send(component._to_cut.popleft())
                continue
            if component._to_list:
                component.list_rest(component._to_list.popleft())
                continue
            if component.needs_pump():
                with component._lock():
                    component.pump()
                continue
        except Exception:  # noqa: BLE001 - the background never takes the engine down
            pass
        finally:
            del component
        wake.wait(_WAIT)


_running: weakref.WeakSet[BackgroundCompiler] = weakref.WeakSet()


def stop_threads() -> None:
    """Stop every background thread of the process (before a C ``exit()``: no
    thread may be inside LLVM then)."""
    for component in list(_running):
        component.close()


process_exit.on_exit(stop_threads)


def background_component(policy: BackgroundPolicy, workers: int, target_machine: Any,
                         compile_layer: Any, lock: Callable[[], AbstractContextManager[None]],
                         transform: Callable[[str], str] | None) -> BackgroundCompiler | None:
    """The component for an engine with ``policy`` and ``workers`` compile
    workers, or None where it does not apply (see the module docstring)."""
    from ..compile_service.pool import shared_pool
    from ..target_spec import spec_of

    if not policy.enabled or workers <= 0:
        return None
    spec = spec_of(target_machine)
    if spec is None or compile_layer.weakens:
        return None
    return BackgroundCompiler(policy, lambda: shared_pool(workers), spec, workers, lock,
                              transform, hooked=lambda: compile_layer.notify is not None
                              or compile_layer.getbuffer is not None)


__all__ = ["Batch", "BackgroundCompiler", "BackgroundCounts", "Host", "background_component",
           "stop_threads"]
