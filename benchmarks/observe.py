"""What observing costs (issue 16): the perf map, jitdump and GDB names on
eager compilation and on hot-swap.

Two workloads, both from the generators of the other benchmarks:

* eager: ``create_mcjit_compiler`` + ``finalize_object`` +
  ``get_function_address("f0")`` of a generated module of N functions
  (:class:`benchmarks.common.ChainModule`, as ``benchmarks.eager``);
* swap: ``update_module`` of the one-function module that replaces
  ``f<N/2>`` in an engine holding that module (:class:`benchmarks.swap.
  SwapChain`, as ``benchmarks.swap``). The previous update, superseded,
  leaves the engine by itself (``grace_period=0``: its code is freed during
  the next swap, so code-freed events are part of the work).

Variants, interleaved repetition by repetition: ``off`` (no observer),
``hook`` (the observer hook installed, no listener: the cost of nothing
listening), ``perf map`` (``/tmp/perf-<pid>.map``-style file in a temporary
directory), ``jitdump`` (code bytes written too) and ``gdb names`` (a symbol
file registered through GDB's JIT interface; no debugger attached). CPU
time (``time.process_time``); medians, and each variant's ratio to ``off``.

The hook is the temporary one of ``execution_engine.observe._temporary``
(delivery under the layer's lock); the engine's event API will replace it,
and this benchmark with it.

Run: ``python -m benchmarks.observe [--quick] [--n 1000] [--no-write]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import execution_engine
from execution_engine.observe import _temporary
from execution_engine.observe.events import Listener
from execution_engine.observe.gdb_jit import GdbJitListener
from execution_engine.observe.jitdump import JitDump
from execution_engine.observe.perf_map import PerfMap

from .common import ChainModule, cpu_time, environment_line, parse, target_machine
from .report import RESULTS, markdown_table, update_section
from .swap import SwapChain

TITLE = "Observability overhead (issue 16)"
VARIANTS = ("off", "hook", "perf map", "jitdump", "gdb names")
BAR = 1.05  # perf map on: at most 5 % over off


def _listeners(directory: str) -> dict[str, Callable[[], list[Listener]]]:
    perf = PerfMap(directory)
    dump = JitDump(directory)
    gdb = GdbJitListener()
    return {"off": list, "hook": list, "perf map": lambda: [perf], "jitdump": lambda: [dump],
            "gdb names": lambda: [gdb]}


class _Inside:
    """CPU time spent inside the observer (hook, events and listeners), by variant:
    a direct measure of the overhead, free of the noise of whole-operation timing."""

    def __init__(self) -> None:
        self.variant = "off"
        self.seconds: dict[str, float] = {}

    def __call__(self, *args: object) -> None:
        start = time.process_time()
        try:
            _temporary._observe(*args)  # type: ignore[arg-type]
        finally:
            elapsed = time.process_time() - start
            self.seconds[self.variant] = self.seconds.get(self.variant, 0.0) + elapsed


INSIDE = _Inside()


def _observe(variant: str, listeners: dict[str, Callable[[], list[Listener]]]) -> None:
    _temporary.disable()
    INSIDE.variant = variant
    if variant != "off":
        _temporary.enable(*listeners[variant]())
        _temporary.redirection.code_observer = INSIDE


def eager_once(chain: ChainModule) -> float:
    module = parse(chain.ir)
    tm = target_machine()

    def work() -> execution_engine.ExecutionEngine:
        engine = execution_engine.create_mcjit_compiler(module, tm)
        engine.finalize_object()
        if not engine.get_function_address("f0"):
            raise RuntimeError("f0 not found")
        return engine

    seconds, engine = cpu_time(work)
    engine.close()  # type: ignore[attr-defined]
    return seconds


class Swapper:
    """One engine per variant, swapping ``f<N/2>`` again and again."""

    def __init__(self, sc: SwapChain):
        self.sc = sc
        self.engine = execution_engine.create_mcjit_compiler(
            parse(sc.chain.ir), target_machine(), grace_period=0)
        self.engine.finalize_object()

    def swap(self) -> float:
        module = parse(self.sc.single_text())
        seconds, _ = cpu_time(lambda: self.engine.update_module(module))
        return seconds

    def close(self) -> None:
        self.engine.close()


Times = dict[str, dict[str, list[float]]]


def measure(n: int, eager_reps: int, swaps: int, log: Callable[[str], None]
            ) -> tuple[Times, dict[str, dict[str, float]]]:
    times: dict[str, dict[str, list[float]]] = {"eager": {}, "swap": {}}
    inside: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ee-observe-bench-") as directory:
        listeners = _listeners(directory)
        chain = ChainModule(n)
        for rep in range(eager_reps + 1):  # rep 0 warms up
            for variant in VARIANTS:
                _observe(variant, listeners)
                seconds = eager_once(chain)
                if rep:
                    times["eager"].setdefault(variant, []).append(seconds)
            log(f"  eager rep {rep}: " + ", ".join(
                f"{v} {times['eager'][v][-1] * 1e3:.0f} ms" for v in VARIANTS if rep))
        _temporary.disable()
        inside["eager"] = dict(INSIDE.seconds)
        INSIDE.seconds.clear()
        sc = SwapChain(n)
        swappers = {}
        for variant in VARIANTS:
            _observe(variant, listeners)
            swappers[variant] = Swapper(sc)
        INSIDE.seconds.clear()  # the engines' first link is not a swap
        try:
            for rep in range(swaps + 1):
                for variant in VARIANTS:
                    _observe(variant, listeners)
                    seconds = swappers[variant].swap()
                    if rep:
                        times["swap"].setdefault(variant, []).append(seconds)
                if rep % 50 == 0:
                    log(f"  swap {rep}/{swaps}")
        finally:
            _temporary.disable()
            for s in swappers.values():
                s.close()
        inside["swap"] = dict(INSIDE.seconds)
    return times, inside


def table(times: Times, inside: dict[str, dict[str, float]], runs_with_warmup: dict[str, int]
          ) -> str:
    rows = []
    for workload, by_variant in times.items():
        off = statistics.median(by_variant["off"])
        for variant in VARIANTS:
            med = statistics.median(by_variant[variant])
            spent = inside[workload].get(variant)
            per_run = "" if spent is None else f"{spent / runs_with_warmup[workload] * 1e3:.3f}"
            share = "" if spent is None else f"{spent / runs_with_warmup[workload] / off:.2%}"
            rows.append([workload, variant, f"{med * 1e3:.3f}", f"{med / off:.3f}", per_run,
                         share, len(by_variant[variant])])
    return markdown_table(["workload", "variant", "median ms", "/ off", "observer ms per run",
                           "observer / off", "runs"], rows)


def verdicts(times: Times, inside: dict[str, dict[str, float]],
             runs_with_warmup: dict[str, int]) -> list[str]:
    out = []
    for workload, by_variant in times.items():
        off = statistics.median(by_variant["off"])
        ratio = statistics.median(by_variant["perf map"]) / off
        direct = inside[workload]["perf map"] / runs_with_warmup[workload] / off
        verdict = "meets" if max(ratio - 1, direct) <= BAR - 1 else "misses"
        out.append(f"- {workload}: perf map {ratio:.3f}x off by medians, {direct:.2%} measured "
                   f"inside the observer: {verdict} the bar (<= {BAR}x).")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, to try it out")
    parser.add_argument("--n", type=int, default=1000, help="functions in the module")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS}")
    args = parser.parse_args(argv)
    eager_reps, swaps = (2, 20) if args.quick else (9, 300)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    times, inside = measure(args.n, eager_reps, swaps, log)
    runs = {"eager": eager_reps + 1, "swap": swaps + 1}
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    text = "\n".join([
        f"N = {args.n}; {environment_line()}; load average {load} at the end.", "",
        "CPU time; medians of interleaved runs (first run of each variant not counted); "
        "observer columns: CPU time inside the hook, its events and listeners, per run "
        "(warm-up included), and as a share of `off`'s median.", "",
        table(times, inside, runs), "", *verdicts(times, inside, runs), ""])
    print(text)
    if not args.no_write:
        update_section(RESULTS, TITLE, __doc__.split("\n\n")[0] + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
