"""Call overhead of the redirection policies, and what the first swap in a module costs.

Two call-heavy workloads, each JIT'd by every subject from the same IR:

* **loop**: a JIT'd loop of ``ITERATIONS`` iterations calling a tiny
  ``noinline`` function of the same module each time (``tiny(acc, i) = acc
  + 3*i + 1``): time per iteration, dominated by the call;
* **fib**: recursive ``fib(32)`` (numba's favourite; 7 million calls of a
  function to itself): time per ``fib(32)``.

Subjects: llvmlite's MCJIT (the reference: every ratio is to it), the
engine under each redirection policy - ``"direct"`` (the default: calls
inside a module bound directly), ``"stub"`` (every call through the
callee's stub, which jumps through its pointer slot), ``"single"`` (call
sites load the slot), ``"none"`` (no stubs at all, no swapping) - the three
swappable ones again after ``recompile_and_relink_function`` of the callee
(``tiny``, ``fib``), and llvmlite's LLJIT. Best of *reps* rounds, subjects
interleaved in each round; wall time (``time.perf_counter``) and the
calling thread's CPU time (``time.thread_time``, steadier on a loaded
machine). Every result is checked.

**First swap**: under ``"direct"`` the first replacement of a function in a
module links the module's object again with every call through stubs (once
per module); later swaps cost what they cost under ``"stub"``. For generated
modules of N functions (:class:`benchmarks.swap.SwapChain`, ``f<N/2>``
swapped), fresh engines per policy: CPU time (``time.process_time``) of the
first ``update_module`` / ``recompile_and_relink_function`` of ``f<N/2>``
and the median of the next ``SWAPS`` ones, checked against the Python model.

**Compile cost**: ``"direct"`` prints a module whose object calls its own
functions once, to find the functions it only calls. CPU time of
``create_mcjit_compiler`` + ``finalize_object`` + one lookup of a generated
module of ``COMPILE_N`` functions (each calling the previous one), under
``"direct"`` and ``"stub"``, interleaved, medians.

Run: ``python -m benchmarks.calls [--quick] [--iterations N] [--reps R]
[--sizes 100,1000,5000] [--no-write]``.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import llvmlite.binding as llvm

import execution_engine

from .common import MASK, ChainModule, cpu_time, environment_line, parse, target_machine
from .report import RESULTS, markdown_table, update_section
from .swap import SwapChain, check

TITLE = "Call overhead of the redirection policies"
ITERATIONS = 50_000_000
FIB_N = 32
REPS = 5
SIZES = (100, 1000, 5000)
FIRST_REPS = {100: 5, 1000: 3, 5000: 1}  # fresh engines per (N, policy, kind)
SWAPS = 5  # further swaps after the first, per engine
GOAL = 1.02  # the default policy / MCJIT (issue 15: fib(32) <= 1.02x stock)
COMPILE_N = 1000
COMPILE_REPS = 7

LOOP_IR = """
define i64 @tiny(i64 %acc, i64 %i) noinline {
  %m = mul i64 %i, 3
  %a = add i64 %acc, %m
  %r = add i64 %a, 1
  ret i64 %r
}

define i64 @loop(i64 %n) {
entry:
  br label %head
head:
  %i = phi i64 [ 0, %entry ], [ %i1, %body ]
  %acc = phi i64 [ 0, %entry ], [ %acc1, %body ]
  %c = icmp ult i64 %i, %n
  br i1 %c, label %body, label %exit
body:
  %acc1 = call i64 @tiny(i64 %acc, i64 %i)
  %i1 = add i64 %i, 1
  br label %head
exit:
  ret i64 %acc
}
"""

FIB_IR = """
define i64 @fib(i64 %n) {
  %small = icmp slt i64 %n, 2
  br i1 %small, label %done, label %rec
done:
  ret i64 %n
rec:
  %a = sub i64 %n, 1
  %b = sub i64 %n, 2
  %x = call i64 @fib(i64 %a)
  %y = call i64 @fib(i64 %b)
  %r = add i64 %x, %y
  ret i64 %r
}
"""

_FN = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)


def _fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@dataclass(frozen=True)
class Workload:
    key: str
    ir: str
    entry: str
    callee: str  # what the "after a swap" subjects recompile
    arg: int
    expected: int
    calls: int  # calls per run (for ns per call)
    unit: str  # how a run is reported


def workloads(iterations: int) -> list[Workload]:
    return [
        Workload("loop", LOOP_IR, "loop", "tiny", iterations,
                 (3 * iterations * (iterations - 1) // 2 + iterations) & MASK, iterations,
                 "ns per iteration"),
        Workload("fib", FIB_IR, "fib", "fib", FIB_N, _fib(FIB_N), 2 * _fib(FIB_N + 1) - 1,
                 f"ms per fib({FIB_N})"),
    ]


@dataclass
class Subject:
    """One way of running one workload."""

    key: str
    workload: Workload
    run: Callable[[int], int] | None = None
    close: Callable[[], None] = lambda: None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    error: str | None = None

    def best(self, cpu: bool) -> float | None:
        times = self.cpu if cpu else self.wall
        return min(times) if times and self.error is None else None


def _engine(policy: str, swap: bool) -> Callable[[Workload], tuple[Callable, Callable]]:
    def make(w: Workload) -> tuple[Callable, Callable]:
        ee = execution_engine.create_mcjit_compiler(parse(w.ir), target_machine(),
                                                    redirection=policy)
        ee.finalize_object()
        if swap:
            ee.recompile_and_relink_function(w.callee)
            ee.reclaim()
        return _FN(ee.get_function_address(w.entry)), ee.close
    return make


def _mcjit(w: Workload) -> tuple[Callable, Callable]:
    ee = llvm.create_mcjit_compiler(parse(w.ir), target_machine())
    ee.finalize_object()
    return _FN(ee.get_function_address(w.entry)), ee.close


def _lljit(w: Workload) -> tuple[Callable, Callable]:
    tm = target_machine()
    jit = llvm.create_lljit_compiler(tm)
    tracker = llvm.JITLibraryBuilder().add_ir(w.ir).export_symbol(w.entry).link(jit, w.key)

    def close() -> None:
        tracker.close()
        jit.close()
        tm.close()

    return _FN(tracker[w.entry]), close


SUBJECTS: list[tuple[str, str, Callable[[Workload], tuple[Callable, Callable]]]] = [
    ("mcjit", "llvmlite MCJIT", _mcjit),
    ("direct", 'engine, redirection="direct" (the default: calls inside a module direct)',
     _engine("direct", False)),
    ("stub", 'engine, redirection="stub" (every call through stub + slot)',
     _engine("stub", False)),
    ("single", 'engine, redirection="single" (call site loads the slot)',
     _engine("single", False)),
    ("none", 'engine, redirection="none" (no stubs, no swapping)', _engine("none", False)),
    ("direct-swapped", 'engine, "direct", after recompile_and_relink_function(callee)',
     _engine("direct", True)),
    ("stub-swapped", 'engine, "stub", after recompile_and_relink_function(callee)',
     _engine("stub", True)),
    ("single-swapped", 'engine, "single", after recompile_and_relink_function(callee)',
     _engine("single", True)),
    ("lljit", "llvmlite LLJIT", _lljit),
]
LABELS = {key: label for key, label, _ in SUBJECTS}


def measure_calls(iterations: int, reps: int, log: Callable[[str], None]) -> list[Subject]:
    subjects: list[Subject] = []
    for w in workloads(iterations):
        for key, _, make in SUBJECTS:
            s = Subject(key, w)
            try:
                s.run, s.close = make(w)
            except Exception as exc:  # noqa: BLE001 - reported as n/a
                s.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            subjects.append(s)
    try:
        for s in subjects:  # warm-up (page faults, caches) and correctness on a small input
            if s.error is None and s.run is not None:
                small = 1000 if s.workload.key == "loop" else 20
                want = workloads(small)[0].expected if s.workload.key == "loop" else _fib(20)
                got = s.run(small)
                if got != want:
                    s.error = f"{s.workload.entry}({small}) = {got}, expected {want}"
        for rep in range(reps):
            for s in subjects:
                if s.error is not None or s.run is None:
                    continue
                cpu_start = time.thread_time()
                start = time.perf_counter()
                got = s.run(s.workload.arg)
                s.wall.append(time.perf_counter() - start)
                s.cpu.append(time.thread_time() - cpu_start)
                if got != s.workload.expected:
                    s.error = f"{s.workload.entry}({s.workload.arg}) = {got}"
            log(f"  round {rep + 1}/{reps}: " + ", ".join(
                f"{s.workload.key}/{s.key} {_per_run(s, s.wall[-1])}" for s in subjects
                if s.wall and s.error is None))
    finally:
        for s in subjects:
            s.close()
    return subjects


def _per_run(s: Subject, seconds: float) -> str:
    if s.workload.key == "loop":
        return f"{seconds / s.workload.calls * 1e9:.3f} ns"
    return f"{seconds * 1e3:.2f} ms"


# -- first swap vs later swaps ---------------------------------------------------------


@dataclass
class SwapRow:
    n: int
    policy: str
    kind: str  # "update" or "recompile"
    first: list[float] = field(default_factory=list)
    later: list[float] = field(default_factory=list)
    relinks: int = 0
    error: str | None = None


def _swap_once(ee: execution_engine.ExecutionEngine, sc: SwapChain, kind: str) -> float:
    if kind == "recompile":
        return cpu_time(lambda: ee.recompile_and_relink_function(sc.name))[0]
    module = parse(sc.single_text())  # parsed untimed
    return cpu_time(lambda: ee.update_module(module))[0]


def measure_first_swaps(sizes: tuple[int, ...], log: Callable[[str], None]) -> list[SwapRow]:
    rows = []
    for n in sizes:
        sc = SwapChain(n)
        for kind in ("update", "recompile"):
            for policy in ("direct", "stub"):
                row = SwapRow(n, policy, kind)
                for _ in range(FIRST_REPS.get(n, 1)):
                    ee = execution_engine.create_mcjit_compiler(
                        parse(sc.chain.ir), target_machine(), redirection=policy,
                        grace_period=0)
                    try:
                        ee.finalize_object()
                        row.first.append(_swap_once(ee, sc, kind))
                        row.relinks = ee.stats().relinks
                        row.later += [_swap_once(ee, sc, kind) for _ in range(SWAPS)]
                        problem = check(sc.chain, ee.get_function_address,
                                        ee.get_global_value_address)
                        if problem:
                            row.error = problem
                    finally:
                        ee.close()
                log(f"  first swap N={n} {kind}/{policy}: first "
                    f"{statistics.median(row.first) * 1e3:.2f} ms, later "
                    f"{statistics.median(row.later) * 1e3:.2f} ms, relinks {row.relinks}")
                rows.append(row)
    return rows


def measure_compile(reps: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    chain = ChainModule(COMPILE_N)
    times: dict[str, list[float]] = {"direct": [], "stub": []}
    for _ in range(reps):
        for policy, series in times.items():
            module = parse(chain.ir)

            def work(module: llvm.ModuleRef = module, policy: str = policy) -> object:
                ee = execution_engine.create_mcjit_compiler(module, target_machine(),
                                                            redirection=policy)
                ee.finalize_object()
                ee.get_function_address("f0")
                return ee

            seconds, ee = cpu_time(work)
            ee.close()  # type: ignore[attr-defined]
            series.append(seconds)
    log("  compile: " + ", ".join(f"{p} {statistics.median(t):.3f} s" for p, t in times.items()))
    return times


# -- reporting -------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or not b else f"{a / b:.3f}"


def calls_table(subjects: list[Subject]) -> str:
    by = {(s.workload.key, s.key): s for s in subjects}
    loop, fib = workloads(1)[0], workloads(1)[1]
    headers = ["", "loop: ns per iteration", "loop: / MCJIT", "loop: CPU / MCJIT\u00b9",
               f"fib({FIB_N}): ms", f"fib({FIB_N}): / MCJIT", f"fib({FIB_N}): CPU / MCJIT\u00b9",
               f"fib({FIB_N}): ns per call"]
    body = []
    for key, label, _ in SUBJECTS:
        row: list[str] = [label]
        for w in (loop, fib):
            s, ref = by[(w.key, key)], by[(w.key, "mcjit")]
            wall, cpu = s.best(False), s.best(True)
            if w.key == "loop":
                row.append("n/a" if wall is None else f"{wall / s.workload.calls * 1e9:.3f}")
            else:
                row.append("n/a" if wall is None else f"{wall * 1e3:.2f}")
            row += [_ratio(wall, ref.best(False)), _ratio(cpu, ref.best(True))]
            if w.key == "fib":
                row.append("n/a" if wall is None else f"{wall / s.workload.calls * 1e9:.3f}")
        body.append(row)
    return markdown_table(headers, body)


def swaps_table(rows: list[SwapRow]) -> str:
    headers = ["N", "swap", "policy", "first swap ms", "later swaps ms (median)",
               "first / later", "first - later ms", "objects linked again", "samples"]
    body = []
    for r in rows:
        first = statistics.median(r.first) if r.first and r.error is None else None
        later = statistics.median(r.later) if r.later and r.error is None else None
        body.append([r.n, r.kind, r.policy, "n/a" if first is None else f"{first * 1e3:.2f}",
                     "n/a" if later is None else f"{later * 1e3:.2f}", _ratio(first, later),
                     "n/a" if first is None or later is None else f"{(first - later) * 1e3:.2f}",
                     r.relinks, f"{len(r.first)} + {len(r.later)}"])
    return markdown_table(headers, body, align="lllrrrrrr")


def verdict(subjects: list[Subject]) -> str:
    by = {(s.workload.key, s.key): s for s in subjects}
    parts = []
    for w in ("loop", "fib"):
        d, m = by.get((w, "direct")), by.get((w, "mcjit"))
        if d is None or m is None or d.best(True) is None or not m.best(True):
            parts.append(f"{w}: not measured")
            continue
        cpu = d.best(True) / m.best(True)  # type: ignore[operator]
        wall = d.best(False) / m.best(False)  # type: ignore[operator]
        status = "met" if min(cpu, wall) <= GOAL else "**missed**"
        parts.append(f"{w}: {cpu:.3f}x CPU, {wall:.3f}x wall - {status}")
    return (f"Goal: the default policy (`direct`) \u2264 {GOAL}x of stock MCJIT. "
            + "; ".join(parts) + ".")


def compile_line(times: dict[str, list[float]]) -> str:
    direct, stub = (statistics.median(times[p]) for p in ("direct", "stub"))
    return (f"**Compile cost** (N = {COMPILE_N} generated functions, each calling the "
            f"previous one; `create_mcjit_compiler` + `finalize_object` + a lookup, CPU "
            f"time, median of {len(times['direct'])} interleaved): `direct` "
            f"{direct:.3f} s, `stub` {stub:.3f} s, ratio {direct / stub:.3f} (the module is "
            "printed once to find the functions it only calls; fewer imports are resolved).")


def section(subjects: list[Subject], swaps: list[SwapRow], iterations: int, reps: int,
            load: str, compiled: dict[str, list[float]] | None = None) -> str:
    lines = [
        "`python -m benchmarks.calls`: two call-heavy workloads JIT'd from the same IR by",
        f"every subject - *loop*: a loop of {iterations:,} iterations calling a tiny",
        "`noinline` function of its module (`tiny(acc, i) = acc + 3*i + 1`), time per",
        f"iteration; *fib*: recursive `fib({FIB_N})` ({2 * _fib(FIB_N + 1) - 1:,} calls of",
        "`fib` to itself). Best of",
        f"{reps} rounds, all subjects interleaved in each round; ratios are to stock",
        "llvmlite MCJIT. *After recompile_and_relink_function(callee)*: `tiny` (loop) or",
        "`fib` was recompiled first, so the loop's module has been linked again through",
        "stubs under `direct` (its loop now calls `tiny` through the stub, as under `stub`),",
        "while the recompiled `fib`'s calls to itself are again direct.",
        "",
        calls_table(subjects),
        "",
        verdict(subjects),
        "",
        "\u00b9 The calling thread's CPU time (`time.thread_time`) over the same runs, best of",
        "the rounds: unlike wall time it does not count time the thread spent preempted, so",
        "it is the steadier figure on a loaded machine.",
        "",
        f"Every run returned the right result (the closed form; `fib({FIB_N})` = "
        f"{_fib(FIB_N):,}).",
    ]
    errors = [f"- {s.workload.key}, {LABELS[s.key]}: n/a - {s.error}" for s in subjects
              if s.error]
    if swaps:
        lines += [
            "",
            "**The first swap in a module.** Under `direct` the first replacement of a",
            "function an object calls directly links that object again, with every call",
            "through stubs (once per module; its writable data stays where it is). Fresh",
            "engines per row holding a generated module of N functions (`benchmarks.swap`'s",
            "`SwapChain`, `grace_period=0`); CPU time (`time.process_time`) of the first",
            "`update_module` / `recompile_and_relink_function` of `f<N/2>`, and the median",
            f"of the {SWAPS} swaps after it on the same engine; results checked against the",
            "Python model after the swaps:",
            "",
            swaps_table(swaps),
        ]
        errors += [f"- first swap N={r.n} {r.kind}/{r.policy}: {r.error}" for r in swaps
                   if r.error]
    if compiled:
        lines += ["", compile_line(compiled)]
    if errors:
        lines += ["", "Not measured or wrong:", "", *errors]
    lines += ["", f"Measured on: {environment_line()}; load average at the start: {load}."]
    return "\n".join(lines)


def _load() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="5 million iterations, 3 rounds, first swaps at N = 100, 1000")
    parser.add_argument("--iterations", type=int, help=f"default {ITERATIONS:,}")
    parser.add_argument("--reps", type=int, help=f"rounds, default {REPS}")
    parser.add_argument("--sizes", help="first-swap module sizes, default 100,1000,5000 "
                                        "(0: skip the first-swap part)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    iterations = args.iterations or (5_000_000 if args.quick else ITERATIONS)
    reps = args.reps or (3 if args.quick else REPS)
    sizes = ((100, 1000) if args.quick else SIZES) if args.sizes is None else tuple(
        int(s) for s in args.sizes.split(",") if s.strip() and int(s))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load = _load()
    log(f"calls: {iterations:,} iterations, fib({FIB_N}), {reps} rounds, first swaps at "
        f"{list(sizes)} ({environment_line()}; load {load})")
    subjects = measure_calls(iterations, reps, log)
    swaps = measure_first_swaps(sizes, log) if sizes else []
    compiled = measure_compile(2 if args.quick else COMPILE_REPS, log)
    print(f"## {TITLE}\n")
    print(calls_table(subjects))
    print()
    print(verdict(subjects))
    if swaps:
        print()
        print(swaps_table(swaps))
    print()
    print(compile_line(compiled))
    for s in subjects:
        if s.error:
            print(f"- {s.workload.key}/{s.key}: {s.error}")
    if not args.no_write:
        update_section(RESULTS, TITLE, section(subjects, swaps, iterations, reps, load,
                                               compiled))
        log(f"calls: wrote section '{TITLE}' of {RESULTS}")
    return 1 if any(s.error for s in subjects) or any(r.error for r in swaps) else 0


if __name__ == "__main__":
    sys.exit(main())
