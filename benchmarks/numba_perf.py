"""numba on stock llvmlite MCJIT and on this engine: memory, run time, compile time.

    python -m benchmarks.numba_perf [--python PY] [--runs N] [--cycles N] [which ...]

``which`` is any of ``leak``, ``fib``, ``compile`` (default: all). Every
measurement runs in fresh child processes of ``PY`` (an interpreter with
numba and this package; the default is the running one), stock and engine
alternating, so both see the same machine load; figures are medians over
``--runs`` children of each kind, printed with the engine/stock ratio.

* ``leak``: numba issue #5976's loop. ``@njit`` a freshly made function,
  call it, ``del`` it, ``gc.collect()``; ``--cycles`` times (default 2,000)
  after 100 warm-up cycles. RSS growth per compile, KiB. ``leak-integrated``
  does the same with :mod:`execution_engine.numba_integration` enabled
  (engine only), which removes a freed library's modules from the engine.
* ``fib``: recursive ``fib(32)`` compiled with ``@njit``; best of 15 calls.
* ``compile``: the first call (typing, lowering, optimisation, code
  generation and linking) of one big function that uses many numpy
  routines, each compiled by numba as a library of its own. Wall and CPU
  seconds of the first call, and CPU seconds spent inside the engine's
  ``add_module``/``finalize_object``/``get_*_address`` calls.

The engine is installed with :func:`execution_engine.install` before numba
is imported (the child's ``--engine`` flag); stock children never import
this package's engine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

BIG_SOURCE = '''
import numpy as np
from numba import njit

@njit
def big(a, b, n):
    s = np.sort(a)
    o = np.argsort(b)
    c = np.cumsum(a)
    p = np.cumprod(b[:8])
    m = np.median(a) + np.mean(b) + np.std(a) + np.var(b)
    u = np.unique(np.round(a * 10))
    cv = np.convolve(a[:16], b[:16])
    it = np.interp(b, s, c)
    w = np.where(a > m, a, b)
    mx = np.max(w) - np.min(w) + np.argmax(a) - np.argmin(b)
    d = {0: 0.0}
    for i in range(n):
        d[i % 17] = d.get(i % 17, 0.0) + a[i % a.size]
    lst = [x * 2.0 for x in b[:32]]
    lst.sort()
    t = 0.0
    for k, v in d.items():
        t += k * v
    st = str(n) + "-" + str(len(lst))
    h = np.histogram(a, bins=10)[0]
    q = np.percentile(a, 90.0)
    cc = np.clip(a[:64], 0.2, 0.8).sum() + np.cross(a[:3], b[:3]).sum()
    dd = np.diff(s).sum() + np.nanmax(c) - np.nanmin(c)
    ee = np.outer(a[:8], b[:8]).sum() + np.abs(a[:16]).sum()
    ff = np.concatenate((a[:4], b[:4])).sum() + np.stack((a[:3], b[:3])).sum()
    gg = np.searchsorted(s, b[:16]).sum() + np.bincount(o[:32] % 7).sum()
    return (s.sum() + c[-1] + p[-1] + m + u.size + cv.sum() + it.sum() + mx + t
            + len(st) + h.sum() + q + cc + dd + ee + ff + gg + lst[0])
'''


# -- children (run in fresh processes of --python) ----------------------------


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource
    return pages * resource.getpagesize() // 1024


def _time_engine_calls(engine: bool, inside: list[float]) -> None:
    """Wrap the engine class's compile-path methods to sum their CPU time into
    ``inside[0]`` (before numba imports and captures them)."""
    import time

    import llvmlite.binding as llvm
    cls = llvm.ExecutionEngine  # the engine's class once install() ran
    for name in ("add_module", "finalize_object", "get_function_address",
                 "get_global_value_address"):
        original = getattr(cls, name)

        def timed(self, *a, _original=original, **k):
            t = time.process_time()
            try:
                return _original(self, *a, **k)
            finally:
                inside[0] += time.process_time() - t
        setattr(cls, name, timed)


def child(which: str, engine: bool, cycles: int) -> dict:
    if engine:
        import execution_engine
        execution_engine.install()
        if which == "leak-integrated":
            from execution_engine import numba_integration
            numba_integration.enable()
    import gc
    import time

    inside = [0.0]
    if which == "compile":
        _time_engine_calls(engine, inside)
    import numba
    import numpy as np

    if which in ("leak", "leak-integrated"):
        def cycle(i: int) -> None:
            namespace: dict = {}
            exec(f"def f(x):\n    return x * {i} + 1\n", namespace)
            f = numba.njit(namespace["f"])
            assert f(2) == 2 * i + 1
            del f, namespace
            gc.collect()

        for i in range(100):
            cycle(i)
        before = _rss_kib()
        for i in range(cycles):
            cycle(i)
        return {"kib_per_compile": (_rss_kib() - before) / cycles}
    if which == "fib":
        @numba.njit
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        assert fib(10) == 55
        best = float("inf")
        for _ in range(15):
            t = time.perf_counter()
            fib(32)
            best = min(best, time.perf_counter() - t)
        return {"fib32_ms": best * 1e3}
    if which == "compile":
        namespace: dict = {}
        exec(BIG_SOURCE, namespace)
        rng = np.random.default_rng(1)
        a, b = rng.random(256), rng.random(256)
        w, c = time.perf_counter(), time.process_time()
        namespace["big"](a, b, 100)
        return {"first_call_wall_s": time.perf_counter() - w,
                "first_call_cpu_s": time.process_time() - c,
                "engine_calls_cpu_s": inside[0]}
    raise ValueError(which)


# -- parent ----------------------------------------------------------------


def run_child(python: str, which: str, engine: bool, cycles: int) -> dict:
    argv = [python, "-m", "benchmarks.numba_perf", "--child", which, "--cycles", str(cycles)]
    if engine:
        argv.append("--engine")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=root)
    if proc.returncode != 0:
        raise RuntimeError(f"{which} ({'engine' if engine else 'stock'}) failed:\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(python: str, which: str, runs: int, cycles: int, kinds=(False, True)) -> None:
    results: dict[bool, list[dict]] = {k: [] for k in kinds}
    for r in range(runs):
        for engine in (kinds if r % 2 == 0 else tuple(reversed(kinds))):
            results[engine].append(run_child(python, which, engine, cycles))
    medians = {k: {key: statistics.median(d[key] for d in v) for key in v[0]}
               for k, v in results.items()}
    for key in next(iter(medians.values())):
        cells = [f"{'engine' if k else 'stock'} {medians[k][key]:.4g}" for k in kinds]
        line = f"{which:16} {key:20} " + "  ".join(cells)
        if len(kinds) == 2 and medians[False][key]:
            line += f"  ratio {medians[True][key] / medians[False][key]:.3f}x"
        all_runs = {('engine' if k else 'stock'): [round(d[key], 4) for d in results[k]]
                    for k in kinds}
        print(f"{line}   runs {all_runs}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", nargs="*", default=["leak", "fib", "compile"])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--child")
    parser.add_argument("--engine", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.engine, args.cycles)))
        return 0
    for which in args.which:
        if which == "leak-integrated":
            measure(args.python, which, args.runs, args.cycles, kinds=(True,))
        else:
            measure(args.python, which, args.runs, args.cycles)
    return 0


if __name__ == "__main__":
    sys.exit(main())
