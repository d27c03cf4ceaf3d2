"""Thread-local variables: lowered to the engine's per-thread storage
(:mod:`execution_engine.thread_locals`) in every mode."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import llvmlite.binding as llvm
import pytest
from conftest import make_tm, parse_ir
from engine_modes import make, mode  # noqa: F401 - fixtures

from execution_engine import ThreadLocalError, create_mcjit_compiler
from execution_engine.ir.thread_local import lower
from execution_engine.native import tls_runtime

REPO = Path(__file__).resolve().parent.parent

COUNTER = """
@counter = thread_local global i64 100
@arr = internal thread_local(initialexec) global [4 x i64] [i64 1, i64 2, i64 3, i64 4]

define i64 @bump(i64 %d) {
  %p = call ptr @llvm.threadlocal.address.p0(ptr @counter)
  %v = load i64, ptr %p
  %n = add i64 %v, %d
  store i64 %n, ptr %p
  %a = load i64, ptr getelementptr inbounds ([4 x i64], ptr @arr, i64 0, i64 2)
  %a1 = add i64 %a, 1
  store i64 %a1, ptr getelementptr inbounds ([4 x i64], ptr @arr, i64 0, i64 2)
  ret i64 %n
}

define i64 @read() {
  %v = load i64, ptr @counter
  ret i64 %v
}

define i64 @read_arr() {
  %v = load i64, ptr getelementptr inbounds ([4 x i64], ptr @arr, i64 0, i64 2)
  ret i64 %v
}
"""

# Threads started by JIT'd code: each must see its own copy, starting at 7.
PTHREADS = """
@tls = thread_local global i64 7

declare i32 @pthread_create(ptr, ptr, ptr, ptr)
declare i32 @pthread_join(i64, ptr)

define ptr @work(ptr %arg) {
entry:
  %id = ptrtoint ptr %arg to i64
  %p = call ptr @llvm.threadlocal.address.p0(ptr @tls)
  %first = load i64, ptr %p
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
  %v = load i64, ptr %p
  %v1 = add i64 %v, %id
  store i64 %v1, ptr %p
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, 1000
  br i1 %more, label %loop, label %done
done:
  %last = load i64, ptr @tls
  %r = mul i64 %first, 1000000
  %r1 = add i64 %r, %last
  %res = inttoptr i64 %r1 to ptr
  ret ptr %res
}

; 0 when every thread saw 7 first and then only its own additions, and the
; caller's copy kept its value
define i64 @run_threads() {
entry:
  %ids = alloca [4 x i64]
  %out = alloca ptr
  %mine = call ptr @llvm.threadlocal.address.p0(ptr @tls)
  store i64 99, ptr %mine
  br label %start
start:
  %i = phi i64 [ 0, %entry ], [ %i1, %start ]
  %slot = getelementptr [4 x i64], ptr %ids, i64 0, i64 %i
  %arg = add i64 %i, 1
  %argp = inttoptr i64 %arg to ptr
  call i32 @pthread_create(ptr %slot, ptr null, ptr @work, ptr %argp)
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, 4
  br i1 %more, label %start, label %join
join:
  %j = phi i64 [ 0, %start ], [ %j1, %check ]
  %bad = phi i64 [ 0, %start ], [ %bad1, %check ]
  %jslot = getelementptr [4 x i64], ptr %ids, i64 0, i64 %j
  %tid = load i64, ptr %jslot
  call i32 @pthread_join(i64 %tid, ptr %out)
  %got = load ptr, ptr %out
  %gotn = ptrtoint ptr %got to i64
  %id = add i64 %j, 1
  %adds = mul i64 %id, 1000
  %want0 = add i64 %adds, 7000007
  %ok = icmp eq i64 %gotn, %want0
  %wrong = select i1 %ok, i64 0, i64 1
  %bad1 = or i64 %bad, %wrong
  br label %check
check:
  %j1 = add i64 %j, 1
  %jm = icmp ult i64 %j1, 4
  br i1 %jm, label %join, label %end
end:
  %mv = load i64, ptr %mine
  %mok = icmp eq i64 %mv, 99
  %mbad = select i1 %mok, i64 0, i64 2
  %all = or i64 %bad1, %mbad
  ret i64 %all
}
"""


def _fn(engine, name, *args):
    restype = ctypes.c_int64
    proto = ctypes.CFUNCTYPE(restype, *[ctypes.c_int64] * len(args))
    return proto(engine.get_function_address(name))(*args)


def _settled(baseline: int, timeout: float = 5.0) -> int:
    """live copies once exited threads' destructors have run."""
    deadline = time.monotonic() + timeout
    while tls_runtime.live_copies() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    return tls_runtime.live_copies()


def test_threads_started_by_jit_code_have_their_own_copies(make):  # noqa: F811
    engine = make(PTHREADS)
    assert engine.call("run_threads") == 0
    assert engine.call("run_threads") == 0


@pytest.mark.parametrize("options", [
    {}, {"lazy": True}, {"redirection": "single"}, {"compile_workers": 1},
    {"lazy": True, "partition": "callees"}, {"lazy": True, "compile_workers": 2}],
                         ids=["eager", "lazy", "single", "workers", "lazy-callees",
                              "lazy-background"])
def test_python_threads_each_see_their_own_copy(options):
    engine = create_mcjit_compiler(parse_ir(COUNTER, "counter"), make_tm(), **options)
    try:
        assert _fn(engine, "bump", 1) == 101 and _fn(engine, "read") == 101
        assert _fn(engine, "read_arr") == 4
        seen: dict[int, tuple[int, int, int]] = {}

        def work(i: int) -> None:
            first = _fn(engine, "read")
            for _ in range(500):
                _fn(engine, "bump", i)
            seen[i] = (first, _fn(engine, "read"), _fn(engine, "read_arr"))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == {i: (100, 100 + 500 * i, 503) for i in range(1, 5)}
        assert _fn(engine, "read") == 101 and _fn(engine, "read_arr") == 4
    finally:
        engine.close()


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_removing_the_module_frees_every_threads_copies(lazy):
    baseline = _settled(tls_runtime.live_copies())
    module = parse_ir(COUNTER, "counter")
    engine = create_mcjit_compiler(module, make_tm(), lazy=lazy)
    try:
        _fn(engine, "bump", 1)
        held = threading.Event()
        release = threading.Event()

        def hold() -> None:
            _fn(engine, "bump", 2)
            held.set()
            release.wait(10)

        thread = threading.Thread(target=hold)
        thread.start()
        held.wait(10)
        assert tls_runtime.live_copies() == baseline + 4  # 2 variables x 2 threads
        engine.remove_module(module)
        assert tls_runtime.live_copies() == baseline
        release.set()
        thread.join()
        assert _settled(baseline) == baseline
    finally:
        engine.close()


def test_removal_frees_copies_in_the_executors_process(make):  # noqa: F811
    # live() asks the runtime of the process the code runs in (remote too).
    engine = make("""
declare i64 @__ee_tls_live_copies()
define i64 @live() {
  %n = call i64 @__ee_tls_live_copies()
  ret i64 %n
}""")
    before = engine.call("live")
    counter = parse_ir(COUNTER, "counter")
    engine.add_module(counter)
    assert engine.call("bump", 1) == 101
    assert engine.call("live") == before + 2
    engine.remove_module(counter)
    assert engine.call("live") == before


def test_a_thread_frees_its_copies_when_it_exits():
    baseline = _settled(tls_runtime.live_copies())
    engine = create_mcjit_compiler(parse_ir(COUNTER, "counter"), make_tm())
    try:
        thread = threading.Thread(target=lambda: _fn(engine, "bump", 1))
        thread.start()
        thread.join()
        assert _settled(baseline) == baseline
        _fn(engine, "bump", 1)
        assert tls_runtime.live_copies() == baseline + 2
    finally:
        engine.close()  # closing releases the main thread's copies too
    assert tls_runtime.live_copies() == baseline


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_update_module_keeps_each_threads_storage(lazy):
    engine = create_mcjit_compiler(parse_ir(COUNTER, "counter"), make_tm(), lazy=lazy)
    try:
        assert _fn(engine, "bump", 5) == 105
        engine.update_module(parse_ir(COUNTER.replace("%n = add i64 %v, %d",
                                                      "%n = sub i64 %v, %d"), "v2"))
        assert _fn(engine, "bump", 1) == 104  # the new body, the same copy
        assert _fn(engine, "read") == 104
    finally:
        engine.close()


def test_another_module_reaches_the_same_copies(make):  # noqa: F811
    engine = make(COUNTER, """
@counter = external thread_local global i64
define i64 @twice() {
  %p = call ptr @llvm.threadlocal.address.p0(ptr @counter)
  %v = load i64, ptr %p
  %w = mul i64 %v, 2
  store i64 %w, ptr %p
  ret i64 %w
}""")
    assert engine.call("bump", 1) == 101
    assert engine.call("twice") == 202
    assert engine.call("read") == 202


def test_the_variable_address_is_its_control_block_with_the_image():
    engine = create_mcjit_compiler(parse_ir(COUNTER, "counter"), make_tm())
    try:
        _fn(engine, "bump", 1)
        block = engine.get_global_value_address("counter")
        words = (ctypes.c_int64 * 5).from_address(block)
        assert words[0] > 0 and words[1] == 8 and words[3] == 32  # index, size, offset
        assert words[4] == 100  # the initial image is never written
    finally:
        engine.close()


@pytest.mark.parametrize("text, culprits", [
    ("@t = thread_local global i32 1\n@p = global ptr @t", ["@p", "@t"]),
    ("@t = thread_local global i32 1\n@a = thread_local alias i32, ptr @t", ["@a"]),
    ("@t = thread_local global i32 1\n@u = thread_local global ptr @t", ["@u", "@t"]),
    ("@t = thread_local global i64 1\ndefine i64 @f() {\n"
     "  ret i64 add (i64 ptrtoint (ptr @t to i64), i64 1)\n}", ["constant expression"]),
], ids=["initializer", "alias", "tls-initializer", "binary-constexpr"])
def test_what_cannot_be_lowered_raises_thread_local_error(text, culprits):
    engine = create_mcjit_compiler(parse_ir("define i64 @ok() {\n  ret i64 1\n}", "ok"),
                                   make_tm())
    try:
        module = llvm.parse_assembly(text)
        module.name = "badtls"
        engine.add_module(module)
        with pytest.raises(ThreadLocalError) as caught:
            engine.finalize_object()
        message = str(caught.value)
        assert "badtls" in message
        for culprit in culprits:
            assert culprit in message, message
        engine.remove_module(module)
        assert engine.call("ok") == 1  # the engine carries on
    finally:
        engine.close()


def test_lowering_rewrites_accesses_and_keeps_other_modules_alone():
    plain = llvm.parse_assembly("@g = global i32 1")
    assert lower(plain, "plain").vars_name is None
    module = llvm.parse_assembly("""
@x = thread_local(localexec) global i32 42, align 4
@e = external thread_local global i32
define i32 @f(i1 %c) {
entry:
  br i1 %c, label %a, label %b
a:
  br label %b
b:
  %p = phi ptr [ @x, %entry ], [ getelementptr (i8, ptr @e, i64 4), %a ]
  %v = load i32, ptr %p
  ret i32 %v
}""")
    lowered = lower(module, "m")
    text = lowered.text
    assert "thread_local" not in text
    assert "@e = external global i32" in text
    assert lowered.count == 1 and lowered.vars_name is not None
    assert text.count("call ptr @__ee_tls_address") == 2  # once per variable, at entry
    llvm.parse_assembly(text).verify()


def test_a_cast_over_a_variable_becomes_an_instruction():
    engine = create_mcjit_compiler(parse_ir("""
@t = thread_local global i64 1
define i64 @same() {
  %a = add i64 ptrtoint (ptr @t to i64), 0
  %p = call ptr @llvm.threadlocal.address.p0(ptr @t)
  %b = ptrtoint ptr %p to i64
  %d = sub i64 %a, %b
  ret i64 %d
}""", "cast"), make_tm())
    try:
        assert engine.call("same") == 0
    finally:
        engine.close()


TLS_LL = """
@x = thread_local global i32 42, align 4

define i32 @main() {
  %p = call ptr @llvm.threadlocal.address.p0(ptr @x)
  %v = load i32, ptr %p
  ret i32 %v
}
"""


@pytest.mark.parametrize("kind", ["mcjit", "orc-lazy"])
@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
def test_tls_program_returns_42_through_the_command_line(tmp_path, kind, remote):
    program = tmp_path / "tls.ll"
    program.write_text(TLS_LL)
    args = [sys.executable, "-m", "execution_engine", "run", str(program), "--jit-kind", kind]
    result = subprocess.run(args + (["--remote"] if remote else []), capture_output=True,
                            text=True, timeout=120, cwd=REPO,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 42, result.stderr


C_PROGRAM = r"""#include <pthread.h>
#include <stdio.h>
__thread int counter = 7;
static __thread long arr[4] = {1, 2, 3, 4};
static void *work(void *p) {
  long id = (long)p;
  for (int i = 0; i < 1000; i++) counter += (int)id;
  arr[2] += id;
  return (void *)(long)(counter * 100 + arr[2]);
}
int main(void) {
  pthread_t t[4];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, work, (void *)(i + 1));
  int bad = 0;
  for (long i = 0; i < 4; i++) {
    void *r; pthread_join(t[i], &r);
    long want = (7 + 1000 * (i + 1)) * 100 + 3 + (i + 1);
    if ((long)r != want) { printf("thread %ld: %ld != %ld\n", i, (long)r, want); bad = 1; }
  }
  if (counter != 7 || arr[2] != 3) { printf("main's copy changed\n"); bad = 1; }
  printf("ok %d\n", !bad);
  return bad ? 1 : 42;
}
"""


@pytest.mark.skipif(shutil.which("clang-14") is None, reason="needs clang-14")
@pytest.mark.parametrize("opt", ["-O0", "-O1"])
@pytest.mark.parametrize("kind", ["mcjit", "orc-lazy"])
def test_a_clang14_c_program_with_thread_locals_and_pthreads(tmp_path, opt, kind):
    # clang-14 bitcode: typed pointers upgraded, variables referenced directly
    source = tmp_path / "prog.c"
    source.write_text(C_PROGRAM)
    bitcode = tmp_path / "prog.bc"
    subprocess.run(["clang-14", opt, "-emit-llvm", "-c", str(source), "-o", str(bitcode)],
                   check=True, timeout=120)
    result = subprocess.run([sys.executable, "-m", "execution_engine", "run", str(bitcode),
                             "--jit-kind", kind], capture_output=True, text=True, timeout=120,
                            cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 42 and result.stdout.strip() == "ok 1", result
