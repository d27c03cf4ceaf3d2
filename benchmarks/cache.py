"""Persistent object cache (issue 14): what a miss costs, what a hit saves.

On a generated module of N functions (:class:`benchmarks.common.ChainModule`)
compiled with the benchmarks' target machine (``jit=True, opt=2``), this
measures, interleaved repetition by repetition:

* plain: ``tm.emit_object(module)``, no cache;
* miss: :class:`execution_engine.cache.CachingCompiler` over an empty
  :class:`~execution_engine.cache.ObjectStore`: key (bitcode + BLAKE2b),
  lookup, the same ``emit_object``, store. Its *overhead* is its total minus
  the time spent inside ``emit_object`` in that very call;
* hit: the same call on the store the miss filled (key, read, verify);
* link: ``add_object_file`` of the object + ``finalize_object`` +
  ``get_function_address("f0")`` on an engine, so *cold* = plain + link and
  *warm* = hit + link compare what a program pays to get callable code;
* through the engine, as users see it: ``create_mcjit_compiler(module, tm,
  cache_dir=...)`` (timed apart: it verifies the module, cache or not), then
  ``finalize_object`` + ``get_function_address("f0")`` with no cache, with an
  empty cache directory (*engine cold*) and with the directory that run
  filled (*engine warm*, a new engine).

CPU time (``time.process_time``) and wall time; medians over the repetitions.
The linked code is called and checked against the Python model of the module.

Run: ``python -m benchmarks.cache [--quick] [--n 5000] [--reps 5] [--no-write]``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import llvmlite.binding as llvm

import execution_engine
from execution_engine.cache import CachingCompiler, ObjectStore, module_ir, object_key

from .common import ChainModule, environment_line, parse, run_calls, target_machine
from .report import RESULTS, markdown_table, update_section

TITLE = "Persistent object cache (issue 14)"
N = 5000
REPS = 5
QUICK = (500, 2)
MISS_OVERHEAD_BAR = 0.03
WARM_BAR = 0.05


@dataclass
class Times:
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)

    def add(self, cpu: float, wall: float) -> None:
        self.cpu.append(cpu)
        self.wall.append(wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)


def timed(fn: Callable[[], object], *, collect: bool = True) -> tuple[float, float, object]:
    """(CPU seconds, wall seconds, result) of ``fn()``, after a full collection
    unless ``collect`` is false."""
    if collect:
        gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - c0, time.perf_counter() - w0, result


def target_description(tm: llvm.TargetMachine) -> str:
    return (f"{tm.triple};cpu={llvm.get_host_cpu_name()};"
            f"features={llvm.get_host_cpu_features().flatten()};opt=2;reloc=default;code=jit")


class TimedCompile:
    """``emit_object`` that adds up the time spent inside it."""

    def __init__(self, tm: llvm.TargetMachine):
        self.tm = tm
        self.cpu = self.wall = 0.0

    def __call__(self, module: llvm.ModuleRef) -> bytes:
        cpu, wall, data = timed(lambda: self.tm.emit_object(module), collect=False)
        self.cpu += cpu
        self.wall += wall
        assert isinstance(data, bytes)
        return data


def link_and_check(chain: ChainModule, data: bytes) -> tuple[float, float, list[int]]:
    ee = execution_engine.create_mcjit_compiler(llvm.parse_assembly(""), target_machine())
    try:
        def work() -> int:
            ee.add_object_file(data)
            ee.finalize_object()
            return ee.get_function_address("f0")
        cpu, wall, _ = timed(work)
        return cpu, wall, run_calls(chain, ee.get_function_address)
    finally:
        ee.close()


def engine_finalize(chain: ChainModule, cache_dir: Path | None
                    ) -> tuple[tuple[float, float], tuple[float, float], list[int]]:
    """A new engine on a fresh parse of the module (with ``cache_dir`` when
    given): (CPU, wall) of its creation (which verifies the module), (CPU,
    wall) of ``finalize_object`` + the first address, and the checked calls."""
    keywords = {} if cache_dir is None else {"cache_dir": str(cache_dir)}
    module = parse(chain.ir)
    tm = target_machine()
    cpu, wall, ee = timed(lambda: execution_engine.create_mcjit_compiler(module, tm, **keywords))
    assert isinstance(ee, execution_engine.ExecutionEngine)
    try:
        def work() -> int:
            ee.finalize_object()
            return ee.get_function_address("f0")
        f_cpu, f_wall, _ = timed(work)
        return (cpu, wall), (f_cpu, f_wall), run_calls(chain, ee.get_function_address)
    finally:
        ee.close()


def refuse(module: llvm.ModuleRef) -> bytes:
    raise AssertionError("a hit compiled")


def measure(n: int, reps: int, log: Callable[[str], None]) -> dict[str, Times]:
    chain = ChainModule(n)
    expected = chain.expected()
    found = {name: Times() for name in ("plain", "miss", "overhead", "key", "hit", "link",
                                        "engine create", "engine none", "engine cold",
                                        "engine warm")}
    tm = target_machine()
    target = target_description(tm)
    with tempfile.TemporaryDirectory(prefix="ee-bench-cache-") as scratch:
        for rep in range(reps):
            module = parse(chain.ir)
            cpu, wall, plain_obj = timed(lambda m=module: tm.emit_object(m))
            found["plain"].add(cpu, wall)

            store = ObjectStore(Path(scratch) / f"rep{rep}", record_stats=False)
            inner = TimedCompile(tm)
            miss = CachingCompiler(inner, store, target)
            module = parse(chain.ir)
            cpu, wall, miss_obj = timed(lambda m=module, c=miss: c(m))
            found["miss"].add(cpu, wall)
            found["overhead"].add(cpu - inner.cpu, wall - inner.wall)

            module = parse(chain.ir)
            cpu, wall, _ = timed(lambda m=module: object_key(module_ir(m), target))
            found["key"].add(cpu, wall)

            hit = CachingCompiler(refuse, store, target)
            cpu, wall, hit_obj = timed(lambda m=module, c=hit: c(m))
            found["hit"].add(cpu, wall)
            assert hit_obj == miss_obj and len(plain_obj) == len(miss_obj)  # type: ignore[arg-type]

            cpu, wall, results = link_and_check(chain, hit_obj)  # type: ignore[arg-type]
            found["link"].add(cpu, wall)
            if results != expected:
                raise SystemExit(f"wrong results {results}, expected {expected}")

            engine_dir = Path(scratch) / f"engine{rep}"
            for name, directory in (("engine none", None), ("engine cold", engine_dir),
                                    ("engine warm", engine_dir)):
                created, finalized, results = engine_finalize(chain, directory)
                found["engine create"].add(*created)
                found[name].add(*finalized)
                if results != expected:
                    raise SystemExit(f"{name}: wrong results {results}, expected {expected}")
            log(f"  N={n} rep {rep + 1}/{reps}: " + ", ".join(
                f"{k} {v.cpu[-1] * 1e3:.1f}/{v.wall[-1] * 1e3:.1f} ms" for k, v in found.items()))
    tm.close()
    return found


def table(n: int, found: dict[str, Times]) -> str:
    plain, link = found["plain"], found["link"]
    rows = []
    labels = {"plain": "plain compile (`emit_object`)",
              "miss": "miss (key + lookup + compile + store)",
              "overhead": "miss overhead (miss minus its compile)",
              "key": "of which the key (bitcode + BLAKE2b)",
              "hit": "hit (key + read + verify)",
              "link": "link the object (engine)",
              "engine create": "engine: create_mcjit_compiler (verifies; any cache)",
              "engine none": "engine, no cache: finalize_object + address",
              "engine cold": "engine, empty cache_dir (cold): finalize_object + address",
              "engine warm": "engine, filled cache_dir (warm, new engine): the same"}
    for name, label in labels.items():
        t = found[name]
        rows.append([label, f"{t.cpu_median * 1e3:.1f}", f"{min(t.cpu) * 1e3:.1f}",
                     f"{t.wall_median * 1e3:.1f}", f"{t.cpu_median / plain.cpu_median:.4f}"])
    cold = plain.cpu_median + link.cpu_median
    warm = found["hit"].cpu_median + link.cpu_median
    rows.append(["cold = plain + link", f"{cold * 1e3:.1f}", "", "", "1"])
    rows.append(["warm = hit + link", f"{warm * 1e3:.1f}", "", "", f"{warm / cold:.4f}"])
    engine_cold, engine_warm = found["engine cold"], found["engine warm"]
    rows.append(["engine warm / engine cold", "", "", "",
                 f"{engine_warm.cpu_median / engine_cold.cpu_median:.4f} (CPU), "
                 f"{engine_warm.wall_median / engine_cold.wall_median:.4f} (wall)"])
    return markdown_table([f"N = {n}", "CPU ms (median)", "CPU ms (best)", "wall ms (median)",
                           "/ plain (CPU)"], rows)


def verdict(found: dict[str, Times]) -> str:
    ratio = found["overhead"].cpu_median / found["plain"].cpu_median
    status = "met" if ratio <= MISS_OVERHEAD_BAR else "**missed**"
    warm = found["engine warm"].cpu_median / found["engine cold"].cpu_median
    warm_status = "met" if warm <= WARM_BAR else "**missed**"
    miss = found["engine cold"].cpu_median / found["engine none"].cpu_median - 1
    return (f"Miss overhead {ratio * 100:.2f} % of a plain compile (CPU, median); "
            f"bar \u2264 {MISS_OVERHEAD_BAR * 100:.0f} %: {status}. Through the engine: "
            f"warm finalize {warm:.4f}x cold (CPU, median; bar \u2264 {WARM_BAR}: "
            f"{warm_status}); an empty cache costs {miss * 100:+.2f} % over no cache.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cache", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"N={QUICK[0]}, {QUICK[1]} reps")
    parser.add_argument("--n", type=int, default=None, help=f"functions (default {N})")
    parser.add_argument("--reps", type=int, default=None, help=f"repetitions (default {REPS})")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    n, reps = QUICK if args.quick else (N, REPS)
    n, reps = args.n or n, args.reps or reps

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"cache: N={n}, {reps} reps ({environment_line()})")
    found = measure(n, reps, log)
    text = table(n, found)
    print(f"## {TITLE}\n\n{text}\n\n{verdict(found)}")
    if not args.no_write:
        update_section(RESULTS, TITLE, "\n".join([
            "`python -m benchmarks.cache`: see the module docstring for what each row is.",
            "", text, "", verdict(found), "", f"Measured on: {environment_line()}."]))
        log(f"cache: wrote section '{TITLE}' of {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
