"""Where a lazy run of a real program spends its time (issue 12, item 2).

A real program (``compat_tests/real_programs.py``; Lua's ``fib`` script by
default) is run by the command line with ``--jit-kind orc-lazy --no-cache``
in a child process whose engine has timers around its phases, on the
calling (main) thread only: code generation (``TargetMachine.emit_object``),
cutting partitions out of their modules (``ModuleView.partition`` and
``globals_partition``), parsing them, linking them (the RedirectionLayer's
batch link, LLJIT included), and in total each lazy first call
(``CompileOnDemandLayer._compile``) and the variables partitions linked
before ``main`` (``_link_variables``). Phases nest: code generation and
linking happen inside a first call. For comparison, the same program's
eager run (``--jit-kind mcjit``) with and without compile workers, and the
fixed cost of one ``emit_object`` (a one-function module, median of 200).

Timers wrap internal methods, so the figures are a developer's breakdown,
not an API measurement. Run: ``python -m benchmarks.lazy_phases [--case
lua-fib] [--work DIR] [--reps 3] [--workers 0] [--no-write]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from compat_tests import real_programs as rp

from .common import environment_line
from .report import RESULTS, markdown_table, update_section

TITLE = "Where a lazy run's time goes (issue 12, item 2)"
MARK = "lazy_phases:"
PHASES = [  # (label, module, owner, attribute)
    ("lazy first calls (total)", "execution_engine.layers.compile_on_demand",
     "CompileOnDemandLayer", "_compile"),
    ("variables partitions (total)", "execution_engine.layers.compile_on_demand",
     "CompileOnDemandLayer", "_link_variables"),
    ("code generation (emit_object)", "llvmlite.binding", "TargetMachine", "emit_object"),
    ("cutting function partitions", "execution_engine.ir.extract", "ModuleView", "partition"),
    ("cutting variables partitions", "execution_engine.ir.extract", "ModuleView",
     "globals_partition"),
    ("parsing partitions", "execution_engine.layers.compile_on_demand", None, "parse_partition"),
    ("linking (plan, ELF, LLJIT, stubs)", "execution_engine.layers.redirection",
     "RedirectionLayer", "_link_batch"),
]


def child(argv: list[str]) -> int:
    """Run the command line on ``argv`` with phase timers; print them at exit."""
    import importlib

    from execution_engine import process_exit
    from execution_engine.cli.main import main as cli_main

    seconds: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    main_thread = threading.get_ident()

    def timed(label: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if threading.get_ident() != main_thread:
                return fn(*args, **kwargs)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - started
                calls[label] += 1
        return wrapper

    for label, module_name, owner_name, attribute in PHASES:
        module = importlib.import_module(module_name)
        owner = module if owner_name is None else getattr(module, owner_name)
        setattr(owner, attribute, timed(label, getattr(owner, attribute)))

    def report() -> None:
        sys.stderr.write(MARK + json.dumps({"seconds": seconds, "calls": calls}) + "\n")
        sys.stderr.flush()
    process_exit.on_exit(report)
    return cli_main(argv)


def emit_fixed_cost() -> float:
    """Median seconds of one ``emit_object`` of a one-function module."""
    import llvmlite.binding as llvm

    from .common import init_llvm
    init_llvm()
    machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
        opt=2, jit=True, codemodel="jitdefault")
    text = "define i64 @f(i64 %x) {\n  %y = add i64 %x, 1\n  ret i64 %y\n}\n"
    times = []
    for _ in range(200):
        module = llvm.parse_assembly(text)
        started = time.perf_counter()
        machine.emit_object(module)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_case(built: rp.Build, case: rp.Case, kind: str, workers: str,
             phases: bool) -> tuple[float, dict | None]:
    argv = built.engine_command(kind, case.args)
    split = argv.index("--")
    options = ["--no-cache", "--compile-workers", workers]
    if phases:
        argv = [sys.executable, "-m", "benchmarks.lazy_phases", "--child", "--",
                *argv[3:split], *options, *argv[split:]]
    else:
        argv = [*argv[:split], *options, *argv[split:]]
    started = time.perf_counter()
    proc = rp.run(argv, case, built)
    wall = time.perf_counter() - started
    if proc.returncode != case.status:
        raise RuntimeError(f"{case.id} {kind}: exit status {proc.returncode}: "
                           f"{rp.first_error_line(proc)}")
    found = None
    for line in proc.stderr.decode(errors="replace").splitlines():
        if line.startswith(MARK):
            found = json.loads(line[len(MARK):])
    return wall, found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--child", "--"]:
        return child(argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="lua-fib")
    parser.add_argument("--work")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", default="0", help="--compile-workers of the lazy runs")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    known = {c.id: c for c in rp.CASES}
    case = known[args.case]
    clang = rp.find_clang()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lazy-phases-") as scratch:
        work = Path(args.work) if args.work else Path(scratch)
        built = rp.build(rp.RECIPES[case.program], clang, work / case.program)
        rp.prepare_inputs(built)
        walls: dict[str, list[float]] = defaultdict(list)
        samples = []
        for _ in range(args.reps):  # interleaved
            wall, found = run_case(built, case, "orc-lazy", args.workers, phases=True)
            walls[f"orc-lazy, {args.workers} workers, timed"].append(wall)
            samples.append(found)
            for kind, workers in dict.fromkeys((("orc-lazy", args.workers), ("orc-lazy", "auto"),
                                                ("mcjit", "0"), ("mcjit", "auto"))):
                wall, _ = run_case(built, case, kind, workers, phases=False)
                walls[f"{kind}, {workers} workers"].append(wall)
    fixed = emit_fixed_cost()
    best = min(samples, key=lambda s: s["seconds"]["lazy first calls (total)"])
    rows = []
    for label, *_ in PHASES:
        n = best["calls"].get(label, 0)
        s = best["seconds"].get(label, 0.0)
        rows.append([label, f"{n:,}", f"{s * 1e3:.0f}", f"{s * 1e3 / n:.2f}" if n else "-"])
    n_emit = best["calls"].get("code generation (emit_object)", 0)
    rows.append(["of code generation: fixed cost of one emit_object x calls", f"{n_emit:,}",
                 f"{fixed * n_emit * 1e3:.0f}", f"{fixed * 1e3:.2f}"])
    runs = [[name, f"{min(w):.2f}", f"{statistics.median(w):.2f}"] for name, w in walls.items()]
    sec, cnt = best["seconds"], best["calls"]
    first = sec.get("lazy first calls (total)", 0.0)
    n_first = cnt.get("lazy first calls (total)", 0) or 1
    codegen = sec.get("code generation (emit_object)", 0.0)
    before_main = sec.get("variables partitions (total)", 0.0)
    n_parsed = max(cnt.get("parsing partitions", 0), 1)
    reading = (
        f"Reading: the lazy run spent {first + before_main:.2f} s "
        f"compiling on the main thread, {codegen:.2f} s of it in code generation "
        f"({fixed * n_emit:.2f} s of that the fixed cost of {n_emit} separate emit_object "
        f"calls). Per lazy first call, beyond code generation: cutting "
        f"{sec.get('cutting function partitions', 0.0) * 1e3 / n_first:.2f} ms, parsing "
        f"{sec.get('parsing partitions', 0.0) * 1e3 / n_parsed:.2f} ms, "
        f"linking {sec.get('linking (plan, ELF, LLJIT, stubs)', 0.0) * 1e3 / n_first:.2f} ms.")
    text = "\n".join([
        f"`python -m benchmarks.lazy_phases --case {args.case} --workers {args.workers}`: "
        + __doc__.split("\n\n", 1)[1].split("\n\nTimers wrap")[0],
        "",
        f"Phases of the fastest timed run (main thread; {args.reps} runs):",
        "",
        markdown_table(["phase", "calls", "ms", "ms each"], rows),
        "",
        reading,
        "",
        f"Whole process, wall seconds ({args.reps} interleaved runs):",
        "",
        markdown_table(["run", "best s", "median s"], runs),
        "",
        f"Measured on: {environment_line()}; load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (1-minute).",
    ])
    print(text)
    if not args.no_write:
        update_section(RESULTS, TITLE, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
