"""Many resident modules (issue 12, item 4): what one small module costs to keep.

N one-function modules (``f<i>`` calls ``base``, defined by the first module)
are parsed, added to one engine and finalized once; every module stays
resident. Each runner is a subprocess of its own, run one after the other:

* ``mcjit``: stock llvmlite (``llvm.create_mcjit_compiler``);
* ``engine``: this engine, default options (``redirection="direct"``, eager);
* ``engine-workers``: the same with ``compile_workers=2`` (code generation in
  two worker processes; their CPU time is not in the figure, the wall time is).

Reported per runner: CPU seconds of ``add_module`` for all N modules and of
``finalize_object`` (plus the first lookups), and RSS (``/proc/self/statm``)
growth from before parsing the modules to after finalizing, per module - the
parsed modules themselves are in both figures, since both engines keep them.
Every ``f<i>`` of a sample is called and checked.

Run: ``python -m benchmarks.resident [--modules N] [--runners a,b] [--no-write]``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import time

from .common import environment_line, parse, target_machine
from .memory import rss_kb
from .report import RESULTS, markdown_table, update_section

TITLE = "Resident modules (issue 12, item 4)"
MODULES = 10_000
RUNNERS = ("mcjit", "engine", "engine-workers")
LABELS = {"mcjit": "llvmlite MCJIT", "engine": "engine (default options)",
          "engine-workers": "engine, compile_workers=2"}

BASE = """
define i64 @base(i64 %x) {
  %a = mul i64 %x, 3
  ret i64 %a
}
"""

ONE = """
declare i64 @base(i64)

define i64 @f{i}(i64 %x) {{
  %a = add i64 %x, {i}
  %b = call i64 @base(i64 %a)
  ret i64 %b
}}
"""


def child(runner: str, n: int) -> dict[str, object]:
    import llvmlite.binding as llvm

    import execution_engine

    parse(BASE).close()  # LLVM initialised before the baseline
    gc.collect()
    before = rss_kb()
    start = time.process_time()
    modules = [parse(ONE.format(i=i)) for i in range(n)]
    parse_s = time.process_time() - start
    base = parse(BASE)
    if runner == "mcjit":
        ee = llvm.create_mcjit_compiler(base, target_machine())
    else:
        ee = execution_engine.create_mcjit_compiler(
            base, target_machine(), **({"compile_workers": 2} if runner == "engine-workers"
                                       else {}))
    start = time.process_time()
    for m in modules:
        ee.add_module(m)
    add_s = time.process_time() - start
    start, wall = time.process_time(), time.perf_counter()
    ee.finalize_object()
    fn = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)
    problems = []
    for i in range(0, n, max(1, n // 50)):
        got = fn(ee.get_function_address(f"f{i}"))(5)
        if got != (5 + i) * 3:
            problems.append(f"f{i}(5) = {got}, expected {(5 + i) * 3}")
    finalize_s = time.process_time() - start
    finalize_wall = time.perf_counter() - wall
    gc.collect()
    after = rss_kb()
    return {"runner": runner, "modules": n, "parse_s": parse_s, "add_s": add_s,
            "finalize_s": finalize_s, "finalize_wall": finalize_wall,
            "rss_kb_per_module": (after - before) / n,
            "rss_after_mb": after / 1024, "problems": problems[:3]}


def run_child(runner: str, n: int) -> dict[str, object]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "benchmarks.resident", "--child", runner,
                           "--modules", str(n)], capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"runner": runner, "error": f"exit status {done.returncode}: " + " | ".join(tail)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict[str, object]]) -> str:
    ref = next((r for r in results if r["runner"] == "mcjit" and "error" not in r), None)
    headers = ["runner", "modules", "parse s", "add s", "finalize CPU s", "finalize wall s",
               "RSS KiB per module", "RSS after MB", "finalize CPU / MCJIT",
               "finalize wall / MCJIT", "RSS / MCJIT"]
    body = []
    for r in results:
        if "error" in r:
            body.append([LABELS[r["runner"]], *["n/a"] * 10])
            continue
        body.append([LABELS[r["runner"]], f"{r['modules']:,}", f"{r['parse_s']:.2f}",
                     f"{r['add_s']:.2f}", f"{r['finalize_s']:.2f}", f"{r['finalize_wall']:.2f}",
                     f"{r['rss_kb_per_module']:.1f}", f"{r['rss_after_mb']:.0f}",
                     f"{r['finalize_s'] / ref['finalize_s']:.2f}" if ref else "n/a",
                     f"{r['finalize_wall'] / ref['finalize_wall']:.2f}" if ref else "n/a",
                     f"{r['rss_kb_per_module'] / ref['rss_kb_per_module']:.2f}" if ref else "n/a"])
    return markdown_table(headers, body, align="lrrrrrrrrrr")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.resident", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", type=int, default=MODULES)
    parser.add_argument("--runners", default=",".join(RUNNERS))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.modules)))
        return 0
    load = os.getloadavg()[0]
    results = []
    for runner in args.runners.split(","):
        r = run_child(runner, args.modules)
        print(f"  {runner}: {r}", file=sys.stderr, flush=True)
        results.append(r)
    load_end = os.getloadavg()[0]
    text = "\n".join([
        "`python -m benchmarks.resident`: N one-function modules (each calls `base`, defined by",
        "the first) added to one engine and finalized once, all resident; each runner in a",
        "subprocess of its own. CPU seconds (`time.process_time`) of adding the modules and of",
        "`finalize_object` plus 50 lookups and calls (all checked), and its wall time; RSS",
        "growth from before parsing to after finalizing, per module (the parsed modules count",
        "in both; compile workers' own memory does not).",
        "",
        table(results),
        "",
        f"Measured on: {environment_line()}; load average {load:.1f} at the start, "
        f"{load_end:.1f} at the end (1-minute).",
    ])
    print(text)
    if not args.no_write:
        update_section(RESULTS, TITLE, text)
    return 1 if any("error" in r or r.get("problems") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
