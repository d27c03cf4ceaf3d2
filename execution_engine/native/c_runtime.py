"""The C and C++ runtime a JIT'd program expects: libraries and stdio buffering."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_RUNTIME = ("m", "stdc++", "gcc_s")


def c_runtime_libraries() -> list[str]:
    """The libraries to load for a program: libm and the C++ runtime (found
    once). Always all of them, as ``lli`` has them (LLVM is C++): llvmlite's
    own library usually links them already, so loading them is a reference
    count, and it is cheaper than reading every declaration of a big program
    to see whether it needs them."""
    global _found
    if _found is None:
        _found = [path for path in map(ctypes.util.find_library, _RUNTIME) if path]
    return list(_found)


_found: list[str] | None = None


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
