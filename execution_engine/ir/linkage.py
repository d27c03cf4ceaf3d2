"""Linkage facts about IR values, and the names the engine gives locals it shares."""

from __future__ import annotations

import llvmlite.binding as llvm

WEAK_LINKAGES = frozenset({llvm.Linkage.weak_any, llvm.Linkage.weak_odr,
                           llvm.Linkage.linkonce_any, llvm.Linkage.linkonce_odr,
                           llvm.Linkage.common})
LOCAL_LINKAGES = frozenset({llvm.Linkage.internal, llvm.Linkage.private})


def is_weak(value: llvm.ValueRef) -> bool:
    """A definition another (strong) one replaces without conflict."""
    return value.linkage in WEAK_LINKAGES


def is_local(value: llvm.ValueRef) -> bool:
    """Internal or private: invisible to the linker under its own name."""
    return value.linkage in LOCAL_LINKAGES


def shared_prefix(set_id: int) -> str:
    """The prefix under which the internal symbols of the module added as set
    ``set_id`` are shared between its partitions (``__ee.h<id>.<name>``)."""
    return f"__ee.h{set_id}."
