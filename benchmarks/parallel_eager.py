"""Parallel eager compilation through the engine (issue 13, items 1-2).

Wall time (the work spans processes), interleaved repetitions, medians, for
a generated module of N functions (:class:`benchmarks.common.ChainModule`,
about 40 instructions each), parsed outside the timed region:

* **floor**: ``tm.emit_object(module)`` in this process;
* **engine, in process**: ``create_mcjit_compiler(module, tm)`` +
  ``finalize_object()`` + ``get_function_address("f0")``;
* **engine, W workers**: the same with ``compile_workers=W``, on the
  process's shared pool, started (and warmed by one compile) before the
  timed runs: workers start once per process. Their start-up is reported
  apart.

Every engine's code is called and checked against the Python model.

``--threshold``: the same engine with workers, the module cut by the
engine's own rule, against the same with cutting off (the whole module in
one worker) and in process, for small N: where cutting starts to pay
(:data:`execution_engine.compile_service.schedule.SPLIT_MIN_FUNCTIONS`).

Run: ``python -m benchmarks.parallel_eager [--n 5000] [--reps 3] [--workers 2]
[--threshold] [--sizes 4,8,16,32,64,128] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import llvmlite.binding as llvm

import execution_engine
from execution_engine.compile_service import schedule, shared_pool
from execution_engine.target_spec import spec_of

from .common import ChainModule, environment_line, parse, run_calls, target_machine
from .compile_service import TINY_IR, busy_seconds
from .report import RESULTS, markdown_table, update_section

TITLE = "Parallel eager compilation through the engine (issue 13)"
TARGET = 0.65


@dataclass
class Run:
    """Wall seconds and the cores other processes used meanwhile."""

    wall: float
    others: float


def _timed(work: Callable[[], object]) -> tuple[Run, object]:
    start, cpu, busy = time.perf_counter(), time.process_time(), busy_seconds()
    result = work()
    wall = time.perf_counter() - start
    # every process's CPU but this one's and the workers' is "others": approximate
    # the workers' by this run's wall x their count when they are busy (upper bound)
    return Run(wall, max(0.0, (busy_seconds() - busy - (time.process_time() - cpu)) / wall)), \
        result


def floor(ir: str) -> Run:
    module, tm = parse(ir), target_machine()
    try:
        run, _ = _timed(lambda: tm.emit_object(module))
        return run
    finally:
        module.close()
        tm.close()


def engine(chain: ChainModule, ir: str, workers: int, check: bool) -> Run:
    module, tm = parse(ir), target_machine()

    def work() -> execution_engine.ExecutionEngine:
        ee = execution_engine.create_mcjit_compiler(module, tm, compile_workers=workers)
        ee.finalize_object()
        ee.get_function_address("f0")
        return ee

    run, ee = _timed(work)
    assert isinstance(ee, execution_engine.ExecutionEngine)
    try:
        if check and run_calls(chain, ee.get_function_address) != chain.expected():
            raise SystemExit(f"engine with {workers} workers: wrong results at N={chain.n}")
        return run
    finally:
        ee.close()


@contextmanager
def split_threshold(value: int) -> Iterator[None]:
    saved = schedule.SPLIT_MIN_FUNCTIONS
    schedule.SPLIT_MIN_FUNCTIONS = value
    try:
        yield
    finally:
        schedule.SPLIT_MIN_FUNCTIONS = saved


def warm_pool(workers: int) -> list[float]:
    """Start the shared pool, wait until every worker answered; their start-ups."""
    pool = shared_pool(workers)
    spec = spec_of(target_machine())
    assert spec is not None
    for _ in range(workers * 2):
        pool.compile(TINY_IR, spec, "warm-up")
    deadline = time.monotonic() + 30
    while len(pool.stats()) < workers and time.monotonic() < deadline:
        time.sleep(0.01)
    return [s.startup_seconds for s in pool.stats()]


def median(values: list[float]) -> float:
    return statistics.median(values)


def measure_big(n: int, workers: int, reps: int,
                log: Callable[[str], None]) -> dict[str, object]:
    chain = ChainModule(n)
    rows: list[tuple[Run, Run, Run]] = []
    for rep in range(reps):
        runs = (floor(chain.ir), engine(chain, chain.ir, 0, rep == 0),
                engine(chain, chain.ir, workers, rep == 0))
        rows.append(runs)
        log(f"  N={n} rep {rep + 1}/{reps}: floor {runs[0].wall:.2f} s, engine in process "
            f"{runs[1].wall:.2f} s, engine {workers} workers {runs[2].wall:.2f} s; other "
            f"processes used {runs[0].others:.2f} / {runs[1].others:.2f} / "
            f"{runs[2].others:.2f} cores")
    floor_wall = median([r[0].wall for r in rows])
    return {"n": n, "reps": reps, "floor": floor_wall,
            "inproc": median([r[1].wall for r in rows]),
            "workers": median([r[2].wall for r in rows]),
            "best": min(r[2].wall / r[0].wall for r in rows),
            "others": [median([r[i].others for r in rows]) for i in range(3)]}


def measure_threshold(sizes: list[int], workers: int, reps: int,
                      log: Callable[[str], None]) -> list[list[float]]:
    """Per N: in process, one worker (not cut), cut in ``workers`` (ms, medians)."""
    out = []
    for n in sizes:
        chain = ChainModule(n)
        walls: list[list[float]] = [[], [], []]
        for rep in range(reps):
            walls[0].append(engine(chain, chain.ir, 0, rep == 0).wall)
            with split_threshold(10**9):
                walls[1].append(engine(chain, chain.ir, workers, rep == 0).wall)
            with split_threshold(1):
                walls[2].append(engine(chain, chain.ir, workers, rep == 0).wall)
        row = [n] + [median(w) * 1e3 for w in walls]
        out.append(row)
        log(f"  threshold N={n}: in process {row[1]:.1f} ms, whole in a worker "
            f"{row[2]:.1f} ms, cut {row[3]:.1f} ms")
    return out


def section(big: dict[str, object] | None, threshold: list[list[float]], workers: int,
            startup: list[float], load: tuple[float, float]) -> str:
    lines = [
        "`python -m benchmarks.parallel_eager`: wall time, medians of interleaved runs, "
        "generated modules (about 40 instructions per function), "
        "`create_target_machine(jit=True, opt=2)`. **floor**: `tm.emit_object(module)` in "
        "process; **engine**: `create_mcjit_compiler` + `finalize_object` + "
        "`get_function_address('f0')`, in process (`compile_workers=0`) and with "
        f"`compile_workers={workers}` on the process's shared pool, started before the timed "
        "runs (workers start once per process; their start-up: "
        f"{', '.join(f'{s:.2f}' for s in startup)} s). Results checked against a model.",
        ""]
    if big is not None:
        others = big["others"]
        assert isinstance(others, list)
        ratio = float(big["workers"]) / float(big["floor"])  # type: ignore[arg-type]
        lines += [
            markdown_table(
                ["N", "reps", "floor s", "engine in process s", f"engine {workers} workers s",
                 "in process / floor", "workers / floor", "best workers / floor"],
                [[big["n"], big["reps"], f"{big['floor']:.2f}", f"{big['inproc']:.2f}",
                  f"{big['workers']:.2f}",
                  f"{float(big['inproc']) / float(big['floor']):.2f}",  # type: ignore[arg-type]
                  f"{ratio:.2f}", f"{big['best']:.2f}"]]),
            "",
            f"Target engine with {workers} workers \u2264 {TARGET}\u00d7 floor at "
            f"N={big['n']}: {ratio:.2f} - {'met' if ratio <= TARGET else '**missed**'}. "
            f"Other processes used {others[0]:.2f} / {others[1]:.2f} / {others[2]:.2f} "
            "cores during the floor / in-process / worker runs (medians; the workers' own "
            "CPU counts as other processes' here, so the last is an upper bound).",
            ""]
    if threshold:
        lines += [
            "Where cutting a module pays (`--threshold`; the engine with workers, cut by "
            "its rule, or forced whole into one worker):",
            "",
            markdown_table(["N", "in process ms", "whole in one worker ms", "cut ms",
                            "cut / whole", "whole / in process"],
                           [[int(n), f"{a:.1f}", f"{b:.1f}", f"{c:.1f}", f"{c / b:.2f}",
                             f"{b / a:.2f}"] for n, a, b, c in threshold]),
            "",
            f"`SPLIT_MIN_FUNCTIONS` = {schedule.SPLIT_MIN_FUNCTIONS}.",
            ""]
    lines.append(f"Load average before/after: {load[0]:.2f} / {load[1]:.2f} "
                 f"({len(os.sched_getaffinity(0))} usable cores). Measured on: "
                 f"{environment_line()}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threshold", action="store_true")
    parser.add_argument("--no-big", action="store_true")
    parser.add_argument("--sizes", default="4,8,16,32,64,128")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    load_before = os.getloadavg()[0]
    startup = warm_pool(args.workers)
    threshold = measure_threshold([int(s) for s in args.sizes.split(",")], args.workers,
                                  max(5, args.reps), print) if args.threshold else []
    big = None if args.no_big else measure_big(args.n, args.workers, args.reps, print)
    text = section(big, threshold, args.workers, startup, (load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        update_section(RESULTS, TITLE, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
