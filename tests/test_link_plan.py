"""linking.link_plan: what a batch's symbol tables become, what every import
resolves to, which units fail or are refused, and the order they link in
(pure planning: nothing is linked here)."""

from __future__ import annotations

import pytest
from conftest import parse_object

from execution_engine import DuplicateSymbolError
from execution_engine.layers.base import AddOptions, Handle
from execution_engine.linking.link_plan import LinkPlanner, ObjectUnit, Plan, link_order
from execution_engine.linking.symbols import Definition, SymbolTable
from execution_engine.native.stubs import StubManager
from execution_engine.policies import NONE, SINGLE, STUB

MAPPED, PENDING, PROCESS = 0x1111000, 0x2222000, 0x3333000


def ret(name: str, value: int = 1, linkage: str = "") -> str:
    return f"define {linkage} i64 @{name}() {{\n  ret i64 {value}\n}}\n"


def calls(name: str, callee: str, linkage: str = "") -> str:
    return (f"declare {linkage} i64 @{callee}()\n"
            f"define i64 @{name}() {{\n  %r = call i64 @{callee}()\n  ret i64 %r\n}}\n")


def reads(name: str, var: str, linkage: str = "external global i64") -> str:
    return (f"@{var} = {linkage}\n"
            f"define i64 @{name}() {{\n  %v = load i64, ptr @{var}\n  ret i64 %v\n}}\n")


@pytest.fixture
def stubs():
    m = StubManager(lambda stub: 0)
    yield m
    m.close()


class Planner:
    """A LinkPlanner over a real symbol table; mappings, the pending resolver
    and the process answer from dicts."""

    def __init__(self, stubs, policy=STUB, *, strict: bool = False):
        self.symbols = SymbolTable(stubs, strict=strict)
        self.mapped: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.process: dict[str, int] = {}
        self.planner = LinkPlanner(self.symbols, policy, self.mapped.get, self.process.get)
        self.planner.resolve_pending = self.pending.get

    def unit(self, text: str, name: str = "", **options) -> ObjectUnit:
        handle = Handle(name or "unit")
        return ObjectUnit(handle, parse_object(text, handle.name), AddOptions(**options))

    def plan(self, *units: ObjectUnit) -> list[Plan]:
        plans, refused = self.planner.plan_batch(list(units))
        assert not refused, refused
        return plans

    def define(self, name: str, address: int, *, fn: bool, weak: bool = False,
               origin: str = "earlier") -> Handle:
        handle = Handle(origin)
        self.symbols.define(Definition(name, handle, address, fn, weak, origin=origin))
        return handle


@pytest.fixture
def p(stubs):
    return Planner(stubs)


# -- symbol-table edits ---------------------------------------------------------------

def test_functions_become_bodies_behind_stubs(p):
    (plan,) = p.plan(p.unit(ret("f")))
    body = f"f.__body{plan.uid}"
    assert plan.rename == {"f": body} and "f" in plan.undefine and body in plan.exports
    assert plan.definitions == [("f", body, True, False)]


def test_functions_keep_their_names_without_redirection(stubs):
    p = Planner(stubs, NONE)
    (plan,) = p.plan(p.unit(ret("f") + ret("w", linkage="weak")))
    assert plan.rename == {} and {"f", "w"} <= set(plan.exports)
    assert sorted(plan.definitions) == [("f", "f", True, False), ("w", "w", True, True)]


def test_new_data_is_exported_under_its_name(p):
    (plan,) = p.plan(p.unit(reads("get", "g", "global i64 5")))
    assert "g" in plan.exports and ("g", "g", False, False) in plan.definitions
    assert "g" not in plan.undefine and plan.reinit == []


def test_data_kept_from_an_earlier_set_is_shared_not_redefined(p):
    p.define("g", 0x4000, fn=False)
    (plan,) = p.plan(p.unit(reads("get", "g", "global i64 5"), keep_existing_data=True))
    assert "g" in plan.undefine and "g" not in plan.exports
    assert all(d[0] != "g" for d in plan.definitions)
    assert plan.needs["g"] == 0x4000  # references reach the existing storage


def test_kept_data_reinitialized_gets_an_initial_copy(p):
    p.define("g", 0x4000, fn=False)
    (plan,) = p.plan(p.unit(reads("get", "g", "global i64 5"), keep_existing_data=True,
                            reinitialize_data=True))
    initial = f"g.__init{plan.uid}"
    assert plan.rename["g"] == initial and initial in plan.exports
    assert plan.reinit == [("g", initial, 8)] and plan.needs["g"] == 0x4000


def test_a_weak_variable_shares_an_existing_definition(p):
    p.define("g", 0x4000, fn=False)
    (plan,) = p.plan(p.unit(reads("get", "g", "weak global i64 5")))
    assert "g" in plan.undefine and plan.needs["g"] == 0x4000


def test_a_strong_variable_defined_again_replaces_by_default(p):
    p.define("g", 0x4000, fn=False)
    (plan,) = p.plan(p.unit(reads("get", "g", "global i64 5")))
    assert "g" in plan.exports and "g" not in plan.needs


def test_common_data_of_one_batch_is_one_variable(p):
    first, second = p.plan(p.unit(reads("a", "c", "common global i64 0")),
                           p.unit(reads("b", "c", "common global i64 0")))
    assert "c" in first.exports
    assert "c" in second.undefine and second.needs["c"] is first  # provided in the batch


def test_every_allocated_section_gets_an_alias(p):
    (plan,) = p.plan(p.unit(reads("get", "g", "global i64 5")))
    obj = plan.unit.obj
    for alias, index in plan.section_aliases.items():
        assert alias == f"__ee.section{plan.uid}.{index}" and alias in plan.exports
        assert obj.sections[index].size
    assert plan.section_aliases  # code and data at least


def test_constructors_are_found_and_exported_through_aliases(p):
    (plan,) = p.plan(p.unit(
        "@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] "
        "[{ i32, ptr, ptr } { i32 7, ptr @init, ptr null }]\n"
        "define internal void @init() {\n  ret void\n}\n"))
    (ctor,) = plan.structors
    assert (ctor.kind, ctor.priority) == ("ctor", 7)
    assert ctor.symbol in plan.aliases and ctor.symbol in plan.exports


def test_uids_are_unique_across_batches(p):
    a = p.plan(p.unit(ret("f")), p.unit(ret("g")))
    b = p.plan(p.unit(ret("h")))
    assert len({plan.uid for plan in a + b}) == 3


# -- imports ------------------------------------------------------------------------

def test_a_global_mapping_wins_over_everything(p):
    p.define("f", 0x4000, fn=True)
    p.mapped["f"] = MAPPED
    p.pending["f"] = PENDING
    p.process["f"] = PROCESS
    (plan,) = p.plan(p.unit(calls("user", "f")))
    assert plan.needs["f"] == MAPPED


def test_a_function_of_the_batch_is_reached_through_its_stub(p):
    provider, user = p.plan(p.unit(ret("f"), "provider"), p.unit(calls("user", "f"), "user"))
    assert user.needs["f"] == p.symbols.stub("f").address
    assert user.call_deps == {provider}


def test_data_of_the_batch_is_provided_by_its_plan(p):
    provider, user = p.plan(p.unit(reads("x", "g", "global i64 1")), p.unit(reads("y", "g")))
    assert user.needs["g"] is provider and not user.call_deps


def test_a_calls_own_definition_goes_through_the_stub_too(p):
    (plan,) = p.plan(p.unit(ret("f") + calls("user", "f").replace("declare  i64 @f()\n", "")))
    assert plan.needs["f"] == p.symbols.stub("f").address


def test_the_engines_current_definitions_come_next(p):
    p.define("f", 0x4000, fn=True)
    p.define("g", 0x5000, fn=False)
    p.pending["f"] = p.pending["g"] = PENDING
    (plan,) = p.plan(p.unit(calls("use_f", "f") + reads("use_g", "g")))
    assert plan.needs["f"] == p.symbols.stub("f").address  # a function: its stub
    assert plan.needs["g"] == 0x5000  # data: its storage


def test_without_redirection_functions_resolve_to_their_bodies(stubs):
    p = Planner(stubs, NONE)
    p.define("f", 0x4000, fn=True)
    (plan,) = p.plan(p.unit(calls("user", "f")))
    assert plan.needs["f"] == 0x4000


def test_then_what_only_a_lazy_set_defines_then_the_process(p):
    p.pending["lazy_only"] = PENDING
    p.process["lazy_only"] = p.process["puts"] = PROCESS
    (plan,) = p.plan(p.unit(calls("a", "lazy_only") + calls("b", "puts")))
    assert plan.needs["lazy_only"] == PENDING and plan.needs["puts"] == PROCESS


def test_unresolved_strong_imports_are_missing_weak_ones_absent(p):
    (plan,) = p.plan(p.unit(calls("a", "nowhere") + calls("b", "maybe", "extern_weak")))
    assert plan.missing == ["nowhere"] and plan.absent == {"maybe"}
    assert "nowhere" not in plan.needs and "maybe" not in plan.needs


def test_slot_references_resolve_to_the_stubs_slot_under_single(stubs):
    p = Planner(stubs, SINGLE)
    text = ('@"f.__slot" = external global ptr\n'
            'define i64 @user() {\n  %p = load ptr, ptr @"f.__slot"\n'
            "  %r = call i64 %p()\n  ret i64 %r\n}\n")
    (plan,) = p.plan(p.unit(text))
    assert plan.needs["f.__slot"] == p.symbols.stub("f").slot


# -- strict mode ----------------------------------------------------------------------

def test_strict_mode_refuses_only_the_units_that_define_a_name_again(stubs):
    p = Planner(stubs, strict=True)
    p.define("f", 0x4000, fn=True, origin="linked")
    again, fine, twice, weak = (p.unit(ret("f"), "again"), p.unit(ret("g"), "fine"),
                                p.unit(ret("g"), "twice"), p.unit(ret("g", linkage="weak"),
                                                                  "weak"))
    plans, refused = p.planner.plan_batch([again, fine, twice, weak])
    assert [plan.unit for plan in plans] == [fine, weak]
    errors = {plan.unit.handle.name: exc for plan, exc in refused.items()}
    assert set(errors) == {"again", "twice"}
    assert all(isinstance(exc, DuplicateSymbolError) for exc in errors.values())
    assert (errors["again"].symbol, errors["again"].first, errors["again"].second) == (
        "f", "linked", "again")
    assert (errors["twice"].first, errors["twice"].second) == ("fine", "twice")


def test_without_strict_mode_nothing_is_refused(p):
    p.define("f", 0x4000, fn=True)
    plans, refused = p.planner.plan_batch([p.unit(ret("f")), p.unit(ret("f"))])
    assert len(plans) == 2 and refused == {}


# -- failures and order -------------------------------------------------------------

def test_a_missing_symbol_fails_its_unit_and_every_unit_needing_it(p):
    broken, reader, caller, free = p.plan(
        p.unit(reads("b", "g", "global i64 1") + ret("bf") + calls("c", "nowhere"), "broken"),
        p.unit(reads("r", "g"), "reader"),  # needs broken's data
        p.unit(calls("k", "bf"), "caller"),  # calls broken's function
        p.unit(ret("z"), "free"))
    assert LinkPlanner.failures([broken, reader, caller, free]) == {broken, reader, caller}


def test_link_order_puts_data_providers_first_and_cycles_together(p):
    cycle_a, cycle_b, user, provider = p.plan(
        p.unit("@b = external global ptr\n@a = global ptr @b\n", "cycle_a"),
        p.unit("@a = external global ptr\n@b = global ptr @a\n", "cycle_b"),
        p.unit(reads("u", "d"), "user"),
        p.unit(reads("v", "d", "global i64 3"), "provider"))
    assert user.needs["d"] is provider
    order = link_order([cycle_a, cycle_b, user, provider])
    assert order == [[cycle_a, cycle_b], [provider], [user]]


def test_calls_through_stubs_do_not_order_links(p):
    user, provider = p.plan(p.unit(calls("u", "f"), "user"), p.unit(ret("f"), "provider"))
    assert user.call_deps == {provider}
    assert link_order([user, provider]) == [[user], [provider]]  # the stub is bound later
