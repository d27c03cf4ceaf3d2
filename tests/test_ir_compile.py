"""ir_compile: deferred compilation, the object cache hooks, pending sets,
and cross-module redefinition through the whole layer stack."""

from __future__ import annotations

import ctypes

import pytest
from conftest import i64_at, parse_ir

from execution_engine import InvalidObjectError, UnresolvedSymbolError
from execution_engine.layers.base import Handle
from execution_engine.native import elf

I64 = ctypes.c_int64

LIB = """
@table = internal constant [3 x i64] [i64 10, i64 20, i64 30]
define linkonce_odr i64 @pick(i64 %i) {
  %p = getelementptr [3 x i64], ptr @table, i64 0, i64 %i
  %v = load i64, ptr %p
  ret i64 %v
}
define i64 @lib(i64 %i) {
  %r = call i64 @pick(i64 %i)
  ret i64 %r
}
"""
USER = """
declare i64 @lib(i64)
define i64 @user() {
  %r = call i64 @lib(i64 2)
  ret i64 %r
}
"""


def add(stack, text: str, name: str) -> tuple[Handle, object]:
    module = parse_ir(text, name)
    handle = Handle(name)
    stack.compiler.add(handle, module)
    return handle, module


def test_compiles_only_when_emitted(stack):
    h, _ = add(stack, LIB, "lib")
    assert stack.compiler.pending() == [h]
    assert stack.compiler.find_symbol("lib") is None
    stack.compiler.emit()
    assert stack.compiler.pending() == []
    assert stack.fn("lib", I64, I64)(1) == 20


def test_module_is_not_changed(stack):
    h, module = add(stack, LIB, "lib")
    text, bitcode = str(module), module.as_bitcode()
    stack.compiler.emit()
    assert str(module) == text and module.as_bitcode() == bitcode
    assert stack.compiler.find_symbol_in(h, "lib") == stack.compiler.find_symbol("lib")


def test_emit_selected_handles_only(stack):
    h1, _ = add(stack, LIB, "lib")
    h2, _ = add(stack, "define i64 @other() {\n  ret i64 1\n}\n", "other")
    stack.compiler.emit([h2])
    assert stack.compiler.pending() == [h1]
    assert stack.compiler.find_symbol("other") and stack.compiler.find_symbol("lib") is None


def test_notify_receives_module_and_object(stack):
    seen = []
    stack.compiler.notify = lambda module, data: seen.append((module, data))
    _, module = add(stack, LIB, "lib")
    assert seen == []
    stack.compiler.emit()
    assert len(seen) == 1 and seen[0][0] is module
    assert "lib" in elf.ObjectFile(seen[0][1]).defined_globals()


def test_getbuffer_replaces_compilation(stack):
    cached = stack.compiler.compile(parse_ir(LIB))
    notified, asked = [], []
    stack.compiler.notify = lambda module, data: notified.append(module)

    def getbuffer(module):
        asked.append(module)
        return cached if module.name == "empty" else None

    stack.compiler.getbuffer = getbuffer
    _, empty = add(stack, "", "empty")
    _, user = add(stack, USER, "user")
    stack.compiler.emit()
    assert asked == [empty, user]
    assert notified == [user]  # a cache hit is not compiled, so not notified
    assert stack.fn("user")() == 30


def test_bad_cached_object_stays_pending(stack):
    stack.compiler.getbuffer = lambda m: b"garbage" if m.name == "bad" else None
    bad, _ = add(stack, LIB, "bad")
    good, _ = add(stack, "define i64 @good() {\n  ret i64 4\n}\n", "good")
    with pytest.raises(InvalidObjectError, match="cached object for bad"):
        stack.compiler.emit()
    assert stack.compiler.pending() == [bad]
    assert stack.fn("good")() == 4
    stack.compiler.getbuffer = None
    stack.compiler.emit()
    assert stack.fn("lib", I64, I64)(0) == 10


def test_unresolved_set_stays_pending_until_provider_arrives(stack):
    user, _ = add(stack, USER, "user")
    with pytest.raises(UnresolvedSymbolError, match="lib") as info:
        stack.compiler.emit()
    assert info.value.missing == {"user": ["lib"]}
    assert stack.compiler.pending() == [user]
    lib, _ = add(stack, LIB, "lib")
    stack.compiler.emit()
    assert stack.compiler.pending() == []
    assert stack.fn("user")() == 30


def test_strong_redefinition_redirects_and_removal_falls_back(stack):
    v1, _ = add(stack, "define i64 @v() {\n  ret i64 1\n}\n", "v1")
    add(stack, "declare i64 @v()\ndefine i64 @use_v() {\n  %r = call i64 @v()\n"
               "  ret i64 %r\n}\n", "caller")
    stack.compiler.emit()
    use_v = stack.fn("use_v")
    assert use_v() == 1
    v2, _ = add(stack, "define i64 @v() {\n  ret i64 2\n}\n", "v2")
    stack.compiler.emit()
    assert use_v() == 2 and stack.fn("v")() == 2
    stack.compiler.remove(v2)
    assert use_v() == 1 and stack.fn("v")() == 1
    assert stack.compiler.find_symbol_in(v2, "v") is None


def test_removing_a_pending_set_drops_it(stack):
    user, _ = add(stack, USER, "user")
    stack.compiler.remove(user)
    assert stack.compiler.pending() == []
    stack.compiler.emit()  # nothing left to fail


def test_failed_batch_does_not_lose_independent_module(stack):
    x, _ = add(stack, "define i64 @x() {\n  ret i64 9\n}\n", "x")
    bad, _ = add(stack, "declare i64 @nowhere()\n"
                        "define i64 @y() {\n  %v = call i64 @nowhere()\n  ret i64 %v\n}\n", "bad")
    with pytest.raises(UnresolvedSymbolError, match="nowhere"):
        stack.compiler.emit()
    assert stack.compiler.pending() == [bad]
    assert stack.fn("x")() == 9


def test_strong_duplicate_inside_a_data_cycle_later_wins(stack):
    add(stack, "@a = global i64 1\n@dup = global i64 1\n@b = external global i64\n"
               "define i64 @ga() {\n  %v = load i64, ptr @b\n  ret i64 %v\n}\n"
               "define i64 @da() {\n  %v = load i64, ptr @dup\n  ret i64 %v\n}\n", "a")
    add(stack, "@b = global i64 2\n@dup = global i64 2\n@a = external global i64\n"
               "define i64 @gb() {\n  %v = load i64, ptr @a\n  ret i64 %v\n}\n", "b")
    stack.compiler.emit()
    assert stack.fn("ga")() == 2 and stack.fn("gb")() == 1
    assert i64_at(stack.compiler.find_symbol("dup")) == 2  # the later definition
    assert stack.fn("da")() == 1  # the earlier module keeps its own storage
