"""Superseded updates leave the engine by themselves (the REPL idiom stays flat)."""

from __future__ import annotations

import ctypes

import pytest
from conftest import make_tm, parse_ir

from execution_engine import create_mcjit_compiler

BASE = """
define i64 @f() {
  ret i64 0
}
define i64 @g() {
  %r = call i64 @f()
  ret i64 %r
}
"""


def version(i: int, name: str = "") -> object:
    return parse_ir(f"define i64 @f() {{\n  ret i64 {i}\n}}\n", name or f"v{i}")


@pytest.mark.parametrize("policy", ["direct", "stub", "single"])
def test_redefining_a_function_keeps_one_update(policy):
    engine = create_mcjit_compiler(parse_ir(BASE), make_tm(), redirection=policy,
                                   grace_period=0)
    g = ctypes.CFUNCTYPE(ctypes.c_int64)(engine.get_function_address("g"))
    for i in range(1, 301):
        engine.update_module(version(i))
        assert g() == i
        assert engine.stats().modules == 2  # the base and the newest update
    assert engine.stats().linked_sets == 2
    engine.close()


def test_a_released_update_belongs_to_the_caller_again():
    engine = create_mcjit_compiler(parse_ir(BASE), make_tm(), grace_period=0)
    first, second = version(1), version(2)
    engine.update_module(first)
    engine.update_module(second)
    with pytest.raises(KeyError, match="not in this engine"):
        engine.remove_module(first)
    assert "ret i64 1" in str(first)  # the caller's reference is alive and owns it
    other = create_mcjit_compiler(parse_ir(BASE, "other"), make_tm())
    other.add_module(first)  # not "owned by another engine"
    engine.remove_module(second)  # the newest update is still the engine's
    assert engine.get_function_address("f")
    other.close()
    engine.close()


def test_an_update_released_after_its_caller_closed_it_is_disposed():
    engine = create_mcjit_compiler(parse_ir(BASE), make_tm(), grace_period=0)
    g = ctypes.CFUNCTYPE(ctypes.c_int64)(engine.get_function_address("g"))
    with version(1) as first:
        engine.update_module(first)
    engine.update_module(version(2))  # releases (disposes) the closed first update
    assert g() == 2 and engine.stats().modules == 2
    engine.close()


def test_an_update_that_defines_data_stays():
    engine = create_mcjit_compiler(parse_ir(BASE), make_tm(), grace_period=0)
    engine.update_module(parse_ir("@fresh = global i64 5\n"
                                  "define i64 @f() {\n  %v = load i64, ptr @fresh\n"
                                  "  ret i64 %v\n}\n", "with_data"))
    engine.update_module(version(2))
    assert engine.stats().modules == 3  # its storage may still be referenced
    assert engine.get_global_value_address("fresh")
    engine.close()


def test_an_update_whose_body_was_recompiled_stays_until_both_are_replaced():
    engine = create_mcjit_compiler(parse_ir(BASE), make_tm(), grace_period=0)
    update = version(1)
    engine.update_module(update)
    engine.recompile_and_relink_function("f")  # supersedes the update's own set
    assert engine.stats().modules == 2
    engine.update_module(version(2))  # now nothing of the first update is current
    assert engine.stats().modules == 2
    with pytest.raises(KeyError):
        engine.remove_module(update)
    engine.close()


@pytest.mark.parametrize("call_each", [True, False])
def test_lazy_engines_release_superseded_updates_compiled_or_not(call_each):
    engine = create_mcjit_compiler(parse_ir(BASE), make_tm(), lazy=True, grace_period=0)
    g = ctypes.CFUNCTYPE(ctypes.c_int64)(engine.get_function_address("g"))
    for i in range(1, 201):
        engine.update_module(version(i))
        if call_each:
            assert g() == i
        assert engine.stats().modules == 2  # the base and the newest update
    assert g() == 200
    engine.close()


def test_a_lazy_update_that_defines_data_stays():
    engine = create_mcjit_compiler(parse_ir(BASE), make_tm(), lazy=True, grace_period=0)
    engine.update_module(parse_ir("@fresh = global i64 5\n"
                                  "define i64 @f() {\n  %v = load i64, ptr @fresh\n"
                                  "  ret i64 %v\n}\n", "with_data"))
    engine.update_module(version(2))
    assert engine.stats().modules == 3
    assert ctypes.c_int64.from_address(engine.get_global_value_address("fresh")).value == 5
    engine.close()


def test_a_lazy_update_still_current_for_one_function_stays():
    engine = create_mcjit_compiler(parse_ir(BASE), make_tm(), lazy=True, grace_period=0)
    both = parse_ir("define i64 @f() {\n  ret i64 1\n}\n"
                    "define i64 @h() {\n  ret i64 7\n}\n", "both")
    engine.update_module(both)
    engine.update_module(version(2))  # replaces f only: h is still the first update's
    assert engine.stats().modules == 3
    assert engine.call("h") == 7 and engine.call("f") == 2
    engine.close()


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("edit", [False, True])
def test_a_chain_of_versions_keeps_only_what_is_current(lazy, edit):
    """``replaces=previous`` over and over, with or without changes: the
    original and at most the newest version stay."""
    engine = create_mcjit_compiler(parse_ir(BASE), make_tm(), lazy=lazy, grace_period=0)
    previous = version(0, "v")
    engine.update_module(previous)
    for i in range(1, 101):
        current = version(i if edit else 0, "v")
        engine.update_module(current, replaces=previous)
        previous = current
        assert engine.call("f") == (i if edit else 0)
        assert engine.stats().modules <= 3
    engine.close()
