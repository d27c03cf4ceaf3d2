"""CachingCompiler with a real TargetMachine: cached objects link and run in the engine."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import llvmlite.binding as llvm
import pytest

import execution_engine
from execution_engine.cache import CachingBackend, CachingCompiler, ObjectStore
from execution_engine.compilers import InProcessCompiler

REPO = Path(__file__).resolve().parent.parent

IR = """
@counter = global i64 100

define i64 @square(i64 %x) {
  %r = mul i64 %x, %x
  ret i64 %r
}

define i64 @bump(i64 %x) {
  %c = load i64, ptr @counter
  %s = call i64 @square(i64 %x)
  %n = add i64 %c, %s
  store i64 %n, ptr @counter
  ret i64 %n
}
"""


def new_tm(opt: int = 2) -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine(jit=True, opt=opt)


def target_of(opt: int) -> str:
    return f"{llvm.get_default_triple()};cpu=generic;features=;opt={opt};reloc=default;code=jit"


def parse(text: str = IR, name: str = "m") -> llvm.ModuleRef:
    module = llvm.parse_assembly(text)
    module.name = name
    return module


class Compiler:
    """emit_object with a count of the modules it really compiled."""

    def __init__(self, opt: int = 2):
        self.tm = new_tm(opt)
        self.compiled = 0

    def __call__(self, module: llvm.ModuleRef) -> bytes:
        self.compiled += 1
        return self.tm.emit_object(module)


def run_object(data: bytes) -> list[int]:
    """Link ``data`` alone into an engine and call its functions."""
    ee = execution_engine.create_mcjit_compiler(parse("", "empty"), new_tm())
    try:
        ee.add_object_file(data)
        ee.finalize_object()
        fn = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)
        square, bump = (fn(ee.get_function_address(name)) for name in ("square", "bump"))
        return [square(12), bump(3), bump(4)]
    finally:
        ee.close()


EXPECTED = [144, 109, 125]


def test_a_warm_store_returns_the_cold_object_and_it_runs(tmp_path):
    cold = Compiler()
    first = CachingCompiler(cold, ObjectStore(tmp_path), target_of(2))(parse())
    assert cold.compiled == 1
    warm = Compiler()
    second = CachingCompiler(warm, ObjectStore(tmp_path), target_of(2))(parse())
    assert warm.compiled == 0 and second == first
    assert run_object(second) == EXPECTED


def test_another_target_or_module_is_a_miss(tmp_path):
    store = ObjectStore(tmp_path)
    o2, o0 = Compiler(2), Compiler(0)
    CachingCompiler(o2, store, target_of(2))(parse())
    CachingCompiler(o0, store, target_of(0))(parse())
    CachingCompiler(o2, store, target_of(2))(parse(IR.replace("i64 100", "i64 101")))
    assert (o2.compiled, o0.compiled) == (2, 1)
    assert store.stats().misses == 3 and store.usage().entries == 3


def test_a_corrupt_cached_object_is_recompiled_and_runs(tmp_path):
    store = ObjectStore(tmp_path)
    compiler = Compiler()
    caching = CachingCompiler(compiler, store, target_of(2))
    good = caching(parse())
    (entry,) = [p for p in (tmp_path / "v1").rglob("*") if p.is_file()]
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the object's bytes
    entry.write_bytes(bytes(data))
    again = caching(parse())
    assert compiler.compiled == 2 and store.stats().corrupt == 1
    assert again == good and run_object(again) == EXPECTED


def test_compile_errors_propagate_and_nothing_is_stored(tmp_path):
    store = ObjectStore(tmp_path)

    def broken(module: llvm.ModuleRef) -> bytes:
        raise execution_engine.InvalidObjectError("code generation failed")

    with pytest.raises(execution_engine.InvalidObjectError):
        CachingCompiler(broken, store, target_of(2))(parse())
    assert store.usage().entries == 0


_WARM_PROCESS = """
import sys
import llvmlite.binding as llvm
llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
sys.path.insert(0, sys.argv[2])
from test_cache_layer import IR, parse, run_object, target_of
from execution_engine.cache import CachingBackend, CachingCompiler, ObjectStore
from execution_engine.compilers import InProcessCompiler

def must_not_compile(module):
    raise AssertionError("compiled although the cache holds the object")

store = ObjectStore(sys.argv[1])
data = CachingCompiler(must_not_compile, store, target_of(2))(parse())
print(*run_object(data), store.stats().hits)
"""


def test_another_process_hits_and_runs_the_object(tmp_path):
    CachingCompiler(Compiler(), ObjectStore(tmp_path), target_of(2))(parse())
    proc = subprocess.run(
        [sys.executable, "-c", _WARM_PROCESS, str(tmp_path), str(REPO / "tests")],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [int(x) for x in proc.stdout.split()] == [*EXPECTED, 1]


def test_caching_backend_serves_the_in_process_backend(tmp_path):
    calls = []

    class Counting(InProcessCompiler):
        def compile(self, module, target_machine, *, label):
            calls.append(label)
            return super().compile(module, target_machine, label=label)

    def describe(tm: llvm.TargetMachine) -> str:
        return f"{tm.triple};opt=2;jit"

    backend = CachingBackend(Counting(), ObjectStore(tmp_path), describe)
    tm = new_tm()
    first = backend.compile(parse(), tm, label="m")
    second = backend.compile(parse(), tm, label="m")
    assert calls == ["m"] and first == second
    assert (backend.stats().hits, backend.stats().misses) == (1, 1)
    assert run_object(second) == EXPECTED
