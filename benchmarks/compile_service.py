"""Compile service (issue 13): split + parallel compile in worker processes.

Wall time (the work spans processes), interleaved repetitions, medians:

* **floor**: ``tm.emit_object(module)`` in this process, for the whole
  module (parsed outside the timed region);
* **split + workers**: :func:`execution_engine.compile_service.split` of the
  same (parsed) module into K partitions, then ``CompilePool.compile_many``
  on W already running workers; the objects' bytes back in this process.

The objects are checked: loaded into one engine with ``add_object_file``
and called (:func:`benchmarks.common.run_calls`) against the Python model,
for the generated module and for a variant whose functions (except the
called ones) and odd variables are internal, so calls and loads cross
partitions through promoted hidden names.

Also measured: worker start-up (process start to first answer), the first
compile on a new pool, and the latency from submitting a module LLVM dies
on to its ``CompileError``.

Run: ``python -m benchmarks.compile_service [--quick] [--n 5000] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import llvmlite.binding as llvm

import execution_engine
from execution_engine.compile_service import CompilePool, split
from execution_engine.errors import CompileError
from execution_engine.target_spec import spec_of

from .common import ChainModule, environment_line, parse, run_calls, target_machine
from .report import RESULTS, markdown_table, update_section

TITLE = "Compile service: parallel eager compilation in workers (issue 13)"
TARGET = 0.65
CRASH_IR = """declare i64 @llvm.aarch64.get.fpcr()
define i64 @read_fpcr() {
  %v = call i64 @llvm.aarch64.get.fpcr()
  ret i64 %v
}
"""
TINY_IR = "define i64 @tiny(i64 %x) {\n  %y = add i64 %x, 1\n  ret i64 %y\n}\n"


def internal_variant(chain: ChainModule) -> str:
    """``chain.ir`` with every function but the called ones, and every odd
    variable, internal (same behaviour)."""
    called = {f"f{k}" for k, _ in chain.calls()}
    ir = re.sub(r"^define i64 @(f\d+)\(",
                lambda m: m.group(0) if m.group(1) in called
                else f"define internal i64 @{m.group(1)}(", chain.ir, flags=re.M)
    return re.sub(r"^@g(\d*[13579]) = global", r"@g\1 = internal global", ir, flags=re.M)


def busy_seconds() -> float:
    """CPU seconds every process of the machine has used since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


@dataclass
class Run:
    """One timed run: wall seconds, the CPU critical path (floor: its CPU time;
    split + workers: this process's CPU plus the busiest worker's), the cores
    other processes of the machine used meanwhile, the split's wall seconds."""

    wall: float
    path: float
    others: float
    split: float = 0.0
    objects: list[bytes] = field(default_factory=list)


def floor(ir: str) -> Run:
    """``emit_object`` of the whole module in this process."""
    module = parse(ir)
    tm = target_machine()
    try:
        start, cpu, busy = time.perf_counter(), time.process_time(), busy_seconds()
        tm.emit_object(module)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        return Run(wall, cpu, (busy_seconds() - busy - cpu) / wall)
    finally:
        module.close()
        tm.close()


def _worker_cpu(pool: CompilePool) -> dict[int, float]:
    return {s.pid: s.cpu_seconds for s in pool.stats()}


def split_and_compile(pool: CompilePool, ir: str, k: int) -> Run:
    """``split`` + ``compile_many`` of the same module on running workers."""
    module = parse(ir)
    tm = target_machine()
    spec = spec_of(tm)
    assert spec is not None
    try:
        before = _worker_cpu(pool)
        start, cpu, busy = time.perf_counter(), time.process_time(), busy_seconds()
        parts = split(module, k)
        cut = time.perf_counter() - start
        objects = pool.compile_many(
            (text, spec, f"partition {i} of the N-function module")
            for i, text in enumerate(parts.texts))
        wall, host_cpu = time.perf_counter() - start, time.process_time() - cpu
        used = {pid: c - before.get(pid, 0.0) for pid, c in _worker_cpu(pool).items()}
        others = (busy_seconds() - busy - host_cpu - sum(used.values())) / wall
        return Run(wall, host_cpu + max(used.values()), others, cut, objects)
    finally:
        module.close()
        tm.close()


def run_objects(chain: ChainModule, objects: list[bytes]) -> list[int]:
    """Link ``objects`` in one engine and run the model's calls."""
    empty = parse("")
    ee = execution_engine.create_mcjit_compiler(empty, target_machine())
    try:
        for data in objects:
            ee.add_object_file(data)
        ee.finalize_object()
        return run_calls(chain, ee.get_function_address)
    finally:
        ee.close()


def measure_big(pool: CompilePool, n: int, k: int, reps: int,
                log: Callable[[str], None]) -> dict[str, Any]:
    chain = ChainModule(n)
    pairs: list[tuple[Run, Run]] = []
    for rep in range(reps):  # interleaved
        base, ours = floor(chain.ir), split_and_compile(pool, chain.ir, k)
        pairs.append((base, ours))
        log(f"  N={n} rep {rep + 1}/{reps}: floor {base.wall:.2f} s (CPU {base.path:.2f}), "
            f"split+workers {ours.wall:.2f} s (split {ours.split:.2f} s, CPU path "
            f"{ours.path:.2f} s); other processes used {base.others:.2f} / "
            f"{ours.others:.2f} cores")
        if rep == 0:
            expected = chain.expected()
            ok = run_objects(chain, ours.objects) == expected
            internal = split_and_compile(pool, internal_variant(chain), k).objects
            ok_internal = run_objects(chain, internal) == expected

    def median(values: Iterable[float]) -> float:
        return statistics.median(list(values))

    return {"n": n, "k": k, "reps": reps, "ok": ok, "ok_internal": ok_internal,
            "floor": median(b.wall for b, _ in pairs), "wall": median(o.wall for _, o in pairs),
            "split": median(o.split for _, o in pairs),
            "floor_cpu": median(b.path for b, _ in pairs),
            "path": median(o.path for _, o in pairs),
            "best": min(o.wall / b.wall for b, o in pairs),
            "others": (median(b.others for b, _ in pairs), median(o.others for _, o in pairs))}


def measure_threshold(pool: CompilePool, sizes: list[int], k: int, reps: int,
                      log: Callable[[str], None]) -> list[tuple[int, float, float, float, float]]:
    """(N, floor wall, split + workers wall, floor CPU, CPU path), medians."""
    rows = []
    for n in sizes:
        ir = ChainModule(n).ir
        pairs = [(floor(ir), split_and_compile(pool, ir, k)) for _ in range(reps)]
        row = (n, statistics.median(b.wall for b, _ in pairs),
               statistics.median(o.wall for _, o in pairs),
               statistics.median(b.path for b, _ in pairs),
               statistics.median(o.path for _, o in pairs))
        rows.append(row)
        log(f"  threshold N={n}: floor {row[1] * 1e3:.1f} ms (CPU {row[3] * 1e3:.1f}), "
            f"split+workers {row[2] * 1e3:.1f} ms (CPU path {row[4] * 1e3:.1f})")
    return rows


def measure_crashes(pool: CompilePool, count: int) -> tuple[float, float]:
    """Median seconds from submitting a fatal module to its CompileError, and
    median seconds of a good compile right after."""
    spec = spec_of(target_machine())
    assert spec is not None
    crash, after = [], []
    for _ in range(count):
        start = time.perf_counter()
        try:
            pool.compile(CRASH_IR, spec, "module 'crash'")
        except CompileError:
            crash.append(time.perf_counter() - start)
        start = time.perf_counter()
        pool.compile(TINY_IR, spec, "module 'tiny'")
        after.append(time.perf_counter() - start)
    return statistics.median(crash), statistics.median(after)


def measure_startup(workers: int) -> tuple[float, list[float]]:
    """Seconds from creating a pool to its first object; each worker's start-up."""
    spec = spec_of(target_machine())
    assert spec is not None
    start = time.perf_counter()
    with CompilePool(workers) as pool:
        pool.compile(TINY_IR, spec, "module 'tiny'")
        first = time.perf_counter() - start
        time.sleep(1.0)  # let the other workers finish starting
        return first, [s.startup_seconds for s in pool.stats()]


def section(big: dict[str, Any], threshold: list[tuple[int, float, float, float, float]],
            crash: tuple[float, float], startup: tuple[float, list[float]], workers: int,
            load: tuple[float, float]) -> str:
    ratio = big["wall"] / big["floor"]
    status = "met" if ratio <= TARGET else "**missed**"
    rows = [[n, f"{f * 1e3:.1f}", f"{w * 1e3:.1f}", f"{w / f:.2f}", f"{fc * 1e3:.1f}",
             f"{pc * 1e3:.1f}", f"{pc / fc:.2f}"] for n, f, w, fc, pc in threshold]
    pays = [n for n, f, w, fc, pc in threshold if pc < fc]
    pays_wall = [n for n, f, w, fc, pc in threshold if w < f]
    return "\n".join([
        "`python -m benchmarks.compile_service`: wall time, medians of interleaved runs.",
        f"**floor** is `tm.emit_object(module)` in process; **split + workers** is "
        f"`compile_service.split(module, {big['k']})` plus `CompilePool.compile_many` on "
        f"{workers} running workers (objects back in the host). Target machine: "
        "`create_target_machine(jit=True, opt=2)`.",
        "",
        markdown_table(["N", "reps", "floor s", "split + workers s", "of which split s",
                        "ratio", "best ratio", "floor CPU s", "CPU path s\u00b9", "CPU ratio"],
                       [[big["n"], big["reps"], f"{big['floor']:.2f}", f"{big['wall']:.2f}",
                         f"{big['split']:.2f}", f"{ratio:.2f}", f"{big['best']:.2f}",
                         f"{big['floor_cpu']:.2f}",
                         f"{big['path']:.2f}",
                         f"{big['path'] / big['floor_cpu']:.2f}"]]),
        "",
        "\u00b9 CPU critical path: this process's CPU time (split, sending, receiving) plus "
        "the busiest worker's (parse + code generation): about the wall time an otherwise "
        "idle machine with one core per worker would take. *best ratio*: the best of the "
        "interleaved pairs' wall ratios.",
        "",
        f"Other processes of the machine used {big['others'][0]:.2f} cores during the floor "
        f"runs and {big['others'][1]:.2f} during split + workers (medians; the machine is "
        "shared, and Linux's autogroup scheduling gives this session one share however many "
        "processes it runs, so wall times only show the speed-up when the others are idle).",
        "",
        f"Target split + workers \u2264 {TARGET}\u00d7 floor at N={big['n']}: {ratio:.2f} - "
        f"{status}. Objects linked with `add_object_file` and called: "
        f"{'correct' if big['ok'] else '**wrong**'}; with internal functions and variables "
        f"used across partitions: {'correct' if big['ok_internal'] else '**wrong**'}.",
        "",
        "Small modules (where splitting stops paying):",
        "",
        markdown_table(["N", "floor ms", "split + workers ms", "ratio", "floor CPU ms",
                        "CPU path ms", "CPU ratio"], rows),
        "",
        f"Splitting pays (is faster than the floor) from N = "
        f"{min(pays_wall) if pays_wall else 'n/a'} by wall time and from N = "
        f"{min(pays) if pays else 'n/a'} by CPU path in this run.",
        "",
        f"- worker start-up (process start to first answer): "
        f"{', '.join(f'{s:.2f}' for s in startup[1])} s; a new pool's first object after "
        f"{startup[0]:.2f} s;",
        f"- a module LLVM aborts on (`llvm.aarch64.get.fpcr` on x86-64): submit to "
        f"`CompileError` {crash[0] * 1e3:.0f} ms; a good compile right after "
        f"{crash[1] * 1e3:.0f} ms (median of 10).",
        "",
        f"Load average before/after: {load[0]:.2f} / {load[1]:.2f} "
        f"({len(os.sched_getaffinity(0))} usable cores). Measured on: {environment_line()}.",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--k", type=int, default=2, help="partitions")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="10,30,100,300,1000")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.reps, args.sizes = 1000, 1, "30,300"
    sizes = [int(s) for s in args.sizes.split(",") if s]
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    load_before = os.getloadavg()[0]
    startup = measure_startup(args.workers)
    print(f"start-up: first object {startup[0]:.2f} s, workers {startup[1]}")
    with CompilePool(args.workers) as pool:
        spec = spec_of(target_machine())
        assert spec is not None
        pool.compile(TINY_IR, spec, "warm-up")
        time.sleep(1.0)
        crash = measure_crashes(pool, 10)
        print(f"crash -> CompileError {crash[0] * 1e3:.0f} ms, next compile "
              f"{crash[1] * 1e3:.0f} ms")
        threshold = measure_threshold(pool, sizes, args.k, max(3, args.reps), print)
        big = measure_big(pool, args.n, args.k, args.reps, print)
    text = section(big, threshold, crash, startup, args.workers,
                   (load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        update_section(RESULTS, TITLE, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
