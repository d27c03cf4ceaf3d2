"""What the engine did, as typed events, and the hub that delivers them.

Events are frozen dataclasses: a listener may keep them, hash them and pass
them to other threads. Addresses are run-time addresses in the executor
(this process, or the remote executor's for remote engines).

Delivery contract (:class:`EventHub`)
-------------------------------------
* The engine builds an event only when ``hub.active`` is true (the fast
  path: with no listener an engine operation costs one attribute read).
* While it holds its lock, the engine only *queues* events
  (:meth:`EventHub.queue`); after releasing the lock it calls
  :meth:`EventHub.flush`. Listeners therefore never run inside an engine
  lock and may call back into the engine (an event that such a call
  produces is delivered after the one being delivered).
* Events are delivered in the order they were queued, to the listeners
  registered when each event is delivered, one event and one listener at a
  time (never concurrently), on whichever thread flushes: the thread whose
  call produced the event, or another thread that is delivering already.
* A listener that raises does not stop delivery, does not reach the
  engine's caller and leaves the hub as it was; its first exception is
  reported with :func:`warnings.warn` (:class:`EventListenerWarning`, the
  traceback in the message), later ones are counted in
  :attr:`EventHub.failures`.
* After :meth:`EventHub.remove` returns, the listener receives no further
  event (a call already running on another thread may finish).
"""

from __future__ import annotations

import threading
import traceback
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class CodeRange:
    """``size`` bytes of code at ``start`` that belong to function ``name``."""

    name: str
    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True, slots=True)
class ObjectLinked:
    """An object was linked: its functions' bodies are at ``functions``.

    ``stubs`` are the stubs (stable callable addresses) of the functions it
    defines, ``module`` the label of the module or object it came from;
    ``compile_seconds`` is 0.0 for objects that were not compiled here
    (``add_object_file``, or an object-cache hit: ``cache_hit``);
    ``opt_level`` is the code generator's optimisation level (-1: unknown).
    """

    module: str
    functions: tuple[CodeRange, ...]
    stubs: tuple[CodeRange, ...] = ()
    compile_seconds: float = 0.0
    opt_level: int = -1
    cache_hit: bool = False


@dataclass(frozen=True, slots=True)
class CodeFreed:
    """The memory holding ``ranges`` (code of ``module``) was unmapped.

    Delivered after the memory is gone: the addresses may already hold
    other code."""

    module: str
    ranges: tuple[CodeRange, ...]


@dataclass(frozen=True, slots=True)
class FunctionSwapped:
    """Calls to ``name`` now reach ``new_body`` instead of ``old_body`` (both
    body addresses; the stub's address did not change)."""

    name: str
    old_body: int
    new_body: int


@dataclass(frozen=True, slots=True)
class LazyCompiled:
    """Function ``name`` of ``module`` was compiled on its first call, in
    ``seconds`` (compile and link)."""

    name: str
    module: str
    seconds: float


@dataclass(frozen=True, slots=True)
class ExecutorEvent:
    """The executor process crashed or was restarted (remote engines)."""

    kind: Literal["crash", "restart"]
    detail: str = ""


Event = ObjectLinked | CodeFreed | FunctionSwapped | LazyCompiled | ExecutorEvent
Listener = Callable[[Event], object]


class EventListenerWarning(RuntimeWarning):
    """An event listener raised; the event was still delivered to the others."""


class EventHub:
    """Holds listeners and delivers events to them (see the module's contract).

    ``active`` is true while at least one listener is registered; read it
    before building an event. Thread-safety: every method may be called
    from any thread.
    """

    def __init__(self) -> None:
        self.active = False
        self.failures = 0
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()  # guards the fields below, never held while delivering
        self._queue: deque[Event] = deque()
        self._delivering: int | None = None  # ident of the thread delivering, if any
        self._reported: set[int] = set()

    # -- listeners -------------------------------------------------------------

    def add(self, listener: Listener) -> None:
        """Register ``listener`` (a callable taking one event). Adding the
        same listener twice makes it receive every event twice."""
        if not callable(listener):
            raise TypeError(f"an event listener must be callable, not {listener!r}")
        with self._lock:
            self._listeners = (*self._listeners, listener)
            self.active = True

    def remove(self, listener: Listener) -> None:
        """Unregister ``listener`` (its latest registration). ``ValueError``
        if it is not registered."""
        with self._lock:
            listeners = list(self._listeners)
            for i in range(len(listeners) - 1, -1, -1):
                if listeners[i] is listener or listeners[i] == listener:
                    del listeners[i]
                    break
            else:
                raise ValueError(f"{listener!r} is not a registered event listener")
            self._listeners = tuple(listeners)
            self.active = bool(listeners)

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return self._listeners

    # -- delivery --------------------------------------------------------------

    def queue(self, event: Event) -> None:
        """Queue ``event`` for the next :meth:`flush`; safe under any lock."""
        with self._lock:
            self._queue.append(event)

    def emit(self, event: Event) -> None:
        """Queue ``event`` and deliver the queue (for callers holding no lock)."""
        self.queue(event)
        self.flush()

    def flush(self) -> None:
        """Deliver every queued event, unless this or another thread is
        delivering already (that thread delivers them, in order)."""
        me = threading.get_ident()
        with self._lock:
            if self._delivering is not None or not self._queue:
                return
            self._delivering = me
        try:
            while True:
                with self._lock:
                    if not self._queue:
                        self._delivering = None
                        return
                    event = self._queue.popleft()
                self._deliver(event)
        except BaseException:
            with self._lock:
                self._delivering = None
            raise

    def _deliver(self, event: Event) -> None:
        for listener in self._listeners:
            if not any(x is listener for x in self._listeners):
                continue  # removed by an earlier listener of this event
            try:
                listener(event)
            except Exception as exc:  # noqa: BLE001 - a listener never reaches the engine
                self._report(listener, event, exc)

    def _report(self, listener: Listener, event: Event, exc: Exception) -> None:
        with self._lock:
            self.failures += 1
            first = id(listener) not in self._reported
            self._reported.add(id(listener))
        if not first:
            return
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:
            warnings.warn(
                f"event listener {listener!r} raised on {type(event).__name__} (reported "
                f"once; later failures are only counted):\n{detail}",
                EventListenerWarning, stacklevel=2)
        except Exception:  # noqa: BLE001 - warnings turned into errors must not escape
            pass
