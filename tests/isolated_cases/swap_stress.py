"""The swap stress case (asserted by tests/test_swap_stress.py): JIT'd code
runs on worker threads while the function it runs is swapped; in a process of
its own so that a crash fails the test instead of killing pytest."""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Any

import llvmlite.binding as llvm

import execution_engine

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()

SWAPS = 2000
WORKERS = 4
ITERATIONS = 500  # loop trips per call: threads are often inside a body during a swap
VERSION_STEP = 1_000_000
LOOP_SUM = ITERATIONS * (ITERATIONS - 1) // 2
CALLS_PER_NAP, NAP = 32, 0.001  # workers' pace (see the module docstring)
PAUSE_EVERY = 100  # quiescent variant: pause the workers and reclaim this often


def _work_ir(version: int) -> str:
    """``work(n)``: sum of 0..n-1 (an opaque loop) plus ``version * VERSION_STEP``."""
    return f"""
define i64 @work(i64 %n) {{
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  %s = phi i64 [0, %entry], [%s1, %loop]
  call void asm sideeffect "", ""()
  %s1 = add i64 %s, %i
  %i1 = add i64 %i, 1
  %c = icmp ult i64 %i1, %n
  br i1 %c, label %loop, label %done
done:
  %r = add i64 %s1, {version * VERSION_STEP}
  ret i64 %r
}}
"""


def calls_during_swaps(policy: str, mode: str) -> dict[str, Any]:
    """Swap ``work`` SWAPS times under ``redirection=policy`` while WORKERS
    threads call it; ``mode`` "grace" (grace_period=1) or "quiescent"
    (reclaim() at pauses). What the workers saw."""
    tm = llvm.Target.from_default_triple().create_target_machine(opt=2)
    triple, layout = tm.triple, str(tm.target_data)

    def module(text: str, name: str) -> llvm.ModuleRef:
        m = llvm.parse_assembly(text)
        m.name, m.triple, m.data_layout = name, triple, layout
        return m

    base = module(_work_ir(0) + """
define i64 @via(i64 %n) {
  %r = call i64 @work(i64 %n)
  ret i64 %r
}
""", "base")
    engine = execution_engine.create_mcjit_compiler(
        base, tm, redirection=policy, grace_period=1.0 if mode == "grace" else None)
    proto = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)
    targets = [proto(engine.get_function_address(name)) for name in ("work", "via")]
    assert all(t(ITERATIONS) == LOOP_SUM for t in targets)

    stop, final, go = threading.Event(), threading.Event(), threading.Event()
    go.set()
    parked = [threading.Event() for _ in range(WORKERS)]
    seen: list[set[int]] = [set() for _ in range(WORKERS)]
    after: list[set[int]] = [set() for _ in range(WORKERS)]
    calls = [0] * WORKERS
    calls_after = [0] * WORKERS
    errors: list[str] = []

    def worker(i: int) -> None:
        call = targets[i % 2]
        try:
            while not stop.is_set():
                if not go.is_set():
                    parked[i].set()  # not inside JIT'd code from here until go is set
                    go.wait()
                    continue
                is_final = final.is_set()
                result = call(ITERATIONS)
                calls[i] += 1
                if is_final:
                    after[i].add(result)
                    calls_after[i] += 1
                else:
                    seen[i].add(result)
                if calls[i] % CALLS_PER_NAP == 0:
                    time.sleep(NAP)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(WORKERS)]
    for t in threads:
        t.start()

    start = time.monotonic()
    version = 0
    allowed = {LOOP_SUM}
    unrelated: list[llvm.ModuleRef] = []
    reclaimed: list[int] = []
    retired_at_pause: list[int] = []
    levels = (None, 0, None, 3)  # tiering too (O3 runs the pipeline: the dearest)
    for k in range(SWAPS):
        if k % 2 == 0:
            version += 1
            allowed.add(version * VERSION_STEP + LOOP_SUM)
            engine.update_module(module(_work_ir(version), f"v{version}"))
        else:
            engine.recompile_and_relink_function("work", opt_level=levels[k // 2 % 4])
        if k % 20 == 0:  # unrelated modules (with data, calling work) come and go
            m = module(f"""
@d{k} = global i64 {k}
declare i64 @work(i64)
define i64 @u{k}() {{
  %v = load i64, ptr @d{k}
  %w = call i64 @work(i64 1)
  %r = add i64 %v, %w
  ret i64 %r
}}
""", f"u{k}")
            engine.add_module(m)
            u = ctypes.CFUNCTYPE(ctypes.c_int64)(engine.get_function_address(f"u{k}"))
            assert u() == version * VERSION_STEP + k, (u(), version, k)
            unrelated.append(m)
            if len(unrelated) > 3:
                engine.remove_module(unrelated.pop(0))
        if mode == "quiescent" and k % PAUSE_EVERY == PAUSE_EVERY - 1:
            for p in parked:
                p.clear()
            go.clear()
            for p in parked:
                p.wait()
            retired_at_pause.append(engine.stats().retired_sets)
            reclaimed.append(engine.reclaim())
            go.set()
    swap_seconds = time.monotonic() - start

    newest = version * VERSION_STEP + LOOP_SUM
    final.set()
    deadline = time.monotonic() + 20
    while min(calls_after) < 200 and time.monotonic() < deadline and not errors:
        time.sleep(0.01)
    stop.set()
    go.set()
    for t in threads:
        t.join()
    direct = [t(ITERATIONS) for t in targets]
    report = {
        "seen": sorted(set().union(*seen)),
        "after": sorted(set().union(*after)),
        "allowed": sorted(allowed),
        "newest": newest,
        "direct": direct,
        "calls": calls,
        "calls_after": calls_after,
        "errors": errors,
        "reclaimed": reclaimed,
        "retired_at_pause": retired_at_pause,
        "retired_at_end": engine.stats().retired_sets,
        "sessions": engine.stats().lljit_sessions,
        "swap_seconds": round(swap_seconds, 2),
    }
    engine.close()
    return report
