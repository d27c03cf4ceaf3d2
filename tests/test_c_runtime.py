"""native.c_runtime: the libraries a program needs, and C stdio buffering."""

from __future__ import annotations

import ctypes.util

import isolated
import pytest
from isolated_cases import c_runtime as cases

from execution_engine.native.c_runtime import c_runtime_libraries

RUNTIME = [p for p in map(ctypes.util.find_library, ("m", "stdc++", "gcc_s")) if p]


def test_a_program_gets_libm_and_the_cxx_runtime():
    assert RUNTIME and RUNTIME[0] == ctypes.util.find_library("m")
    assert c_runtime_libraries() == RUNTIME
    assert c_runtime_libraries() is not c_runtime_libraries()  # a caller's copy


def test_a_program_using_the_cxx_runtime_links_against_the_libraries_given():
    # C++'s operator new and delete resolve once the libraries are loaded.
    outcome = isolated.run(cases.cxx_runtime_resolves)
    assert outcome.value == 42, outcome.describe()


@pytest.mark.parametrize("restore, expected", [(False, "cd"), (True, "dc")],
                         ids=["unbuffered", "restored"])
def test_restore_stdio_buffering_under_pythonunbuffered(restore, expected):
    # Python run with PYTHONUNBUFFERED=1 makes C's stdout unbuffered; restored,
    # a program's stdout (a pipe here) is fully buffered as a native program's is.
    outcome = isolated.run(cases.interleave, restore, env={"PYTHONUNBUFFERED": "1"})
    assert outcome.ok, outcome.describe()
    assert outcome.stdout == expected
