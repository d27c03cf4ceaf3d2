"""redirection: stubs between objects, shared data, data cycles, redefinition."""

from __future__ import annotations

import ctypes

import pytest
from conftest import Stack, i64_at, is_mapped

from execution_engine import UnresolvedSymbolError

I64 = ctypes.c_int64


def ret(name: str, value: int, linkage: str = "") -> str:
    return f"define {linkage} i64 @{name}() {{\n  ret i64 {value}\n}}\n"


def caller(name: str, callee: str, declare: bool = True) -> str:
    decl = f"declare i64 @{callee}()\n" if declare else ""
    return decl + (f"define i64 @{name}() {{\n  %r = call i64 @{callee}()\n"
                   "  ret i64 %r\n}\n")


def reader(name: str, var: str, define: str = "") -> str:
    """``name`` returns ``var``; ``set_<name>`` stores to it. ``define``: @var's definition."""
    head = f"@{var} = {define}\n" if define else f"@{var} = external global i64\n"
    return head + (
        f"define i64 @{name}() {{\n  %v = load i64, ptr @{var}\n  ret i64 %v\n}}\n"
        f"define void @set_{name}(i64 %x) {{\n  store i64 %x, ptr @{var}\n  ret void\n}}\n")


def test_cross_object_calls_go_through_stub(stack):
    stack.add_ir(ret("g", 5) + caller("same_object", "g", declare=False),
                 caller("other_object", "g"))
    stub = stack.symbols.stub("g")
    assert stack.redirection.find_symbol("g") == stub.address
    assert stub.target() == stack.symbols.current("g").address != stub.address
    assert stack.fn("other_object")() == 5 and stack.fn("same_object")() == 5
    # Re-pointing the slot redirects callers in both objects: they call the stub.
    replacement = ctypes.CFUNCTYPE(I64)(lambda: 77)
    stack.stubs.bind(stub, ctypes.cast(replacement, ctypes.c_void_p).value)
    assert stack.fn("other_object")() == 77 and stack.fn("same_object")() == 77


def test_later_strong_definition_redirects_and_removal_falls_back(stack):
    (first,) = stack.add_ir(ret("v", 1))
    stack.add_ir(caller("use_v", "v"))
    use_v = stack.fn("use_v")
    address = stack.redirection.find_symbol("v")
    assert use_v() == 1
    (second,) = stack.add_ir(ret("v", 2))
    assert use_v() == 2 and stack.redirection.find_symbol("v") == address
    (weak,) = stack.add_ir(ret("v", 3, "weak"))
    assert use_v() == 2  # a weak definition never replaces
    stack.redirection.remove(second)
    assert use_v() == 1
    stack.redirection.remove(first)
    assert use_v() == 3  # only the weak one is left
    stack.redirection.remove(weak)
    assert stack.redirection.find_symbol("v") is None
    assert not stack.symbols.stub("v").is_bound()


@pytest.mark.parametrize("definition", ["weak global i64 11", "common global i64 0"])
def test_weak_and_common_data_shared_across_links(stack, definition):
    stack.add_ir(reader("get_a", "w", definition))
    stack.add_ir(reader("get_b", "w", definition.replace("11", "22")))
    stack.fn("set_get_a", None, I64)(42)
    assert stack.fn("get_b")() == 42
    stack.fn("set_get_b", None, I64)(43)
    assert stack.fn("get_a")() == 43
    assert i64_at(stack.redirection.find_symbol("w")) == 43


@pytest.mark.parametrize("definition", ["weak global i64 11", "common global i64 0"])
def test_weak_and_common_data_shared_within_one_batch(stack, definition):
    stack.add_ir(reader("get_a", "w", definition),
                 reader("get_b", "w", definition.replace("11", "22")))
    stack.fn("set_get_a", None, I64)(42)
    assert stack.fn("get_b")() == 42


def test_data_cycle_links_as_one_group(stack, monkeypatch):
    links = []
    real_add = stack.linker.add
    monkeypatch.setattr(stack.linker, "add",
                        lambda *a, **k: links.append(k.get("name")) or real_add(*a, **k))
    ha, hb = stack.add_ir(reader("read_b", "b") + "@a = global i64 1\n",
                          reader("read_a", "a") + "@b = global i64 2\n")
    assert len(links) == 1 and "m0" in links[0] and "m1" in links[0]
    assert stack.fn("read_b")() == 2 and stack.fn("read_a")() == 1
    stack.fn("set_read_a", None, I64)(5)
    assert i64_at(stack.redirection.find_symbol("a")) == 5
    # The shared resource lives until both handles are gone.
    read_a = stack.fn("read_a")
    storage = stack.redirection.find_symbol("b")
    stack.redirection.remove(ha)
    assert stack.redirection.find_symbol("a") is None and read_a() == 5
    assert is_mapped(storage)
    stack.redirection.remove(hb)
    assert len(stack.symbols) == 0
    assert not is_mapped(storage)


def test_unresolved_units_fail_others_link(stack):
    with pytest.raises(UnresolvedSymbolError) as info:
        stack.add_ir(caller("a", "nope"), reader("r", "d"), ret("ok", 1))
    assert info.value.missing["m0"] == ["nope"]
    assert "m1" in info.value.missing and "m2" not in info.value.missing
    assert "nope" in str(info.value)
    assert stack.fn("ok")() == 1
    assert stack.redirection.find_symbol("a") is None


def test_global_mapping_wins_over_engine_definition(stack):
    stack.add_ir(ret("g", 5))
    replacement = ctypes.CFUNCTYPE(I64)(lambda: 99)
    stack.mappings.add("g", ctypes.cast(replacement, ctypes.c_void_p).value)
    stack.add_ir(caller("use_g", "g"))
    assert stack.fn("use_g")() == 99


def test_policy_none_links_without_stubs():
    s = Stack(policy="none")
    try:
        s.add_ir(ret("v", 1))
        s.add_ir(caller("use_v", "v"))
        assert not s.symbols.has_stub("v")
        assert s.redirection.find_symbol("v") == s.symbols.current("v").address
        s.add_ir(ret("v", 2))
        assert s.fn("use_v")() == 1  # callers stay bound to the body they linked to
        assert s.fn("v")() == 2      # lookups see the new definition
    finally:
        s.close()


def test_structor_defined_by_later_object_of_batch(stack):
    ctor_table = ("@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] "
                  "[{ i32, ptr, ptr } { i32 65535, ptr @init_b, ptr null }]\n"
                  "declare void @init_b()\n")
    ha, _ = stack.add_ir(ctor_table, "define void @init_b() {\n  ret void\n}\n")
    entries = stack.redirection.structors_of(ha)
    assert len(entries) == 1
    assert entries[0][2] == stack.redirection.find_symbol("init_b") != 0
