"""native.c_runtime: the libraries a program needs, and C stdio buffering."""

from __future__ import annotations

import ctypes.util

import isolated
import pytest
from conftest import parse_ir
from isolated_cases import c_runtime as cases

from execution_engine.native.c_runtime import c_runtime_libraries

LIBM = ctypes.util.find_library("m")
CXX = [p for p in map(ctypes.util.find_library, ("stdc++", "gcc_s")) if p]


def libraries(*texts: str) -> list[str]:
    return c_runtime_libraries([parse_ir(t, f"m{i}") for i, t in enumerate(texts)])


def test_a_c_program_gets_libm():
    assert LIBM
    assert libraries("declare double @sqrt(double)\ndeclare i32 @puts(ptr)\n") == [LIBM]
    assert libraries("define i32 @main() {\n  ret i32 0\n}\n") == [LIBM]


@pytest.mark.parametrize("declaration", [
    "declare ptr @__cxa_allocate_exception(i64)",
    "declare i32 @__gxx_personality_v0(...)",
    "declare void @_ZdlPv(ptr)",
    "declare void @_Unwind_Resume(ptr)",
    "@_ZTIi = external constant ptr",  # a declared variable counts too
])
def test_a_program_declaring_what_the_cxx_runtime_defines_gets_it(declaration):
    assert CXX
    assert libraries("declare i32 @puts(ptr)\n", declaration + "\n") == [LIBM, *CXX]


def test_only_declarations_count():
    # A program that defines a C++-mangled function itself needs no C++ runtime.
    assert libraries("define void @_Z1fv() {\n  ret void\n}\n"
                     "@_ZTV1A = global i64 0\n") == [LIBM]


@pytest.mark.parametrize("restore, expected", [(False, "cd"), (True, "dc")],
                         ids=["unbuffered", "restored"])
def test_restore_stdio_buffering_under_pythonunbuffered(restore, expected):
    # Python run with PYTHONUNBUFFERED=1 makes C's stdout unbuffered; restored,
    # a program's stdout (a pipe here) is fully buffered as a native program's is.
    outcome = isolated.run(cases.interleave, restore, env={"PYTHONUNBUFFERED": "1"})
    assert outcome.ok, outcome.describe()
    assert outcome.stdout == expected
