"""Where the engine's share of a numba first-call compile goes, beside stock MCJIT.

    python -m benchmarks.numba_engine_share [--python PY] [--runs N]

Runs :data:`benchmarks.numba_perf.BIG_SOURCE`'s first call (about 240
modules through ``add_module``/``finalize_object``/``get_*_address``) in fresh
children of ``PY`` (an interpreter with numba and this package), stock and
engine alternating. Each child reports the CPU seconds spent inside those
engine methods (``inside``, the figure to compare with stock) and the
process's garbage-collection CPU; engine children also split ``inside``
into its parts: LLVM's code generator (``emit_object``), the intrinsic and
module checks, the direct-call analysis (which prints each module that calls
its own functions), ELF parsing, and linking (``link_batch``; the LLJIT link
itself is ``objlink_add``). ``overhead`` = ``inside`` - ``emit_object``: what
the engine adds around code generation, the counterpart of MCJIT's
RuntimeDyld work. Medians over ``--runs`` children of each kind.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

#: (module, owner, attribute, label) of each engine part timed.
_PARTS = [
    ("llvmlite.binding", "TargetMachine", "emit_object", "emit_object"),
    ("execution_engine.compilers", None, "check_intrinsics", "check_intrinsics"),
    ("execution_engine.ir.module_checks", None, "check_module", "check_module"),
    ("execution_engine.policies", "RedirectionPolicy", "direct_callees", "direct_calls"),
    ("execution_engine.native.elf", "ObjectFile", "__init__", "elf_parse"),
    ("execution_engine.layers.redirection", "RedirectionLayer", "_link_batch", "link_batch"),
    ("execution_engine.layers.object_linking", "ObjectLinkingLayer", "add", "objlink_add"),
]
_ENGINE_CALLS = ("add_module", "finalize_object", "get_function_address",
                 "get_global_value_address")


def _wrap(owner: Any, name: str, totals: dict[str, float], label: str) -> None:
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] = totals.get(label, 0.0) + time.process_time() - started

    setattr(owner, name, timed)


def child(engine: bool) -> dict[str, float]:
    import gc
    import importlib

    if engine:
        import execution_engine
        execution_engine.install()
    import llvmlite.binding as llvm

    totals: dict[str, float] = {}
    inside: dict[str, float] = {}
    for name in _ENGINE_CALLS:  # before numba's codegen captures the methods
        _wrap(llvm.ExecutionEngine, name, inside, "inside")
    if engine:
        for module, owner, attribute, label in _PARTS:
            target = importlib.import_module(module)
            _wrap(getattr(target, owner) if owner else target, attribute, totals, label)
    collecting = [0.0, 0.0]

    def on_gc(phase: str, _info: dict) -> None:
        if phase == "start":
            collecting[1] = time.process_time()
        else:
            collecting[0] += time.process_time() - collecting[1]

    import numpy as np

    from benchmarks.numba_perf import BIG_SOURCE
    namespace: dict = {}
    exec(BIG_SOURCE, namespace)
    rng = np.random.default_rng(1)
    a, b = rng.random(256), rng.random(256)
    gc.callbacks.append(on_gc)
    started = time.process_time()
    namespace["big"](a, b, 100)
    result = {"first_call_cpu": time.process_time() - started, "gc": collecting[0],
              "inside": inside.get("inside", 0.0), **totals}
    if engine:
        result["overhead"] = result["inside"] - totals.get("emit_object", 0.0)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=("stock", "engine"))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child == "engine")))
        return 0
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [root, os.environ.get("PYTHONPATH")])))
    runs: dict[str, list[dict[str, float]]] = {"stock": [], "engine": []}
    for r in range(args.runs):
        for kind in (("stock", "engine") if r % 2 == 0 else ("engine", "stock")):
            proc = subprocess.run([args.python, "-m", "benchmarks.numba_engine_share",
                                   "--child", kind], capture_output=True, text=True,
                                  cwd=root, env=env, check=False)
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            runs[kind].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for kind, results in runs.items():
        keys = results[0].keys()
        print(kind.ljust(6), "  ".join(
            f"{k} {statistics.median(d[k] for d in results):.3f}" for k in keys))
    ratio = (statistics.median(d["inside"] for d in runs["engine"])
             / statistics.median(d["inside"] for d in runs["stock"]))
    print(f"inside engine calls, engine/stock: {ratio:.3f}x "
          f"(runs: stock {[round(d['inside'], 3) for d in runs['stock']]}, "
          f"engine {[round(d['inside'], 3) for d in runs['engine']]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
