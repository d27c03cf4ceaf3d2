"""The in-process executor: JIT'd code is linked into and runs in this process
(see :mod:`.base` for the protocol)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import llvmlite.binding as llvm

from ..layers.object_linking import ObjectLinkingLayer
from ..linking.resolver import ProcessResolver
from ..native.stubs import Stub, StubManager
from .base import ScalarType


def c_signature(args: Sequence[Any], restype: ScalarType) -> Any:
    """The ctypes function type for scalar/pointer-sized ``args`` and ``restype``."""
    argtypes: list[Any] = []
    for value in args:
        if isinstance(value, bool) or isinstance(value, int):
            argtypes.append(ctypes.c_uint64 if value >= 1 << 63 else ctypes.c_int64)
        elif isinstance(value, float):
            argtypes.append(ctypes.c_double)
        else:
            raise TypeError(f"only int and float arguments can be passed, not {value!r}")
    results: dict[Any, Any] = {int: ctypes.c_int64, float: ctypes.c_double, None: None}
    if restype not in results:
        raise TypeError(f"restype must be int, float or None, not {restype!r}")
    return ctypes.CFUNCTYPE(results[restype], *argtypes)


def call_in_process(address: int, args: Sequence[Any], restype: ScalarType) -> Any:
    return c_signature(args, restype)(address)(*args)


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

    def call(self, address: int, args: Sequence[Any], restype: ScalarType, *,
             running: str = "") -> Any:
        return call_in_process(address, args, restype)

    def run_main(self, address: int, argv: Sequence[str], env: Sequence[str], *,
                 running: str = "main") -> int:
        return run_main_in_process(address, argv, env)

    def read(self, address: int, size: int) -> bytes:
        return ctypes.string_at(address, size)

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
