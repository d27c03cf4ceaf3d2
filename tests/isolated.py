"""One harness for tests that need a fresh interpreter.

Some cases must run in a process of their own: they stop the process on
purpose (a call through a stale stub aborts), they exercise paths where
LLVM's assertions or fatal errors would kill the interpreter if the engine
let input through unchecked, or they need a process no other test has
touched (no asm parser initialised, no LLJIT created yet).

A case is a plain module-level function in a module of
``tests/isolated_cases/`` (so ruff and mypy read it like any other code);
those modules must not import ``conftest`` (it initialises LLVM's asm
parser) or pytest. A test calls :func:`run` with the function and its
arguments; ``case(*args)`` runs in a new interpreter and the test gets an
:class:`Outcome` (the return value, exit status or signal, stdout and
stderr) to assert on::

    outcome = isolated.run(cases.stale_pointer_aborts, "stub")
    assert outcome.signal == signal.SIGABRT

Arguments and return values travel as JSON (tuples come back as lists).
The child's working directory is a fresh temporary directory unless
``cwd`` is given; ``PYTHONPATH`` starts with this checkout, so the child
imports the same ``execution_engine`` as the test.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

# The child's first statement: make this directory importable, then run the case.
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); import isolated; isolated.child(sys.argv[2:])"


@dataclass(frozen=True)
class Outcome:
    """How one isolated case ended."""

    case: str
    returncode: int
    stdout: str
    stderr: str
    returned: bool  # the case returned (its value was reported)
    result: Any  # the case's return value (None unless ``returned``)

    @property
    def signal(self) -> int | None:
        """The signal that killed the process, if one did."""
        return -self.returncode if self.returncode < 0 else None

    @property
    def ok(self) -> bool:
        """The case returned and the process exited with status 0."""
        return self.returned and self.returncode == 0

    @property
    def value(self) -> Any:
        """The case's return value; ``AssertionError`` saying how the process
        ended if the case did not return normally."""
        if not self.ok:
            raise AssertionError(self.describe())
        return self.result

    def describe(self) -> str:
        """How the process ended, with the end of its stderr."""
        return f"{self.case} {describe_exit(self.returncode)}; stderr:\n{self.stderr[-3000:]}"


def describe_exit(returncode: int) -> str:
    """``killed by SIGABRT``, ``exited with status 1``, ..."""
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def run(case: Callable[..., Any], *args: Any, timeout: float = 120,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str | None] | None = None) -> Outcome:
    """Run ``case(*args)`` in a fresh interpreter and report how it ended.

    ``case`` must be a module-level function of an importable module;
    ``args`` and its return value must be JSON-serialisable. ``env`` adds
    variables to the child's environment (``None`` removes one).
    """
    module, name = case.__module__, case.__qualname__
    if module == "__main__" or "<" in name or "." in name:
        raise ValueError(f"{module}.{name} is not a module-level function of an "
                         "importable module")
    environ = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), environ.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="isolated-") as scratch:
        result_path = os.path.join(scratch, "result.json")
        workdir = os.path.join(scratch, "cwd")
        os.mkdir(workdir)
        argv = [sys.executable, "-c", _BOOT, str(TESTS), module, name, json.dumps(list(args)),
                result_path]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              cwd=workdir if cwd is None else cwd, env=environ)
        returned = os.path.exists(result_path)
        result = None
        if returned:
            with open(result_path) as f:
                result = json.load(f)
    return Outcome(f"{module}.{name}{tuple(args)!r}", proc.returncode, proc.stdout,
                   proc.stderr, returned, result)


def child(argv: list[str]) -> None:
    """In the child: run the case and write its return value (as JSON) where
    the parent reads it. A case that raises exits with status 1 and its
    traceback on stderr; one that dies reports nothing."""
    module, name, args, result_path = argv
    case = getattr(importlib.import_module(module), name)
    value = case(*json.loads(args))
    partial = result_path + ".partial"
    with open(partial, "w") as f:
        json.dump(value, f)
    os.replace(partial, result_path)
