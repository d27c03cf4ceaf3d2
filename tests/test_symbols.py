"""symbols: which definition is current, and stubs that follow it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution_engine import DuplicateSymbolError
from execution_engine.linking.symbols import Definition, SymbolTable, winner
from execution_engine.native.stubs import StubManager


@pytest.fixture
def stubs():
    m = StubManager(lambda stub: 0)
    yield m
    m.close()


@pytest.fixture
def table(stubs):
    return SymbolTable(stubs)


class H:
    """A handle; ``define`` adds its definition of ``name`` to ``table``."""

    def __init__(self, label: str, address: int):
        self.label, self.address = label, address

    def __repr__(self):
        return self.label

    def defn(self, name="f", *, weak=False, fn=True):
        return Definition(name, self, self.address, fn, weak, origin=self.label)


def define(table, name="f", **kinds):
    """Define ``name`` once per keyword (label=weak?), in order; return the handles."""
    handles = {}
    for n, (label, weak) in enumerate(kinds.items()):
        handles[label] = H(label, 0x1000 * (n + 1))
        table.define(handles[label].defn(name, weak=weak))
    return handles


def current(table, name="f"):
    cur = table.current(name)
    return cur.handle.label if cur else None


@pytest.mark.parametrize(("kinds", "expected"), [
    ({"a": False, "b": False}, "b"),              # strong replaces earlier strong
    ({"a": True, "b": True}, "a"),                # weak never replaces a weak one
    ({"a": False, "b": True}, "a"),               # ... nor a strong one
    ({"a": True, "b": False}, "b"),               # strong replaces weak
    ({"a": True, "b": False, "c": True}, "b"),
])
def test_precedence(table, kinds, expected):
    define(table, **kinds)
    assert current(table) == expected


@pytest.mark.parametrize(("kinds", "removed", "expected"), [
    ({"a": False, "b": False, "c": False}, ["c"], "b"),   # latest surviving strong
    ({"a": False, "b": False, "c": False}, ["b"], "c"),   # non-current removal: no change
    ({"s1": False, "w": True, "s2": False}, ["s2"], "s1"),  # strong beats a later weak
    ({"w1": True, "s": False, "w2": True}, ["s"], "w1"),   # no strong left: first weak
    ({"w1": True, "w2": True, "w3": True}, ["w1"], "w2"),
    ({"a": False, "w": True}, ["a", "w"], None),
])
def test_removal_fallback(table, kinds, removed, expected):
    handles = define(table, **kinds)
    for label in removed:
        table.remove_handle(handles[label], ["f"])
    assert current(table) == expected


def test_removal_only_touches_named_symbols(table):
    h = H("a", 0x1000)
    table.define(h.defn("f"))
    table.define(h.defn("g"))
    table.remove_handle(h, ["f"])
    assert current(table, "f") is None and current(table, "g") == "a"
    assert len(table) == 1


def test_strict_mode_raises_on_second_strong(stubs):
    table = SymbolTable(stubs, strict=True)
    a, b = H("a", 1), H("b", 2)
    table.define(a.defn())
    with pytest.raises(DuplicateSymbolError) as info:
        table.check([b.defn()])
    assert (info.value.symbol, info.value.first, info.value.second) == ("f", "a", "b")
    assert "'f'" in str(info.value)
    # Weak on either side, or the same handle again, is allowed.
    table.check([b.defn(weak=True), a.defn()])
    w = H("w", 3)
    table.define(w.defn("g", weak=True))
    table.check([b.defn("g")])


def test_non_strict_check_accepts_redefinition(table):
    define(table, a=False)
    table.check([H("b", 2).defn()])


def test_stub_follows_current_definition(table, stubs):
    stub = table.stub("f")
    assert not stub.is_bound() and table.address("f") is None
    h = define(table, a=False)
    assert stub.target() == h["a"].address
    assert table.address("f") == stub.address
    b = H("b", 0x9000)
    table.define(b.defn())
    assert stub.target() == 0x9000
    table.define(H("w", 0x7000).defn(weak=True))
    assert stub.target() == 0x9000
    table.remove_handle(b, ["f"])
    assert stub.target() == h["a"].address
    table.remove_handle(h["a"], ["f"])
    assert stub.target() == 0x7000
    assert table.stub("f") is stub


def test_stub_unbound_when_no_definition_remains(table):
    h = define(table, a=False)
    stub = table.stub("f")
    assert stub.target() == h["a"].address
    table.remove_handle(h["a"], ["f"])
    assert not stub.is_bound() and stub.target() == stub.trampoline
    assert table.address("f") is None and table.current("f") is None
    assert table.stub("f") is stub
    table.define(H("c", 0x5000).defn())
    assert stub.target() == 0x5000


def test_data_has_no_stub(table):
    h = H("d", 0x4000)
    table.define(h.defn("x", fn=False))
    assert table.address("x") == 0x4000
    assert not table.has_stub("x")


# -- the precedence rule, against a reference ---------------------------------------

def reference_winner(candidates):
    """The rule as the docs state it: the newest strong definition; if all are
    weak, the oldest; None if there are none."""
    strong = [item for weak, item in candidates if not weak]
    if strong:
        return strong[-1]
    return candidates[0][1] if candidates else None


@given(st.lists(st.booleans(), max_size=12))
def test_winner_matches_the_reference(weaks):
    candidates = [(weak, object()) for weak in weaks]  # distinct items
    assert winner(iter(candidates)) is reference_winner(candidates)


@given(st.lists(st.tuples(st.booleans(), st.one_of(st.none(), st.integers(0, 3))),
                max_size=8))
def test_winner_of_items_that_may_be_none(candidates):
    # None is a valid item: the winner is None only if it is the chosen item.
    assert winner(candidates) == reference_winner(candidates)


# A step: define the name from a new handle (weak or strong), or remove the
# handle at this index (modulo those alive).
STEPS = st.lists(st.one_of(st.tuples(st.just("define"), st.booleans()),
                           st.tuples(st.just("remove"), st.integers(0, 20))), max_size=25)


@pytest.fixture(scope="module")
def shared_stubs():
    m = StubManager(lambda stub: 0)
    yield m
    m.close()


@given(steps=STEPS)
@settings(deadline=None)
def test_symbol_table_current_is_the_winner_of_the_surviving_definitions(shared_stubs, steps):
    table = SymbolTable(shared_stubs)
    stub = table.stub("f")
    alive: list[tuple[bool, H]] = []  # (weak, handle), oldest first
    for n, (kind, arg) in enumerate(steps):
        if kind == "define":
            h = H(f"h{n}", 0x1000 * (n + 1))
            table.define(h.defn("f", weak=arg))
            alive.append((arg, h))
        elif alive:
            weak, h = alive.pop(arg % len(alive))
            table.remove_handle(h, ["f"])
        expected = reference_winner(alive)
        cur = table.current("f")
        assert (cur.handle if cur else None) is expected
        if expected is None:
            assert not stub.is_bound() and table.address("f") is None
        else:
            assert stub.target() == expected.address and table.address("f") == stub.address
        assert len(table) == (1 if alive else 0)
