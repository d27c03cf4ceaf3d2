"""Resolution of names that JIT'd code needs from outside the engine.

Order, as MCJIT resolves: global mappings (``add_global_mapping``), then the
engine's own definitions (handled by the layers), then the process:
symbols registered with ``llvmlite.binding.add_symbol``, libraries loaded
with ``load_library_permanently`` and everything the process has loaded.

A few runtime hooks are provided by the engine itself, as ORC's
"runtime overrides" do: ``__dso_handle`` (C++ static destructor
registration needs one per image), ``exit`` (:func:`..process_exit.leave`:
the engine's threads stop before LLVM's static destructors run), and the
thread-local storage runtime's
entry points (:mod:`..native.tls_runtime`, linked in this process on the first
lookup of one of them).
"""

from __future__ import annotations

import ctypes
import threading

import llvmlite.binding as llvm
from llvmlite.binding import ffi

from .. import process_exit
from ..native import tls_runtime


class ProcessResolver:
    """Finds process symbols; thread-safe."""

    def __init__(self) -> None:
        _search_process_symbols()
        self._dso_handle = ctypes.c_uint64(0)
        self._overrides = {"__dso_handle": ctypes.addressof(self._dso_handle),
                           "exit": process_exit.exit_override}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> int | None:
        address = self._overrides.get(name)
        if address is not None:
            return address
        if name in tls_runtime.NAMES:
            return tls_runtime.runtime().addresses[name]
        with self._lock:
            return llvm.address_of_symbol(name) or None


_searching = False


def _search_process_symbols() -> None:
    """LLVM's symbol search covers the program and its libraries only after
    ``LoadLibraryPermanently(nullptr)``, which llvmlite calls only when it
    creates its first JIT. Do it once, up front."""
    global _searching
    if not _searching:
        with ffi.OutputString() as error:
            ffi.lib.LLVMPY_LoadLibraryPermanently(None, error)
        _searching = True


class GlobalMappings:
    """Names the user mapped to addresses; consulted before anything else."""

    def __init__(self) -> None:
        self._map: dict[str, int] = {}

    def add(self, name: str, address: int) -> None:
        self._map[name] = address

    def __call__(self, name: str) -> int | None:
        return self._map.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._map
