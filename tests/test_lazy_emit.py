"""layers.lazy_emit: a set is held (not even built) until a symbol of it is needed."""

from __future__ import annotations

import pytest
from conftest import RecordingLayer, parse_ir

from execution_engine import ExecutionEngineError
from execution_engine.layers.base import AddOptions, Handle
from execution_engine.layers.lazy_emit import DeferredModule, LazyEmitLayer


class Deferred:
    """A DeferredModule for functions ``names``, counting its builds and
    keeping every module it built (to see that the layer closed it)."""

    def __init__(self, *names: str, empty: bool = False):
        self.names = set(names)
        self.empty = empty
        self.built: list = []

    def unit(self) -> DeferredModule:
        return DeferredModule(self.names.__contains__, self.build)

    def build(self):
        if self.empty:
            return None
        module = parse_ir("".join(f"define i64 @{n}() {{\n  ret i64 1\n}}\n"
                                  for n in sorted(self.names)))
        self.built.append(module)
        return module


@pytest.fixture
def base():
    return RecordingLayer()


@pytest.fixture
def layer(base):
    return LazyEmitLayer(base)


def test_a_held_set_is_not_built_until_one_of_its_names_is_looked_up(layer, base):
    deferred = Deferred("f", "g")
    handle = layer.add(Handle("vars"), deferred.unit())
    assert layer.is_held(handle) and not layer.is_pending(handle) and layer.pending() == []
    assert layer.find_symbol("other") is None
    assert deferred.built == [] and base.added == {}
    assert layer.find_symbol("g") == base.address_of("g")
    assert len(deferred.built) == 1 and base.linked == [handle]
    assert not layer.is_held(handle)
    assert layer.find_symbol("f") == base.address_of("f")
    assert len(deferred.built) == 1  # built once


def test_the_built_module_goes_down_to_compile_in_place_and_is_closed_after_the_emit(layer, base):
    deferred = Deferred("f")
    handle = layer.add(Handle("vars"), deferred.unit(), AddOptions(keep_existing_data=True))
    layer.find_symbol("f")
    _, options = base.added[handle]
    assert options.in_place and options.keep_existing_data  # the caller's, in place
    assert deferred.built[0].closed


def test_emit_builds_every_held_set_in_one_batch(layer, base):
    a, b, c = Deferred("a"), Deferred("b"), Deferred("c")
    handles = [layer.add(Handle(n), d.unit()) for n, d in zip("abc", (a, b, c), strict=True)]
    layer.emit(handles[:2])
    assert base.emits == [handles[:2]] and layer.is_held(handles[2])
    layer.emit()
    assert base.emits == [handles[:2], handles[2:]]
    assert not any(layer.is_held(h) for h in handles)


def test_a_set_that_builds_nothing_is_dropped(layer, base):
    handle = layer.add(Handle("empty"), Deferred("f", empty=True).unit())
    assert layer.find_symbol("f") is None
    assert not layer.is_held(handle) and handle not in base.added


def test_a_set_that_fails_to_link_is_held_again_as_it_was(layer, base):
    good, bad = Deferred("good"), Deferred("bad")
    handles = [layer.add(Handle("good"), good.unit()), layer.add(Handle("bad"), bad.unit())]
    base.fail_names = {"bad"}
    with pytest.raises(ExecutionEngineError, match="bad"):
        layer.emit()
    assert base.linked == [handles[0]]  # the good set stays linked
    assert layer.is_held(handles[1]) and handles[1] in base.removed
    assert bad.built[0].closed
    base.fail_names = set()
    assert layer.find_symbol("bad") == base.address_of("bad")  # built again, linked now
    assert len(bad.built) == 2 and len(good.built) == 1


def test_find_symbol_in_builds_only_that_set(layer, base):
    a, b = Deferred("f"), Deferred("f")
    ha, hb = layer.add(Handle("a"), a.unit()), layer.add(Handle("b"), b.unit())
    assert layer.find_symbol_in(hb, "f") == base.address_of("f")
    assert a.built == [] and len(b.built) == 1 and layer.is_held(ha)
    assert layer.find_symbol_in(ha, "g") is None and a.built == []


def test_remove_forgets_a_held_set_and_removes_it_below(layer, base):
    deferred = Deferred("f")
    handle = layer.add(Handle("vars"), deferred.unit())
    layer.remove(handle)
    assert not layer.is_held(handle) and base.removed == [handle]
    assert layer.find_symbol("f") is None and deferred.built == []
