"""CompilePool: compile worker processes, shared by every engine of a process.

A pool has N *slots*; each slot is a thread of this process that owns one
worker process (:mod:`.worker`) and serves requests from the pool's single
queue one at a time, so requests spread over whichever workers are free.

Ownership and lifetime: the pool owns its workers. They start in the
background when the pool starts (a slot thread launches its worker and waits
for its greeting; requests submitted meanwhile wait in the queue), and end
when the pool is closed: explicitly, or when the process leaves (every pool
still open is closed by an exit hook, :mod:`..process_exit`: at interpreter
exit and before C ``exit()``). A worker also exits by itself when its socket
to the host closes, so a host that dies without running its exit hooks
leaves no worker behind once the compile in flight finishes.
:func:`shared_pool` is the one pool of the process that engines share; it
grows to the largest size asked for. In a child made by ``os.fork`` the
parent's pools are unusable (the workers are the parent's) and
:func:`shared_pool` makes a new one.

Worker death: a worker that dies (or is killed by the pool's ``timeout``)
while compiling fails that request with :class:`CompileError` naming its
label and carrying what the worker wrote to stderr since the request began
(LLVM's message); the host does not wait for the dead process, and the slot
starts a replacement before it takes another request, so the other requests
and the host's engines keep working. Output a worker writes to stderr while
compiling successfully (LLVM warnings) is copied to the host's stderr.

Thread-safety: every public method may be called from any thread.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import llvmlite.binding as llvm

from .. import process_exit
from ..errors import CompileError
from ..target_spec import TargetSpec
from .process import WorkerDied, WorkerProcess, WorkerStats

ENV_WORKERS = "EXECUTION_ENGINE_COMPILE_WORKERS"
IR: TypeAlias = str | bytes | bytearray | memoryview | llvm.ModuleRef
_BITCODE_MAGICS = (b"BC\xc0\xde", b"\xde\xc0\x17\x0b")
_START_ATTEMPTS = 3
_STOP = object()


def resolve_worker_count(setting: int | str | None = None) -> int:
    """How many workers ``setting`` asks for: an int >= 0 (0: compile in process),
    ``"auto"`` (the cores this process may run on), or None: the environment
    variable ``EXECUTION_ENGINE_COMPILE_WORKERS`` (same values; unset: 0)."""
    source = "compile_workers"
    if setting is None:
        setting = os.environ.get(ENV_WORKERS, "").strip() or 0
        source = ENV_WORKERS
    if isinstance(setting, str):
        if setting.strip().lower() == "auto":
            return _usable_cores()
        if not setting.strip().isdigit():
            raise ValueError(f"{source} must be a number >= 0 or 'auto', not {setting!r}")
        setting = int(setting)
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 0:
        raise ValueError(f"{source} must be a number >= 0 or 'auto', not {setting!r}")
    return setting


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(eq=False)
class _Request:
    header: dict[str, Any]
    payload: bytes
    label: str
    future: Future[bytes] = field(default_factory=Future)


class CompilePool:
    """N compile worker processes (see the module docstring for the contract).

    ``timeout``: seconds a single compile may take before its worker is killed
    and the request fails (None: no limit). ``python``: the interpreter that
    runs the workers (default: this one).
    """

    def __init__(self, workers: int, *, timeout: float | None = None,
                 python: str | None = None, start: bool = True):
        if workers < 1:
            raise ValueError(f"a compile pool needs at least one worker, not {workers!r}")
        self.timeout = timeout
        self._python = python or sys.executable
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._size = workers
        self._threads: list[threading.Thread] = []
        self._workers: dict[int, WorkerProcess] = {}
        self._closed = False
        self._pid = os.getpid()
        _open_pools.add(self)
        if start:
            self.start()

    @property
    def size(self) -> int:
        return self._size

    def start(self) -> None:
        """Start every slot's worker in the background (returns at once)."""
        with self._lock:
            self._check_usable()
            while len(self._threads) < self._size:
                slot = len(self._threads)
                thread = threading.Thread(target=self._serve, args=(slot,), daemon=True,
                                          name=f"execution_engine-compile-{slot}")
                self._threads.append(thread)
                thread.start()

    def grow(self, workers: int) -> None:
        """Make the pool at least ``workers`` large (it never shrinks)."""
        with self._lock:
            self._check_usable()
            self._size = max(self._size, workers)
        self.start()

    def stats(self) -> list[WorkerStats]:
        """One entry per worker running now."""
        with self._lock:
            return [WorkerStats(w.pid, w.startup_seconds, w.requests, w.cpu_seconds)
                    for w in self._workers.values()]

    # -- requests ----------------------------------------------------------------

    def submit(self, ir: IR, spec: TargetSpec, label: str, *, optimize: int | None = None,
               verify: bool = True) -> Future[bytes]:
        """Compile ``ir`` (module text, bitcode or a ``ModuleRef``, which is only read,
        here) for ``spec``; the future's result is the object's bytes.

        ``label`` names what is compiled in errors ("module 'm'"). The future
        raises :class:`CompileError` if LLVM fails or its worker dies,
        :class:`InvalidModuleError` if the IR does not parse or verify."""
        if isinstance(ir, llvm.ModuleRef):
            payload, form = bytes(ir.as_bitcode()), "bitcode"
        elif isinstance(ir, str):
            payload, form = ir.encode(), "ir"
        else:
            payload = bytes(ir)
            form = "bitcode" if payload[:4] in _BITCODE_MAGICS else "ir"
        request = _Request({"spec": spec.to_dict(), "label": label, "format": form,
                            "optimize": optimize, "verify": verify}, payload, label)
        with self._lock:
            self._check_usable(label)
        self.start()
        self._queue.put(request)
        return request.future

    def compile(self, ir: IR, spec: TargetSpec, label: str, **options: Any) -> bytes:
        """:meth:`submit` and wait for the object."""
        return self.submit(ir, spec, label, **options).result()

    def compile_many(self, jobs: Iterable[tuple[IR, TargetSpec, str]],
                     **options: Any) -> list[bytes]:
        """Compile every ``(ir, spec, label)`` at once, spread over the workers; the
        objects in order. If any fails, the first failure (in order) is raised
        once all have finished."""
        futures = [self.submit(ir, spec, label, **options) for ir, spec, label in jobs]
        results: list[bytes] = []
        error: BaseException | None = None
        for future in futures:
            exc = future.exception()
            if exc is not None:
                error = error or exc
            else:
                results.append(future.result())
        if error is not None:
            raise error
        return results

    # -- slots -------------------------------------------------------------------

    def _serve(self, slot: int) -> None:
        worker: WorkerProcess | None = None
        failures, start_error = 0, ""
        while True:
            if worker is None and failures < _START_ATTEMPTS and not self._closed:
                try:
                    worker = WorkerProcess(self._python)
                    failures = 0
                except WorkerDied as died:
                    failures += 1
                    start_error = died.error("a compile worker's start").llvm_message
                except OSError as exc:
                    failures += 1
                    start_error = str(exc)
                with self._lock:
                    if worker is not None:
                        self._workers[slot] = worker
            request = self._queue.get()
            if request is _STOP:
                break
            if not request.future.set_running_or_notify_cancel():
                continue
            if worker is not None and not worker.alive():  # died while idle: replace
                worker.discard()
                worker = self._replace(slot)
            if worker is None:
                request.future.set_exception(CompileError(
                    request.label, start_error, detail="no compile worker could be started"))
                continue
            try:
                request.future.set_result(worker.compile(request.header, request.payload,
                                                              request.label, self.timeout))
            except WorkerDied as died:
                request.future.set_exception(died.error(request.label))
                worker.discard()
                with self._lock:
                    self._workers.pop(slot, None)
                worker = None
            except Exception as exc:  # noqa: BLE001 - the request's own error
                request.future.set_exception(exc)
        with self._lock:
            self._workers.pop(slot, None)
        if worker is not None:
            worker.stop()

    def _replace(self, slot: int) -> WorkerProcess | None:
        with self._lock:
            self._workers.pop(slot, None)
        try:
            worker = WorkerProcess(self._python)
        except (WorkerDied, OSError):
            return None
        with self._lock:
            self._workers[slot] = worker
        return worker

    # -- teardown ----------------------------------------------------------------

    def _check_usable(self, label: str = "a request") -> None:
        if self._pid != os.getpid():
            raise CompileError(label, "", detail=(
                f"the compile pool belongs to process {self._pid}; this process was forked "
                "from it (use shared_pool() or a new CompilePool)"))
        if self._closed:
            raise CompileError(label, "", detail="the compile pool is closed")

    def close(self, timeout: float = 5.0) -> None:
        """Fail the requests still queued, let the ones in flight finish (up to
        ``timeout`` seconds, then their workers are killed), stop every worker
        and wait for them. Idempotent; a no-op in a forked child."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        _open_pools.discard(self)
        if self._pid != os.getpid():
            return
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                break
            if request is not _STOP and request.future.set_running_or_notify_cancel():
                request.future.set_exception(CompileError(
                    request.label, "", detail="the compile pool was closed first"))
        for _ in threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stragglers = list(self._workers.values())
        for worker in stragglers:  # still compiling after the deadline
            worker._kill()
        for thread in threads:
            thread.join(1.0)

    def __enter__(self) -> CompilePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_open_pools: weakref.WeakSet[CompilePool] = weakref.WeakSet()
_shared: CompilePool | None = None
_shared_lock = threading.Lock()


def shared_pool(workers: int | str | None = "auto") -> CompilePool:
    """The process's pool, created (and started in the background) on first use
    with ``resolve_worker_count(workers)`` workers, grown if more are asked for
    later. Closed at exit."""
    global _shared
    count = resolve_worker_count(workers)
    if count < 1:
        raise ValueError("shared_pool needs at least one worker (0 means: compile in process)")
    with _shared_lock:
        if _shared is None or _shared._closed or _shared._pid != os.getpid():
            _shared = CompilePool(count)
        elif count > _shared.size:
            _shared.grow(count)
        return _shared


def start_workers(setting: int | str | None = None) -> int:
    """Start the shared pool's workers now, in the background, if ``setting``
    (as :func:`resolve_worker_count` reads it) asks for any: for a caller that
    knows it will compile soon (the command line, before it parses the
    program). Returns the number of workers asked for (0: none started)."""
    count = resolve_worker_count(setting)
    if count:
        shared_pool(count)
    return count


def _close_all() -> None:
    """An exit hook: stop every pool's workers and wait for them, so that their
    CPU time counts in the process's and none outlives it. A compile still in
    flight has half a second to finish."""
    for pool in list(_open_pools):
        pool.close(timeout=0.5)


def _forget_in_child() -> None:
    global _shared, _shared_lock
    _shared = None
    _shared_lock = threading.Lock()


process_exit.on_exit(_close_all, service=True)
os.register_at_fork(after_in_child=_forget_in_child)
