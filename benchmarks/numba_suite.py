"""numba's own tests on stock llvmlite MCJIT and on this engine, interleaved.

    python -m benchmarks.numba_suite [--python PY] [-m JOBS] [--rounds N] [MODULE ...]

Each ``numba.tests.<MODULE>`` is run with ``PY -m numba.runtests -m JOBS``
twice per round, once on stock llvmlite and once with the engine installed
(the order alternates between rounds, so drift in machine load is shared).
``PY`` is an interpreter with numba and this package installed (a venv; the
default is the running one). The engine is swapped into **every** process of
a run, numba's test workers and the subprocesses its tests start included:
the run's ``PYTHONPATH`` gets a directory whose ``sitecustomize.py`` calls
:func:`execution_engine.install` when ``EXECUTION_ENGINE_INSTALL=1``; each
process that installed it appends its pid to a log, and the count is
printed beside the results (a stock run logs none). With ``--free`` the
engine runs also enable :mod:`execution_engine.numba_integration` (freed
libraries leave the engine) as soon as numba's codegen is imported. ``SUBPROC_TEST`` is left
unset, as numba's runner leaves it: tests marked ``needs_subprocess`` are run
by the tests that spawn them.

Prints one row per module and run (ran/passed/failed/errors/skipped, wall
seconds), the names of tests whose outcome differs between the two, and the
totals with the engine/stock wall ratio. Exit status 1 when the outcomes
differ. numba is needed only in ``PY``; this file imports nothing of it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

#: The default slice: codegen, debug info, dispatch, caching, generators,
#: object mode/lifting, serialisation, NRT, closures, recursion, exceptions.
DEFAULT_MODULES = [
    "test_codegen", "test_debuginfo", "test_dispatcher", "test_caching",
    "test_generators", "test_withlifting", "test_serialize", "test_nrt",
    "test_closure", "test_recursion", "test_exceptions", "test_parfors_caching",
]

SITECUSTOMIZE = """\
import os
import sys
if os.environ.get("EXECUTION_ENGINE_INSTALL", "") not in ("", "0"):
    import execution_engine
    execution_engine.install()
    _log = os.environ.get("EXECUTION_ENGINE_INSTALL_LOG")
    if _log:
        with open(_log, "a") as _f:
            _f.write(f"{os.getpid()}\\n")
    if os.environ.get("EXECUTION_ENGINE_NUMBA_FREE", "") not in ("", "0"):
        # enable numba_integration once numba's codegen is imported, not before
        import importlib.abc
        import importlib.machinery

        class _AfterCodegen(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name != "numba.core.codegen":
                    return None
                sys.meta_path.remove(self)
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                run = spec.loader.exec_module

                def exec_module(module):
                    run(module)
                    from execution_engine import numba_integration
                    numba_integration.enable()
                spec.loader.exec_module = exec_module
                return spec

        sys.meta_path.insert(0, _AfterCodegen())
"""

_SUMMARY = re.compile(r"^(OK|FAILED)(?: \((.*)\))?\s*$", re.M)
_RAN = re.compile(r"^Ran (\d+) tests? in", re.M)
_BAD = re.compile(r"^(FAIL|ERROR): (\S+) \((\S+)\)", re.M)


@dataclass
class Outcome:
    ran: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    wall: float = 0.0
    installs: int = 0
    bad: set[str] = field(default_factory=set)
    crashed: bool = False

    @property
    def passed(self) -> int:
        return self.ran - self.failures - self.errors - self.skipped

    def add(self, other: Outcome) -> None:
        for name in ("ran", "failures", "errors", "skipped", "wall", "installs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.bad |= other.bad
        self.crashed |= other.crashed


def parse_output(text: str) -> Outcome:
    """Counts from the tail of a unittest run's output."""
    out = Outcome()
    ran = _RAN.findall(text)
    summary = _SUMMARY.findall(text)
    if not ran or not summary:
        out.crashed = True
        return out
    out.ran = int(ran[-1])
    for part in (summary[-1][1] or "").split(","):
        key, _, value = part.strip().partition("=")
        if key in ("failures", "errors", "skipped"):
            setattr(out, key, int(value))
    # unittest prints "name (module.Class.name)" from 3.11, "name (module.Class)" before
    out.bad = {ident if ident.endswith(f".{name}") else f"{ident}.{name}"
               for _, name, ident in _BAD.findall(text)}
    return out


def run_module(python: str, module: str, jobs: int, engine: bool, site: str,
               free: bool = False) -> Outcome:
    env = dict(os.environ)
    env.pop("SUBPROC_TEST", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, env.get("PYTHONPATH")]))
    log = os.path.join(site, f"installs-{module}-{int(engine)}-{time.time_ns()}")
    if engine:
        env["EXECUTION_ENGINE_INSTALL"] = "1"
        env["EXECUTION_ENGINE_INSTALL_LOG"] = log
        if free:
            env["EXECUTION_ENGINE_NUMBA_FREE"] = "1"
    else:
        env.pop("EXECUTION_ENGINE_INSTALL", None)
    argv = [python, "-m", "numba.runtests", "-m", str(jobs), f"numba.tests.{module}"]
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=site, capture_output=True, text=True)
    wall = time.perf_counter() - start
    out = parse_output(proc.stdout + proc.stderr)
    out.wall = wall
    if os.path.exists(log):
        with open(log) as f:
            out.installs = sum(1 for _ in f)
    if out.crashed:
        tail = (proc.stdout + proc.stderr)[-2000:]
        print(f"  {module} ({'engine' if engine else 'stock'}) gave no summary "
              f"(status {proc.returncode}):\n{tail}", file=sys.stderr)
    return out


def _row(module: str, label: str, o: Outcome) -> str:
    return (f"{module:28} {label:6} ran {o.ran:4}  pass {o.passed:4}  fail {o.failures:3}"
            f"  err {o.errors:3}  skip {o.skipped:3}  {o.wall:7.1f} s  installs {o.installs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=DEFAULT_MODULES)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("-m", "--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--free", action="store_true",
                        help="engine runs enable execution_engine.numba_integration")
    args = parser.parse_args(argv)
    totals = {False: Outcome(), True: Outcome()}
    differ: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ee-numba-") as site:
        with open(os.path.join(site, "sitecustomize.py"), "w") as f:
            f.write(SITECUSTOMIZE)
        for r in range(args.rounds):
            for i, module in enumerate(args.modules):
                order = (False, True) if (i + r) % 2 == 0 else (True, False)
                results = {}
                for engine in order:
                    results[engine] = run_module(args.python, module, args.jobs, engine, site,
                                                 free=args.free)
                    totals[engine].add(results[engine])
                    print(_row(module, "engine" if engine else "stock", results[engine]),
                          flush=True)
                s, e = results[False], results[True]
                if (s.passed, s.failures + s.errors, s.skipped, s.bad) != (
                        e.passed, e.failures + e.errors, e.skipped, e.bad) or e.crashed:
                    differ.append(module)
                    for name in sorted(e.bad - s.bad):
                        print(f"  only under the engine: {name}")
                    for name in sorted(s.bad - e.bad):
                        print(f"  only under stock: {name}")
    s, e = totals[False], totals[True]
    print()
    print(_row("TOTAL", "stock", s))
    print(_row("TOTAL", "engine", e))
    ratio = e.wall / s.wall if s.wall else float("nan")
    print(f"wall engine/stock: {ratio:.3f}x; modules whose outcome differs: "
          f"{', '.join(differ) or 'none'}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
