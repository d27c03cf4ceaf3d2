"""Out-of-process execution (issue 6): what running JIT'd code in an executor process costs.

* **(a) round trip**: calls of a trivial function (``inc(x) = x + 1``) through
  ``engine.call`` on a remote engine (``remote=True``: a request to the
  executor and its reply), beside ``engine.call`` on an in-process engine
  and a direct ctypes call of the in-process function's address;
* **(b) lazy first call**: with ``lazy=True``, the wall time of the first
  call of a function (compiling it, and in the remote case the executor's
  request for it, the host compiling and the link in the executor) remote
  vs in process: one function (``f0`` of a generated module, which calls
  nothing) and a chain of 20 (``f19`` calls ``f18`` ... ``f0``: 20 lazy
  compilations, one after the other);
* **(c) start-up**: ``create_mcjit_compiler(remote=True)`` until the first call
  returns (the executor process starts, imports llvmlite, says hello; the
  module is compiled and linked there), beside the in-process engine; and
  ``restart_executor()`` alone and until the next call returns;
* **(d) whole process**: ``python -m execution_engine run ... [--remote]``, both
  JIT kinds, for a real program (Lua 5.4 built from the ``lupa`` sdist with
  clang-14 into bitcode, see ``compat_tests/real_programs.py``) when that can be
  had, and always for ``examples/hello.ll``; the native Lua binary as a reference.

Everything is wall time (``time.perf_counter``): the work is split between
two processes, so the host's CPU time alone would leave out the executor's.
Results of every call and the output of every run are checked.

Run: ``python -m benchmarks.remote [--quick] [--no-real] [--no-write]``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import execution_engine

from .common import ChainModule, environment_line, parse, target_machine
from .report import REPO, RESULTS, markdown_table, update_section

TITLE = "Out-of-process execution (issue 6)"

TRIVIAL = """
define i64 @inc(i64 %x) {
  %r = add i64 %x, 1
  ret i64 %r
}
"""

CHAIN_N = 20
REAL_CASE = "fib"  # the Lua case timed in (d)
_INC = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _engine(ir: str, **options):
    return execution_engine.create_mcjit_compiler(parse(ir), target_machine(), **options)


# -- (a) round trip --------------------------------------------------------------


@dataclass
class CallRow:
    label: str
    calls: int
    times: list[float] = field(default_factory=list)

    @property
    def per_call(self) -> float:
        return min(self.times) / self.calls


def _timed_calls(call: Callable[[int], int], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        result = call(i)
    elapsed = time.perf_counter() - start
    if result != n:  # inc(n - 1)
        raise AssertionError(f"inc({n - 1}) returned {result}")
    return elapsed


def round_trip(reps: int, scale: float) -> list[CallRow]:
    remote = _engine(TRIVIAL, remote=True)
    local = _engine(TRIVIAL)
    try:
        remote_inc = remote.get_function_address("inc")
        local_inc = local.get_function_address("inc")
        direct = _INC(local_inc)
        subjects: list[tuple[CallRow, Callable[[int], int]]] = [
            (CallRow("remote `engine.call(address, x)`", int(5_000 * scale)),
             lambda x: remote.call(remote_inc, x)),
            (CallRow("remote `engine.call(\"inc\", x)` (by name)", int(5_000 * scale)),
             lambda x: remote.call("inc", x)),
            (CallRow("in-process `engine.call(address, x)`", int(50_000 * scale)),
             lambda x: local.call(local_inc, x)),
            (CallRow("in-process direct ctypes call", int(500_000 * scale)), direct),
        ]
        for _row, call in subjects:  # warm-up and check
            _timed_calls(call, 100)
        for rep in range(reps):
            for row, call in subjects:
                row.times.append(_timed_calls(call, row.calls))
            log(f"  (a) round {rep + 1}/{reps}: " + ", ".join(
                f"{r.times[-1] / r.calls * 1e6:.2f} us" for r, _ in subjects))
        return [row for row, _ in subjects]
    finally:
        remote.close()
        local.close()


def round_trip_table(rows: list[CallRow]) -> str:
    ctypes_row = rows[-1]
    body = [[r.label, f"{r.calls:,}", f"{1 / r.per_call:,.0f}", f"{r.per_call * 1e6:.2f}",
             f"{r.per_call / ctypes_row.per_call:,.0f}x"] for r in rows]
    return markdown_table(["", "calls per round", "calls/s", "µs per call",
                           "vs direct ctypes"], body)


# -- (b) lazy first call ------------------------------------------------------------


@dataclass
class LazyRow:
    label: str
    remote: list[float] = field(default_factory=list)
    local: list[float] = field(default_factory=list)


def _first_call(chain: ChainModule, k: int, x: int, remote: bool) -> float:
    engine = _engine(chain.ir, lazy=True, remote=remote)
    try:
        address = engine.get_function_address(f"f{k}")
        if remote:  # the executor is up; settle its slots before timing
            engine.read_memory(address, 1)
        start = time.perf_counter()
        result = engine.call(address, x)
        elapsed = time.perf_counter() - start
    finally:
        engine.close()
    want = chain.call(k, x, chain.initial_globals())
    if result & ((1 << 64) - 1) != want:
        raise AssertionError(f"f{k}({x}) returned {result}, expected {want}")
    return elapsed


def lazy_first_call(reps: int) -> list[LazyRow]:
    chain = ChainModule(CHAIN_N)
    rows = [LazyRow("one function (`f0`, calls nothing)"),
            LazyRow(f"a chain of {CHAIN_N} (`f{CHAIN_N - 1}` -> ... -> `f0`)")]
    for rep in range(reps):
        for row, k in zip(rows, (0, CHAIN_N - 1), strict=True):
            row.remote.append(_first_call(chain, k, 5, remote=True))
            row.local.append(_first_call(chain, k, 5, remote=False))
        log(f"  (b) round {rep + 1}/{reps}: " + ", ".join(
            f"remote {r.remote[-1] * 1e3:.2f} ms / local {r.local[-1] * 1e3:.2f} ms"
            for r in rows))
    return rows


def lazy_table(rows: list[LazyRow]) -> str:
    body = []
    for r in rows:
        remote, local = min(r.remote), min(r.local)
        body.append([r.label, f"{remote * 1e3:.2f}", f"{statistics.median(r.remote) * 1e3:.2f}",
                     f"{local * 1e3:.2f}", f"{statistics.median(r.local) * 1e3:.2f}",
                     f"{remote / local:.2f}x", f"{(remote - local) * 1e3:+.2f}"])
    return markdown_table(["first call of", "remote ms (best)", "remote ms (median)",
                           "in-process ms (best)", "in-process ms (median)", "remote/in-process",
                           "extra ms"], body)


# -- (c) start-up and restart -------------------------------------------------------


@dataclass
class Startup:
    remote: list[float] = field(default_factory=list)
    local: list[float] = field(default_factory=list)
    restart: list[float] = field(default_factory=list)
    restart_call: list[float] = field(default_factory=list)


def _start(remote: bool) -> float:
    start = time.perf_counter()
    engine = _engine(TRIVIAL, remote=remote)
    result = engine.call("inc", 41)
    elapsed = time.perf_counter() - start
    engine.close()
    if result != 42:
        raise AssertionError(f"inc(41) returned {result}")
    return elapsed


def startup(reps: int) -> Startup:
    s = Startup()
    engine = _engine(TRIVIAL, remote=True)
    try:
        assert engine.call("inc", 1) == 2
        for rep in range(reps):
            s.remote.append(_start(remote=True))
            s.local.append(_start(remote=False))
            start = time.perf_counter()
            engine.restart_executor()
            s.restart.append(time.perf_counter() - start)
            result = engine.call("inc", 1)
            s.restart_call.append(time.perf_counter() - start)
            if result != 2:
                raise AssertionError(f"inc(1) after a restart returned {result}")
            log(f"  (c) round {rep + 1}/{reps}: start remote {s.remote[-1] * 1e3:.0f} ms, "
                f"in-process {s.local[-1] * 1e3:.1f} ms, restart {s.restart[-1] * 1e3:.0f} ms")
    finally:
        engine.close()
    return s


def startup_table(s: Startup) -> str:
    def cells(times: list[float]) -> list[str]:
        return [f"{min(times) * 1e3:.1f}", f"{statistics.median(times) * 1e3:.1f}",
                f"{max(times) * 1e3:.1f}"]

    body = [
        ["`create_mcjit_compiler(remote=True)` + first call", *cells(s.remote)],
        ["`create_mcjit_compiler()` (in process) + first call", *cells(s.local)],
        ["`restart_executor()`", *cells(s.restart)],
        ["`restart_executor()` + next call", *cells(s.restart_call)],
    ]
    return markdown_table(["", "best ms", "median ms", "worst ms"], body)


# -- (d) whole process ----------------------------------------------------------------


@dataclass
class ProcessRow:
    program: str
    mode: str  # "native", "in process", "remote"
    kind: str  # JIT kind, "" for native
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    error: str | None = None


def _run(argv: list[str], cwd: str | os.PathLike[str], stdin: bytes,
         env: dict[str, str]) -> tuple[subprocess.CompletedProcess[bytes], float, float]:
    """Run ``argv``; its result, wall seconds and CPU seconds (it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, capture_output=True, cwd=cwd, env=env,
                          timeout=900)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


def _engine_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def hello_rows(reps: int) -> list[ProcessRow]:
    hello = str(REPO / "examples" / "hello.ll")
    want = b"sum(1..10) = 55"
    rows = []
    for kind in ("mcjit", "orc-lazy"):
        for mode in ("in process", "remote"):
            row = ProcessRow("examples/hello.ll", mode, kind)
            argv = [sys.executable, "-m", "execution_engine", "run", hello, "--jit-kind", kind]
            if mode == "remote":
                argv.append("--remote")
            for _ in range(reps):
                proc, wall, cpu = _run([*argv, "--", "x"], REPO, b"", _engine_env())
                if proc.returncode != 0 or want not in proc.stdout:
                    row.error = (f"status {proc.returncode}: "
                                 + proc.stderr.decode(errors="replace").strip()[-200:])
                    break
                row.wall.append(wall)
                row.cpu.append(cpu)
            rows.append(row)
            log(f"  (d) hello.ll {kind} {mode}: "
                + (row.error or f"{min(row.wall) * 1e3:.0f} ms"))
    return rows


def real_program_rows(reps: int) -> tuple[list[ProcessRow], str]:
    """Lua's ``fib`` case, native and through the engine; or why not."""
    try:
        from compat_tests import real_programs as rp
    except ImportError:
        return [], "`compat_tests/real_programs.py` is not there"
    clang = rp.find_tool(("clang-14",))
    if clang is None:
        return [], "clang-14 is not installed"
    workdir = Path(tempfile.gettempdir()) / "execution_engine-benchmarks"
    try:
        rp.check_clang(clang, workdir / "clang-probe")
        log(f"  (d) building Lua with {clang} in {workdir / 'lua'} (reused if built)")
        built = rp.build(rp.LUA, clang, workdir / "lua")
    except (rp.Unavailable, rp.BuildError) as exc:
        return [], f"Lua could not be built: {str(exc).splitlines()[0]}"
    case = next(c for c in rp.cases_of("lua") if c.name == REAL_CASE)
    cwd, env = built.inputs[case.cwd], rp.run_env()
    native = ProcessRow(f"Lua 5.4 `{' '.join(case.args)}`", "native", "")
    reference = None
    for _ in range(reps):
        reference, wall, cpu = _run(built.native_command(case.args), cwd, case.stdin, env)
        native.wall.append(wall)
        native.cpu.append(cpu)
    assert reference is not None
    why = rp.check_reference(case, built, reference)
    if why is not None:
        return [], f"the native Lua run is not as expected ({why})"
    rows = [native]
    for kind in rp.KINDS:
        for mode in ("in process", "remote"):
            row = ProcessRow(native.program, mode, kind)
            argv = built.engine_command(kind, case.args)
            if mode == "remote":
                argv.insert(argv.index("--"), "--remote")
            for _ in range(reps):
                proc, wall, cpu = _run(argv, cwd, case.stdin, env)
                wrong = rp.mismatch(case, reference, proc)
                if wrong is not None:
                    row.error = f"{wrong}: {rp.first_error_line(proc)}"[:240]
                    break
                row.wall.append(wall)
                row.cpu.append(cpu)
            rows.append(row)
            log(f"  (d) lua {kind} {mode}: " + (row.error or f"{min(row.wall):.2f} s"))
    return rows, f"Lua built with {rp.tool_version(clang)}"


def process_table(rows: list[ProcessRow]) -> str:
    body = []
    base: dict[tuple[str, str], float] = {}
    for r in rows:
        if r.mode == "in process" and r.error is None:
            base[(r.program, r.kind)] = min(r.wall)
    for r in rows:
        if r.error is not None:
            body.append([r.program, r.kind or "-", r.mode, "fails", "", "", ""])
            continue
        wall = min(r.wall)
        reference = base.get((r.program, r.kind))
        vs = "" if r.mode != "remote" or reference is None else f"{wall / reference:.2f}x"
        extra = "" if not vs else f"{(wall - reference) * 1e3:+.0f}"
        body.append([r.program, r.kind or "-", r.mode, f"{wall * 1e3:.0f}",
                     f"{min(r.cpu) * 1e3:.0f}", vs, extra])
    return markdown_table(["program", "JIT kind", "run", "wall ms (best)",
                           "CPU ms, all processes (best)", "remote/in-process",
                           "extra ms"], body, align="lllrrrr")


# -- the report -----------------------------------------------------------------------


def section(calls: list[CallRow], lazy: list[LazyRow], start: Startup,
            processes: list[ProcessRow], real_note: str, reps: dict[str, int],
            load: str) -> str:
    lines = [
        "`python -m benchmarks.remote`: the cost of running JIT'd code in a separate executor",
        "process (`create_mcjit_compiler(..., remote=True)`). Wall time (`time.perf_counter`)",
        "throughout, since the work is split between two processes. Same IR and",
        "`create_target_machine(jit=True, opt=2)` everywhere; results are checked.",
        "",
        f"**(a) Round trip of a call** to `inc(x) = x + 1`, best of {reps['a']} rounds of",
        "the given number of calls (one request and one reply each for the remote engine):",
        "",
        round_trip_table(calls),
        "",
        "**(b) Lazy first call** (`lazy=True`): the first `engine.call` of a function of a",
        f"generated module of {CHAIN_N} functions (the eager benchmark's), from the call until",
        "it returns: compiling on the first call, and for the remote engine the executor's",
        "request for the body, the host compiling it and the link in the executor. "
        f"{reps['b']} fresh engines each:",
        "",
        lazy_table(lazy),
        "",
        f"**(c) Start-up**, {reps['c']} times each: a new engine on a one-function module until",
        "its first call returns (remote: the executor process starts, imports llvmlite and",
        "execution_engine and answers; the module is compiled here and linked there); and",
        "`restart_executor()` on that engine (the old executor is told to exit, a new one is",
        "started and the module linked again):",
        "",
        startup_table(start),
        "",
        "**(d) Whole process**: `python -m execution_engine run FILE [--jit-kind K] "
        "[--remote] -- ARGS`,",
        f"best of {reps['d']} runs (wall time; the CPU column adds up the CLI process, its",
        "executor and their children). " + real_note + ".",
        "",
        process_table(processes),
    ]
    failures = [r for r in processes if r.error]
    if failures:
        lines += ["", "Runs that failed (not a remote-execution problem when the in-process run",
                  "of the same kind fails too):", ""]
        lines += [f"- {r.program}, {r.kind}, {r.mode}: {r.error}" for r in failures]
    lines += ["", f"Measured on: {environment_line()}; load average {load} (1/5/15 min) at "
              "the start - wall times on a loaded machine include time spent preempted."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.remote", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls and repetitions")
    parser.add_argument("--no-real", action="store_true",
                        help="skip building and running Lua in (d)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    reps = ({"a": 3, "b": 3, "c": 5, "d": 1} if args.quick
            else {"a": 5, "b": 7, "c": 10, "d": 3})
    scale = 0.2 if args.quick else 1.0
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    log(f"remote: {environment_line()}; load average {load}")
    calls = round_trip(reps["a"], scale)
    lazy = lazy_first_call(reps["b"])
    start = startup(reps["c"])
    real_rows, real_note = ([], "Lua skipped (--no-real)") if args.no_real else \
        real_program_rows(reps["d"])
    if not real_rows:
        real_note = f"No real program ({real_note}): `examples/hello.ll` only"
    else:
        real_note += "; the Lua case is `fib.lua` of `compat_tests/real_programs.py`"
    processes = [*real_rows, *hello_rows(reps["d"])]
    text = section(calls, lazy, start, processes, real_note, reps, load)
    print(f"## {TITLE}\n\n{text}")
    if not args.no_write:
        update_section(RESULTS, TITLE, text)
        log(f"remote: wrote section '{TITLE}' of {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
