"""Cache keys: every input changes the key, nothing is ambiguous, processes agree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm
import pytest
from conftest import parse_ir
from hypothesis import given
from hypothesis import strategies as st

from execution_engine.cache import keys
from execution_engine.cache.keys import is_key, module_ir, object_key

REPO = Path(__file__).resolve().parent.parent

IR = """
define i64 @add(i64 %a, i64 %b) {
  %s = add i64 %a, %b
  ret i64 %s
}
"""
TARGET = "x86_64-unknown-linux-gnu;cpu=skylake;features=+avx2;opt=2;reloc=default;code=jit"


def test_key_is_a_32_byte_hex_digest_and_deterministic():
    key = object_key(IR, TARGET)
    assert is_key(key)
    assert len(key) == 64
    assert object_key(IR, TARGET) == key
    assert object_key(IR.encode(), TARGET) == object_key(IR.encode(), TARGET)


@pytest.mark.parametrize("change", [
    lambda ir, target, extra: (ir + " ", target, extra),
    lambda ir, target, extra: (ir.replace("add i64", "sub i64"), target, extra),
    lambda ir, target, extra: (ir.encode(), target, extra),  # text vs bitcode kind
    lambda ir, target, extra: (ir, target.replace("opt=2", "opt=3"), extra),
    lambda ir, target, extra: (ir, target.replace("skylake", "znver3"), extra),
    lambda ir, target, extra: (ir, target.replace("+avx2", "-avx2"), extra),
    lambda ir, target, extra: (ir, target.replace("code=jit", "code=small"), extra),
    lambda ir, target, extra: (ir, target, extra + "interposable"),
], ids=["ir-whitespace", "ir-opcode", "ir-kind", "opt", "cpu", "features", "code-model",
        "extra"])
def test_any_input_change_changes_the_key(change):
    ir, target, extra = change(IR, TARGET, "")
    assert object_key(ir, target, extra=extra) != object_key(IR, TARGET)


def test_versions_are_part_of_the_key(monkeypatch):
    base = object_key(IR, TARGET)
    monkeypatch.setattr(keys, "OBJECT_FORMAT_VERSION", keys.OBJECT_FORMAT_VERSION + 1)
    format_bumped = object_key(IR, TARGET)
    monkeypatch.undo()
    monkeypatch.setattr(llvmlite, "__version__", llvmlite.__version__ + ".post1")
    llvmlite_bumped = object_key(IR, TARGET)
    monkeypatch.undo()
    major, *rest = llvm.llvm_version_info
    monkeypatch.setattr(llvm, "llvm_version_info", (major + 1, *rest))
    llvm_bumped = object_key(IR, TARGET)
    monkeypatch.undo()
    assert len({base, format_bumped, llvmlite_bumped, llvm_bumped}) == 4
    assert object_key(IR, TARGET) == base


def test_bytes_moved_between_fields_change_the_key():
    assert object_key("ab", "c") != object_key("a", "bc")
    assert object_key("a", "b", extra="") != object_key("a", "", extra="b")
    assert object_key("", "ab") != object_key("ab", "")


@given(st.tuples(st.text(max_size=8), st.text(max_size=8), st.text(max_size=8)),
       st.tuples(st.text(max_size=8), st.text(max_size=8), st.text(max_size=8)))
def test_distinct_inputs_give_distinct_keys(a, b):
    if a != b:
        assert object_key(a[0], a[1], extra=a[2]) != object_key(b[0], b[1], extra=b[2])


def test_module_ir_is_bitcode_that_reads_and_does_not_change_the_module():
    module = parse_ir(IR, "m")
    text = str(module)
    ir = module_ir(module)
    assert ir == module.as_bitcode()
    assert str(module) == text
    clone = module.clone()
    assert module_ir(clone) == ir
    changed = parse_ir(IR.replace("add i64", "mul i64"), "m")
    assert module_ir(changed) != ir


_SCRIPT = """
import sys
import llvmlite.binding as llvm
from execution_engine.cache.keys import module_ir, object_key
llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
ir, target = sys.argv[1], sys.argv[2]
module = llvm.parse_assembly(ir)
module.name = "m"
print(object_key(ir, target))
print(object_key(module_ir(module), target))
"""


def test_two_processes_compute_the_same_key():
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "random"}
    outputs = [subprocess.run([sys.executable, "-c", _SCRIPT, IR, TARGET], cwd=REPO, env=env,
                              capture_output=True, text=True, check=True).stdout.split()
               for _ in range(2)]
    module = llvm.parse_assembly(IR)
    module.name = "m"
    here = [object_key(IR, TARGET), object_key(module_ir(module), TARGET)]
    assert outputs[0] == outputs[1] == here


def test_importing_the_engine_does_not_load_openssl():
    # hashlib's OpenSSL costs 3.8 MB of RSS in every process (peak RSS, issue 12)
    code = ("import sys, execution_engine, execution_engine.cli.main; "
            "print('_hashlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
