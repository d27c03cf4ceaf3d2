"""Parallel eager compilation (issue 13, item 2): a finalization's modules are
compiled at the same time in the compile workers, a big module cut into
partitions (internal symbols promoted to hidden names) that link as one set;
the results behave as in-process compilation."""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import llvmlite.binding as llvm
import pytest
from conftest import parse_ir

from execution_engine import CompileError, create_mcjit_compiler
from execution_engine.compile_service import schedule, shared_pool
from execution_engine.compile_service.backend import WorkerCompiler
from execution_engine.compile_service.pool import resolve_worker_count

N = 120  # functions: enough for the engine to cut the module, alone or with another


def jit_tm() -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine(jit=True, opt=2)


def big_module(n: int = N, *, extra: str = "") -> str:
    """``n`` functions (``f0`` .. ``f<n-1>``, internal but for the even and the
    last) that call their predecessor, read an internal counter and private
    constants, plus an internal constructor in the middle."""
    lines = ["@counter = internal global i64 5",
             "@.k = private unnamed_addr constant i64 3",
             "@0 = private constant i64 11",
             "@total = global i64 0",
             "@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] "
             "[{ i32, ptr, ptr } { i32 65535, ptr @init, ptr null }]"]
    for k in range(n):
        linkage = "" if k % 2 == 0 or k == n - 1 else "internal "
        prev = f"call i64 @f{k - 1}(i64 %x)" if k else "add i64 %x, 0"
        lines += [f"define {linkage}i64 @f{k}(i64 %x) {{",
                  f"  %p = {prev}",
                  "  %c = load i64, ptr @counter",
                  "  %k = load i64, ptr @.k",
                  "  %z = load i64, ptr @0",
                  "  %a = add i64 %p, %c",
                  "  %b = mul i64 %a, %k",
                  "  %d = add i64 %b, %z",
                  f"  %e = xor i64 %d, {k}",
                  "  ret i64 %e", "}"]
        if k == n // 2:
            lines += ["define internal void @init() {",
                      "  %t = load i64, ptr @total",
                      "  %u = add i64 %t, 1000",
                      "  store i64 %u, ptr @total",
                      "  store i64 7, ptr @counter",
                      "  ret void", "}"]
    return "\n".join(lines) + "\n" + extra


def model(x: int, n: int = N, counter: int = 7) -> int:
    mask = (1 << 64) - 1
    value = x
    for k in range(n):
        value = ((((value + counter) * 3) + 11) ^ k) & mask
    return value - (1 << 64) if value >> 63 else value


def cuts(engine) -> tuple[int, int]:
    """Modules the engine's worker backend cut, and cuts it compiled again whole."""
    backend = engine._stack.compile_layer.compiler  # noqa: SLF001
    assert isinstance(backend, WorkerCompiler)
    return backend.cut_modules, backend.split_fallbacks


def make(text: str, name: str, workers: int = 2, **options):
    return create_mcjit_compiler(parse_ir(text, name), jit_tm(), compile_workers=workers,
                                 **options)


def test_a_big_module_is_cut_linked_as_one_set_and_behaves_as_in_process():
    expected = model(5)
    for workers in (0, 2):
        engine = make(big_module(), "big", workers)
        engine.finalize_object()
        engine.run_static_constructors()
        assert engine.stats().compiles == 1  # one module, however many partitions
        if workers:
            assert cuts(engine) == (1, 0)
        assert engine.call(f"f{N - 1}", 5) == expected
        total = engine.get_global_value_address("total")
        assert ctypes.c_int64.from_address(total).value == 1000
        # internal functions stay invisible under their own names, as in process
        assert engine.get_function_address("f1") == 0
        engine.close()


def test_a_small_module_is_not_cut():
    engine = make(big_module(schedule.SPLIT_MIN_FUNCTIONS - 2), "small")
    engine.finalize_object()
    assert engine.stats().compiles == 1 and cuts(engine) == (0, 0)
    engine.close()


def test_modules_finalized_together_spread_over_the_workers():
    pool = shared_pool(2)
    engine = make(big_module(6), "m0")
    # Workers start in the background; under load one could serve the whole
    # batch before the other greets. Spreading is what is tested: start both.
    deadline = time.monotonic() + 60
    while len(pool.stats()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    before = {s.pid: s.requests for s in pool.stats()}
    modules = []
    for i in range(1, 8):
        text = big_module(6).replace("@f", f"@m{i}_f").replace("@total", f"@total{i}")
        text = text.replace("@init", f"@init{i}")
        modules.append(parse_ir(text, f"m{i}"))
        engine.add_module(modules[-1])
    engine.finalize_object()
    engine.run_static_constructors()
    for i in range(1, 8):
        assert engine.call(f"m{i}_f5", 5) == model(5, 6)
    after = {s.pid: s.requests for s in pool.stats()}
    used = [pid for pid, n in after.items() if n > before.get(pid, 0)]
    assert len(used) == 2  # both workers took part
    engine.close()


def test_remove_module_frees_every_partition():
    engine = make("define i64 @other() {\n  ret i64 4\n}\n", "other")
    big = parse_ir(big_module(), "big")
    engine.add_module(big)
    engine.finalize_object()
    assert cuts(engine) == (1, 0)
    linked = engine.stats().linked_sets
    assert engine.call(f"f{N - 1}", 5) == model(5, counter=5)  # no constructor ran
    engine.remove_module(big)
    assert engine.get_function_address("f0") == 0
    assert engine.get_global_value_address("total") == 0
    assert engine.stats().linked_sets == linked - 1
    assert engine.call("other") == 4
    engine.close()


def test_recompile_a_function_of_a_cut_module():
    engine = make(big_module(), "big", compile_in_place=False)
    engine.finalize_object()
    engine.run_static_constructors()
    last = f"f{N - 1}"
    before = engine.call(last, 5)
    engine.recompile_and_relink_function(last)
    assert engine.call(last, 5) == before == model(5)
    engine.close()


def test_update_module_of_a_cut_module_keeps_internal_state():
    engine = make(big_module(), "big")
    engine.finalize_object()
    engine.run_static_constructors()
    patch = parse_ir(f"""
        define i64 @f{N - 1}(i64 %x) {{
          %y = add i64 %x, 1
          ret i64 %y
        }}""", "patch")
    engine.update_module(patch)
    assert engine.call(f"f{N - 1}", 5) == 6
    assert engine.call(f"f{N - 2}", 5) == model(5, N - 1)  # still its own code
    engine.close()


def test_object_cache_hooks_see_one_object_per_module():
    stored = {}
    engine = make(big_module(), "big")
    engine.set_object_cache(lambda module, data: stored.setdefault(module.name, data),
                            lambda module: None)
    engine.finalize_object()
    engine.run_static_constructors()
    assert list(stored) == ["big"] and cuts(engine) == (0, 0)
    assert engine.call(f"f{N - 1}", 5) == model(5)
    engine.close()
    # the stored object stands for the whole module
    again = make(big_module(), "big")
    again.set_object_cache(lambda module, data: None, lambda module: stored[module.name])
    again.finalize_object()
    again.run_static_constructors()
    assert again.stats().compiles == 0
    assert again.call(f"f{N - 1}", 5) == model(5)
    again.close()


BAD_ASM = """
define void @bad_asm() {
  call void asm sideeffect "bogus_instruction %eax", ""()
  ret void
}
"""


def test_a_crash_in_one_partition_names_its_functions_and_the_rest_survives():
    engine = make(big_module(), "good")
    engine.finalize_object()
    bad = parse_ir(big_module(N).replace("@f", "@g").replace("@total", "@gt").replace(
        "@init", "@ginit") + BAD_ASM + "define void @calls_bad() {\n  call void @bad_asm()\n"
        "  ret void\n}\n", "bad")
    engine.add_module(bad)
    with pytest.raises(CompileError) as info:
        engine.finalize_object()
    message = str(info.value)
    assert "'bad'" in message and "partition" in message and "bogus_instruction" in message
    engine.remove_module(bad)
    engine.run_static_constructors()
    assert engine.call(f"f{N - 1}", 5) == model(5)
    engine.close()


def test_a_single_function_crash_names_the_function():
    engine = make("define i64 @ok() {\n  ret i64 1\n}\n", "ok")
    bad = parse_ir(BAD_ASM, "asm_mod")
    engine.add_module(bad)
    with pytest.raises(CompileError, match=r"asm_mod.*function 'bad_asm'.*bogus_instruction"):
        engine.finalize_object()
    engine.remove_module(bad)
    assert engine.call("ok") == 1
    engine.close()


@pytest.mark.slow
def test_a_hundred_compile_time_crashes_through_the_engine(capsys):
    engine = make("define i64 @ok(i64 %x) {\n  %y = add i64 %x, 1\n  ret i64 %y\n}\n", "ok")
    start = time.perf_counter()
    for i in range(100):
        bad = parse_ir(BAD_ASM.replace("bad_asm", f"bad_asm_{i}"), f"crash {i}")
        engine.add_module(bad)
        with pytest.raises(CompileError) as info:
            engine.finalize_object()
        message = str(info.value)
        assert f"'crash {i}'" in message and f"bad_asm_{i}" in message
        assert "invalid instruction mnemonic 'bogus_instruction'" in message
        engine.remove_module(bad)
        assert engine.call("ok", i) == i + 1
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n100 compile-time crashes through the engine: {seconds:.2f} s "
              f"({seconds * 10:.0f} ms each, CompileError and a call after each)")
    assert len(shared_pool(2).stats()) <= 2
    engine.close()


# -- the workers: "auto", shared, torn down, never waited for ----------------------


def test_auto_is_the_usable_cores_and_engines_share_one_pool():
    cores = len(os.sched_getaffinity(0))
    assert resolve_worker_count("auto") == cores
    a = make("define i64 @a() {\n  ret i64 1\n}\n", "a", "auto")
    b = make("define i64 @b() {\n  ret i64 2\n}\n", "b", 1)
    assert a.options.compile_workers == cores
    backends = [e._stack.compile_layer.compiler for e in (a, b)]  # noqa: SLF001
    assert all(isinstance(x, WorkerCompiler) for x in backends)
    assert backends[0].pool is backends[1].pool is shared_pool(1)
    assert a.call("a") + b.call("b") == 3
    a.close()
    b.close()


_EXIT_SCRIPT = """
import ctypes, sys, time
import llvmlite.binding as llvm
from execution_engine import create_mcjit_compiler
from execution_engine.compile_service import shared_pool
llvm.initialize_native_target(); llvm.initialize_native_asmprinter()
module = llvm.parse_assembly("define i64 @f() {\\n  ret i64 3\\n}\\n")
tm = llvm.Target.from_default_triple().create_target_machine(jit=True)
engine = create_mcjit_compiler(module, tm, compile_workers=2)
assert engine.call("f") == 3
while len(shared_pool(2).stats()) < 2:
    time.sleep(0.02)
pids = sorted(s.pid for s in shared_pool(2).stats())
other = create_mcjit_compiler(llvm.parse_assembly(""), llvm.Target.from_default_triple()
                              .create_target_machine(jit=True), compile_workers=2)
assert sorted(s.pid for s in shared_pool(2).stats()) == pids  # started once per process
print(" ".join(map(str, pids)), flush=True)
ctypes.CDLL(None).exit(0)  # as the command line leaves: no Python exit handlers
"""


def test_workers_start_once_and_end_with_a_host_that_leaves_through_c_exit():
    proc = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


def test_the_host_does_not_wait_for_a_worker_that_died():
    engine = make("define i64 @ok() {\n  ret i64 1\n}\n", "ok", 1)
    engine.finalize_object()
    pool = shared_pool(1)
    # a module that takes seconds to compile; its worker is killed early on
    slow = parse_ir(big_module(3000, extra=""), "slow")
    engine.add_module(slow)
    known = {s.pid for s in pool.stats()}

    def kill_busy_worker() -> None:
        time.sleep(0.5)
        for stat in pool.stats():
            if stat.pid in known:
                os.kill(stat.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_busy_worker)
    start = time.perf_counter()
    killer.start()
    with pytest.raises(CompileError, match="signal 9"):
        engine.finalize_object()
    killer.join()
    assert time.perf_counter() - start < 5.0
    engine.remove_module(slow)
    assert engine.call("ok") == 1
    engine.close()


# -- the schedule ------------------------------------------------------------------


def test_schedule_cuts_only_what_shortens_the_batch():
    many = [50_000, 42_000, 48_000, 49_000, 43_000, 34_000] + [10_000] * 27
    assert schedule.partition_counts(many, [30] * len(many), 2) == [1] * len(many)
    one = schedule.partition_counts([2_000_000], [1500], 2)
    assert one[0] >= 2
    sqlite = schedule.partition_counts([2_180_000, 520_000], [1546, 350], 2)
    assert sqlite[0] >= 2 and sqlite[1] == 1
    assert schedule.partition_counts([2_000_000], [1500], 1) == [1]
    assert schedule.partition_counts([2_000_000], [5], 2) == [1]  # too few functions
    assert schedule.partition_counts([2_000_000], [1500], 2, splittable=[False]) == [1]
    assert schedule.largest_first([3, 9, 1, 9]) == [1, 3, 0, 2]
    assert schedule.makespan([5, 4, 3, 3, 3], 2) == 10  # largest first, not optimal (9)


def test_the_command_line_caches_a_cut_module_and_reuses_its_partitions(tmp_path):
    program = tmp_path / "big.ll"
    main = ("define i32 @main() {\n"
            f"  %r = call i64 @f{N - 1}(i64 5)\n"
            "  %t = trunc i64 %r to i32\n  %s = and i32 %t, 127\n  ret i32 %s\n}\n")
    program.write_text(big_module() + main)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "execution_engine", "run", str(program), "--stats=json",
               "--cache-dir", str(tmp_path / "cache"), "--compile-workers", "2"]
    runs = []
    for _ in range(2):
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == model(5) & 127, proc.stderr
        runs.append(json.loads(proc.stderr.strip().splitlines()[-1])["engine"])
    assert runs[0]["cache_misses"] == 1 and runs[0]["compiles"] == 1
    assert runs[1]["cache_hits"] == 1 and runs[1]["compiles"] == 0
    entries = [p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert any(b"EEOBJS" in data for data in entries)  # the partitions' objects, together


def test_the_command_line_compiles_in_workers_by_default(monkeypatch):
    cli = importlib.import_module("execution_engine.cli.main")

    monkeypatch.delenv("EXECUTION_ENGINE_COMPILE_WORKERS", raising=False)
    opts = cli._parser().parse_args(["run", "x.ll"])  # noqa: SLF001
    assert cli.compile_workers(opts) == "auto"
    opts = cli._parser().parse_args(["run", "x.ll", "--jit-kind", "orc-lazy"])  # noqa: SLF001
    assert cli.compile_workers(opts) == "auto"  # first calls in process, the rest ahead
    monkeypatch.setenv("EXECUTION_ENGINE_COMPILE_WORKERS", "1")
    assert cli.compile_workers(opts) == "1"
    opts = cli._parser().parse_args(["run", "x.ll", "--compile-workers", "0"])  # noqa: SLF001
    assert cli.compile_workers(opts) == "0"


def test_the_command_line_refuses_a_bad_worker_count(tmp_path):
    program = tmp_path / "p.ll"
    program.write_text("define i32 @main() {\n  ret i32 0\n}\n")
    proc = subprocess.run([sys.executable, "-m", "execution_engine", "run", str(program),
                           "--compile-workers", "many"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1 and "'many'" in proc.stderr and "Traceback" not in proc.stderr
