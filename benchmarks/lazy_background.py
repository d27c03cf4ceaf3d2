"""Lazy engines that compile ahead in compile workers (issues 12 and 13).

A generated module (``benchmarks.lazy.program``) of N functions whose ``main``
calls every one of them. Each run parses the module, creates the engine,
calls ``f0`` (the *first result*) and then ``main`` (the *total*: everything
has been called). Wall time (the work spans processes), best of several
runs, interleaved:

* floor for the first result: parse + ``emit_object`` of ``f0`` alone;
* eager in process (``compile_workers=0``): the bar for the total;
* lazy, in process (``partition='function'`` and ``'callees'``);
* lazy with 2 compile workers compiling ahead (the default
  :data:`~execution_engine.policies.BACKGROUND` policy) and with
  ``background=False`` (first calls compile in the workers).

The workers are started (and warmed by one untimed run) before timing, as the
command line starts them while it parses. Bars: total <= 1.0x eager in
process; first result <= 1.3x the floor.

Run: ``python -m benchmarks.lazy_background [--quick] [--no-write]``.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from pathlib import Path

import llvmlite.binding as llvm

import execution_engine
from benchmarks import common, report
from benchmarks.lazy import program
from execution_engine.compile_service import start_workers

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
TITLE = "Lazy compilation ahead in compile workers (issues 12, 13)"
RUNNERS = {
    "eager, in process": dict(),
    "lazy, partition='function', in process": dict(lazy=True),
    "lazy, partition='callees', in process": dict(lazy=True, partition="callees"),
    "lazy, 2 workers, background=False": dict(lazy=True, compile_workers=2, background=False),
    "lazy, 2 workers, compiling ahead (default)": dict(lazy=True, compile_workers=2),
}


def floor(text: str) -> float:
    start = time.perf_counter()
    module = llvm.parse_assembly(text)
    common.target_machine().emit_object(llvm.parse_assembly(str(module.get_function("f0"))))
    return time.perf_counter() - start


def run(text: str, options: dict) -> tuple[float, float, int]:
    """(seconds to the first result, seconds in all, main's result)."""
    start = time.perf_counter()
    engine = execution_engine.create_mcjit_compiler(llvm.parse_assembly(text),
                                                    common.target_machine(), **options)
    try:
        f0 = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(engine.get_function_address("f0"))
        f0(1)
        first = time.perf_counter() - start
        main = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)(
            engine.get_function_address("main"))
        result = int(main(0, None))
        return first, time.perf_counter() - start, result
    finally:
        engine.close()


def measure(n: int, reps: int) -> str:
    text = program(n, list(range(n)))
    run(text, RUNNERS["lazy, 2 workers, compiling ahead (default)"])  # warm the workers
    floors = []
    best: dict[str, tuple[float, float]] = {}
    results = set()
    for _ in range(reps):
        floors.append(floor(text))
        for label, options in RUNNERS.items():
            first, total, result = run(text, options)
            results.add(result)
            old = best.get(label, (first, total))
            best[label] = (min(old[0], first), min(old[1], total))
    assert len(results) == 1, results
    f = min(floors)
    eager = best["eager, in process"][1]
    rows = [["floor: parse + compile f0", f"{f * 1e3:.1f}", "1.00", "", ""]]
    for label, (first, total) in best.items():
        rows.append([label, f"{first * 1e3:.1f}", f"{first / f:.2f}", f"{total * 1e3:.1f}",
                     f"{total / eager:.2f}"])
    return report.markdown_table(
        [f"N = {n}, main calls every function (wall)", "first result ms", "x floor",
         "total ms", "x eager"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-write", action="store_true", help="print, write nothing")
    opts = parser.parse_args(argv)
    common.init_llvm()
    start_workers(2)
    reps = 2 if opts.quick else 5
    load = open("/proc/loadavg").read().split()[0]
    tables = [measure(n, reps) for n in (300, 2000)]
    end_load = open("/proc/loadavg").read().split()[0]
    markdown = "\n\n".join([
        "A generated module whose `main` calls every function: parse, create the engine, "
        "call `f0` (first result), then `main` (total). Wall time, best of "
        f"{reps}, runs interleaved; the 2 workers started and warmed before timing. "
        "Bars: total <= 1.0x eager in process; first result <= 1.3x the floor.",
        *tables,
        common.environment_line() + f"; load average (1-minute) {load} at the start, "
        f"{end_load} at the end",
    ])
    print(markdown)
    if not opts.no_write:
        report.update_section(DOC, TITLE, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
