"""numba_integration: a freed numba library's module leaves the engine, never
while another module in the engine imports what it defines. The tracker is
tested on plain IR (no numba); the numba case is skipped without numba."""

from __future__ import annotations

import ctypes
import importlib.util

import isolated
import pytest
from conftest import make_tm, parse_ir
from isolated_cases import numba_cases

from execution_engine import create_mcjit_compiler
from execution_engine.numba_integration import ModuleTracker

PROVIDER = "define i64 @h() {\n  ret i64 3\n}\n"
USER = ("declare i64 @h()\n"
        "define i64 @g() {\n  %r = call i64 @h()\n  %s = add i64 %r, 1\n  ret i64 %s\n}\n")
# numba's run-time resolved reference: a pointer global named after the callee.
RUNTIME_USER = ("@\".numba.unresolved$h\" = external global ptr\n"
                "define i64 @k() {\n  ret i64 0\n}\n")
ODR_A = ("define linkonce_odr i64 @shared() {\n  ret i64 40\n}\n"
         "define i64 @a() {\n  %r = call i64 @shared()\n  ret i64 %r\n}\n")
ODR_B = ("define linkonce_odr i64 @shared() {\n  ret i64 40\n}\n"
         "define i64 @b() {\n  %r = call i64 @shared()\n  %s = add i64 %r, 2\n  ret i64 %s\n}\n")


def call(engine, name: str) -> int:
    address = engine.get_function_address(name)
    assert address, name
    return ctypes.CFUNCTYPE(ctypes.c_int64)(address)()


@pytest.fixture
def engine():
    e = create_mcjit_compiler(parse_ir("", "empty"), make_tm())
    yield e
    e.close()


def add(engine, tracker, text, name):
    module = parse_ir(text, name)
    engine.add_module(module)
    return module, tracker.track(module)


def test_a_retired_module_is_removed_at_collect_not_before(engine):
    tracker = ModuleTracker(engine)
    _, retire = add(engine, tracker, PROVIDER, "p")
    assert call(engine, "h") == 3
    retire()
    assert engine.get_function_address("h") != 0  # retiring frees nothing yet
    assert tracker.collect() == 1
    assert engine.get_function_address("h") == 0
    assert len(tracker) == 0 and tracker.retired() == 0


@pytest.mark.parametrize("user", [USER, RUNTIME_USER], ids=["declaration", "runtime-pointer"])
def test_a_module_others_import_from_stays_until_its_last_importer_goes(engine, user):
    tracker = ModuleTracker(engine)
    _, retire_provider = add(engine, tracker, PROVIDER, "p")
    _, retire_user = add(engine, tracker, user, "u")
    engine.finalize_object()
    retire_provider()
    assert tracker.collect() == 0 and tracker.retired() == 1
    assert call(engine, "h") == 3
    if user is USER:
        assert call(engine, "g") == 4
    retire_user()
    assert tracker.collect() == 2  # the user, then the provider it pinned
    assert engine.get_function_address("h") == 0


def test_a_linkonce_copy_survives_the_removal_of_the_first_definer(engine):
    tracker = ModuleTracker(engine)
    _, retire_a = add(engine, tracker, ODR_A, "a")
    add(engine, tracker, ODR_B, "b")
    assert call(engine, "a") == 40 and call(engine, "b") == 42
    retire_a()
    assert tracker.collect() == 1  # b defines its own copy: nothing pins a
    assert engine.get_function_address("a") == 0
    assert call(engine, "b") == 42


COMMON_OLD = ("@env = common global i64 0\n"
              "define i64 @old() {\n  store i64 5, ptr @env\n  ret i64 0\n}\n")
COMMON_NEW = ("@env = common global i64 0\n"
              "define i64 @new() {\n  %v = load i64, ptr @env\n  ret i64 %v\n}\n")


def test_a_dead_module_stays_while_a_live_one_defines_its_common_or_external_names_again(engine):
    tracker = ModuleTracker(engine)
    _, retire_old = add(engine, tracker, COMMON_OLD, "old")
    _, retire_new = add(engine, tracker, COMMON_NEW, "new")
    engine.finalize_object()
    retire_old()
    assert tracker.collect() == 0  # the live "new" may use old's merged @env
    retire_new()
    assert tracker.collect() == 2


def test_private_and_internal_definitions_pin_nothing(engine):
    tracker = ModuleTracker(engine)
    text = ("@k = internal constant i64 1\n"
            "define i64 @%s() {\n  %%v = load i64, ptr @k\n  ret i64 %%v\n}\n")
    _, retire_a = add(engine, tracker, text % "a", "a")
    add(engine, tracker, text % "b", "b")
    retire_a()
    assert tracker.collect() == 1
    assert call(engine, "b") == 1


def test_retiring_twice_or_after_close_is_harmless(engine):
    tracker = ModuleTracker(engine)
    _, retire = add(engine, tracker, PROVIDER, "p")
    retire()
    retire()
    engine.close()
    assert tracker.collect() == 1


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba is not installed")
def test_numba_dead_dispatchers_leave_the_engine_and_live_callers_keep_working():
    outcome = isolated.run(numba_cases.dead_libraries_leave_the_engine, 30, timeout=300)
    assert outcome.returned, outcome.stderr
    result = outcome.result
    assert result["caller"] == 16  # callee's python name is gone; caller still runs
    assert result["removed"] >= 25
    assert result["held_after"] <= result["held_before"] + 5
