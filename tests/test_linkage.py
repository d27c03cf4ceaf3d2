"""ir.linkage: which definitions are weak, which are local, the shared-local prefix."""

from __future__ import annotations

import pytest
from conftest import parse_ir

from execution_engine.ir.linkage import (
    LOCAL_LINKAGES,
    WEAK_LINKAGES,
    is_local,
    is_weak,
    shared_prefix,
)

MODULE = """
@v_external = global i64 0
@v_weak = weak global i64 0
@v_weak_odr = weak_odr global i64 0
@v_linkonce = linkonce global i64 0
@v_linkonce_odr = linkonce_odr global i64 0
@v_common = common global i64 0
@v_internal = internal global i64 0
@v_private = private global i64 0
@v_available = available_externally global i64 0
@v_declared = external global i64
@v_extern_weak = extern_weak global i64

define i64 @f_external() {
  ret i64 0
}
define weak i64 @f_weak() {
  ret i64 0
}
define linkonce_odr i64 @f_linkonce_odr() {
  ret i64 0
}
define internal i64 @f_internal() {
  ret i64 0
}
define private i64 @f_private() {
  ret i64 0
}
declare i64 @f_declared()
"""

# name: (weak?, local?)
EXPECTED = {
    "v_external": (False, False), "v_weak": (True, False), "v_weak_odr": (True, False),
    "v_linkonce": (True, False), "v_linkonce_odr": (True, False), "v_common": (True, False),
    "v_internal": (False, True), "v_private": (False, True), "v_available": (False, False),
    "v_declared": (False, False), "v_extern_weak": (False, False),
    "f_external": (False, False), "f_weak": (True, False), "f_linkonce_odr": (True, False),
    "f_internal": (False, True), "f_private": (False, True), "f_declared": (False, False),
}


@pytest.fixture(scope="module")
def values():
    module = parse_ir(MODULE)
    found = {v.name: v for v in (*module.global_variables, *module.functions)}
    yield found
    module.close()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_weak_and_local_by_linkage(values, name):
    assert (is_weak(values[name]), is_local(values[name])) == EXPECTED[name]


def test_no_linkage_is_both_weak_and_local():
    assert not WEAK_LINKAGES & LOCAL_LINKAGES


def test_shared_prefix_names_the_set():
    assert shared_prefix(7) == "__ee.h7."
    assert shared_prefix(7) != shared_prefix(71)
    assert not (shared_prefix(7) + "x").startswith(shared_prefix(71))
