"""Out-of-process execution (``remote=True``): calls, memory and addresses in
the executor process, crash isolation and restarts, hot-swap and lazy
compilation across the process boundary, ``run_main``, constructors and the
executor's standard streams."""

from __future__ import annotations

import ctypes.util
import os
import struct
import time

import isolated
import llvmlite.binding as llvm
import pytest
from conftest import RecordingCompiler, is_mapped, make_tm, parse_ir
from isolated_cases import remote as remote_cases

from execution_engine import (
    ExecutionEngine,
    ExecutionEngineError,
    ExecutorCrashedError,
    ExecutorError,
    ExecutorExitedError,
    ExecutorTimeoutError,
    LazyCompileError,
    MemoryAccessError,
    create_mcjit_compiler,
)

LIBC = ctypes.util.find_library("c")

class RemoteEngines:
    """``remote(*ir_texts, libc=False, **options)``: a remote engine holding the
    modules (named m0, m1, ...); ``remote.modules(engine)`` lists them."""

    def __init__(self) -> None:
        self.made: list[tuple[ExecutionEngine, list[llvm.ModuleRef]]] = []

    def __call__(self, *texts: str, libc: bool = False, **options) -> ExecutionEngine:
        modules = [parse_ir(t, f"m{i}") for i, t in enumerate(texts)]
        engine = create_mcjit_compiler(modules[0], make_tm(), remote=True, **options)
        if libc:
            engine.load_library(LIBC)
        for m in modules[1:]:
            engine.add_module(m)
        self.made.append((engine, modules))
        return engine

    def modules(self, engine: ExecutionEngine) -> list[llvm.ModuleRef]:
        return next(modules for made, modules in self.made if made is engine)


@pytest.fixture
def remote():
    engines = RemoteEngines()
    yield engines
    for engine, _ in engines.made:
        engine.close()


def executor_pid(engine) -> int:
    return engine.executor.pid


def executor_maps(engine) -> list[tuple[int, int]]:
    with open(f"/proc/{executor_pid(engine)}/maps") as f:
        return [tuple(int(x, 16) for x in line.split()[0].split("-")) for line in f]


def mapped_in_executor(engine, address: int) -> bool:
    return any(lo <= address < hi for lo, hi in executor_maps(engine))


def i64(data: bytes) -> int:
    return struct.unpack("<q", data)[0]


def read_i64(engine, name: str) -> int:
    address = engine.get_global_value_address(name)
    assert address, name
    return i64(engine.read_memory(address, 8))


def assert_gone(pid: int) -> None:
    """The executor process has exited and was reaped (no zombie left)."""
    assert not os.path.exists(f"/proc/{pid}")


def executor_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) executor process."""
    try:
        with open(f"/proc/{pid}/status") as f:
            state = next(line for line in f if line.startswith("State:"))
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except (OSError, StopIteration):
        return False
    return "Z" not in state.split()[1] and b"execution_engine.executors.remote" in cmdline


# -- basics ------------------------------------------------------------------------

BASIC = r"""
@g = global i64 42
@arr = global [4 x i32] [i32 1, i32 2, i32 3, i32 4]

define i64 @add(i64 %a, i64 %b) {
  %r = add i64 %a, %b
  ret i64 %r
}
define double @fmix(double %a, i64 %b) {
  %bf = sitofp i64 %b to double
  %r = fmul double %a, %bf
  ret double %r
}
define void @set_g(i64 %v) {
  store i64 %v, ptr @g
  ret void
}
define i64 @get_g() {
  %v = load i64, ptr @g
  ret i64 %v
}
define i64 @many(i64 %a1, i64 %a2, i64 %a3, i64 %a4, i64 %a5, i64 %a6, i64 %a7, i64 %a8) {
  %m2 = mul i64 %a2, 2
  %m3 = mul i64 %a3, 3
  %m4 = mul i64 %a4, 4
  %m5 = mul i64 %a5, 5
  %m6 = mul i64 %a6, 6
  %m7 = mul i64 %a7, 7
  %m8 = mul i64 %a8, 8
  %s2 = add i64 %a1, %m2
  %s3 = add i64 %s2, %m3
  %s4 = add i64 %s3, %m4
  %s5 = add i64 %s4, %m5
  %s6 = add i64 %s5, %m6
  %s7 = add i64 %s6, %m7
  %s8 = add i64 %s7, %m8
  ret i64 %s8
}
define double @mixed(i64 %i1, double %d1, i64 %i2, double %d2, i64 %i3, double %d3,
                     i64 %i4, double %d4, i64 %i5, double %d5, i64 %i6, double %d6,
                     i64 %i7, double %d7, i64 %i8, double %d8, double %d9, double %d10) {
  %si = add i64 %i1, %i2
  %si3 = add i64 %si, %i3
  %si4 = add i64 %si3, %i4
  %si5 = add i64 %si4, %i5
  %si6 = add i64 %si5, %i6
  %si7 = add i64 %si6, %i7
  %w8 = mul i64 %i8, 1000
  %si8 = add i64 %si7, %w8
  %fi = sitofp i64 %si8 to double
  %sd = fadd double %d1, %d2
  %sd3 = fadd double %sd, %d3
  %sd4 = fadd double %sd3, %d4
  %sd5 = fadd double %sd4, %d5
  %sd6 = fadd double %sd5, %d6
  %sd7 = fadd double %sd6, %d7
  %sd8 = fadd double %sd7, %d8
  %sd9 = fadd double %sd8, %d9
  %w10 = fmul double %d10, 100.0
  %sd10 = fadd double %sd9, %w10
  %r = fadd double %fi, %sd10
  ret double %r
}
define i64 @ident(i64 %x) {
  ret i64 %x
}
define i64 @load_at(ptr %p) {
  %v = load i64, ptr %p
  ret i64 %v
}
define ptr @addr_of_g() {
  ret ptr @g
}
define ptr @self() {
  ret ptr @self
}
define ptr @addr_of_add() {
  ret ptr @add
}
"""


def test_int_and_float_arguments_and_results(remote):
    engine = remote(BASIC)
    assert engine.call("add", 2, 3) == 5
    assert engine.call("add", -7, 3) == -4
    assert engine.call("fmix", 1.5, 4, restype=float) == 6.0
    assert engine.call("fmix", float("inf"), 2, restype=float) == float("inf")
    assert engine.call("set_g", 1234, restype=None) is None
    assert engine.call("get_g") == 1234
    assert engine.call(engine.get_function_address("add"), 40, 2) == 42  # by address


def test_more_than_six_arguments(remote):
    engine = remote(BASIC)
    assert engine.call("many", 1, 2, 3, 4, 5, 6, 7, 8) == sum(i * i for i in range(1, 9))
    ints = [1, 2, 3, 4, 5, 6, 7, 8]
    doubles = [0.5, 0.25, 0.125, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 0.75]
    args = []
    for i in range(8):
        args += [ints[i], doubles[i]]
    args += doubles[8:]
    expected = sum(ints[:7]) + ints[7] * 1000 + sum(doubles[:9]) + doubles[9] * 100
    assert engine.call("mixed", *args, restype=float) == expected


def test_pointer_sized_values(remote):
    engine = remote(BASIC)
    for value in (0, 1, -1, 2**62 + 3, 2**63 - 1, -(2**63)):
        assert engine.call("ident", value) == value
    # Unsigned values above 2**63 are passed as such and come back as the
    # int64 of the same bits, as in process.
    assert engine.call("ident", 2**64 - 1) == -1
    assert engine.call("ident", 2**63 + 5) == -(2**63) + 5
    # Pointers into the executor travel as ints.
    g = engine.get_global_value_address("g")
    assert engine.call("addr_of_g") == g
    assert engine.call("load_at", g) == 42


def test_read_memory_of_globals(remote):
    engine = remote(BASIC)
    assert read_i64(engine, "g") == 42
    arr = engine.get_global_value_address("arr")
    assert struct.unpack("<4i", engine.read_memory(arr, 16)) == (1, 2, 3, 4)
    engine.call("set_g", -5, restype=None)
    assert read_i64(engine, "g") == -5


def test_addresses_are_the_executors(remote):
    engine = remote(BASIC)
    function = engine.get_function_address("add")
    data = engine.get_global_value_address("g")
    assert function and data
    for address in (function, data):
        assert mapped_in_executor(engine, address)
        assert not is_mapped(address), hex(address)
    assert read_i64(engine, "g") == 42  # read through the executor, not ctypes


def test_function_pointer_identity_in_the_executor(remote):
    engine = remote(BASIC)
    assert engine.call("self") == engine.get_function_address("self")
    assert engine.call("addr_of_add") == engine.get_function_address("add")
    # The address code takes is callable in the executor.
    assert engine.call(engine.call("addr_of_add"), 20, 22) == 42


# -- crash isolation ----------------------------------------------------------------

CRASHY = r"""
declare void @abort()
declare void @exit(i32)

define i64 @answer() {
  ret i64 42
}
define i64 @crash_null() {
  %v = load volatile i64, ptr null
  ret i64 %v
}
define i64 @do_abort() {
  call void @abort()
  ret i64 0
}
define i64 @do_exit() {
  call void @exit(i32 3)
  ret i64 0
}
define i64 @spin() {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %j, %loop ]
  %j = add i64 %i, 1
  store volatile i64 %j, ptr @counter
  br label %loop
}
@counter = global i64 0
"""


def check_restart(engine, old_pid: int) -> None:
    """After a failure: the engine starts a fresh executor that answers right."""
    with pytest.raises(ExecutorError):  # the dead executor stays dead until restarted
        engine.call("answer")
    engine.restart_executor()
    assert executor_pid(engine) != old_pid
    assert engine.call("answer") == 42
    assert engine.call("answer") == 42


def test_null_dereference_raises_crashed_with_sigsegv(remote):
    engine = remote(CRASHY, libc=True)
    assert engine.call("answer") == 42
    pid = executor_pid(engine)
    with pytest.raises(ExecutorCrashedError) as info:
        engine.call("crash_null")
    assert info.value.signal == 11
    assert info.value.running == "crash_null"
    assert "crash_null" in str(info.value) and "11" in str(info.value)
    assert_gone(pid)
    check_restart(engine, pid)


def test_abort_raises_crashed_with_sigabrt(remote):
    engine = remote(CRASHY, libc=True)
    pid = executor_pid(engine)
    with pytest.raises(ExecutorCrashedError) as info:
        engine.call("do_abort")
    assert info.value.signal == 6
    assert "do_abort" in str(info.value)
    assert_gone(pid)
    check_restart(engine, pid)


def test_exit_in_jitted_code_raises_exited_with_status(remote):
    engine = remote(CRASHY, libc=True)
    pid = executor_pid(engine)
    with pytest.raises(ExecutorExitedError) as info:
        engine.call("do_exit")
    assert info.value.status == 3
    assert "do_exit" in str(info.value) and "3" in str(info.value)
    assert_gone(pid)
    check_restart(engine, pid)


def test_infinite_loop_with_timeout_kills_the_executor(remote):
    """Whatever the error's class, the executor is killed and can be replaced."""
    engine = remote(CRASHY, libc=True, timeout=2)
    assert engine.call("answer") == 42
    pid = executor_pid(engine)
    with pytest.raises(ExecutorError):
        engine.call("spin")
    assert_gone(pid)
    check_restart(engine, pid)


def test_infinite_loop_with_timeout_raises_timeout_error(remote):
    engine = remote(CRASHY, libc=True, timeout=2)
    assert engine.call("answer") == 42
    pid = executor_pid(engine)
    start = time.monotonic()
    with pytest.raises(ExecutorTimeoutError) as info:
        engine.call("spin")
    elapsed = time.monotonic() - start
    assert "spin" in str(info.value) and info.value.running == "spin"
    assert elapsed < 2 + 4, elapsed
    assert_gone(pid)


def test_read_memory_of_an_unmapped_address_is_refused(remote):
    # Reads go through the kernel: nothing faults, the executor carries on
    # (tests/test_remote_edges.py has the other bad reads).
    engine = remote(CRASHY, libc=True)
    pid = executor_pid(engine)
    with pytest.raises(MemoryAccessError, match="0x8"):
        engine.read_memory(8, 8)
    assert executor_pid(engine) == pid
    assert engine.call("answer") == 42


def test_crash_in_run_main_names_main(remote):
    engine = remote("""
        define i32 @main(i32 %argc, ptr %argv) {
          %v = load volatile i32, ptr null
          ret i32 %v
        }
        define i64 @answer() {
          ret i64 42
        }
    """)
    pid = executor_pid(engine)
    with pytest.raises(ExecutorCrashedError) as info:
        engine.run_main(["prog"], [])
    assert info.value.signal == 11 and "main" in str(info.value)
    check_restart(engine, pid)


@pytest.mark.slow
def test_crash_restart_stress(remote):
    """THE BAR: 100 x (a NULL dereference raises, restart, the next call is right)."""
    engine = remote(CRASHY, libc=True)
    fds_before = len(os.listdir("/proc/self/fd"))
    pids = set()
    answers = []
    start = time.perf_counter()
    for _ in range(100):
        pids.add(executor_pid(engine))
        with pytest.raises(ExecutorCrashedError) as info:
            engine.call("crash_null")
        assert info.value.signal == 11
        engine.restart_executor()
        answers.append(engine.call("answer"))
    total = time.perf_counter() - start
    print(f"\n100 x (crash + restart_executor + call): {total:.1f} s "
          f"({total * 10:.0f} ms per round)")
    assert answers == [42] * 100
    assert len(pids) == 100
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2  # no leaked sockets
    assert total < 120


# -- hot-swap across the process boundary -----------------------------------------

SWAP_V1 = r"""
@g = global i64 5

define i64 @bump() {
  %v = load i64, ptr @g
  %n = add i64 %v, 1
  store i64 %n, ptr @g
  ret i64 %n
}
define i64 @caller() {
  %r = call i64 @bump()
  %s = mul i64 %r, 100
  ret i64 %s
}
define ptr @bump_address() {
  ret ptr @bump
}
"""

SWAP_V2 = r"""
@g = global i64 0

define i64 @bump() {
  %v = load i64, ptr @g
  %n = add i64 %v, 10
  store i64 %n, ptr @g
  ret i64 %n
}
"""


def test_update_module_keeps_globals(remote):
    engine = remote(SWAP_V1)
    stub = engine.get_function_address("bump")
    assert engine.call("bump") == 6
    assert engine.call("bump") == 7
    engine.update_module(parse_ir(SWAP_V2, "v2"))
    assert read_i64(engine, "g") == 7  # the value survives the update
    assert engine.call("bump") == 17
    assert engine.call("caller") == 2700  # callers reach the new body
    assert read_i64(engine, "g") == 27
    assert engine.get_function_address("bump") == stub
    assert engine.call("bump_address") == stub


def test_update_module_survives_a_restart(remote):
    engine = remote(SWAP_V1)
    assert engine.call("bump") == 6
    engine.update_module(parse_ir(SWAP_V2, "v2"))
    engine.restart_executor()
    # A fresh process: globals start from the original module's values and the
    # update is still current.
    assert read_i64(engine, "g") == 5
    assert engine.call("bump") == 15


@pytest.mark.parametrize("opt_level", [None, 3])
def test_recompile_and_relink_function(remote, opt_level):
    engine = remote(SWAP_V1)
    stub = engine.get_function_address("bump")
    assert engine.call("bump") == 6
    old_body = engine.function_info("bump").body
    body = engine.recompile_and_relink_function("bump", opt_level=opt_level)
    assert body and body != old_body
    assert mapped_in_executor(engine, body) and not is_mapped(body)
    assert engine.get_function_address("bump") == stub
    assert engine.call("bump") == 7  # the global kept its value
    assert engine.call("caller") == 800
    assert engine.call(body) == 9  # the new body is callable directly
    assert read_i64(engine, "g") == 9


def test_remove_module(remote):
    engine = remote(SWAP_V1, """
        define i64 @extra(i64 %x) {
          %r = mul i64 %x, 3
          ret i64 %r
        }
        @extra_data = global i64 77
    """)
    extra = engine.get_function_address("extra")
    assert engine.call("extra", 5) == 15
    assert read_i64(engine, "extra_data") == 77
    module = remote.modules(engine)[1]
    engine.remove_module(module)
    assert engine.get_function_address("extra") == 0
    assert engine.get_global_value_address("extra_data") == 0
    assert engine.call("bump") == 6  # the rest is untouched
    # Calling the removed function's stale address stops the executor only.
    pid = executor_pid(engine)
    with pytest.raises(ExecutorCrashedError) as info:
        engine.call(extra, 5)
    assert info.value.signal == 6
    engine.restart_executor()
    assert executor_pid(engine) != pid
    assert engine.get_function_address("extra") == 0
    assert engine.call("bump") == 6
    module.close()


# -- lazy compilation across the process boundary ----------------------------------

LAZY = r"""
declare i64 @no_such_symbol_anywhere(i64)

define i64 @sq(i64 %x) {
  %r = mul i64 %x, %x
  ret i64 %r
}
define i64 @f(i64 %x) {
  %a = call i64 @sq(i64 %x)
  %b = add i64 %a, 1
  ret i64 %b
}
define ptr @self() {
  ret ptr @self
}
define i64 @unused(i64 %x) {
  ret i64 %x
}
define i64 @bad(i64 %x) {
  %r = call i64 @no_such_symbol_anywhere(i64 %x)
  ret i64 %r
}
"""


def lazy_with_log(remote, text: str = LAZY) -> tuple[object, list[list[str]]]:
    """A remote lazy engine and the log of what it compiles (per compile, the
    functions defined, shared-local prefixes stripped)."""
    recorder = RecordingCompiler()
    return remote(text, lazy=True, compiler=recorder), recorder.log


def test_lazy_compiles_on_first_call_in_the_executor(remote):
    engine, log = lazy_with_log(remote)
    f = engine.get_function_address("f")
    assert f and mapped_in_executor(engine, f)
    engine.finalize_object()
    assert log == []  # nothing compiled before the first call
    assert engine.call("f", 7) == 50
    compiled = [name for names in log for name in names]
    assert "f" in compiled and "sq" in compiled
    assert "unused" not in compiled and "bad" not in compiled
    count = len(log)
    assert engine.call("f", 3) == 10
    assert len(log) == count  # compiled once


def test_lazy_function_pointer_identity(remote):
    engine, log = lazy_with_log(remote)
    before = engine.get_function_address("self")
    assert log == []
    assert engine.call("self") == before
    assert any("self" in names for names in log)
    assert engine.get_function_address("self") == before


def test_lazy_link_failure_called_from_python_raises_here(remote):
    engine = remote(LAZY, lazy=True)
    assert engine.call("f", 2) == 5
    pid = executor_pid(engine)
    with pytest.raises(LazyCompileError) as info:
        engine.call("bad", 1)
    assert info.value.function == "bad" and info.value.module == "module 'm0'"
    assert "no_such_symbol_anywhere" in info.value.reason
    assert executor_pid(engine) == pid and engine.call("f", 3) == 10  # nothing was lost


def test_lazy_link_failure_in_jitted_code_stops_the_executor_only(remote):
    engine, log = lazy_with_log(remote, LAZY + CALLS_BAD)
    assert engine.call("f", 2) == 5
    pid = executor_pid(engine)
    with pytest.raises(ExecutorCrashedError) as info:
        engine.call("calls_bad", 1)
    assert info.value.signal == 6
    # The host's error carries the reason, not only the signal.
    assert "'bad'" in str(info.value) and "no_such_symbol_anywhere" in str(info.value)
    engine.restart_executor()
    assert executor_pid(engine) != pid
    compiled = len(log)
    assert engine.call("f", 4) == 17  # compiled lazily again in the new executor
    assert len(log) > compiled


CALLS_BAD = r"""
define i64 @calls_bad(i64 %x) {
  %r = call i64 @bad(i64 %x)
  ret i64 %r
}
"""



def test_lazy_hot_swap(remote):
    engine = remote(SWAP_V1, lazy=True)
    assert engine.call("bump") == 6
    assert engine.call("bump") == 7
    engine.update_module(parse_ir(SWAP_V2, "v2"))
    assert read_i64(engine, "g") == 7
    assert engine.call("bump") == 17
    assert engine.call("caller") == 2700
    body = engine.recompile_and_relink_function("bump", opt_level=3)
    assert mapped_in_executor(engine, body)
    assert engine.call("bump") == 37
    engine.restart_executor()
    assert engine.call("bump") == 15

# -- programs: run_main, constructors, standard streams -----------------------------

MAIN = r"""
@argc_seen = global i64 0
@arg1_digit = global i64 0
@envc_seen = global i64 0
@env0_first = global i64 0

define i32 @main(i32 %argc, ptr %argv, ptr %envp) {
entry:
  %ac = sext i32 %argc to i64
  store i64 %ac, ptr @argc_seen
  %a1p = getelementptr ptr, ptr %argv, i64 1
  %a1 = load ptr, ptr %a1p
  %c = load i8, ptr %a1
  %cz = zext i8 %c to i64
  %d = sub i64 %cz, 48
  store i64 %d, ptr @arg1_digit
  %e0 = load ptr, ptr %envp
  %e0c = load i8, ptr %e0
  %e0z = zext i8 %e0c to i64
  store i64 %e0z, ptr @env0_first
  br label %count
count:
  %i = phi i64 [ 0, %entry ], [ %i1, %more ]
  %slot = getelementptr ptr, ptr %envp, i64 %i
  %entry_ptr = load ptr, ptr %slot
  %end = icmp eq ptr %entry_ptr, null
  br i1 %end, label %done, label %more
more:
  %i1 = add i64 %i, 1
  br label %count
done:
  store i64 %i, ptr @envc_seen
  %status = add i32 %argc, 40
  ret i32 %status
}
"""


def test_run_main_with_argv_and_env(remote):
    engine = remote(MAIN)
    status = engine.run_main(["prog", "7x", "b"], ["ZED=1", "A=2", "Q=3"])
    assert status == 43
    assert read_i64(engine, "argc_seen") == 3
    assert read_i64(engine, "arg1_digit") == 7
    assert read_i64(engine, "envc_seen") == 3
    assert read_i64(engine, "env0_first") == ord("Z")


def test_static_constructors_run_in_the_executor(remote):
    engine = remote(r"""
        @g = global i64 0
        @order = global i64 0
        @llvm.global_ctors = appending global [2 x { i32, ptr, ptr }] [
          { i32, ptr, ptr } { i32 200, ptr @second, ptr null },
          { i32, ptr, ptr } { i32 100, ptr @first, ptr null }]
        @llvm.global_dtors = appending global [1 x { i32, ptr, ptr }] [
          { i32, ptr, ptr } { i32 100, ptr @dtor, ptr null }]

        define internal void @first() {
          store i64 99, ptr @g
          %o = load i64, ptr @order
          %o1 = mul i64 %o, 10
          %o2 = add i64 %o1, 1
          store i64 %o2, ptr @order
          ret void
        }
        define internal void @second() {
          %o = load i64, ptr @order
          %o1 = mul i64 %o, 10
          %o2 = add i64 %o1, 2
          store i64 %o2, ptr @order
          ret void
        }
        define internal void @dtor() {
          store i64 -1, ptr @g
          ret void
        }
        define i64 @get() {
          %v = load i64, ptr @g
          ret i64 %v
        }
    """)
    assert read_i64(engine, "g") == 0
    engine.run_static_constructors()
    assert read_i64(engine, "g") == 99
    assert read_i64(engine, "order") == 12  # by priority
    assert engine.call("get") == 99
    engine.run_static_destructors()
    assert engine.call("get") == -1
    # After a restart the constructors have to be run again.
    engine.restart_executor()
    assert read_i64(engine, "g") == 0
    engine.run_static_constructors()
    assert read_i64(engine, "g") == 99


def run_puts(*, remote: bool = True, load_libc: bool = True, close: bool = True,
             unbuffered: bool = False) -> isolated.Outcome:
    """A fresh host process calls ``hi()`` (which puts a line) between two lines
    of its own; PYTHONUNBUFFERED is set only if ``unbuffered``."""
    return isolated.run(remote_cases.puts, remote, load_libc, close,
                        env={"PYTHONUNBUFFERED": "1" if unbuffered else None})


@pytest.mark.parametrize("close", [True, False], ids=["closed", "left-open"])
def test_executor_stdout_is_the_hosts(close):
    outcome = run_puts(close=close)
    pid, host_pid = outcome.value
    assert "hello from the executor\n" in outcome.stdout
    assert "host: before" in outcome.stdout and "host: after" in outcome.stdout
    assert pid != host_pid  # the code ran in another process
    assert "Traceback" not in outcome.stderr, outcome.stderr


def test_executor_stdout_is_buffered_under_pythonunbuffered():
    outcome = run_puts(unbuffered=True)
    assert outcome.ok, outcome.describe()
    assert "hello from the executor\n" in outcome.stdout, outcome.stdout


def test_process_symbols_resolve_on_first_link():
    """A fresh executor resolves libc for the first module it links."""
    outcome = run_puts(load_libc=False)
    assert outcome.ok, outcome.describe()
    assert "hello from the executor\n" in outcome.stdout


def test_process_symbols_resolve_on_first_link_in_process():
    """The same in a fresh host process without remote execution (llvmlite's
    MCJIT resolves libc in a fresh process)."""
    outcome = run_puts(remote=False, load_libc=False)
    assert outcome.ok, outcome.describe()
    assert "hello from the executor\n" in outcome.stdout


def test_restart_executor_needs_a_remote_engine(tm):
    engine = create_mcjit_compiler(parse_ir("define i64 @f() {\n  ret i64 1\n}"), tm)
    try:
        with pytest.raises(ExecutionEngineError):
            engine.restart_executor()
    finally:
        engine.close()


def test_closing_stops_the_executor(remote):
    engine = remote(BASIC)
    assert engine.call("add", 1, 1) == 2
    pid, process = executor_pid(engine), engine.executor.session.process
    engine.close()
    assert_gone(pid)
    assert process.returncode == 0


def test_executor_leaves_quietly_when_the_host_dies():
    # The harness waits until every holder of the pipes (the executor too) is gone.
    outcome = isolated.run(remote_cases.host_dies_without_closing)
    assert outcome.returncode == 0, outcome.describe()
    value, pid = map(int, outcome.stdout.split())
    assert value == 7
    assert not executor_alive(pid)
    assert outcome.stderr == "", outcome.stderr
