"""The command line against ``lli`` (issue 11, item 10): program arguments
without ``--``, lli's wording for an empty entry function, ``--version`` and
help text without reST markup."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import llvmlite
import pytest

from execution_engine import __version__
from execution_engine.cli.main import split_arguments

ECHO = r"""
declare i32 @puts(ptr)
define i32 @main(i32 %argc, ptr %argv) {
entry:
  br label %loop
loop:
  %i = phi i32 [1, %entry], [%next, %body]
  %more = icmp slt i32 %i, %argc
  br i1 %more, label %body, label %done
body:
  %slot = getelementptr ptr, ptr %argv, i32 %i
  %arg = load ptr, ptr %slot
  call i32 @puts(ptr %arg)
  %next = add i32 %i, 1
  br label %loop
done:
  ret i32 %argc
}
"""

KINDS = {"mcjit": [], "orc-lazy": ["--jit-kind", "orc-lazy"], "remote": ["--remote"],
         "remote-lazy": ["--remote", "--jit-kind", "orc-lazy"]}
LLI = shutil.which("lli-14") or shutil.which("lli")


def engine(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "execution_engine", *argv],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture
def echo(tmp_path: Path) -> Path:
    path = tmp_path / "echo.ll"
    path.write_text(ECHO)
    return path


# -- program arguments --------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(KINDS))
def test_program_arguments_need_no_double_dash(echo, kind):
    proc = engine("run", *KINDS[kind], str(echo), "5", "x")
    assert (proc.returncode, proc.stdout) == (3, "5\nx\n"), proc.stderr


@pytest.mark.parametrize(("words", "expected"), [
    (["5", "x"], ["5", "x"]),
    (["5", "--remote"], ["5", "--remote"]),  # after the first program argument: the program's
    (["-5", "x"], ["-5", "x"]),              # not one of the engine's options
    (["--", "--stats"], ["--stats"]),         # '--' ends the options explicitly
    ([], []),
])
def test_the_words_after_the_file_are_the_programs_as_with_lli(echo, words, expected):
    proc = engine("run", str(echo), *words)
    assert proc.returncode == len(expected) + 1, proc.stderr
    assert proc.stdout.splitlines() == expected
    if LLI is not None and "--" not in words:
        reference = subprocess.run([LLI, "-opaque-pointers", str(echo), *words],
                                   capture_output=True, text=True, timeout=60)
        assert (reference.returncode, reference.stdout) == (proc.returncode, proc.stdout)


def test_engine_options_may_still_follow_the_file(echo):
    proc = engine("run", str(echo), "--stats", "--jit-kind", "orc-lazy", "a", "--stats")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines() == ["a", "--stats"]
    assert "stats:" in proc.stderr  # the first --stats was the engine's


@pytest.mark.parametrize(("argv", "words", "program"), [
    (["run", "f.ll", "1"], ["run", "f.ll"], ["1"]),
    (["run", "--opt", "0", "f.ll", "--entry-function", "go", "a", "b"],
     ["run", "--opt", "0", "f.ll", "--entry-function", "go"], ["a", "b"]),
    (["run", "f.ll", "--opt=1", "--remote", "-x"], ["run", "f.ll", "--opt=1", "--remote"],
     ["-x"]),
    (["run", "f.ll", "--", "-h"], ["run", "f.ll"], ["-h"]),
    (["run", "f.ll", "a", "--", "b"], ["run", "f.ll"], ["a", "--", "b"]),
    (["--version"], ["--version"], []),
])
def test_split_arguments(argv, words, program):
    assert split_arguments(argv) == (words, program)


# -- messages ---------------------------------------------------------------------------

@pytest.mark.parametrize("entry", [["--entry-function="], ["--entry-function", ""]])
def test_an_empty_entry_function_is_refused_in_llis_words(echo, entry):
    proc = engine("run", str(echo), *entry)
    assert proc.returncode == 1
    assert proc.stderr == "execution-engine: error: --entry-function name cannot be empty\n"
    assert proc.stdout == ""


NOT_DOMINATED = """
define i32 @main() {
  ret i32 %z
b:
  %z = add i32 1, 1
  ret i32 %z
}
"""


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_module_that_does_not_verify_is_refused_naming_its_file(tmp_path, kind):
    path = tmp_path / "bad.ll"
    path.write_text(NOT_DOMINATED)
    proc = engine("run", str(path), *KINDS[kind])
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("execution-engine: error: ") and str(path) in proc.stderr
    assert "Instruction does not dominate all uses" in proc.stderr


EXITS = """
declare void @exit(i32)
define i32 @main() {
  call void @exit(i32 5)
  unreachable
}
"""


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_program_that_calls_exit_leaves_with_its_status(tmp_path, kind):
    path = tmp_path / "exits.ll"
    path.write_text(EXITS)
    proc = engine("run", str(path), *KINDS[kind], "--compile-workers", "1")
    assert (proc.returncode, proc.stderr) == (5, "")


def test_version():
    proc = engine("--version")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith(f"execution-engine {__version__} ")
    assert f"llvmlite {llvmlite.__version__}" in line and "LLVM " in line


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_help_has_no_rest_markup(argv):
    proc = engine(*argv)
    assert proc.returncode == 0, proc.stderr
    assert "usage: execution-engine" in proc.stdout
    for markup in ("``", ":mod:", ":class:", ":func:", ":meth:", "**"):
        assert markup not in proc.stdout, proc.stdout
