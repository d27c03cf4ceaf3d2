"""Real programs (issues 5, 12): whole-process wall time of well-known C programs.

Lua 5.4, the brotli tool and SQLite's shell with the whole library are
fetched from PyPI sdists and built with clang (``compat_tests/real_programs.py``:
one bitcode module per C file, the native binary linked from the same
modules). Each case - a Lua script, the official Lua test files, a brotli
compression or decompression, an SQL workload - is run as a whole process,
``time.perf_counter`` around ``subprocess.run``, best of *reps*, by

* the native binary;
* ``lli`` (LLVM 14 on these machines; ``lli-14`` preferred) in its default
  kind (MCJIT) and with ``-jit-kind=orc-lazy``;
* this engine's command line, ``python -m execution_engine run`` with
  ``--jit-kind mcjit`` and ``--jit-kind orc-lazy``.

Runs are interleaved (repetition by repetition). Every run's stdout and exit
status must be the native run's; a runner that fails or differs is shown as
n/a with the reason. For this engine the time includes starting Python and
importing llvmlite (measured alone, for reference); ``lli`` is a native binary.
CPU time (user + system of the child) is reported too: the machines are shared.

Run: ``python -m benchmarks.real_programs [--reps N] [--quick] [--cases a,b]
[--work DIR] [--no-write]``. Needs clang (``clang-14``, else ``clang``) and
access to PyPI; without them it says so and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from compat_tests import real_programs as rp

from .common import environment_line
from .report import RESULTS, markdown_table, update_section

TITLE = "Real programs (issue 5)"
REPS = 3
# Cases measured by default (the test runs all of them); --quick: fewer, once.
DEFAULT_CASES = ("lua-fib", "lua-strings", "lua-sort", "lua-closures", "lua-errors",
                 "lua-testes", "brotli-compress", "brotli-decompress", "sqlite-workload")
QUICK_CASES = ("lua-fib", "brotli-decompress")
RUNNERS = ("native", "lli", "lli orc-lazy", "engine mcjit", "engine orc-lazy", "engine mcjit warm")
_STATS = re.compile(rb"stats: .*?parse=([\d.]+)ms compile\+link=([\d.]+)ms run=([\d.]+)ms")


@dataclass
class Measurement:
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    stats: tuple[float, float, float] | None = None  # engine --stats of the best run (ms)
    error: str | None = None
    fallback: float | None = None  # lli orc-lazy failed: wall s with -per-module-lazy

    @property
    def wall(self) -> float | None:
        return min(self.walls) if self.walls and self.error is None else None

    @property
    def cpu(self) -> float | None:
        return min(self.cpus) if self.cpus and self.error is None else None


def timed(argv: list[str], case: rp.Case,
          built: rp.Build) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Wall and CPU seconds of one run of ``argv`` as a whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = rp.run(argv, case, built)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def commands(built: rp.Build, case: rp.Case, lli: str | None) -> dict[str, list[str] | None]:
    args = list(case.args)
    stats = ["--stats"]
    return {
        "native": built.native_command(args),
        "lli": built.lli_command(lli, None, args) if lli else None,
        "lli orc-lazy": built.lli_command(lli, "orc-lazy", args) if lli else None,
        # cold: no persistent cache; warm: a cache filled by an untimed run first
        "engine mcjit": _with_stats(built.engine_command("mcjit", args), [*stats, "--no-cache"]),
        "engine orc-lazy": _with_stats(built.engine_command("orc-lazy", args),
                                       [*stats, "--no-cache"]),
        "engine mcjit warm": _with_stats(built.engine_command("mcjit", args),
                                         [*stats, "--cache-dir", str(built.workdir / "cache")]),
    }


def _with_stats(argv: list[str], extra: list[str]) -> list[str]:
    split = argv.index("--")
    return argv[:split] + extra + argv[split:]


Commands = Callable[[rp.Build, rp.Case, "str | None"], "dict[str, list[str] | None]"]


def measure(cases: list[tuple[rp.Case, rp.Build]], lli: str | None, reps: int,
            log: Callable[[str], None], runners: tuple[str, ...] = RUNNERS,
            runner_commands: Commands = commands) -> dict[str, dict[str, Measurement]]:
    """Every runner of ``runner_commands`` (default: :func:`commands`) on every
    case, interleaved, ``reps`` times."""
    results = {case.id: {r: Measurement() for r in runners} for case, _ in cases}
    references: dict[str, subprocess.CompletedProcess[bytes]] = {}
    for case, built in cases:
        reference = rp.run(built.native_command(case.args), case, built)
        problem = rp.check_reference(case, built, reference)
        if problem is not None:
            raise SystemExit(f"{case.id}: {problem}")
        references[case.id] = reference
        warm = runner_commands(built, case, lli).get("engine mcjit warm")
        if warm is not None:
            timed(warm, case, built)  # fills the cache the warm runner reads
        if lli is None:
            for runner in ("lli", "lli orc-lazy"):
                if runner in results[case.id]:
                    results[case.id][runner].error = "no lli found"
    for rep in range(reps):
        for case, built in cases:
            for runner, argv in runner_commands(built, case, lli).items():
                m = results[case.id][runner]
                if argv is None or m.error is not None:
                    continue
                wall, cpu, proc = timed(argv, case, built)
                problem = rp.mismatch(case, references[case.id], proc)
                if problem is not None:
                    reason = rp.first_error_line(proc)
                    m.error = reason if proc.returncode < 0 else f"{problem}: {reason}"
                    log(f"  {case.id} {runner}: n/a ({m.error})")
                    if runner == "lli orc-lazy":
                        m.fallback = _per_module_lazy(argv, case, built, references[case.id])
                    continue
                if not m.walls or wall < min(m.walls):
                    found = _STATS.search(proc.stderr)
                    if found:
                        parse, link, run = (float(x) for x in found.groups())
                        m.stats = (parse, link, run)
                m.walls.append(wall)
                m.cpus.append(cpu)
            log(f"  rep {rep + 1}/{reps} {case.id}: " + ", ".join(
                f"{r} {_s(results[case.id][r].walls[-1] if results[case.id][r].walls else None)}"
                for r in runners if results[case.id][r].error is None))
    return results


def _per_module_lazy(argv: list[str], case: rp.Case, built: rp.Build,
                     reference: subprocess.CompletedProcess[bytes]) -> float | None:
    """lli's orc-lazy with whole modules as partitions (when per-function fails)."""
    split = argv.index(str(built.bitcode[0]))
    retry = argv[:split] + ["-per-module-lazy"] + argv[split:]
    best = None
    for _ in range(2):
        wall, _cpu, proc = timed(retry, case, built)
        if rp.mismatch(case, reference, proc) is not None:
            return None
        best = wall if best is None else min(best, wall)
    return best


def python_startup(reps: int) -> float:
    """Wall seconds of ``python -c 'import execution_engine'`` (best of reps)."""
    argv = [sys.executable, "-c", "import execution_engine, llvmlite.binding"]
    best = float("inf")
    for _ in range(max(3, reps)):
        start = time.perf_counter()
        subprocess.run(argv, env=rp.run_env(), check=True)
        best = min(best, time.perf_counter() - start)
    return best


# -- report ---------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    r = a / b
    return f"{r:.0f}x" if r >= 100 else f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def tables(results: dict[str, dict[str, Measurement]],
           cases: list[rp.Case]) -> tuple[str, list[str]]:
    # One note per runner and program, listing its distinct reasons.
    groups: dict[tuple[str, str], list[rp.Case]] = {}
    for case in cases:
        for runner in RUNNERS:
            if results[case.id][runner].error is not None:
                groups.setdefault((runner, case.program), []).append(case)
    marks = {key: i for i, key in enumerate(groups, 1)}
    notes = []
    for (runner, program), failed in groups.items():
        ms = [results[c.id][runner] for c in failed]
        reasons = list(dict.fromkeys(m.error for m in ms if m.error))
        note = (f"{marks[runner, program]}. {runner} on {program} "
                f"({', '.join(c.name for c in failed)}): " + " / ".join(reasons))
        if any(m.fallback is not None for m in ms):
            note += ("; with `-per-module-lazy` (whole modules as partitions) it runs "
                     "correctly: " + ", ".join(
                         f"{c.name} {_s(m.fallback)} s" for c, m in zip(failed, ms, strict=True)
                         if m.fallback is not None))
        notes.append(note)

    def mark(case: rp.Case, runner: str) -> str:
        return f"n/a ({marks[runner, case.program]})"

    wall_rows, cpu_rows, stats_rows = [], [], []
    for case in cases:
        r = results[case.id]
        w = {k: v.wall for k, v in r.items()}
        c = {k: v.cpu for k, v in r.items()}
        wall_rows.append([
            case.id, *(_s(w[k]) if r[k].error is None else mark(case, k) for k in RUNNERS),
            _ratio(w["engine mcjit"], w["native"]), _ratio(w["engine orc-lazy"], w["native"]),
            _ratio(w["engine mcjit"], w["lli"]), _ratio(w["engine orc-lazy"], w["lli orc-lazy"]),
            _ratio(w["engine orc-lazy"], w["lli"]),
            _ratio(w["engine mcjit warm"], w["engine mcjit"]),
            _ratio(w["engine mcjit warm"], w["lli"]),
        ])
        cpu_rows.append([case.id,
                         *(_s(c[k]) if r[k].error is None else mark(case, k) for k in RUNNERS),
                         _ratio(c["engine mcjit"], c["lli"]),
                         _ratio(c["engine orc-lazy"], c["lli"])])
        for kind in ("engine mcjit", "engine orc-lazy"):
            st = r[kind].stats
            if st is not None:
                stats_rows.append([case.id, kind.split()[1], f"{st[0]:.0f}", f"{st[1]:.0f}",
                                   f"{st[2]:.0f}"])
    wall = markdown_table(
        ["case (wall s)", *RUNNERS, "mcjit/native", "orc-lazy/native", "mcjit/lli",
         "orc-lazy/lli orc-lazy", "orc-lazy/lli", "warm/cold", "warm/lli"], wall_rows)
    cpu = markdown_table(["case (CPU s)", *RUNNERS, "mcjit/lli", "orc-lazy/lli"], cpu_rows)
    stats = markdown_table(["case", "engine kind", "parse ms", "compile+link ms", "run ms"],
                           stats_rows)
    return "\n\n".join([wall, cpu, stats]), notes


def summary(results: dict[str, dict[str, Measurement]], cases: list[rp.Case]) -> str:
    """Ranges of the main ratios (wall time), per program."""
    def span(values: list[float]) -> str:
        if not values:
            return "n/a"
        lo, hi = min(values), max(values)
        return _ratio(lo, 1.0) if abs(hi - lo) < 0.005 else f"{_ratio(lo, 1.0)}-{_ratio(hi, 1.0)}"

    def ratios(rows: list[dict[str, Measurement]], a: str, b: str) -> list[float]:
        pairs = [(x[a].wall, x[b].wall) for x in rows]
        return [p / q for p, q in pairs if p is not None and q]

    lines = []
    for program in dict.fromkeys(c.program for c in cases):
        r = [results[c.id] for c in cases if c.program == program]
        lines.append(
            f"- {program}: engine mcjit / lli {span(ratios(r, 'engine mcjit', 'lli'))}; "
            f"engine orc-lazy / lli orc-lazy {span(ratios(r, 'engine orc-lazy', 'lli orc-lazy'))}; "
            f"engine orc-lazy / engine mcjit {span(ratios(r, 'engine orc-lazy', 'engine mcjit'))}.")
    return "Wall-time ratios, lowest-highest over the cases:\n\n" + "\n".join(lines)


def section(results: dict[str, dict[str, Measurement]], cases: list[rp.Case],
            builds: dict[str, rp.Build], clang: str, lli: str | None, reps: int,
            startup: float, load: str) -> str:
    text, notes = tables(results, cases)
    describe = {
        "lua": f"Lua 5.4 (`{rp.LUA.requirement}` sdist, `{rp.LUA.root}`, "
               f"{len(builds['lua'].bitcode) if 'lua' in builds else '?'} modules, "
               "`-DLUA_USE_POSIX`)",
        "brotli": f"brotli {rp.BROTLI.requirement.split('==')[1]} (`{rp.BROTLI.requirement}` "
                  f"sdist, `c/tools/brotli.c` + common, dec, enc; "
                  f"{len(builds['brotli'].bitcode) if 'brotli' in builds else '?'} modules)",
        "sqlite": f"SQLite 3.50.4 (`{rp.SQLITE.requirement}` sdist, `sqlite/`: the `sqlite3` "
                  "shell `shell.c` and the amalgamation `sqlite3.c`, 2 modules, the library "
                  "about 1,600 functions in one)",
    }
    lines = [
        "`python -m benchmarks.real_programs`: whole-process **wall time** "
        f"(`time.perf_counter` around `subprocess.run`), best of {reps}, runs interleaved; "
        "CPU time (user + system of the child, best of the same runs) below it. Programs, "
        "fetched with `pip download --no-binary :all:` and built with "
        f"`{Path(clang).name} -O2`, one bitcode module per C file (the native binary is "
        "linked from the same modules):",
        "",
        *(f"- {describe[p]}" for p in dict.fromkeys(c.program for c in cases)),
        "",
        "Cases (`compat_tests/real_programs.py`, also run by "
        "`compat_tests/test_real_programs.py`): `lua-<name>` runs a script of that test "
        "(fib: recursion and arithmetic; strings: building, gsub/gmatch, format, stdin; "
        "sort: `table.sort` of 30,000 numbers and 3,000 strings; closures: upvalues, "
        "coroutines, metatables, finalizers; errors: pcall/error through C frames, "
        "exit status 3); `lua-testes` runs 23 files of Lua's own test suite in one "
        "interpreter; `brotli-compress` compresses 300 KB at quality 9 to stdout, "
        "`brotli-decompress` decompresses it; `sqlite-workload` runs 2 MB of SQL in an "
        "in-memory database (22,000 single-row INSERTs, 80,000 rows from a recursive CTE, "
        "three indexes, joins, aggregates, a window function, JSON, an UPDATE, a DELETE, "
        "an integrity check). Every run's stdout and exit status matched "
        "the native run's, or the cell says why not.",
        "",
        f"Runners: native binary; `{Path(lli).name if lli else 'lli'}` "
        f"({rp.tool_version(lli) if lli else 'not found'}) in its default kind (MCJIT) and "
        "`-jit-kind=orc-lazy`, with `-extra-module=` for every module but main's; this "
        "engine's `python -m execution_engine run FILE --extra-module ... --jit-kind K`. "
        f"The engine's times include Python start-up and importing llvmlite: {startup:.2f} s "
        "alone (`python -c 'import execution_engine, llvmlite.binding'`).",
        "",
        text,
        "",
        "The third table is the engine's own `--stats` for its best run: parsing the "
        "bitcode, `finalize_object` + static constructors (compile+link), and `main` "
        "(for orc-lazy, compiling on first call happens inside *run*).",
        "",
        summary(results, cases),
    ]
    if notes:
        lines += ["", "n/a:", "", *notes]
    lines += [
        "",
        f"Measured on: {environment_line()}; {Path(clang).name}: {rp.tool_version(clang)}; "
        f"load average during the run: {load} (shared machine: wall times are noisy, "
        "CPU times less so).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_programs",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=None, help=f"best of N (default {REPS})")
    parser.add_argument("--quick", action="store_true", help="two cases, one repetition")
    parser.add_argument("--cases", help="comma-separated case ids (e.g. lua-fib,brotli-compress)")
    parser.add_argument("--work", help="build directory to use and keep (default: a temporary "
                                       "one, removed afterwards)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    reps = args.reps or (1 if args.quick else REPS)
    wanted = (args.cases.split(",") if args.cases
              else QUICK_CASES if args.quick else DEFAULT_CASES)
    known = {c.id: c for c in rp.CASES}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(known)}")
    cases = [known[w] for w in wanted]

    try:
        clang = rp.find_clang()
    except rp.Unavailable as exc:
        log(f"real_programs: skipped: {exc}")
        return 0
    lli = rp.find_tool(rp.LLIS)
    with tempfile.TemporaryDirectory(prefix="real-programs-") as scratch:
        work = Path(args.work) if args.work else Path(scratch)
        try:
            rp.check_clang(clang, work / "clang-probe")
            builds = {}
            for program in dict.fromkeys(c.program for c in cases):
                log(f"real_programs: building {program} in {work / program}")
                builds[program] = rp.build(rp.RECIPES[program], clang, work / program)
        except rp.Unavailable as exc:
            log(f"real_programs: skipped: {exc}")
            return 0
        log(f"real_programs: {len(cases)} cases, best of {reps} ({environment_line()})")
        startup = python_startup(reps)
        load_before = os.getloadavg()
        results = measure([(c, builds[c.program]) for c in cases], lli, reps, log)
        load_after = os.getloadavg()
        load = f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end (1-minute)"
        text = section(results, cases, builds, clang, lli, reps, startup, load)
    print(f"## {TITLE}\n")
    print(text)
    if not args.no_write:
        update_section(RESULTS, TITLE, text)
        log(f"real_programs: wrote section '{TITLE}' of {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
