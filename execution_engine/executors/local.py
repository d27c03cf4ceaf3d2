"""The in-process executor: JIT'd code is linked into and runs in this process
(see :mod:`.base` for the protocol)."""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import llvmlite.binding as llvm

from ..ir.signature import Scalar, Signature
from ..layers.object_linking import ObjectLinkingLayer
from ..linking.resolver import ProcessResolver
from ..native import memory
from ..native.stubs import Stub, StubManager

_C_INTEGERS = ((1, ctypes.c_uint8), (8, ctypes.c_int8), (16, ctypes.c_int16),
               (32, ctypes.c_int32), (64, ctypes.c_int64))


def _c_type(scalar: Scalar) -> Any:
    if scalar.kind == "void":
        return None
    if scalar.kind == "ptr":
        return ctypes.c_size_t
    if scalar.kind == "float":
        return ctypes.c_float if scalar.bits == 32 else ctypes.c_double
    return next(c for bits, c in _C_INTEGERS if scalar.bits <= bits)


@functools.lru_cache(maxsize=512)
def c_prototype(signature: Signature) -> Any:
    """The ctypes function type of a fixed (varargs-resolved) ``signature``."""
    return ctypes.CFUNCTYPE(_c_type(signature.result), *map(_c_type, signature.params))


def call_in_process(address: int, signature: Signature, values: Sequence[Any]) -> Any:
    """Call ``address`` as ``signature`` (from :meth:`Signature.bind`) with ``values``."""
    return signature.decode(c_prototype(signature)(address)(*values))


def run_main_in_process(address: int, argv: Sequence[str], env: Sequence[str]) -> int:
    """``main(argc, argv, envp)`` at ``address``; returns its status."""
    c_argv = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
    c_env = (ctypes.c_char_p * (len(env) + 1))(*[os.fsencode(e) for e in env], None)
    main = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(address)
    return int(main(len(argv), ctypes.cast(c_argv, ctypes.c_void_p),
                    ctypes.cast(c_env, ctypes.c_void_p)))


class LocalExecutor:
    """Links and runs code in this process. ``close()`` frees every linked resource."""

    restartable = False

    @property
    def pid(self) -> int:
        return os.getpid()

    def __init__(self, target_machine: llvm.TargetMachine, *, session_capacity: int = 256):
        self.linker = ObjectLinkingLayer(target_machine, session_capacity=session_capacity)
        self.resolve_process = ProcessResolver()

    def stub_manager(self, on_unbound: Callable[[Stub], int]) -> StubManager:
        return StubManager(on_unbound)

    def call(self, address: int, signature: Signature, values: Sequence[Any], *,
             running: str = "") -> Any:
        return call_in_process(address, signature, values)

    def run_main(self, address: int, argv: Sequence[str], env: Sequence[str], *,
                 running: str = "main") -> int:
        return run_main_in_process(address, argv, env)

    def read(self, address: int, size: int) -> bytes:
        return memory.read(address, size)

    def load_library(self, path: str) -> None:
        llvm.load_library_permanently(path)

    def unbound_failed(self, message: str) -> NoReturn:
        """No Python frame can catch this (the caller is JIT'd code): stop the process."""
        os.write(2, f"execution_engine: {message}; aborting\n".encode())
        os.abort()

    def close(self) -> None:
        self.linker.close()


@dataclass(frozen=True)
class LocalExecutorSpec:
    """Run code in this process; LLJIT sessions hold ``session_capacity`` links each."""

    session_capacity: int = 256

    def __post_init__(self) -> None:
        if (isinstance(self.session_capacity, bool) or not isinstance(self.session_capacity, int)
                or self.session_capacity < 1):
            raise ValueError(f"session_capacity must be a positive int, not "
                             f"{self.session_capacity!r}")

    def create(self, target_machine: llvm.TargetMachine) -> LocalExecutor:
        return LocalExecutor(target_machine, session_capacity=self.session_capacity)
