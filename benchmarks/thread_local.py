"""Access cost of a thread-local variable against a plain global.

One JIT'd loop of ``ITERATIONS`` iterations, each loading, adding to and
storing one 64-bit variable, in three variants compiled from the same IR
shape:

* **global**: a plain global (the reference: ratios are to it);
* **tls, per access**: a ``thread_local`` variable reached through
  ``llvm.threadlocal.address`` inside the loop, as clang >= 16 writes it at
  -O0: the engine's lowering calls ``__ee_tls_address`` on every iteration
  (``pthread_getspecific`` plus two loads): the worst case;
* **tls, direct**: the variable used directly (clang-14 style, or after an
  optimiser hoisted the intrinsic): the lowering asks for the address once
  per call of the function, at its entry.

Subjects: the engine (eager, default options); stock llvmlite MCJIT for the
plain global (it cannot link TLS at all); LLVM 14's ``lli`` running the same
loops as a whole program (native TLS through ``%fs``; its time includes
process start, so it runs ``LLI_ITERATIONS`` and reports per iteration, and
is a side note, not a ratio). Best of *reps* rounds, calling thread's CPU
time, results checked.

Run: ``python -m benchmarks.thread_local [--iterations N] [--reps R] [--no-lli]``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import tempfile
import time

import llvmlite.binding as llvm

import execution_engine

from .common import environment_line, init_llvm, target_machine

ITERATIONS = 20_000_000
LLI_ITERATIONS = 200_000_000


def _loop(name: str, var: str, per_access: bool) -> str:
    address = (f"  %p = call ptr @llvm.threadlocal.address.p0(ptr {var})\n"
               if per_access else "")
    pointer = "%p" if per_access else var
    return f"""
define i64 @{name}(i64 %n) {{
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
{address}  %v = load volatile i64, ptr {pointer}
  %v1 = add i64 %v, %i
  store volatile i64 %v1, ptr {pointer}
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, %n
  br i1 %more, label %loop, label %done
done:
  %r = load i64, ptr {pointer}
  ret i64 %r
}}
"""


IR = ("@g = global i64 0\n@t = thread_local global i64 0\n@u = thread_local global i64 0\n"
      + _loop("plain", "@g", False) + _loop("tls_access", "@t", True)
      + _loop("tls_direct", "@u", False))
VARIANTS = ("plain", "tls_access", "tls_direct")


def _best(fn, n: int, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        start = time.thread_time()
        fn(n)
        best = min(best, time.thread_time() - start)
    return best / n * 1e9


def run(iterations: int, reps: int, lli: bool) -> dict[str, float]:
    init_llvm()
    engine = execution_engine.create_mcjit_compiler(llvm.parse_assembly(IR), target_machine())
    proto = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)
    fns = {v: proto(engine.get_function_address(v)) for v in VARIANTS}
    want = sum(range(1000))
    for v in VARIANTS:
        first = fns[v](1000)
        assert first == want, (v, first)
    mcjit_module = llvm.parse_assembly("@g = global i64 0\n" + _loop("plain", "@g", False))
    mcjit = llvm.create_mcjit_compiler(mcjit_module, target_machine())
    mcjit.finalize_object()
    mcjit_plain = proto(mcjit.get_function_address("plain"))
    results: dict[str, float] = {}
    for _ in range(reps):  # interleaved rounds
        for v in VARIANTS:
            results[v] = min(results.get(v, float("inf")), _best(fns[v], iterations, 1))
        results["mcjit plain"] = min(results.get("mcjit plain", float("inf")),
                                     _best(mcjit_plain, iterations, 1))
    if lli:
        results.update(_lli())
    engine.close()
    return results


def _lli() -> dict[str, float]:
    tool = shutil.which("lli-14") or shutil.which("lli")
    if tool is None:
        return {}
    out = {}
    for v, var, per_access in (("lli plain", "@g", False), ("lli tls", "@t", False)):
        program = ("@g = global i64 0\n@t = thread_local global i64 0\n"
                   + _loop("work", var, per_access)
                   + f"define i32 @main() {{\n  %r = call i64 @work(i64 {LLI_ITERATIONS})\n"
                   "  ret i32 0\n}\n")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "p.ll")
            with open(path, "w") as f:
                f.write(program)
            before = os.times()
            done = subprocess.run([tool, "-opaque-pointers", path], capture_output=True)
            after = os.times()
            if done.returncode != 0:
                return {}
            seconds = after.children_user - before.children_user + (
                after.children_system - before.children_system)
            out[v] = seconds / LLI_ITERATIONS * 1e9
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-lli", action="store_true")
    args = parser.parse_args()
    results = run(args.iterations, args.reps, not args.no_lli)
    print(environment_line())
    print(f"load average: {os.getloadavg()[0]:.2f}")
    base = results["plain"]
    for name, ns in results.items():
        ratio = f"{ns / base:5.2f}x" if not name.startswith("lli") else "(whole process)"
        print(f"{name:14s} {ns:7.2f} ns/iteration  {ratio}")


if __name__ == "__main__":
    main()
