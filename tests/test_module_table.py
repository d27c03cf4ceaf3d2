"""module_table: the modules an engine owns, each with a reference of the
engine's own, so that a user closing their ModuleRef breaks nothing."""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import pytest
from conftest import make_tm, parse_ir

from execution_engine import create_mcjit_compiler
from execution_engine.layers.base import Handle
from execution_engine.module_table import ModuleTable, pointer_of

F = "define i64 @f() {\n  ret i64 1\n}\n"
G = ("declare i64 @f()\n"
     "define i64 @g() {\n  %r = call i64 @f()\n  %s = add i64 %r, 1\n  ret i64 %s\n}\n")
H = "define i64 @h() {\n  ret i64 3\n}\n"


def call(engine, name: str) -> int:
    address = engine.get_function_address(name)
    assert address, name
    return ctypes.CFUNCTYPE(ctypes.c_int64)(address)()


@pytest.fixture
def table():
    t = ModuleTable()
    yield t
    t.dispose_all()


def test_add_keeps_a_reference_of_its_own_to_the_same_module(table):
    user, handle = parse_ir(F, "a"), Handle("a")
    own = table.add(user, handle)
    assert own is not user and pointer_of(own) == pointer_of(user)
    assert table.handle_of(user) is handle and table.handle_of(own) is handle
    assert table.own_reference(user) is own and table.module_of(handle) is own
    assert user in table and own in table and len(table) == 1


def test_iteration_and_entries_follow_the_add_order(table):
    users = [parse_ir(F, "a"), parse_ir(H, "b")]
    handles = [Handle("a"), Handle("b")]
    owns = [table.add(u, h) for u, h in zip(users, handles, strict=True)]
    assert list(table) == owns  # ModuleRefs, as numba expects of _modules
    assert table.entries() == list(zip(owns, handles, strict=True))


def test_a_closed_user_reference_leaves_the_engines_reference_working(table):
    user, handle = parse_ir(F, "a"), Handle("a")
    own = table.add(user, handle)
    assert table.user_reference(own) is user  # hooks see what was added ...
    user.close()
    assert table.user_reference(own) is own  # ... or the engine's, once it is closed
    assert own.name == "a" and [f.name for f in own.functions] == ["f"]
    assert own in table and table.module_of(handle) is own
    with pytest.raises(ValueError, match="closed"):
        pointer_of(user)
    assert user not in table  # a closed reference is in no table


def test_release_gives_the_module_back_and_detaches_the_engines_reference(table):
    user, handle = parse_ir(F, "a"), Handle("a")
    own = table.add(user, handle)
    assert table.release(user) is handle
    assert own.closed and not user.closed and "@f()" in str(user)
    assert user not in table and table.handle_of(user) is None
    assert table.module_of(handle) is None and len(table) == 0
    assert table.release(user) is None  # not owned any more
    user.close()  # the user's again: closing disposes of it


def test_release_handle_gives_an_open_module_back(table):
    user, handle = parse_ir(F, "a"), Handle("a")
    own = table.add(user, handle)
    table.release_handle(handle)
    assert own.closed and not user.closed and "@f()" in str(user)
    assert user not in table and table.module_of(handle) is None and len(table) == 0
    user.close()


def test_release_handle_disposes_of_a_module_the_user_closed(table):
    user, handle = parse_ir(F, "a"), Handle("a")
    own = table.add(user, handle)
    user.close()
    table.release_handle(handle)
    assert own.closed and table.module_of(handle) is None and len(table) == 0
    table.release_handle(handle)  # not in the table: nothing to do


def test_rekey_moves_a_module_to_a_new_handle(table):
    user, old, new = parse_ir(F, "a"), Handle("old"), Handle("new")
    own = table.add(user, old)
    table.rekey(old, new)
    assert table.handle_of(user) is new and table.module_of(new) is own
    assert table.module_of(old) is None and table.entries() == [(own, new)]


def test_dispose_all_closes_every_reference(table):
    users = [parse_ir(F, "a"), parse_ir(H, "b")]
    owns = [table.add(u, Handle(u.name)) for u in users]
    users[1].close()
    table.dispose_all()
    assert all(m.closed for m in (*users, *owns)) and len(table) == 0 and list(table) == []


def test_objects_that_are_not_modules_are_not_in_a_table(table):
    assert "module" not in table and None not in table


# -- through the engine ------------------------------------------------------------

@pytest.mark.parametrize("options", [{}, {"lazy": True}, {"redirection": "single"},
                                     {"redirection": "none"}],
                         ids=["stub", "lazy", "single", "none"])
def test_engine_keeps_working_after_the_user_closes_added_modules(options):
    first = parse_ir(F, "first")
    engine = create_mcjit_compiler(first, make_tm(), **options)
    try:
        first.close()  # the user is done with it; the engine is not
        with llvm.parse_assembly(G) as second:  # closed when the block ends
            second.name = "second"
            engine.add_module(second)
        assert call(engine, "g") == 2  # compiled from the closed ModuleRefs' modules
        third = parse_ir(H, "third")
        engine.add_module(third)
        assert call(engine, "h") == 3 and call(engine, "f") == 1
        engine.remove_module(third)  # a module whose ModuleRef is still open
        assert engine.get_function_address("h") == 0 and "@h()" in str(third)
        third.close()
        assert engine.stats().modules == 2 and call(engine, "g") == 2
        with pytest.raises(ValueError, match="closed"):
            engine.remove_module(first)  # a closed ModuleRef names no module any more
        assert call(engine, "g") == 2
    finally:
        engine.close()
    assert engine.closed


def test_swaps_and_cache_hooks_after_the_user_closed_the_module():
    seen: list[str] = []
    first = parse_ir(F + G.replace("declare i64 @f()\n", ""), "first")
    engine = create_mcjit_compiler(first, make_tm())
    try:
        engine.set_object_cache(lambda module, data: seen.append(module.name))
        first.close()
        assert call(engine, "g") == 2
        assert seen == ["first"]  # the hook got the engine's reference, alive
        engine.update_module(parse_ir("define i64 @f() {\n  ret i64 10\n}\n", "update"))
        assert call(engine, "g") == 11
        engine.recompile_and_relink_function("g", opt_level=1)
        assert call(engine, "g") == 11
    finally:
        engine.close()
