"""structors: reading llvm.global_ctors/dtors back from objects, and run order."""

from __future__ import annotations

import ctypes

import pytest
from conftest import parse_object

from execution_engine.linking import structors
from execution_engine.linking.structors import Structor


def table(kind: str, entries: list[tuple[int, str]]) -> str:
    items = ", ".join(f"{{ i32, ptr, ptr }} {{ i32 {p}, ptr @{fn}, ptr null }}"
                      for p, fn in entries)
    return (f"@llvm.global_{kind}s = appending global [{len(entries)} x {{ i32, ptr, ptr }}] "
            f"[{items}]\n")


def module(ctors, dtors, bodies) -> str:
    """``bodies``: (linkage, name, value recorded) per function."""
    text = table("ctor", ctors) + table("dtor", dtors) + "declare void @record(i32)\n"
    for linkage, name, value in bodies:
        text += (f"define {linkage} void @{name}() {{\n  call void @record(i32 {value})\n"
                 "  ret void\n}\n")
    return text


# Table order is deliberately not priority order; c1 internal, c1b and cdef private.
M0 = module(
    ctors=[(300, "c3"), (100, "c1"), (65535, "cdef"), (100, "c1b"), (200, "c2")],
    dtors=[(100, "c1"), (200, "c2"), (200, "c3")],
    bodies=[("internal", "c1", 1), ("private", "c1b", 11), ("", "c2", 2),
            ("internal", "c3", 3), ("private", "cdef", 4)],
)
M1 = module(
    ctors=[(200, "d2"), (100, "d1")],
    dtors=[(100, "d1"), (200, "d2")],
    bodies=[("internal", "d1", 101), ("", "d2", 102)],
)


def test_find_structors_priorities_and_table_order():
    obj = parse_object(M0)
    found, aliases = structors.find_structors(obj, "al.")
    ctors = [s for s in found if s.kind == "ctor"]
    dtors = [s for s in found if s.kind == "dtor"]
    assert sorted(s.priority for s in ctors) == [100, 100, 200, 300, 65535]
    assert sorted(s.priority for s in dtors) == [100, 200, 200]
    # Every target is defined in the object, so each gets an alias.
    assert {s.symbol for s in found} == set(aliases) and len(aliases) == len(found)
    assert all(name.startswith("al.") for name in aliases)
    assert len({s.order for s in found}) == len(found)

    def at(name):
        sym = obj.local_symbol(name) or obj.defined_globals()[name]
        return (sym.shndx, sym.value)

    by_priority = {}
    for s in sorted(ctors, key=lambda s: s.order):
        by_priority.setdefault(s.priority, []).append(aliases[s.symbol])
    assert by_priority[100][0] == at("c1")  # c1 before c1b: table order
    assert by_priority[200] == [at("c2")] and by_priority[300] == [at("c3")]
    two = sorted((s for s in dtors if s.priority == 200), key=lambda s: s.order)
    assert [aliases[s.symbol] for s in two] == [at("c2"), at("c3")]


def test_external_target_is_named_not_aliased():
    obj = parse_object(table("ctor", [(7, "elsewhere")]) + "declare void @elsewhere()\n")
    found, aliases = structors.find_structors(obj, "al.")
    assert found == [Structor("ctor", 7, 0, "elsewhere")] and aliases == {}


def test_no_tables_no_structors():
    obj = parse_object("define void @f() {\n  ret void\n}\n")
    assert structors.find_structors(obj, "al.") == ([], {})


def _entries():
    s = Structor
    return [
        (0, s("ctor", 200, 0, "a"), 1), (0, s("ctor", 100, 1, "b"), 2),
        (0, s("ctor", 100, 2, "c"), 3), (1, s("ctor", 100, 0, "d"), 4),
        (1, s("ctor", 65535, 1, "e"), 5), (0, s("dtor", 100, 3, "f"), 6),
        (0, s("dtor", 200, 4, "g"), 7), (1, s("dtor", 200, 2, "h"), 8),
        (0, s("dtor", 200, 5, "i"), 9),
    ]


def test_run_order_ctors():
    called = []
    assert structors.run(reversed(_entries()), "ctor", called.append) == 5
    # ascending priority, then module order, then table order
    assert called == [2, 3, 4, 1, 5]


def test_run_order_dtors():
    called = []
    assert structors.run(_entries(), "dtor", called.append) == 4
    # descending priority, then module order, then table order
    assert called == [7, 9, 8, 6]


@pytest.fixture
def recorded(stack):
    values = []
    callback = ctypes.CFUNCTYPE(None, ctypes.c_int32)(values.append)
    stack.mappings.add("record", ctypes.cast(callback, ctypes.c_void_p).value)
    yield values
    del callback  # kept alive until the test is done


def test_linked_structors_run_in_order(stack, recorded):
    h0, h1 = stack.add_ir(M0, M1)
    entries = stack.redirection.structors_of(h0) + stack.redirection.structors_of(h1)
    assert all(address for _, _, address in entries)
    assert structors.run(entries, "ctor") == 7
    assert recorded == [1, 11, 101, 2, 102, 3, 4]
    recorded.clear()
    assert structors.run(entries, "dtor") == 5
    assert recorded == [2, 3, 102, 1, 101]
