"""The ported MCJIT regression programs, run through the command line in every
kind their KINDS tag names (see programs/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from compat_tests.programs_index import Program, load_programs

ROOT = Path(__file__).parent / "programs"
KIND_FLAGS = {"mcjit": ["--jit-kind", "mcjit"], "default": [], "lazy": ["--jit-kind", "orc-lazy"]}


def _runs() -> list[tuple[Program, str]]:
    runs = []
    for program in load_programs(ROOT):
        for kind in program.kinds:
            runs.append((program, kind))
        if "remote" in program.kinds and "lazy" in program.kinds:
            runs.append((program, "remote-lazy"))
    return runs


RUNS = _runs()


def run_program(program: Program, kind: str) -> subprocess.CompletedProcess[str]:
    argv = program.cli_args()
    if kind in ("remote", "remote-lazy"):
        argv[1:1] = ["--remote"] + (KIND_FLAGS["lazy"] if kind == "remote-lazy" else [])
    else:
        argv[1:1] = KIND_FLAGS[kind]
    return subprocess.run([sys.executable, "-m", "execution_engine", "run", *argv],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("program", "kind"), RUNS,
                         ids=[f"{p.catalogue}[{k}]" for p, k in RUNS])
def test_program(program: Program, kind: str) -> None:
    proc = run_program(program, kind)
    detail = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    if program.exit == "nonzero":
        assert proc.returncode != 0, detail
    else:
        assert proc.returncode == program.exit, detail
    if program.stdout is not None:
        assert proc.stdout.splitlines() == program.stdout, detail
    if program.stderr_contains is not None:
        assert program.stderr_contains in proc.stderr, detail
