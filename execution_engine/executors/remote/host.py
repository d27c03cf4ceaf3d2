"""The host side of out-of-process execution: a RemoteExecutor.

The host compiles (IR -> objects) and plans symbols; the executor process
(:mod:`.server`) links the objects and runs the code. The engine composes
its layers on a :class:`RemoteExecutor` exactly as on a LocalExecutor: its
``linker``, ``stub_manager`` and ``resolve_process`` forward to the
executor, addresses are the executor's, and ``call``/``run_main`` run code
there.

Crash isolation: if the executor dies (a segfault, an abort, ``exit()`` in
JIT'd code), the request in flight raises :class:`ExecutorCrashedError` (or
:class:`ExecutorExitedError` for a normal exit) naming the signal or status
and what was running; the host is unaffected. With ``timeout`` set, a
request that takes longer kills the executor and raises
:class:`ExecutorTimeoutError`. The engine can then start a fresh executor
(``ExecutionEngine.restart_executor``).

Slot writes (binding stubs) are queued and sent in one message before the
next request that could run code, and before the host answers a lazy
compile request.

Thread-safety: the session's lock serialises all traffic.
"""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import llvmlite.binding as llvm

from ...errors import (
    ExecutionEngineError,
    ExecutorCrashedError,
    ExecutorError,
    ExecutorExitedError,
    ExecutorTimeoutError,
    LinkError,
    MemoryAccessError,
)
from ...ir.signature import Signature
from ...layers.object_linking import LinkedResource, newest_export
from ...native.stubs import STUBS_PER_CHUNK, Stub
from .protocol import VERSION, Channel, ChannelClosed, RemoteError

READ_CHUNK = 16 << 20
MAX_TIMEOUT = 1e9  # seconds; sockets cannot wait longer than time_t allows


class ExecutorSession:
    """A running executor process and the channel to it."""

    def __init__(self, handler: Callable[[dict[str, Any], bytes], tuple[dict[str, Any], bytes]],
                 *, timeout: float | None = None):
        host_end, child_end = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "execution_engine.executors.remote", str(child_end.fileno())],
            pass_fds=[child_end.fileno()], close_fds=True)
        child_end.close()
        self.channel = Channel(host_end, handler)
        self.timeout = timeout
        self.lock = threading.RLock()
        self.before_request: Callable[[], None] | None = None
        self.dead: ExecutorError | None = None
        # Why the executor is about to stop itself (a call reached a stub that
        # could not be compiled), for the error its death raises here.
        self.last_failure: str | None = None
        reply, _ = self.request("hello", version=VERSION, timeout=60)
        self.pid = reply["pid"]

    def request(self, op: str, payload: bytes = b"", *, running: str = "",
                timeout: float | None = None, **fields: Any) -> tuple[dict[str, Any], bytes]:
        """Send a request; raise an ExecutorError subclass if the executor dies."""
        with self.lock:
            if self.dead is not None:
                raise self.dead
            if self.before_request is not None and op != "slots":
                self.before_request()
            self.channel.sock.settimeout(timeout if timeout is not None else self.timeout)
            try:
                return self.channel.request(op, payload, **fields)
            except TimeoutError:
                self._kill()
                self.process.wait()
                self.dead = ExecutorTimeoutError(
                    f"the executor did not answer '{op}'{_what(running)} within "
                    f"{timeout or self.timeout} s; it was killed", running)
                raise self.dead from None
            except ChannelClosed:
                self.dead = self._death(op, running)
                raise self.dead from None

    def _death(self, op: str, running: str) -> ExecutorError:
        try:
            status = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # The channel broke but the process lives on: do not report the
            # signal we send it now as the cause.
            self._kill()
            self.process.wait()
            return ExecutorError(f"the channel to the executor broke during '{op}'"
                                 f"{_what(running)} but the executor did not exit; it was "
                                 "killed")
        if status < 0:
            name = signal.Signals(-status).name if -status in signal.valid_signals() else "?"
            reason = f": {self.last_failure}" if self.last_failure else ""
            return ExecutorCrashedError(
                f"the executor was killed by signal {-status} ({name}){_what(running)}{reason}",
                -status, running)
        return ExecutorExitedError(
            f"the executor exited with status {status}{_what(running)}", status, running)

    def _kill(self) -> None:
        try:
            self.process.kill()
        except ProcessLookupError:
            pass

    def close(self) -> None:
        with self.lock:
            if self.dead is None:
                try:
                    self.request("exit", timeout=10)
                except ExecutorError:
                    pass
            self.channel.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
                self.process.wait()
            if self.dead is None:
                self.dead = ExecutorError("the executor was closed")


def _what(running: str) -> str:
    return f" while running '{running}'" if running else ""


class RemoteLinker:
    """ObjectLinkingLayer-shaped: links in the executor."""

    def __init__(self, session: ExecutorSession):
        self.session = session
        self._resources: dict[int, LinkedResource] = {}

    def add(self, objects: Sequence[bytes], imports: Mapping[str, int], exports: Sequence[str], *,
            name: str = "") -> LinkedResource:
        try:
            reply, _ = self.session.request(
                "link", b"".join(objects), sizes=[len(o) for o in objects], imports=imports,
                exports=list(exports), name=name)
        except RemoteError as exc:
            raise LinkError(f"linking {name} in the executor failed: {exc}") from None
        resource = LinkedResource(name, {k: int(v) for k, v in reply["exports"].items()})
        self._resources[reply["resource"]] = resource
        return resource

    def remove(self, resource: LinkedResource) -> None:
        for ident, known in list(self._resources.items()):
            if known is resource:
                del self._resources[ident]
                if self.session.dead is None:
                    self.session.request("unlink", resource=ident)

    def find_symbol(self, name: str) -> int | None:
        return newest_export(self._resources.values(), name)

    @staticmethod
    def find_symbol_in(resource: LinkedResource, name: str) -> int | None:
        return resource.exports.get(name)

    def copy(self, dst: int, src: int, size: int) -> None:
        self.session.request("copy", dst=dst, src=src, size=size)

    def near_address(self) -> int:
        """See ObjectLinkingLayer.near_address (asked of the executor)."""
        reply, _ = self.session.request("near")
        return int(reply["address"])

    @property
    def session_count(self) -> int:
        return 0

    @property
    def resource_count(self) -> int:
        """How many links are in memory now."""
        return len(self._resources)

    def close(self) -> None:
        self._resources.clear()


class RemoteStubManager:
    """StubManager-shaped: stubs and slots live in the executor; the host keeps
    what each slot holds."""

    def __init__(self, session: ExecutorSession, on_unbound: Callable[[Stub], int]):
        self.session = session
        self._on_unbound = on_unbound
        self._stubs: list[Stub] = []
        self._free: list[Stub] = []
        self._targets: dict[int, int] = {}
        self._writes: dict[int, int] = {}
        session.before_request = self.flush

    def __len__(self) -> int:
        return len(self._stubs) - len(self._free)

    def allocate(self, name: str) -> Stub:
        if not self._free:
            reply, _ = self.session.request("stubs", count=STUBS_PER_CHUNK)
            base, first = reply["chunk_bases"][-1], reply["first"]
            chunk = [Stub(first + i, "", base, self) for i in range(STUBS_PER_CHUNK)]
            self._stubs.extend(chunk)
            self._free.extend(reversed(chunk))
        stub = self._free.pop()
        stub.name = name
        self._targets[stub.id] = stub.trampoline
        return stub

    def bind(self, stub: Stub, target: int) -> None:
        self._targets[stub.id] = target
        self._writes[stub.slot] = target

    def unbind(self, stub: Stub) -> None:
        self.bind(stub, stub.trampoline)

    def target_of(self, stub: Stub) -> int:
        return self._targets[stub.id]

    def flush(self) -> None:
        if self._writes:
            writes, self._writes = self._writes, {}
            self.session.request("slots", b"".join(struct.pack("<QQ", s, t)
                                                    for s, t in writes.items()))

    def handle_unbound(self, stub_id: int) -> int:
        """The executor called an unbound stub: compile (raising on failure)."""
        address = self._on_unbound(self._stubs[stub_id])
        self.flush()
        return address

    def close(self) -> None:
        self._writes.clear()


class RemoteExecutor:
    """Links and runs code in a separate executor process (see module docstring)."""

    restartable = True

    @property
    def pid(self) -> int:
        return int(self.session.pid)

    def __init__(self, *, timeout: float | None = None):
        self._stubs: RemoteStubManager | None = None
        self.session = ExecutorSession(self._handle, timeout=timeout)
        self.linker = RemoteLinker(self.session)
        self._resolved: dict[str, int | None] = {}

    def _handle(self, header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        if header["op"] == "unbound" and self._stubs is not None:
            return {"address": self._stubs.handle_unbound(int(header["stub"]))}, b""
        raise ValueError(f"the host cannot serve {header['op']!r}")

    def stub_manager(self, on_unbound: Callable[[Stub], int]) -> RemoteStubManager:
        self._stubs = RemoteStubManager(self.session, on_unbound)
        return self._stubs

    def resolve_process(self, name: str) -> int | None:
        if name not in self._resolved:
            reply, _ = self.session.request("resolve", names=[name])
            self._resolved[name] = reply["addresses"][0]
        return self._resolved[name]

    def call(self, address: int, signature: Signature, values: Sequence[Any], *,
             running: str = "") -> Any:
        reply, _ = self.session.request("call", address=address, signature=str(signature),
                                        args=list(values), running=running)
        return reply["result"]

    def run_main(self, address: int, argv: Sequence[str], env: Sequence[str], *,
                 running: str = "main") -> int:
        reply, _ = self.session.request("run_main", address=address, argv=list(argv),
                                        env=list(env), running=running)
        return int(reply["status"])

    def read(self, address: int, size: int) -> bytes:
        """Read in requests of at most ``READ_CHUNK`` bytes (a frame's size is
        bounded); :class:`MemoryAccessError` at the first unreadable byte."""
        out = bytearray()
        while len(out) < size:
            at = address + len(out)
            reply, data = self.session.request("read", address=at,
                                               size=min(READ_CHUNK, size - len(out)))
            if "unreadable" in reply:
                raise MemoryAccessError(address, size, int(reply["unreadable"]))
            out += data
        return bytes(out)

    def load_library(self, path: str) -> None:
        self.session.request("load_library", path=path)
        self._resolved.clear()  # names not found before may be found now

    def unbound_failed(self, message: str) -> NoReturn:
        """Raised back to the executor, which reports it and stops itself; the
        host's pending request then raises an ExecutorCrashedError carrying it."""
        self.session.last_failure = message
        raise ExecutionEngineError(message)

    def close(self) -> None:
        self.session.close()
        self.linker.close()


@dataclass(frozen=True)
class RemoteExecutorSpec:
    """Run code in a separate executor process; ``timeout`` (seconds, more
    than 0 and at most :data:`MAX_TIMEOUT`) bounds every request: one that
    takes longer kills the executor and raises ExecutorTimeoutError.
    ``None`` (the default) means no bound; 0, negative, NaN and infinite
    values are refused (``ValueError``), non-numbers too (``TypeError``)."""

    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.timeout is None:
            return
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds or None, not "
                            f"{self.timeout!r}")
        if not 0 < self.timeout <= MAX_TIMEOUT:
            raise ValueError(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds "
                             f"(or None: no bound), not {self.timeout!r}; 0 does not mean "
                             "'no timeout'")

    def create(self, target_machine: llvm.TargetMachine) -> RemoteExecutor:
        del target_machine  # the executor makes its own
        return RemoteExecutor(timeout=self.timeout)
