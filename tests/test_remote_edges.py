"""Edge cases of the executor API (issue 11, item 6): request timeouts,
``read_memory`` of memory that is not there, what a timeout error carries,
and names that are not strings - in every mode where they apply."""

from __future__ import annotations

import math
import struct

import pytest
from conftest import make_tm, parse_ir
from engine_modes import REMOTE_MODES

from execution_engine import (
    EngineOptions,
    ExecutorTimeoutError,
    MemoryAccessError,
    RemoteExecutorSpec,
    create_mcjit_compiler,
)

pytest_plugins = ("engine_modes",)  # the mode, make fixtures

PROGRAM = r"""
@g = global i64 4242
define i64 @answer() {
  ret i64 42
}
define i64 @spin() {
entry:
  br label %loop
loop:
  br label %loop
}
"""

# -- timeout ----------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, 0.0, -1, -0.5, math.nan, math.inf, 1e300])
def test_a_timeout_that_cannot_mean_a_bound_is_refused(timeout):
    with pytest.raises(ValueError, match="timeout must be more than 0") as info:
        create_mcjit_compiler(parse_ir(PROGRAM), make_tm(), remote=True, timeout=timeout)
    assert "None" in str(info.value)  # says how to ask for no bound
    with pytest.raises(ValueError, match="timeout"):
        RemoteExecutorSpec(timeout=timeout)


@pytest.mark.parametrize("timeout", [True, "1", [1]])
def test_a_timeout_that_is_not_a_number_is_refused(timeout):
    with pytest.raises(TypeError, match="timeout must be a number of seconds or None"):
        EngineOptions(executor=RemoteExecutorSpec(timeout=timeout))


@pytest.mark.parametrize("mode", REMOTE_MODES, indirect=True)
def test_a_timeout_names_what_was_running(make):
    engine = make(PROGRAM, timeout=0.5)
    assert engine.call("answer") == 42  # a short request is within the bound
    with pytest.raises(ExecutorTimeoutError) as info:
        engine.call("spin")
    assert info.value.running == "spin"
    assert "'spin'" in str(info.value) and "0.5 s" in str(info.value)
    engine.restart_executor()
    assert engine.call("answer") == 42


# -- read_memory ------------------------------------------------------------------------


def test_read_memory_reads_what_is_there(make):
    engine = make(PROGRAM)
    g = engine.get_global_value_address("g")
    assert struct.unpack("<q", engine.read_memory(g, 8)) == (4242,)
    assert engine.read_memory(g, 0) == b""


@pytest.mark.parametrize(("address", "size"), [(0, 8), (8, 8), (1 << 47, 1), ("stub", 1 << 40)],
                         ids=["null", "page-zero", "unmapped", "past-the-mapping"])
def test_read_memory_of_unreadable_memory_raises(make, address, size):
    engine = make(PROGRAM)
    if address == "stub":
        address = engine.get_function_address("answer")
    with pytest.raises(MemoryAccessError) as info:
        engine.read_memory(address, size)
    error = info.value
    assert (error.address, error.size) == (address, size)
    assert address <= error.unreadable < address + size
    assert f"{error.unreadable:#x}" in str(error)
    assert engine.call("answer") == 42  # nothing faulted


@pytest.mark.parametrize(("address", "size", "error"), [
    ("g", -1, ValueError),
    ("g", -(1 << 40), ValueError),
    (-1, 8, ValueError),
    ((1 << 64) - 4, 8, ValueError),
    ("g", 8.0, TypeError),
    ("g", True, TypeError),
    (None, 8, TypeError),
    (8.5, 8, TypeError),
], ids=["size-1", "size-negative-huge", "address-negative", "past-2**64", "size-float",
        "size-bool", "address-none", "address-float"])
def test_read_memory_validates_its_arguments(make, address, size, error):
    engine = make(PROGRAM)
    if address == "g":
        address = engine.get_global_value_address("g")
    with pytest.raises(error, match="read_memory"):
        engine.read_memory(address, size)
    assert engine.call("answer") == 42


# -- names that are not strings ---------------------------------------------------------


@pytest.mark.parametrize("name", [None, 42, b"answer"])
def test_lookups_of_a_name_that_is_not_a_str_raise_type_error(make, name):
    engine = make(PROGRAM)
    for lookup in (engine.get_function_address, engine.get_global_value_address,
                   engine.function_signature):
        with pytest.raises(TypeError, match="must be a str"):
            lookup(name)
    if not isinstance(name, int):  # an int is an address to call
        with pytest.raises(TypeError, match="named by a str"):
            engine.call(name)
    assert engine.get_function_address("answer") != 0
