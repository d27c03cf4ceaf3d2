"""Lazy compilation composed with hot-swap: updates of compiled and uncompiled
functions, recompiling lazy functions, removing lazy modules, stale pointers."""

from __future__ import annotations

import ctypes
import signal

import isolated
import pytest
from conftest import cfunc, parse_ir
from isolated_cases import lazy as lazy_cases

I64 = ctypes.c_int64
POLICIES = pytest.mark.parametrize("policy", ["direct", "stub", "single"])


SWAP_BASE = """
@state = global i64 7

define i64 @f() {
  ret i64 1111
}
define i64 @main() {
  %a = call i64 @f()
  %s = load i64, ptr @state
  %r = add i64 %a, %s
  ret i64 %r
}
"""
SWAP_NEW = """
@state = global i64 1000

define i64 @f() {
  ret i64 2222
}
"""


@POLICIES
def test_update_of_uncompiled_function_changes_what_is_compiled(make_lazy, policy):
    lazy = make_lazy(SWAP_BASE, policy=policy)
    f = lazy.engine.get_function_address("f")
    main = lazy.fn("main")
    lazy.engine.update_module(parse_ir(SWAP_NEW, "new"))
    assert "f" not in lazy.compiled()  # the update compiled no code either
    assert main() == 2229  # state keeps its storage and value
    assert cfunc(f, I64)() == 2222 and lazy.engine.get_function_address("f") == f
    assert lazy.compiled() == ["main", "f"]
    assert not any("1111" in text for text in lazy.texts)  # the old f was never compiled
    assert lazy.compiled().count("f") == 1


@POLICIES
def test_update_of_compiled_function_redirects_callers(make_lazy, policy):
    lazy = make_lazy(SWAP_BASE, policy=policy)
    f = lazy.engine.get_function_address("f")
    main = lazy.fn("main")
    assert main() == 1118
    lazy.engine.update_module(parse_ir(SWAP_NEW, "new"))
    assert main() == 2229
    assert cfunc(f, I64)() == 2222 and lazy.engine.get_function_address("f") == f


@POLICIES
def test_update_with_reinitialized_globals_then_removed(make_lazy, policy):
    lazy = make_lazy(SWAP_BASE, policy=policy)
    main = lazy.fn("main")
    assert main() == 1118
    ctypes.c_int64.from_address(lazy.engine.get_global_value_address("state")).value = 3
    new = parse_ir(SWAP_NEW, "new")
    lazy.engine.update_module(new, reinitialize_globals=True)
    assert main() == 2222 + 1000
    lazy.engine.remove_module(new)
    assert main() == 1111 + 1000  # the old f is current again (recompiled if it was freed)


@POLICIES
def test_removing_update_whose_replacement_was_never_called(policy):
    # In a process of its own: the second call once aborted it.
    outcome = isolated.run(lazy_cases.remove_update_never_called, policy, SWAP_BASE, SWAP_NEW)
    assert outcome.value == [1118, 1118]


RECOMPILE = """
@counter = internal global i64 0

define i64 @f() {
  %c = load i64, ptr @counter
  %c1 = add i64 %c, 1
  store i64 %c1, ptr @counter
  ret i64 %c1
}
define i64 @g() {
  ret i64 5
}
define i64 @main() {
  %a = call i64 @f()
  %b = call i64 @g()
  %s = mul i64 %a, %b
  ret i64 %s
}
"""


@POLICIES
def test_recompile_lazy_functions_by_value(make_lazy, policy):
    lazy = make_lazy(RECOMPILE, policy=policy)
    engine = lazy.engine
    main = lazy.fn("main")
    f_stub = engine.get_function_address("f")
    body = engine.recompile_and_relink_function(lazy.modules[0].get_function("f"))  # uncompiled
    assert body and body != f_stub
    assert lazy.compiled() == ["f"]
    assert main() == 5 and main() == 10
    assert lazy.compiled() == ["f", "main", "g"]  # f's lazy partition was never compiled
    engine.recompile_and_relink_function(lazy.modules[0].get_function("g"), opt_level=3)
    engine.recompile_and_relink_function(lazy.modules[0].get_function("f"), opt_level=3)
    assert main() == 15  # the internal counter is shared with the recompiled body
    assert engine.get_function_address("f") == f_stub


@POLICIES
def test_recompile_compiled_lazy_function_by_name(make_lazy, policy):
    lazy = make_lazy(RECOMPILE, policy=policy)
    main = lazy.fn("main")
    assert main() == 5
    lazy.engine.recompile_and_relink_function("f", opt_level=1)
    lazy.engine.recompile_and_relink_function("main")
    assert main() == 10
    assert lazy.compiled().count("f") == 2


@POLICIES
def test_recompile_uncompiled_lazy_function_by_name(make_lazy, policy):
    lazy = make_lazy(RECOMPILE, policy=policy)
    main = lazy.fn("main")
    assert lazy.engine.recompile_and_relink_function("g")
    assert main() == 5


REMOVE_BASE = """
define i64 @f() {
  ret i64 1
}
define i64 @main() {
  %a = call i64 @f()
  ret i64 %a
}
"""
REMOVE_OVER = """
define i64 @f() {
  ret i64 2
}
define i64 @only_here() {
  ret i64 3
}
"""


@POLICIES
@pytest.mark.parametrize("called", [False, True])
def test_remove_lazy_module_falls_back_and_zeroes_addresses(make_lazy, policy, called):
    lazy = make_lazy(REMOVE_BASE, REMOVE_OVER, policy=policy)
    engine = lazy.engine
    main = lazy.fn("main")
    only_here = engine.get_function_address("only_here")
    if called:
        assert main() == 2 and cfunc(only_here, I64)() == 3
    engine.remove_module(lazy.modules[1])
    assert engine.get_function_address("only_here") == 0
    assert main() == 1  # the earlier definition of f, compiled now if not before
    assert lazy.compiled()[-1] == "f"
    engine.remove_module(lazy.modules[0])
    assert engine.get_function_address("main") == 0
    assert engine.get_function_address("f") == 0


@POLICIES
@pytest.mark.parametrize("called", [False, True])
def test_stale_pointer_into_removed_lazy_module_aborts(policy, called):
    outcome = isolated.run(lazy_cases.call_removed_function, policy, called,
                           "define i64 @doomed_fn() {\n  ret i64 7\n}\n")
    assert outcome.stdout == "calling\n", outcome.stderr
    assert outcome.signal == signal.SIGABRT, outcome.describe()  # not SIGSEGV
    assert "doomed_fn" in outcome.stderr and "not linked" in outcome.stderr
