"""Real programs with and without compile workers (issue 13), side by side.

The programs, cases and harness of :mod:`benchmarks.real_programs` (whole
process, wall time, best of *reps*, runs interleaved, every run's output
checked against the native run's), cold (``--no-cache``), with runners

* native binary and ``lli`` (LLVM 14, MCJIT kind);
* this engine's command line, ``--jit-kind mcjit``, with ``--compile-workers 0``
  (in process) and ``--compile-workers W`` (default ``auto``: the usable cores);
* with ``--lazy``, the same two for ``--jit-kind orc-lazy``.

Run: ``python -m benchmarks.real_programs_workers [--cases a,b] [--reps N]
[--workers W] [--lazy] [--work DIR] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from compat_tests import real_programs as rp

from . import real_programs as base
from .common import environment_line
from .report import RESULTS, markdown_table, update_section

TITLE = "Real programs with compile workers (issue 13)"
DEFAULT_CASES = ("lua-fib", "lua-sort", "brotli-compress", "sqlite-workload")


def runners(workers: str, lazy: bool) -> tuple[str, ...]:
    kinds = ("mcjit", "orc-lazy") if lazy else ("mcjit",)
    return ("native", "lli", *(f"engine {k} {w}" for k in kinds
                               for w in ("in process", f"{workers} workers")))


def make_commands(workers: str, lazy: bool) -> base.Commands:
    def commands(built: rp.Build, case: rp.Case,
                 lli: str | None) -> dict[str, list[str] | None]:
        args = list(case.args)
        out: dict[str, list[str] | None] = {
            "native": built.native_command(args),
            "lli": built.lli_command(lli, None, args) if lli else None}
        for kind in ("mcjit", "orc-lazy") if lazy else ("mcjit",):
            for label, setting in (("in process", "0"), (f"{workers} workers", workers)):
                out[f"engine {kind} {label}"] = base._with_stats(  # noqa: SLF001
                    built.engine_command(kind, args),
                    ["--stats", "--no-cache", "--compile-workers", setting])
        return out

    return commands


def section(results: dict[str, dict[str, base.Measurement]], cases: list[rp.Case],
            names: tuple[str, ...], workers: str, reps: int, lli: str | None,
            load: str) -> str:
    engines = [n for n in names if n.startswith("engine")]
    pairs = [(engines[i], engines[i + 1]) for i in range(0, len(engines), 2)]
    wall_rows, cpu_rows, stats_rows = [], [], []
    for case in cases:
        r = results[case.id]
        w = {k: v.wall for k, v in r.items()}
        c = {k: v.cpu for k, v in r.items()}
        wall_rows.append([case.id, *(base._s(w[k]) if r[k].error is None  # noqa: SLF001
                                     else f"n/a ({r[k].error})" for k in names),
                          *(base._ratio(w[e], w["lli"]) for e in engines),  # noqa: SLF001
                          *(base._ratio(w[b], w[a]) for a, b in pairs)])  # noqa: SLF001
        cpu_rows.append([case.id, *(base._s(c[k]) for k in names)])  # noqa: SLF001
        for e in engines:
            st = r[e].stats
            if st is not None:
                stats_rows.append([case.id, e.removeprefix("engine "), f"{st[0]:.0f}",
                                   f"{st[1]:.0f}", f"{st[2]:.0f}"])
    wall = markdown_table(
        ["case (wall s)", *names, *(f"{e.removeprefix('engine ')} / lli" for e in engines),
         *(f"{b.removeprefix('engine ')} / {a.removeprefix('engine ')}" for a, b in pairs)],
        wall_rows)
    cpu = markdown_table(["case (CPU s of the process and the children it waited for: "
                          "not the workers)", *names], cpu_rows)
    stats = markdown_table(["case", "runner", "parse ms", "compile+link ms", "run ms"],
                           stats_rows)
    cores = len(os.sched_getaffinity(0))
    return "\n".join([
        f"`python -m benchmarks.real_programs_workers`: the programs and cases of *Real "
        "programs* above, cold (`--no-cache`), whole-process **wall time**, best of "
        f"{reps}, runs interleaved; `lli` is {rp.tool_version(lli) if lli else 'not found'} "
        f"(MCJIT kind). The engine with `--compile-workers 0` and `--compile-workers "
        f"{workers}` ({cores} usable cores); workers start when the command line starts, "
        "while it parses the program, and compile every module of the finalization at "
        "once, big modules cut into partitions.",
        "",
        wall, "",
        cpu, "",
        "The engine's own `--stats` for its best run (compile+link: `finalize_object` "
        "and static constructors):",
        "",
        stats, "",
        f"Measured on: {environment_line()}; load average during the run: {load} (shared "
        "machine; Linux's autogroup scheduling gives one session one share of the CPUs "
        "however many processes it runs, so workers only shorten wall time when the other "
        "sessions leave cores idle).",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_programs_workers",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES))
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--lazy", action="store_true", help="orc-lazy runners too")
    parser.add_argument("--work", help="build directory to use and keep")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    known = {c.id: c for c in rp.CASES}
    cases = [known[w] for w in args.cases.split(",")]
    try:
        clang = rp.find_clang()
    except rp.Unavailable as exc:
        log(f"real_programs_workers: skipped: {exc}")
        return 0
    lli = rp.find_tool(rp.LLIS)
    names = runners(args.workers, args.lazy)
    with tempfile.TemporaryDirectory(prefix="real-programs-") as scratch:
        work = Path(args.work) if args.work else Path(scratch)
        try:
            rp.check_clang(clang, work / "clang-probe")
            builds = {p: rp.build(rp.RECIPES[p], clang, work / p)
                      for p in dict.fromkeys(c.program for c in cases)}
        except rp.Unavailable as exc:
            log(f"real_programs_workers: skipped: {exc}")
            return 0
        before = os.getloadavg()
        results = base.measure([(c, builds[c.program]) for c in cases], lli, args.reps, log,
                               names, make_commands(args.workers, args.lazy))
        after = os.getloadavg()
    load = f"{before[0]:.1f} at the start, {after[0]:.1f} at the end (1-minute)"
    text = section(results, cases, names, args.workers, args.reps, lli, load)
    print(f"## {TITLE}\n\n{text}")
    if not args.no_write:
        update_section(RESULTS, TITLE, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
