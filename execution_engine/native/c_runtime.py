"""The C and C++ runtime a JIT'd program expects: libraries and stdio buffering."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import llvmlite.binding as llvm

_CXX_MARKERS = ("__cxa_", "__gxx_personality", "_Z", "_Unwind_")


def c_runtime_libraries(modules: list[llvm.ModuleRef]) -> list[str]:
    """The libraries to load for a program: libm, and the C++ runtime when the
    program declares what it defines."""
    declared = [f.name for m in modules for f in m.functions if f.is_declaration]
    declared += [g.name for m in modules for g in m.global_variables if g.is_declaration]
    names = ["m"]
    if any(name.startswith(_CXX_MARKERS) for name in declared):
        names += ["stdc++", "gcc_s"]
    return [path for path in map(ctypes.util.find_library, names) if path]


_BUFSIZ = 8192
_stdio_buffers: list[ctypes.Array[ctypes.c_char]] = []


def restore_stdio_buffering() -> None:
    """Give the program the C stdio buffering a native program gets.

    A Python started with ``-u`` or ``PYTHONUNBUFFERED=1`` makes C's stdin
    and stdout unbuffered, which turns every getchar() into a read(2).
    """
    libc = ctypes.CDLL(None)
    iofbf, iolbf = 0, 1
    for stream, fd in (("stdin", 0), ("stdout", 1)):
        handle = ctypes.c_void_p.in_dll(libc, stream)
        mode = iolbf if stream == "stdout" and os.isatty(fd) else iofbf
        # glibc keeps the 1-byte buffer Python installed unless given a new one.
        buffer = ctypes.create_string_buffer(_BUFSIZ)
        _stdio_buffers.append(buffer)  # lives as long as the stream
        libc.setvbuf(handle, buffer, mode, ctypes.c_size_t(_BUFSIZ))
