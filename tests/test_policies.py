"""policies: the redirection and partition policy objects, chosen by name or value."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import parse_ir

from execution_engine import SwapNotSupportedError
from execution_engine.policies import (
    CALLEES,
    FUNCTION,
    NONE,
    PARTITION_POLICIES,
    REDIRECTION_POLICIES,
    SINGLE,
    STUB,
    PartitionPolicy,
    RedirectionPolicy,
    partition_policy,
    redirection_policy,
)

CALLS = """
declare i64 @ext()
define i64 @own() {
  ret i64 1
}
define i64 @caller() {
  %a = call i64 @own()
  %b = call i64 @ext()
  %r = add i64 %a, %b
  ret i64 %r
}
"""


@pytest.mark.parametrize("name, policy", [("stub", STUB), ("single", SINGLE), ("none", NONE)])
def test_redirection_policy_by_name_or_value(name, policy):
    assert redirection_policy(name) is policy and redirection_policy(policy) is policy
    assert REDIRECTION_POLICIES[name] is policy and policy.name == name


@pytest.mark.parametrize("name, policy", [("function", FUNCTION), ("callees", CALLEES)])
def test_partition_policy_by_name_or_value(name, policy):
    assert partition_policy(name) is policy and partition_policy(policy) is policy
    assert PARTITION_POLICIES[name] is policy and policy.name == name


@pytest.mark.parametrize("chooser, what, value", [
    (redirection_policy, "redirection", "double"),
    (redirection_policy, "redirection", "STUB"),
    (redirection_policy, "redirection", 1),
    (redirection_policy, "redirection", CALLEES),  # a policy of the other kind
    (partition_policy, "partition", "everything"),
    (partition_policy, "partition", None),
    (partition_policy, "partition", STUB),
])
def test_an_unknown_policy_is_refused_naming_it_and_the_choices(chooser, what, value):
    with pytest.raises(ValueError) as info:
        chooser(value)
    message = str(info.value)
    assert f"unknown {what} policy {value!r}" in message
    known = REDIRECTION_POLICIES if what == "redirection" else PARTITION_POLICIES
    assert all(repr(name) in message for name in known)


def test_only_redirecting_policies_can_swap_and_compile_lazily():
    for policy in (STUB, SINGLE):
        policy.check_swappable()
        policy.check_lazy()
    with pytest.raises(SwapNotSupportedError, match="redirection='none'"):
        NONE.check_swappable()
    with pytest.raises(ValueError, match="lazy compilation needs stubs: redirection='none'"):
        NONE.check_lazy()


def test_only_single_rewrites_ir():
    assert STUB.ir_transform(lambda name: True) is None
    assert NONE.ir_transform(lambda name: True) is None


def test_single_rewrites_a_copy_of_the_module():
    module = parse_ir(CALLS, "user")
    before = str(module)
    asked: list[str] = []

    def has_stub(name: str) -> bool:
        asked.append(name)
        return name == "ext"

    transform = SINGLE.ir_transform(has_stub)
    assert transform is not None
    copy = transform(module)
    try:
        assert copy is not module and copy.name == "user"
        assert str(module) == before  # the user's module is never changed
        text = str(copy)
        assert "load ptr, ptr @own.__slot" in text and "load ptr, ptr @ext.__slot" in text
        assert "ext" in asked  # external callees: rewritten if they have a stub
    finally:
        copy.close()


def test_callees_policy_pulls_callees_in_through_the_given_filter():
    def uncompiled(name: str) -> bool:
        return name.startswith("u")

    assert FUNCTION.callee_filter(uncompiled) is None
    assert CALLEES.callee_filter(uncompiled) is uncompiled


def test_policies_are_immutable_values():
    with pytest.raises(dataclasses.FrozenInstanceError):
        STUB.redirects = False  # type: ignore[misc]
    assert RedirectionPolicy("stub", redirects=True, slot_calls=False) == STUB
    assert PartitionPolicy("callees", with_callees=True) == CALLEES
