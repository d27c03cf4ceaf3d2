"""Shared helpers for the benchmarks: LLVM setup, a realistic module
generator with a Python reference model, CPU-time measurement and the
description of the machine a run was measured on.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import llvmlite
import llvmlite.binding as llvm

MASK = (1 << 64) - 1

_initialized = False


def init_llvm() -> None:
    """Initialise the native target once (harmless on llvmlite versions that
    no longer need it)."""
    global _initialized
    if not _initialized:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        llvm.initialize_native_asmparser()
        _initialized = True


def target_machine() -> llvm.TargetMachine:
    """The settings every engine gets: default triple, host CPU, ``jit=True, opt=2``.
    A fresh one per engine (engines take ownership)."""
    init_llvm()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(jit=True, opt=2)


def parse(ir: str) -> llvm.ModuleRef:
    init_llvm()
    module = llvm.parse_assembly(ir)
    module.verify()
    return module


# -- measuring -----------------------------------------------------------------


def cpu_time(fn: Callable[[], object]) -> tuple[float, object]:
    """CPU seconds (``time.process_time``) spent in ``fn()`` and its result.
    A full collection runs first so garbage of earlier runs is not billed to ``fn``."""
    gc.collect()
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def environment() -> dict[str, str]:
    """Where and with what a run was measured."""
    return {
        "machine": f"{platform.machine()}, {_cpu_model()}, {os.cpu_count()} CPUs",
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "llvmlite": llvmlite.__version__,
        "llvm": ".".join(map(str, llvm.llvm_version_info)),
    }


def environment_line() -> str:
    env = environment()
    return (f"{env['machine']}; {env['os']}; {env['python']}; "
            f"llvmlite {env['llvmlite']}, LLVM {env['llvm']}")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# -- a realistic generated module ------------------------------------------------

_BINOPS = ("add", "sub", "mul", "xor", "and", "or")
_SHIFTS = ("shl", "lshr", "ashr")


@dataclass(frozen=True)
class _Op:
    opcode: str
    operand: str  # "x" (the argument), "prev2" (the value two steps back) or "const"
    const: int


@dataclass(frozen=True)
class _FunctionSpec:
    entry: tuple[_Op, ...]
    threshold: int
    then_ops: tuple[_Op, ...]
    else_ops: tuple[_Op, ...]
    tail: tuple[_Op, ...]
    global_init: int


class ChainModule:
    """A module of ``n`` functions ``f0 .. f{n-1}`` of about 40 instructions
    each: an arithmetic chain, an ``icmp`` + conditional branch, two arms
    joined by a ``phi``, a load/add/store of the function's own global
    ``g<k>``, a call to the previous function ``f<k-1>`` (``f0`` calls
    nothing) and more arithmetic on the result.

    ``ir`` is the module text; :meth:`expected` evaluates the same code in
    Python, so results of JIT'd code can be checked, not just compared.
    """

    def __init__(self, n: int, *, seed: int = 2):
        self.n = n
        rng = random.Random(seed * 1_000_003 + n)
        self.specs = [self._random_spec(rng) for _ in range(n)]
        self.ir = self._emit()

    # -- generation --------------------------------------------------------------

    @staticmethod
    def _random_ops(rng: random.Random, count: int) -> tuple[_Op, ...]:
        ops = []
        for _ in range(count):
            if rng.random() < 0.25:
                ops.append(_Op(rng.choice(_SHIFTS), "const", rng.randrange(1, 23)))
            else:
                operand = rng.choice(("x", "prev2", "const", "const"))
                ops.append(_Op(rng.choice(_BINOPS), operand, rng.randrange(1, 1 << 31) | 1))
        return tuple(ops)

    def _random_spec(self, rng: random.Random) -> _FunctionSpec:
        return _FunctionSpec(
            entry=self._random_ops(rng, 14),
            threshold=rng.randrange(1, 1 << 63),
            then_ops=self._random_ops(rng, 5),
            else_ops=self._random_ops(rng, 5),
            tail=self._random_ops(rng, 6),
            global_init=rng.randrange(0, 1 << 40),
        )

    @staticmethod
    def _emit_ops(lines: list[str], prefix: str, ops: tuple[_Op, ...], start: str,
                  before: str) -> str:
        """Emit ``ops`` as a chain starting at ``start`` (``before`` is the value
        preceding it); returns the name of the last value."""
        prev2, prev = before, start
        for i, op in enumerate(ops):
            if op.operand == "x":
                rhs = "%x"
            elif op.operand == "prev2":
                rhs = prev2
            else:
                rhs = str(op.const)
            name = f"%{prefix}{i}"
            lines.append(f"  {name} = {op.opcode} i64 {prev}, {rhs}")
            prev2, prev = prev, name
        return prev

    def _emit(self) -> str:
        lines = [f"; {self.n} generated functions (benchmarks.common.ChainModule)"]
        for k, spec in enumerate(self.specs):
            lines.append(f"@g{k} = global i64 {spec.global_init}")
        for k, spec in enumerate(self.specs):
            lines.append(f"\ndefine i64 @f{k}(i64 %x) {{\nentry:")
            last = self._emit_ops(lines, "e", spec.entry, "%x", "%x")
            lines.append(f"  %c = icmp ult i64 {last}, {spec.threshold}")
            lines.append("  br i1 %c, label %then, label %else\nthen:")
            then_last = self._emit_ops(lines, "t", spec.then_ops, last, "%x")
            lines.append("  br label %join\nelse:")
            else_last = self._emit_ops(lines, "o", spec.else_ops, last, "%x")
            lines.append("  br label %join\njoin:")
            lines.append(f"  %p = phi i64 [ {then_last}, %then ], [ {else_last}, %else ]")
            lines.append(f"  %g = load i64, ptr @g{k}")
            lines.append("  %g1 = add i64 %g, %p")
            lines.append(f"  store i64 %g1, ptr @g{k}")
            if k:
                lines.append(f"  %r = call i64 @f{k - 1}(i64 %p)")
            else:
                lines.append("  %r = mul i64 %p, 3")
            lines.append("  %s = xor i64 %r, %g1")
            last = self._emit_ops(lines, "z", spec.tail, "%s", "%p")
            lines.append(f"  ret i64 {last}\n}}")
        return "\n".join(lines) + "\n"

    # -- reference model -----------------------------------------------------------

    @staticmethod
    def _run_ops(ops: tuple[_Op, ...], x: int, start: int, before: int) -> int:
        prev2, prev = before, start
        for op in ops:
            rhs = x if op.operand == "x" else prev2 if op.operand == "prev2" else op.const
            code = op.opcode
            if code == "add":
                value = prev + rhs
            elif code == "sub":
                value = prev - rhs
            elif code == "mul":
                value = prev * rhs
            elif code == "xor":
                value = prev ^ rhs
            elif code == "and":
                value = prev & rhs
            elif code == "or":
                value = prev | rhs
            elif code == "shl":
                value = prev << rhs
            elif code == "lshr":
                value = prev >> rhs
            else:  # ashr
                signed = prev - (1 << 64) if prev >> 63 else prev
                value = signed >> rhs
            prev2, prev = prev, value & MASK
        return prev

    def initial_globals(self) -> list[int]:
        return [s.global_init for s in self.specs]

    def call(self, k: int, x: int, globals_: list[int]) -> int:
        """Result of ``f<k>(x)``; updates ``globals_`` as the code does."""
        frames = []
        for j in range(k, -1, -1):  # down the call chain
            spec = self.specs[j]
            x &= MASK
            last = self._run_ops(spec.entry, x, x, x)
            arm = spec.then_ops if last < spec.threshold else spec.else_ops
            p = self._run_ops(arm, x, last, x)
            globals_[j] = g1 = (globals_[j] + p) & MASK
            frames.append((spec, x, p, g1))
            x = p
        r = None
        for spec, x, p, g1 in reversed(frames):  # and back up
            if r is None:
                r = (p * 3) & MASK
            r = self._run_ops(spec.tail, x, r ^ g1, p)
        return r

    def calls(self) -> list[tuple[int, int]]:
        """The (function index, argument) calls the benchmarks check."""
        return [(self.n - 1, 11), (0, 5), (self.n - 1, 11), (self.n // 2, 1 << 62)]

    def expected(self) -> list[int]:
        globals_ = self.initial_globals()
        return [self.call(k, x, globals_) for k, x in self.calls()]


_FN = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)


def run_calls(chain: ChainModule, address_of: Callable[[str], int]) -> list[int]:
    """Call JIT'd code as :meth:`ChainModule.calls` says; ``address_of(name)``
    gives each function's address."""
    results = []
    for k, x in chain.calls():
        address = address_of(f"f{k}")
        if not address:
            raise RuntimeError(f"no address for f{k}")
        results.append(_FN(address)(x))
    return results
