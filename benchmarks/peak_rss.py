"""Peak RSS of a real program (issue 12, item 4): the engine's command line
beside the same program on stock llvmlite MCJIT (:mod:`benchmarks.plain_mcjit`).

Each run is a whole process; its peak resident set is the kernel's
``ru_maxrss`` for that child alone (``os.wait4``), its wall time
``time.perf_counter`` around it. Runners, interleaved, best of *reps*:

* ``native``: the binary built from the same modules;
* ``plain MCJIT``: ``python -m benchmarks.plain_mcjit`` (llvmlite's MCJIT);
* ``engine mcjit``: ``python -m execution_engine run --jit-kind mcjit
  --no-cache`` as shipped (compile workers ``auto``: their own RSS is not
  the host's and is listed apart);
* ``engine mcjit, no workers``: the same with ``--compile-workers 0``.

Every run's stdout and status must match the native run's.

Run: ``python -m benchmarks.peak_rss [--cases sqlite-workload] [--reps N]
[--work DIR] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compat_tests import real_programs as rp

from .common import environment_line
from .report import RESULTS, markdown_table, update_section

TITLE = "Peak RSS of real programs (issue 12, item 4)"


def commands(built: rp.Build, case: rp.Case) -> dict[str, list[str]]:
    args = list(case.args)
    engine = built.engine_command("mcjit", args)
    split = engine.index("--")
    extra = [a for path in built.bitcode[1:] for a in ("--extra-module", str(path))]
    return {
        "native": built.native_command(args),
        "plain MCJIT": [sys.executable, "-m", "benchmarks.plain_mcjit", str(built.bitcode[0]),
                        *extra, "--", *args],
        "engine mcjit": engine[:split] + ["--no-cache"] + engine[split:],
        "engine mcjit, no workers": engine[:split] + ["--no-cache", "--compile-workers", "0"]
        + engine[split:],
    }


def run_one(argv: list[str], case: rp.Case, built: rp.Build) -> tuple[float, float, bytes, int]:
    """(wall s, peak RSS MB, stdout, status) of one run."""
    env = rp.run_env()
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out,
                                stderr=subprocess.DEVNULL, cwd=built.inputs[case.cwd], env=env)
        if proc.stdin is not None:
            proc.stdin.write(case.stdin or b"")
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, out.read(), proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peak_rss", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="sqlite-workload")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--work", default="/tmp/rpwork")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    known = {c.id: c for c in rp.CASES}
    cases = [known[c] for c in args.cases.split(",")]
    clang = rp.find_clang()
    work = Path(args.work)
    builds = {p: rp.build(rp.RECIPES[p], clang, work / p)
              for p in dict.fromkeys(c.program for c in cases)}
    load_before = os.getloadavg()[0]
    rows = []
    for case in cases:
        built = builds[case.program]
        rp.prepare_inputs(built)
        runners = commands(built, case)
        best: dict[str, tuple[float, float]] = {}
        problems: dict[str, str] = {}
        reference = None
        for _ in range(args.reps):
            for name, cmd in runners.items():
                wall, peak, stdout, status = run_one(cmd, case, built)
                if name == "native":
                    reference = (stdout, status)
                elif reference is not None and (rp.normalized(case, stdout), status) != (
                        rp.normalized(case, reference[0]), reference[1]):
                    problems[name] = f"exit status {status}, or stdout differs from native"
                old = best.get(name)
                best[name] = (min(wall, old[0]) if old else wall,
                              min(peak, old[1]) if old else peak)
                print(f"  {case.id} {name}: {wall:.2f} s, peak {peak:.0f} MB", file=sys.stderr,
                      flush=True)
        plain = best["plain MCJIT"][1]
        for name, (wall, peak) in best.items():
            rows.append([case.id, name, f"{wall:.2f}", f"{peak:.0f}",
                         f"{peak / plain:.2f}", problems.get(name, "ok")])
    load_after = os.getloadavg()[0]
    text = "\n".join([
        "`python -m benchmarks.peak_rss`: whole processes, peak RSS of each child alone",
        "(`ru_maxrss` from `os.wait4`), best of "
        f"{args.reps} interleaved runs; *plain MCJIT* is the program on stock llvmlite",
        "MCJIT (`benchmarks/plain_mcjit.py`: same target machine, bitcode loading and C",
        "runtime libraries as the command line). The engine's compile workers (default",
        "`auto` for `--jit-kind mcjit`) are processes of their own, not in its figure.",
        "",
        markdown_table(["case", "runner", "wall s", "peak RSS MB", "RSS / plain MCJIT",
                        "output"], rows, align="llrrrl"),
        "",
        f"Measured on: {environment_line()}; load average {load_before:.1f} at the start, "
        f"{load_after:.1f} at the end (1-minute).",
    ])
    print(text)
    if not args.no_write:
        update_section(RESULTS, TITLE, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
