"""The host's end of one executor process: requests from any thread, their
timeouts, and what the host learns when the executor dies.

Concurrency: any number of host threads may have requests in flight at
once; replies are matched to requests by id (a waiting thread reads them
itself when no other thread does, else a background reader). No lock is
held while a request waits, so while one thread waits for a ``call`` that runs
for minutes, another can link, write slots, read memory or call. Requests
the executor sends (a lazy compile, ``unbound``, from whichever of its
threads reached the stub) are served each on a thread of their own, so
they are served even while every host thread is waiting.

Timeouts (``timeout``, seconds, per session or per request) bound each
request separately: the time from sending it to its reply, not counting
time during which the host itself was serving the executor's requests
(compiling for it). For ``call`` and ``run_main`` that is how long the code
runs. The executor answering other requests meanwhile does not extend a
call's time: its service thread being responsive says nothing about the
code, and killing the process is the only way to stop code that runs
away. A timeout kills the executor; the request that timed out raises
:class:`ExecutorTimeoutError` and so does every other request in flight,
naming the request that timed out and what it was running.

Crash isolation: if the executor dies, every request in flight raises
:class:`ExecutorCrashedError` (a signal) or :class:`ExecutorExitedError`
(an exit status) naming what was running; later requests raise the same
error until the engine restarts the executor.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ...errors import (
    ExecutorCrashedError,
    ExecutorError,
    ExecutorExitedError,
    ExecutorTimeoutError,
)
from .channel import Pending, SharedChannel
from .protocol import VERSION, ChannelClosed, Handler, OnRequest


class _BusyClock:
    """Total time during which the host was serving at least one executor request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._serving = 0
        self._since = 0.0
        self._total = 0.0

    def __enter__(self) -> None:
        with self._lock:
            if self._serving == 0:
                self._since = time.monotonic()
            self._serving += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._serving -= 1
            if self._serving == 0:
                self._total += time.monotonic() - self._since

    def total(self) -> float:
        with self._lock:
            ongoing = time.monotonic() - self._since if self._serving else 0.0
            return self._total + ongoing


class ExecutorSession:
    """A running executor process and the channel to it.

    ``handler(header, data)`` serves the executor's requests (on a thread per
    request). ``before_request`` (if set) runs before every request except
    ``slots``: the stub manager flushes queued slot writes there.
    Thread-safety: every method may be called from any thread; ``lock``
    guards the session's state and is never held while waiting.
    """

    def __init__(self, handler: Handler, *, timeout: float | None = None):
        host_end, child_end = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "execution_engine.executors.remote", str(child_end.fileno())],
            pass_fds=[child_end.fileno()], close_fds=True)
        child_end.close()
        self.timeout = timeout
        self.lock = threading.Lock()
        self.before_request: Callable[[], None] | None = None
        self.dead: ExecutorError | None = None
        # Why the executor is about to stop itself (a call reached a stub that
        # could not be compiled), for the error its death raises here.
        self.last_failure: str | None = None
        self._handler = handler
        self._busy = _BusyClock()
        self._running: dict[int, str] = {}  # request id -> what it runs
        self._killed: tuple[int, str, float] | None = None  # the request that timed out
        self._closing = False
        # How the process ended, once known: (status,), or (None,) if the
        # channel broke but the process did not exit (then it was killed).
        self._ended: tuple[int | None] | None = None
        self._status_lock = threading.Lock()
        # The reader thread reaches the session only weakly: an engine dropped
        # without close() is still collected (and closes its executor).
        self.channel = SharedChannel(host_end, _weakly(self._on_request))
        self._reader = threading.Thread(target=self.channel.pump, daemon=True,
                                        name="execution-engine-executor-reader")
        self._reader.start()
        reply, _ = self.request("hello", version=VERSION, timeout=60)
        self.pid = reply["pid"]

    # -- requests ------------------------------------------------------------

    def request(self, op: str, payload: bytes = b"", *, running: str = "",
                timeout: float | None = None, **fields: Any) -> tuple[dict[str, Any], bytes]:
        """Send a request and wait for its reply; raise an ExecutorError
        subclass if the executor dies or does not answer in time, and
        :class:`~.protocol.RemoteError` if it failed to serve the request."""
        return self.wait(self.start(op, payload, running=running, **fields),
                         running=running, timeout=timeout)

    def start(self, op: str, payload: bytes = b"", *, running: str = "",
              **fields: Any) -> Pending:
        """Send a request without waiting (requests started one after another
        are served in that order); finish it with :meth:`wait`."""
        if self.dead is not None:
            raise self.dead
        if self.before_request is not None and op != "slots":
            self.before_request()
        try:
            pending = self.channel.start(op, payload, **fields)
        except ChannelClosed:
            raise self._died(None, running) from None
        if running:
            with self.lock:
                self._running[pending.ident] = running
        return pending

    def wait(self, pending: Pending, *, running: str = "",
             timeout: float | None = None) -> tuple[dict[str, Any], bytes]:
        """The reply to ``pending`` (see :meth:`request`)."""
        limit = timeout if timeout is not None else self.timeout
        try:
            if limit is None:
                self.channel.wait(pending)
            else:
                self._wait_within(pending, running, limit)
            reply: tuple[dict[str, Any], bytes] = pending.result()
            return reply
        except ChannelClosed:
            raise self._died(pending.ident, running) from None
        finally:
            self.channel.forget(pending)
            with self.lock:
                self._running.pop(pending.ident, None)

    def _wait_within(self, pending: Pending, running: str, limit: float) -> None:
        start, busy_at_start = time.monotonic(), self._busy.total()
        while True:
            used = time.monotonic() - start - (self._busy.total() - busy_at_start)
            if used >= limit:
                raise self._timed_out(pending, running, limit)
            if self.channel.wait(pending, limit - used):
                return

    def _on_request(self, ident: int, header: dict[str, Any], data: bytes) -> None:
        threading.Thread(target=self._serve, args=(ident, header, data), daemon=True,
                         name=f"execution-engine-serve-{header.get('op')}").start()

    def _serve(self, ident: int, header: dict[str, Any], data: bytes) -> None:
        with self._busy:
            try:
                self.channel.serve(ident, header, data, self._handler)
            except ChannelClosed:
                pass  # the executor is gone; its requests die with it

    # -- death -----------------------------------------------------------------

    def _timed_out(self, pending: Pending, running: str, limit: float) -> ExecutorError:
        self.channel.forget(pending)
        with self.lock:
            first = self.dead is None and self._killed is None and not self._closing
            if first:
                self._killed = (pending.ident, pending.op, limit)
        if first:
            self._kill()
        return self._died(pending.ident, running)

    def _died(self, ident: int | None, running: str) -> ExecutorError:
        """The error a request raises when the executor is gone (and, the first
        time, the session's ``dead``)."""
        status = self._exit_status()
        with self.lock:
            what = running or ", ".join(sorted(set(self._running.values())))
            error = self._death(ident, status, what)
            if self.dead is None:
                self.dead = error
        return error

    def _death(self, ident: int | None, status: int | None, running: str) -> ExecutorError:
        if self._closing:
            return ExecutorError(f"the executor was closed{_what(running)}")
        if self._killed is not None:
            killer, op, limit = self._killed
            if killer == ident:
                return ExecutorTimeoutError(
                    f"the executor did not answer '{op}'{_what(running)} within {limit:g} s; "
                    "it was killed", running)
            return ExecutorTimeoutError(
                f"the executor was killed because '{op}' got no answer within {limit:g} s"
                f"{_what(running)}", running)
        if status is None:
            return ExecutorError(f"the channel to the executor broke{_what(running)} but the "
                                 "executor did not exit; it was killed")
        if status < 0:
            name = signal.Signals(-status).name if -status in signal.valid_signals() else "?"
            reason = f": {self.last_failure}" if self.last_failure else ""
            return ExecutorCrashedError(
                f"the executor was killed by signal {-status} ({name}){_what(running)}{reason}",
                -status, running)
        return ExecutorExitedError(
            f"the executor exited with status {status}{_what(running)}", status, running)

    def _exit_status(self) -> int | None:
        """The executor's exit status (waiting for it once; the other threads
        reuse it); ``None`` if it did not exit although the channel broke
        (then it is killed, and the signal is not reported as the cause)."""
        with self._status_lock:
            if self._ended is None:
                try:
                    self._ended = (self.process.wait(timeout=10),)
                except subprocess.TimeoutExpired:
                    self._kill()
                    self.process.wait()
                    self._ended = (None,)
            return self._ended[0]

    def _kill(self) -> None:
        try:
            self.process.kill()
        except ProcessLookupError:
            pass

    def close(self) -> None:
        """Ask the executor to leave (a call still running there raises
        ExecutorError, "closed"), reap it and stop the reader. Idempotent."""
        with self.lock:
            if self._closing:
                return
            self._closing = True
            alive = self.dead is None
        if alive:
            try:
                self.request("exit", timeout=10)
            except ExecutorError:
                pass
        self.channel.shutdown()
        self._exit_status()
        self._reader.join(timeout=10)
        self.channel.close()
        with self.lock:
            if self.dead is None:
                self.dead = ExecutorError("the executor was closed")


def _weakly(method: Callable[[int, dict[str, Any], bytes], None]) -> OnRequest:
    ref = weakref.WeakMethod(method)

    def call(ident: int, header: dict[str, Any], data: bytes) -> None:
        target = ref()
        if target is not None:
            target(ident, header, data)
    return call


def _what(running: str) -> str:
    return f" while running '{running}'" if running else ""
