"""The host side of out-of-process execution: a RemoteExecutor.

The host compiles (IR -> objects) and plans symbols; the executor process
(:mod:`.server`) links the objects and runs the code. The engine composes
its layers on a :class:`RemoteExecutor` exactly as on a LocalExecutor: its
``linker``, ``stub_manager`` and ``resolve_process`` forward to the
executor, addresses are the executor's, and ``call``/``run_main`` run code
there.

Running and swapping at once: a call runs in the executor while other host
threads keep using the engine, so ``update_module`` on another thread
swaps a function of a running program, whose next call through the stub
reaches the new body. Slot writes (binding stubs) are queued and sent in
one message at the end of each engine operation that changes them (before
it returns), before any other request and before the host answers a lazy
compile request; the executor applies requests that run no code in
arrival order, so a slot write reaches it before anything that could run
code depending on it. Replaced bodies are unlinked in the executor under
the engine's reclamation rule (:mod:`...linking.reclaim`), as in process:
the unlink is sent when the grace period since the swap has passed (the
slot write that retired the body is always applied first) or at a
quiescent point the client declares; code that stays inside a replaced
body for longer (a ``main`` loop that is itself replaced) needs
``grace_period=None``, which ``run --watch`` uses.

Crash isolation, timeouts and concurrency: see :mod:`.session`. The engine
can start a fresh executor after a crash
(``ExecutionEngine.restart_executor``).

Thread-safety: every member may be called from any thread; the engine
serialises mutations; no lock is held while code runs.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import llvmlite.binding as llvm

from ...errors import (  # noqa: F401 - the error classes are also importable from here
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
from .protocol import RemoteError
from .session import ExecutorSession

__all__ = ["ExecutorSession", "RemoteExecutor", "RemoteExecutorSpec", "RemoteLinker",
           "RemoteStubManager"]

READ_CHUNK = 16 << 20
MAX_TIMEOUT = 1e9  # seconds; waits cannot be longer than time_t allows


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
        # Guards the slot writes' queue; held while a flush sends them, so
        # flushes reach the executor in the order their writes were made.
        self._lock = threading.Lock()
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
        with self._lock:
            self._targets[stub.id] = stub.trampoline
        return stub

    def bind(self, stub: Stub, target: int) -> None:
        with self._lock:
            self._targets[stub.id] = target
            self._writes[stub.slot] = target

    def unbind(self, stub: Stub) -> None:
        self.bind(stub, stub.trampoline)

    def target_of(self, stub: Stub) -> int:
        return self._targets[stub.id]

    def flush(self) -> None:
        """Send the queued slot writes; return once the executor applied them
        (from then on every call through those stubs, on any executor
        thread, reaches the new targets)."""
        with self._lock:
            if not self._writes:
                return
            writes, self._writes = self._writes, {}
            pending = self.session.start("slots", b"".join(
                struct.pack("<QQ", s, t) for s, t in writes.items()))
        self.session.wait(pending)

    def handle_unbound(self, stub_id: int) -> int:
        """The executor called an unbound stub: compile (raising on failure)."""
        address = self._on_unbound(self._stubs[stub_id])
        self.flush()
        return address

    def close(self) -> None:
        with self._lock:
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
    than 0 and at most :data:`MAX_TIMEOUT`) bounds each request separately,
    a call's by how long its code runs (see :mod:`.session`): one that takes
    longer kills the executor and raises ExecutorTimeoutError. ``None`` (the
    default) means no bound; 0, negative, NaN and infinite values are
    refused (``ValueError``), non-numbers too (``TypeError``)."""

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
