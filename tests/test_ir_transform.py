"""layers.ir_transform: each module is rewritten when emitted, never in place."""

from __future__ import annotations

import llvmlite.binding as llvm
import pytest
from conftest import RecordingLayer, parse_ir

from execution_engine import ExecutionEngineError
from execution_engine.layers.base import AddOptions, Handle
from execution_engine.layers.ir_transform import IRTransformLayer

F = "define i64 @f() {\n  ret i64 1\n}\n"


class Renamer:
    """A transform: a copy of the module whose functions get ``suffix``."""

    def __init__(self, suffix: str = "_t"):
        self.suffix = suffix
        self.seen: list[str] = []  # the text of every module it transformed
        self.made: list[llvm.ModuleRef] = []

    def __call__(self, module: llvm.ModuleRef) -> llvm.ModuleRef:
        self.seen.append(str(module))
        copy = llvm.parse_assembly(str(module))
        for f in copy.functions:
            f.name = f.name + self.suffix
        self.made.append(copy)
        return copy


@pytest.fixture
def base():
    return RecordingLayer()


def test_modules_are_transformed_when_emitted_not_when_added(base):
    transform = Renamer()
    layer = IRTransformLayer(base, transform)
    module = parse_ir(F, "user")
    handle = layer.add(Handle("m"), module)
    assert transform.seen == [] and layer.is_pending(handle) and layer.pending() == [handle]
    layer.emit()
    assert transform.seen == [str(module)]
    assert "@f_t()" in base.texts[handle] and "@f()" in str(module)  # the user's is unchanged
    assert layer.find_symbol("f_t") == base.address_of("f_t")
    assert layer.find_symbol_in(handle, "f_t") == base.address_of("f_t")
    assert not layer.is_pending(handle)


def test_the_copy_goes_down_in_place_with_the_users_module_as_source(base):
    layer = IRTransformLayer(base, Renamer())
    module = parse_ir(F, "user")
    handle = layer.add(Handle("m"), module, AddOptions(replaceable=True))
    layer.emit([handle])
    _, options = base.added[handle]
    assert options.in_place and options.replaceable and options.source is module


def test_a_source_given_above_is_kept(base):
    layer = IRTransformLayer(base, Renamer())
    original = parse_ir(F, "original")
    handle = layer.add(Handle("m"), parse_ir(F, "partition"), AddOptions(source=original))
    layer.emit()
    assert base.added[handle][1].source is original


def test_the_copy_is_closed_once_linked_and_kept_while_pending_below(base):
    transform = Renamer()
    layer = IRTransformLayer(base, transform)
    good, bad = layer.add(Handle("good"), parse_ir(F)), layer.add(
        Handle("bad"), parse_ir("define i64 @g() {\n  ret i64 2\n}\n"))
    base.fail_names = {"g_t"}
    with pytest.raises(ExecutionEngineError):
        layer.emit()
    good_copy, bad_copy = transform.made
    assert good_copy.closed and not bad_copy.closed
    assert layer.is_pending(bad) and not layer.is_pending(good)
    assert layer.pending() == [bad]  # pending below now, not transformed again
    base.fail_names = set()
    layer.emit()
    assert bad_copy.closed and len(transform.made) == 2


def test_emit_of_some_handles_transforms_only_those(base):
    transform = Renamer()
    layer = IRTransformLayer(base, transform)
    a, b = layer.add(Handle("a"), parse_ir(F)), layer.add(Handle("b"), parse_ir(F))
    layer.emit([b])
    assert len(transform.seen) == 1 and base.emits == [[b]]
    assert layer.pending() == [a]


def test_a_failing_transform_leaves_the_set_pending(base):
    def broken(module: llvm.ModuleRef) -> llvm.ModuleRef:
        raise ExecutionEngineError("cannot rewrite")

    layer = IRTransformLayer(base, broken)
    handle = layer.add(Handle("m"), parse_ir(F))
    with pytest.raises(ExecutionEngineError, match="cannot rewrite"):
        layer.emit()
    assert layer.pending() == [handle] and base.added == {}


def test_remove_drops_a_pending_set_and_closes_a_queued_copy(base):
    transform = Renamer()
    layer = IRTransformLayer(base, transform)
    waiting = layer.add(Handle("waiting"), parse_ir(F))
    layer.remove(waiting)
    assert layer.pending() == [] and base.removed == [waiting]
    failing = layer.add(Handle("failing"), parse_ir(F))
    base.fail_names = {"f_t"}
    with pytest.raises(ExecutionEngineError):
        layer.emit()
    layer.remove(failing)
    assert transform.made[0].closed and layer.pending() == []
