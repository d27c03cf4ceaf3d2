"""Remote-execution cases that need a host process of their own (asserted by
tests/test_remote.py): the executor's standard streams are the host's, a
fresh process's first link, and a host that dies without closing."""

from __future__ import annotations

import ctypes.util
import os

import llvmlite.binding as llvm

import execution_engine

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()

HELLO = r"""
@s = private constant [24 x i8] c"hello from the executor\00"
declare i32 @puts(ptr)
define i32 @hi() {
  %r = call i32 @puts(ptr @s)
  ret i32 %r
}
"""


def _tm() -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine()


def puts(remote: bool, load_libc: bool, close: bool) -> tuple[int | None, int]:
    """Call ``hi()`` (which puts a line), between two lines the host prints;
    returns the executor's pid (None in process) and the host's."""
    engine = execution_engine.create_mcjit_compiler(llvm.parse_assembly(HELLO), _tm(),
                                                    remote=remote)
    if load_libc:
        engine.load_library(ctypes.util.find_library("c") or "libc.so.6")
    print("host: before", flush=True)
    assert engine.call("hi") >= 0
    pid = engine.executor.pid if remote else None
    print("host: after", flush=True)
    if close:
        engine.close()
    return pid, os.getpid()


def host_dies_without_closing() -> None:
    """Print f()'s value and the executor's pid, then leave at once (no
    cleanup, no engine.close())."""
    module = llvm.parse_assembly("define i64 @f() {\n  ret i64 7\n}")
    engine = execution_engine.create_mcjit_compiler(module, _tm(), remote=True)
    print(engine.call("f"), engine.executor.pid, flush=True)
    os._exit(0)
