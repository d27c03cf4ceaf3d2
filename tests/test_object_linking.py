"""object_linking: linking objects with explicit imports/exports, freeing, sessions."""

from __future__ import annotations

import ctypes

import pytest
from conftest import cfunc, compile_ir, i64_at, is_mapped

from execution_engine import LinkError
from execution_engine.layers.object_linking import ObjectLinkingLayer

I64 = ctypes.c_int64
SOURCE = """
declare i64 @ext(i64)
@counter = global i64 7
define i64 @f(i64 %x) {
  %r = call i64 @ext(i64 %x)
  %c = load i64, ptr @counter
  %s = add i64 %r, %c
  store i64 %s, ptr @counter
  ret i64 %s
}
"""


@pytest.fixture(scope="module")
def obj() -> bytes:
    return compile_ir(SOURCE)


@pytest.fixture
def ext():
    callback = ctypes.CFUNCTYPE(I64, I64)(lambda x: x * 100)
    yield ctypes.cast(callback, ctypes.c_void_p).value
    del callback


@pytest.fixture
def layer(tm):
    lay = ObjectLinkingLayer(tm, session_capacity=2)
    yield lay
    lay.close()


def test_link_and_call(layer, obj, ext):
    res = layer.add([obj], {"ext": ext}, ["f", "counter"], name="one")
    assert res.name == "one" and set(res.exports) == {"f", "counter"}
    f = cfunc(res.exports["f"], I64, I64)
    assert f(3) == 307
    assert i64_at(res.exports["counter"]) == 307
    assert f(0) == 307
    assert layer.find_symbol("f") == res.exports["f"]
    assert layer.find_symbol_in(res, "counter") == res.exports["counter"]


def test_two_links_are_independent(layer, obj, ext):
    first = layer.add([obj], {"ext": ext}, ["f", "counter"])
    second = layer.add([obj], {"ext": ext}, ["f", "counter"])
    assert first.exports["counter"] != second.exports["counter"]
    cfunc(first.exports["f"], I64, I64)(1)
    assert i64_at(first.exports["counter"]) == 107 and i64_at(second.exports["counter"]) == 7
    assert layer.find_symbol("f") == second.exports["f"]  # most recent exporter
    layer.remove(second)
    assert layer.find_symbol("f") == first.exports["f"]


def test_remove_frees_memory(layer, obj, ext):
    res = layer.add([obj], {"ext": ext}, ["f", "counter"])
    code = res.exports["f"]
    assert is_mapped(code)
    layer.remove(res)
    assert not is_mapped(code)
    assert layer.find_symbol("f") is None
    layer.remove(res)  # idempotent


def test_sessions_retire_after_capacity(layer, obj, ext):
    resources = [layer.add([obj], {"ext": ext}, ["f"]) for _ in range(5)]
    assert layer.session_count == 3  # capacity 2: 2 + 2 + 1
    for res in resources[:4]:
        layer.remove(res)
    assert layer.session_count == 1  # retired sessions with nothing live are disposed
    assert cfunc(resources[4].exports["f"], I64, I64)(1) == 107
    layer.remove(resources[4])
    assert layer.session_count == 1  # the current session stays open


def test_retired_session_kept_while_a_resource_lives(layer, obj, ext):
    resources = [layer.add([obj], {"ext": ext}, ["f"]) for _ in range(3)]
    layer.remove(resources[1])
    assert layer.session_count == 2
    assert cfunc(resources[0].exports["f"], I64, I64)(2) == 207
    layer.remove(resources[0])
    assert layer.session_count == 1


def test_missing_import_raises_link_error_and_layer_stays_usable(layer, obj, ext):
    with pytest.raises(LinkError, match="bad link"):
        layer.add([obj], {}, ["f"], name="bad link")
    assert layer.find_symbol("f") is None
    res = layer.add([obj], {"ext": ext}, ["f"])
    assert cfunc(res.exports["f"], I64, I64)(5) == 507


_LEAK = ("ObjectLinkingLayer._current_session opens a new session without retiring the "
         "full one it replaces; _retire_if_idle only runs on remove/failed link, and skips "
         "the then-current session, so a full session whose resources are all gone (or "
         "that only saw failed links) is never disposed")


def test_full_session_emptied_while_current_is_disposed(layer, obj, ext):
    first = [layer.add([obj], {"ext": ext}, ["f"]) for _ in range(2)]
    for res in first:
        layer.remove(res)
    assert layer.session_count == 1
    later = layer.add([obj], {"ext": ext}, ["f"])  # opens a new session
    assert cfunc(later.exports["f"], I64, I64)(1) == 107
    assert layer.session_count == 1


def test_failed_links_do_not_keep_sessions_alive(layer, obj, ext):
    for _ in range(4):
        with pytest.raises(LinkError):
            layer.add([obj], {}, ["f"])
    assert layer.session_count == 1
    res = layer.add([obj], {"ext": ext}, ["f"])
    assert cfunc(res.exports["f"], I64, I64)(1) == 107


def test_link_remove_cycles_do_not_accumulate_sessions(layer, obj, ext):
    """The compile-then-discard pattern: one live resource at a time."""
    for _ in range(10):
        res = layer.add([obj], {"ext": ext}, ["f"])
        assert cfunc(res.exports["f"], I64, I64)(1) == 107
        layer.remove(res)
    assert layer.session_count == 1
