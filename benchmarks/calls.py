"""Call overhead of the redirection policies: a JIT'd loop calling a tiny function.

A JIT'd loop runs ``ITERATIONS`` times and calls a tiny ``noinline``
function each time (``tiny(acc, i) = acc + 3*i + 1``), so the time per
iteration is dominated by the call. Wall time (``time.perf_counter``) of one
call of the loop from Python, best of *reps*, divided by the iteration
count, for:

* engine ``redirection="none"``: callers bound directly to the body, as
  MCJIT binds them (the baseline: no swapping possible);
* engine ``redirection="stub"`` (the default): the call goes to the callee's
  stub, which jumps through its pointer slot;
* engine ``redirection="single"``: the call site loads the slot and calls
  through it;
* the same two after ``recompile_and_relink_function("tiny")`` (the body
  moved; the loop is unchanged);
* llvmlite's MCJIT and LLJIT running the same IR, as reference points;
* "no call": the same loop with the arithmetic inline (on the ``"none"``
  engine): what the loop costs without any call.

Engines are measured interleaved, round by round. Every run's result is
checked against the closed form ``sum(3*i + 1 for i < n) mod 2**64``.

Run: ``python -m benchmarks.calls [--quick] [--iterations N] [--reps R] [--no-write]``.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import llvmlite.binding as llvm

import execution_engine

from .common import MASK, environment_line, parse, target_machine
from .report import RESULTS, markdown_table, update_section

TITLE = "Call overhead of the redirection policies"
ITERATIONS = 50_000_000
REPS = 5
GOAL = 1.05  # fastest swappable policy / "none"

IR = """
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

define i64 @loop_inline(i64 %n) {
entry:
  br label %head
head:
  %i = phi i64 [ 0, %entry ], [ %i1, %body ]
  %acc = phi i64 [ 0, %entry ], [ %acc1, %body ]
  %c = icmp ult i64 %i, %n
  br i1 %c, label %body, label %exit
body:
  %m = mul i64 %i, 3
  %a = add i64 %acc, %m
  %acc1 = add i64 %a, 1
  %i1 = add i64 %i, 1
  br label %head
exit:
  ret i64 %acc
}
"""

_LOOP = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)


def expected(n: int) -> int:
    return (3 * n * (n - 1) // 2 + n) & MASK


@dataclass
class Subject:
    """One way of running the loop: its label, callable, and how to dispose of it."""

    key: str
    label: str
    loop: Callable[[int], int]
    close: Callable[[], None]
    swappable: bool = False
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def best(self) -> float | None:
        return min(self.times) if self.times and self.error is None else None

    @property
    def best_cpu(self) -> float | None:
        return min(self.cpu) if self.cpu and self.error is None else None


def _engine(policy: str, entry: str = "loop", swap: bool = False) -> tuple[Callable, Callable]:
    ee = execution_engine.create_mcjit_compiler(parse(IR), target_machine(), redirection=policy)
    ee.finalize_object()
    if swap:
        ee.recompile_and_relink_function("tiny")
        ee.reclaim()
    fn = _LOOP(ee.get_function_address(entry))
    return fn, ee.close


def _mcjit() -> tuple[Callable, Callable]:
    ee = llvm.create_mcjit_compiler(parse(IR), target_machine())
    ee.finalize_object()
    return _LOOP(ee.get_function_address("loop")), ee.close


def _lljit() -> tuple[Callable, Callable]:
    tm = target_machine()
    jit = llvm.create_lljit_compiler(tm)
    tracker = llvm.JITLibraryBuilder().add_ir(IR).export_symbol("loop").link(jit, "calls")

    def close() -> None:
        tracker.close()
        jit.close()
        tm.close()

    return _LOOP(tracker["loop"]), close


SUBJECTS: list[tuple[str, str, bool, Callable[[], tuple[Callable, Callable]]]] = [
    ("none", 'engine, redirection="none" (direct call)', False, lambda: _engine("none")),
    ("stub", 'engine, redirection="stub" (stub + slot)', True, lambda: _engine("stub")),
    ("single", 'engine, redirection="single" (call site loads the slot)', True,
     lambda: _engine("single")),
    ("stub-swapped", 'engine, "stub", after recompile_and_relink_function("tiny")', True,
     lambda: _engine("stub", swap=True)),
    ("single-swapped", 'engine, "single", after recompile_and_relink_function("tiny")', True,
     lambda: _engine("single", swap=True)),
    ("mcjit", "llvmlite MCJIT", False, _mcjit),
    ("lljit", "llvmlite LLJIT", False, _lljit),
    ("inline", 'no call (arithmetic inline; engine, "none")', False,
     lambda: _engine("none", entry="loop_inline")),
]


def measure(iterations: int, reps: int, log: Callable[[str], None]) -> list[Subject]:
    subjects = []
    for key, label, swappable, make in SUBJECTS:
        try:
            loop, close = make()
        except Exception as exc:  # noqa: BLE001 - reported as n/a
            s = Subject(key, label, lambda n: 0, lambda: None, swappable)
            s.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            subjects.append(s)
            continue
        subjects.append(Subject(key, label, loop, close, swappable))
    want = expected(iterations)
    try:
        for s in subjects:  # warm-up (page faults, caches) and correctness
            if s.error is None:
                got = s.loop(1000)
                if got != expected(1000):
                    s.error = f"loop(1000) = {got}, expected {expected(1000)}"
        for rep in range(reps):
            for s in subjects:
                if s.error is not None:
                    continue
                cpu_start = time.thread_time()
                start = time.perf_counter()
                got = s.loop(iterations)
                s.times.append(time.perf_counter() - start)
                s.cpu.append(time.thread_time() - cpu_start)
                if got != want:
                    s.error = f"loop({iterations}) = {got}, expected {want}"
            log(f"  round {rep + 1}/{reps}: " + ", ".join(
                f"{s.key} {s.times[-1] / iterations * 1e9:.3f} ns" for s in subjects
                if s.times and s.error is None))
    finally:
        for s in subjects:
            s.close()
    return subjects


def table(subjects: list[Subject], iterations: int) -> str:
    none = next(s for s in subjects if s.key == "none")
    headers = ["", "ns per call", "ratio to none", "extra ns vs none",
               "CPU ns per call\u00b9", "CPU ratio to none\u00b9"]

    def ns(seconds: float | None) -> str:
        return "n/a" if seconds is None else f"{seconds / iterations * 1e9:.3f}"

    def ratio(a: float | None, b: float | None) -> str:
        return "n/a" if a is None or not b else f"{a / b:.3f}"

    body = []
    for s in subjects:
        extra = ("n/a" if s.best is None or none.best is None
                 else f"{(s.best - none.best) / iterations * 1e9:+.3f}")
        body.append([s.label, ns(s.best), ratio(s.best, none.best), extra,
                     ns(s.best_cpu), ratio(s.best_cpu, none.best_cpu)])
    return markdown_table(headers, body)


def verdict(subjects: list[Subject]) -> str:
    none = next((s for s in subjects if s.key == "none"), None)
    safe = [s for s in subjects if s.key in ("stub", "single") and s.best is not None]
    if none is None or none.best is None or not safe:
        return f"Goal (fastest swappable policy \u2264 {GOAL}x of `none`): not measured."
    parts = []
    for what, best in (("wall time", lambda s: s.best), ("CPU time", lambda s: s.best_cpu)):
        fastest = min(safe, key=best)
        ratio = best(fastest) / best(none)
        status = "met" if ratio <= GOAL else "**missed**"
        parts.append(f"{what}: `{fastest.key}` at {ratio:.3f}x - {status}")
    return f"Goal: fastest swappable policy \u2264 {GOAL}x of `none`. " + "; ".join(parts) + "."


def section(subjects: list[Subject], iterations: int, reps: int) -> str:
    lines = [
        "`python -m benchmarks.calls`: a JIT'd loop of "
        f"{iterations:,} iterations, each calling a tiny `noinline`",
        "function (`tiny(acc, i) = acc + 3*i + 1`). Wall time (`time.perf_counter`) of one",
        f"call of the loop from Python, best of {reps} rounds (all subjects interleaved in",
        "each round), divided by the iteration count - so a figure includes the loop's own",
        "cost (the *no call* row shows it). Same IR and target machine settings everywhere.",
        "",
        table(subjects, iterations),
        "",
        verdict(subjects),
        "",
        "\u00b9 The calling thread's CPU time (`time.thread_time`) over the same runs, best of",
        "the rounds: unlike wall time it does not count time the thread spent preempted, so",
        "it is the steadier figure on a loaded machine.",
        "",
        "Every run returned `sum(3*i + 1 for i < n) mod 2**64`.",
    ]
    errors = [f"- {s.label}: n/a - {s.error}" for s in subjects if s.error]
    if errors:
        lines += ["", "Not measured or wrong:", "", *errors]
    lines += ["", f"Measured on: {environment_line()}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 million iterations, 3 rounds")
    parser.add_argument("--iterations", type=int, help=f"default {ITERATIONS:,}")
    parser.add_argument("--reps", type=int, help=f"rounds, default {REPS}")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    iterations = args.iterations or (5_000_000 if args.quick else ITERATIONS)
    reps = args.reps or (3 if args.quick else REPS)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"calls: {iterations:,} iterations, {reps} rounds ({environment_line()})")
    subjects = measure(iterations, reps, log)
    print(f"## {TITLE}\n")
    print(table(subjects, iterations))
    print()
    print(verdict(subjects))
    for s in subjects:
        if s.error:
            print(f"- {s.label}: {s.error}")
    if not args.no_write:
        update_section(RESULTS, TITLE, section(subjects, iterations, reps))
        log(f"calls: wrote section '{TITLE}' of {RESULTS}")
    return 1 if any(s.error for s in subjects) else 0


if __name__ == "__main__":
    sys.exit(main())
