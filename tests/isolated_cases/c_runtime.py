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


_CXX_NEW = """
declare ptr @_Znwm(i64)
declare void @_ZdlPv(ptr)
define i32 @f() {
  %p = call ptr @_Znwm(i64 4)
  store i32 42, ptr %p
  %v = load i32, ptr %p
  call void @_ZdlPv(ptr %p)
  ret i32 %v
}
"""


def cxx_runtime_resolves() -> int:
    """A module calling C++'s operator new and delete, linked after loading
    the libraries :func:`c_runtime_libraries` names."""
    import llvmlite.binding as llvm

    import execution_engine
    from execution_engine.native.c_runtime import c_runtime_libraries

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target_machine = llvm.Target.from_default_triple().create_target_machine(jit=True)
    engine = execution_engine.create_mcjit_compiler(llvm.parse_assembly(_CXX_NEW),
                                                    target_machine)
    for library in c_runtime_libraries():
        engine.load_library(library)
    return int(ctypes.CFUNCTYPE(ctypes.c_int)(engine.get_function_address("f"))())
