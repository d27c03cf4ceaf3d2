"""C runtime cases (asserted by tests/test_c_runtime.py): they change this
process's C stdio, so each needs a process of its own."""

from __future__ import annotations

import ctypes
import os

from execution_engine.native.c_runtime import restore_stdio_buffering


def interleave(restore: bool) -> None:
    """C stdout gets "c" (no newline) before the file descriptor gets "d":
    stdout reads "cd" if C's stdout is unbuffered, "dc" if it is buffered
    (flushed only at the end)."""
    if restore:
        restore_stdio_buffering()
    libc = ctypes.CDLL(None)
    libc.printf(b"c")
    os.write(1, b"d")
    libc.fflush(None)
