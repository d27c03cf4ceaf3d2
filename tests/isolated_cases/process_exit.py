"""Programs that call ``exit()`` from JIT'd code (asserted by
tests/test_process_exit.py): each needs a process of its own to leave."""

from __future__ import annotations

import ctypes
import sys
import threading

import llvmlite.binding as llvm

import execution_engine
from execution_engine import process_exit

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()

PROGRAM = r"""
@said = private constant [15 x i8] c"program atexit\00"
declare i32 @__cxa_atexit(ptr, ptr, ptr)
declare i32 @puts(ptr)
declare void @exit(i32)

define internal void @at_exit(ptr %unused) {
  %r = call i32 @puts(ptr @said)
  ret void
}

define void @leave(i32 %status) {
  %r = call i32 @__cxa_atexit(ptr @at_exit, ptr null, ptr null)
  call void @exit(i32 %status)
  unreachable
}
"""

_BUSY = "define i32 @f(i32 %x) {\n  %y = add i32 %x, 1\n  ret i32 %y\n}\n"


def exit_while_a_thread_is_inside_llvm(status: int, options: dict[str, object]) -> None:
    """A thread parses IR without pause (as a background cut does) and stops
    at the exit hook; JIT'd code then calls ``exit(status)``."""
    stop = threading.Event()
    parsed = threading.Event()

    def parse_forever() -> None:
        while not stop.is_set():
            module = llvm.parse_assembly(_BUSY)
            module.get_function("f")
            str(module)
            parsed.set()

    thread = threading.Thread(target=parse_forever, daemon=True)

    @process_exit.on_exit
    def stop_parsing() -> None:
        stop.set()
        thread.join()
        print("hook ran", flush=True)

    thread.start()
    parsed.wait()
    target_machine = llvm.Target.from_default_triple().create_target_machine(jit=True)
    engine = execution_engine.create_mcjit_compiler(
        llvm.parse_assembly(PROGRAM), target_machine, **options)
    leave = ctypes.CFUNCTYPE(None, ctypes.c_int)(engine.get_function_address("leave"))
    sys.stdout.flush()
    leave(status)
    raise AssertionError("exit() returned")


def leave_runs_hooks_in_reverse(status: int) -> None:
    process_exit.on_exit(lambda: print("service", file=sys.stderr, flush=True), service=True)
    for word in ("registered first", "registered second"):
        process_exit.on_exit(lambda word=word: print(word, file=sys.stderr, flush=True))
    process_exit.on_exit(lambda: 1 / 0)  # a failing hook is skipped
    print("buffered", end="")  # Python's stdio is flushed before C exit()
    process_exit.leave(status)
