"""The Executor protocol: where JIT'd code is linked, lives and runs.

The engine composes its layers on one executor: :class:`~.local.LocalExecutor`
(this process) or :class:`~.remote.host.RemoteExecutor` (a separate process
that may crash without taking the host down). Everything above the executor
(planning, the symbol table, what a stub means) stays in the host; the
executor offers:

* ``linker``: links object bytes with absolute imports into one removable
  resource (``add``/``remove``/``find_symbol``/``find_symbol_in``/``copy``);
* ``stub_manager(on_unbound)``: stubs and pointer slots in its memory;
* ``resolve_process(name)``: its process's symbols;
* ``call``/``run_main``/``read``/``load_library``: running code and reading
  its memory (``call`` marshals by a :class:`~..ir.signature.Signature`;
  ``read`` raises :class:`MemoryAccessError` for memory it cannot read);
* ``unbound_failed(message)``: what happens when a call from JIT'd code
  reached a stub that cannot be bound (nothing can unwind through JIT'd
  frames: in process that ends the process; remotely it ends the executor
  and the host raises);
* ``restartable`` and ``close()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, Protocol

import llvmlite.binding as llvm

from ..ir.signature import Signature
from ..layers.object_linking import LinkedResource
from ..native.stubs import Stub


class Linker(Protocol):
    """Links objects into the executor's memory (ObjectLinkingLayer-shaped)."""

    def add(self, objects: Sequence[bytes], imports: Mapping[str, int],
            exports: Sequence[str], *, name: str = "") -> LinkedResource: ...

    def remove(self, resource: LinkedResource) -> None: ...

    def find_symbol(self, name: str) -> int | None: ...

    def copy(self, dst: int, src: int, size: int) -> None: ...

    def near_address(self) -> int:
        """An address next to where the next link's memory will be mapped."""

    @property
    def session_count(self) -> int: ...

    @property
    def resource_count(self) -> int: ...

    def close(self) -> None: ...


class StubAllocator(Protocol):
    """Stubs and pointer slots in the executor's memory (StubManager-shaped)."""

    def allocate(self, name: str) -> Stub: ...

    def bind(self, stub: Stub, target: int) -> None: ...

    def unbind(self, stub: Stub) -> None: ...

    def target_of(self, stub: Stub) -> int: ...

    def flush(self) -> None:
        """Make every bind/unbind so far visible to code running in the
        executor (in process they already are); returns once they are."""

    def __len__(self) -> int: ...

    def close(self) -> None: ...


class Executor(Protocol):
    """See the module docstring. Thread-safety: every member may be called from
    any thread; the engine serialises mutations."""

    @property
    def linker(self) -> Linker: ...

    @property
    def restartable(self) -> bool: ...

    @property
    def pid(self) -> int:
        """The process the code runs in."""

    def stub_manager(self, on_unbound: Callable[[Stub], int]) -> StubAllocator: ...

    def resolve_process(self, name: str) -> int | None: ...

    def call(self, address: int, signature: Signature, values: Sequence[Any], *,
             running: str = "") -> Any:
        """Call ``address`` as fixed ``signature`` with ``values`` (both from
        :meth:`~..ir.signature.Signature.bind`); returns the decoded result."""

    def run_main(self, address: int, argv: Sequence[str], env: Sequence[str], *,
                 running: str = "main") -> int: ...

    def read(self, address: int, size: int) -> bytes: ...

    def load_library(self, path: str) -> None: ...

    def unbound_failed(self, message: str) -> NoReturn: ...

    def close(self) -> None: ...


class ExecutorSpec(Protocol):
    """How to start an executor (part of the engine's options)."""

    def create(self, target_machine: llvm.TargetMachine) -> Executor: ...
