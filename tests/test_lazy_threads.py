"""Lazy compilation under threads: concurrent first calls compile once."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import llvmlite.binding as llvm
import pytest

from execution_engine import LocalExecutorSpec
from execution_engine.executors.local import LocalExecutor
from execution_engine.native.stubs import Stub, StubManager

I64 = ctypes.c_int64
POLICIES = pytest.mark.parametrize("policy", ["direct", "stub", "single"])


class CountingExecutor(LocalExecutor):
    """An in-process executor that notes every call reaching the stub
    resolver (a first call of a function, in any thread)."""

    def __init__(self, target_machine: llvm.TargetMachine, entered: list[str]):
        super().__init__(target_machine)
        self.entered = entered

    def stub_manager(self, on_unbound: Callable[[Stub], int]) -> StubManager:
        def counting(stub: Stub) -> int:
            self.entered.append(stub.name)
            return on_unbound(stub)

        return super().stub_manager(counting)


@dataclass(frozen=True)
class CountingExecutorSpec(LocalExecutorSpec):
    """``executor=`` option: a :class:`CountingExecutor` appending to ``entered``."""

    entered: list[str] = field(default_factory=list)

    def create(self, target_machine: llvm.TargetMachine) -> LocalExecutor:
        return CountingExecutor(target_machine, self.entered)


# -- concurrent first calls ----------------------------------------------------------

WORK = """
define i64 @work{k}(i64 %n) {{
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
  %x = phi i64 [ %n, %entry ], [ %x3, %loop ]
  %x1 = shl i64 %x, 13
  %x2 = xor i64 %x, %x1
  %x2s = lshr i64 %x2, 7
  %x3 = xor i64 %x2, %x2s
  %i1 = add i64 %i, 1
  %done = icmp eq i64 %i1, 20000
  br i1 %done, label %exit, label %loop
exit:
  %r = add i64 %x3, {k}
  ret i64 %r
}}
"""
_MASK = (1 << 64) - 1


def _work(n: int, k: int) -> int:
    x = n
    for _ in range(20000):
        x ^= (x << 13) & _MASK
        x ^= x >> 7
    r = (x + k) & _MASK
    return r - (1 << 64) if r >= 1 << 63 else r


@POLICIES
def test_concurrent_first_calls_compile_once(make_lazy, policy):
    rounds, threads = 3, 8
    executor = CountingExecutorSpec()
    entered = executor.entered  # first calls that reached the resolver
    lazy = make_lazy("".join(WORK.format(k=k) for k in range(rounds)), policy=policy,
                     executor=executor)
    for k in range(rounds):
        work = lazy.fn(f"work{k}", I64, I64)
        barrier = threading.Barrier(threads)
        results: dict[int, int] = {}
        errors: list[BaseException] = []

        def call(i: int, work=work, barrier=barrier, results=results, errors=errors) -> None:
            try:
                barrier.wait()
                results[i] = work(i + 1)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        pool = [threading.Thread(target=call, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(60)
        assert not errors
        assert results == {i: _work(i + 1, k) for i in range(threads)}
        assert lazy.compiled().count(f"work{k}") == 1
    assert lazy.compiled() == [f"work{k}" for k in range(rounds)]
    # The race was real: threads other than the compiling one entered the resolver.
    assert len(entered) > rounds, entered
