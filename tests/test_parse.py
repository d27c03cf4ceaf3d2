"""ir.parse: a partition that does not parse or verify names what it was cut from."""

from __future__ import annotations

import pytest

from execution_engine import ExecutionEngineError, InvalidModuleError
from execution_engine.ir.parse import parse_partition

WHAT = "function 'f' of module 'm'"
GOOD = "define i64 @f() {\n  ret i64 1\n}\n"
# Parses (forward references resolve), but %y does not dominate its use.
UNVERIFIED = """define i64 @f() {
entry:
  %x = add i64 %y, 1
  br label %other
other:
  %y = add i64 1, 2
  ret i64 %y
}
"""


def test_a_good_partition_is_parsed_and_verified():
    module = parse_partition(GOOD, WHAT)
    try:
        assert [f.name for f in module.functions] == ["f"]
    finally:
        module.close()  # the caller's to close


def test_a_partition_that_does_not_parse_is_named_and_quoted():
    text = "define i64 @f() {\n  ret i64 %nowhere\n}\n"
    with pytest.raises(InvalidModuleError) as info:
        parse_partition(text, WHAT)
    message = str(info.value)
    assert message.startswith(f"{WHAT} does not compile on its own: ")
    assert "nowhere" in message and message.endswith(text)  # the error, then the text
    assert isinstance(info.value, ExecutionEngineError)


def test_a_partition_that_does_not_verify_is_named():
    with pytest.raises(InvalidModuleError, match="function 'f' of module 'm'.*dominate"):
        parse_partition(UNVERIFIED, WHAT)


def test_a_long_partition_is_not_quoted():
    long_text = UNVERIFIED + "".join(f"@g{i} = global i64 {i}\n" for i in range(250))
    with pytest.raises(InvalidModuleError) as info:
        parse_partition(long_text, WHAT)
    assert "dominate" in str(info.value) and "@g249" not in str(info.value)
    short = UNVERIFIED + "".join(f"@g{i} = global i64 {i}\n" for i in range(10))
    with pytest.raises(InvalidModuleError, match="@g9 = global"):
        parse_partition(short, WHAT)
