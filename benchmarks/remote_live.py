"""Swapping a function of a running remote program (issue 11, item 7).

A JIT'd loop calls ``step()`` until told to stop, on a host thread of its
own (``engine.call("loop")``); meanwhile the main thread replaces ``step``
with ``update_module`` (a module defining only ``step``, returning a value
that names its version). Measured, with the loop running:

* **swaps/s**: ``SWAPS`` back-to-back ``update_module`` calls (wall time);
  beside the same with no call running (remote, idle) and in process (the
  loop on a thread of this process);
* **pickup latency**: from ``update_module`` returning (``time.monotonic_ns``
  here) to the loop's first call of the new body (the loop reads
  ``clock_gettime(CLOCK_MONOTONIC)`` when ``step`` returns a new value; the
  same clock, across processes). Negative: the loop ran the new body before
  ``update_module`` had returned (the slot write is applied before the
  executor's reply travels back).

Every value the loop saw is checked to be a real version's, never older
than the one before. Variants are interleaved over ``ROUNDS`` rounds;
medians are reported. Wall time: the work is split between two processes.

Run: ``python -m benchmarks.remote_live [--quick] [--no-write]``.
"""

from __future__ import annotations

import argparse
import ctypes.util
import os
import statistics
import struct
import sys
import threading
import time
from dataclasses import dataclass, field

import execution_engine

from .common import environment_line, parse, target_machine
from .report import RESULTS, markdown_table, update_section

TITLE = "Swapping a running remote program (issue 11)"
SWAPS, LATENCY_SWAPS, ROUNDS = 1000, 200, 3
QUICK = (200, 50, 1)
_MULT, _ADD = 1_000_003, 7
_LIBC = ctypes.util.find_library("c") or "libc.so.6"

LOOP = r"""
declare i32 @clock_gettime(i32, ptr)

@stop = global i64 0
@count = global i64 0
@last = global i64 7
@bad = global i64 0
@seen_at = global i64 0

define i64 @step() {
  ret i64 7
}

define void @halt() {
  store atomic i64 1, ptr @stop seq_cst, align 8
  ret void
}

define i64 @loop() {
entry:
  %ts = alloca [2 x i64]
  br label %head
head:
  %s = load atomic i64, ptr @stop seq_cst, align 8
  %done = icmp ne i64 %s, 0
  br i1 %done, label %out, label %body
body:
  %v = call i64 @step()
  %prev = load i64, ptr @last
  %same = icmp eq i64 %v, %prev
  br i1 %same, label %next, label %changed
changed:
  %k = sub i64 %v, 7
  %rem = urem i64 %k, 1000003
  %unreal = icmp ne i64 %rem, 0
  %older = icmp ult i64 %v, %prev
  %wrong = or i1 %unreal, %older
  br i1 %wrong, label %bad, label %good
bad:
  %b = load i64, ptr @bad
  %b1 = add i64 %b, 1
  store atomic i64 %b1, ptr @bad seq_cst, align 8
  br label %next
good:
  call i32 @clock_gettime(i32 1, ptr %ts)
  %sec = load i64, ptr %ts
  %nsp = getelementptr [2 x i64], ptr %ts, i64 0, i64 1
  %nsec = load i64, ptr %nsp
  %ns0 = mul i64 %sec, 1000000000
  %ns = add i64 %ns0, %nsec
  store atomic i64 %ns, ptr @seen_at seq_cst, align 8
  store atomic i64 %v, ptr @last seq_cst, align 8
  br label %next
next:
  %c = load i64, ptr @count
  %c1 = add i64 %c, 1
  store atomic i64 %c1, ptr @count seq_cst, align 8
  br label %head
out:
  %r = load i64, ptr @last
  ret i64 %r
}
"""


def _step(version: int) -> str:
    return f"define i64 @step() {{\n  ret i64 {version * _MULT + _ADD}\n}}\n"


@dataclass
class Result:
    swaps_per_s: list[float] = field(default_factory=list)
    latency_us: list[float] = field(default_factory=list)
    calls_per_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _Program:
    """A fresh engine with the loop, running on a thread (unless ``idle``)."""

    def __init__(self, remote: bool, idle: bool):
        self.engine = execution_engine.create_mcjit_compiler(parse(LOOP), target_machine(),
                                                             remote=remote)
        self.engine.load_library(_LIBC)  # clock_gettime, on the executor's first link
        self.engine.finalize_object()
        self.version = 0
        self.thread: threading.Thread | None = None
        self.result: object = None
        if not idle:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
            while self.read("count") == 0:
                time.sleep(0.001)

    def _run(self) -> None:
        try:
            self.result = self.engine.call("loop")
        except Exception as exc:  # noqa: BLE001 - reported
            self.result = exc

    def read(self, name: str) -> int:
        address = self.engine.get_global_value_address(name)
        return int(struct.unpack("<q", self.engine.read_memory(address, 8))[0])

    def swap(self) -> None:
        self.version += 1
        self.engine.update_module(parse(_step(self.version)))

    def finish(self, result: Result) -> None:
        if self.thread is not None:
            expected = self.version * _MULT + _ADD
            deadline = time.monotonic() + 30  # the last version reaches the loop first
            while self.read("last") != expected and time.monotonic() < deadline:
                time.sleep(0.001)
            self.engine.call("halt", restype=None)
            self.thread.join(60)
            if self.result != expected:
                result.errors.append(f"the loop returned {self.result!r}, not {expected}")
        if self.read("bad"):
            result.errors.append(f"{self.read('bad')} results from no real version")
        self.engine.close()


def _throughput(remote: bool, idle: bool, swaps: int, result: Result) -> None:
    program = _Program(remote, idle)
    count0 = program.read("count") if not idle else 0
    start = time.perf_counter()
    for _ in range(swaps):
        program.swap()
    elapsed = time.perf_counter() - start
    result.swaps_per_s.append(swaps / elapsed)
    if not idle:
        result.calls_per_s.append((program.read("count") - count0) / elapsed)
    program.finish(result)


def _latency(remote: bool, swaps: int, result: Result) -> None:
    program = _Program(remote, idle=False)
    for _ in range(swaps):
        program.swap()
        returned = time.monotonic_ns()
        expected = program.version * _MULT + _ADD
        deadline = time.monotonic() + 30
        while program.read("last") != expected:
            if time.monotonic() > deadline:
                result.errors.append(f"version {program.version} never reached the loop")
                program.finish(result)
                return
        result.latency_us.append((program.read("seen_at") - returned) / 1e3)
    program.finish(result)


VARIANTS = {
    "remote, loop running": (True, False),
    "remote, idle (no call running)": (True, True),
    "in process, loop running": (False, False),
    "in process, idle": (False, True),
}


def measure(swaps: int, latency_swaps: int, rounds: int,
            log=lambda message: None) -> dict[str, Result]:
    results = {name: Result() for name in VARIANTS}
    for r in range(rounds):
        for name, (remote, idle) in VARIANTS.items():
            _throughput(remote, idle, swaps, results[name])
            if not idle:
                _latency(remote, latency_swaps, results[name])
            log(f"round {r + 1}/{rounds} {name}: "
                f"{results[name].swaps_per_s[-1]:.0f} swaps/s")
    return results


def _median(values: list[float], fmt: str) -> str:
    return format(statistics.median(values), fmt) if values else "-"


def _quantile(values: list[float], q: float, fmt: str) -> str:
    if len(values) < 2:
        return "-"
    return format(statistics.quantiles(values, n=100)[int(q * 100) - 1], fmt)


def table(results: dict[str, Result]) -> str:
    rows = [[name, _median(r.swaps_per_s, ".0f"), _median(r.calls_per_s, ".3g"),
             _median(r.latency_us, ".0f"), _quantile(r.latency_us, 0.99, ".0f"),
             f"{min(r.latency_us):.0f}" if r.latency_us else "-",
             "; ".join(r.errors) or "ok"]
            for name, r in results.items()]
    return markdown_table(["variant", "swaps/s", "loop calls/s during swaps",
                           "pickup µs (median)", "p99", "min", "checks"], rows)


def section(results: dict[str, Result], swaps: int, latency_swaps: int, rounds: int,
            load: str) -> str:
    return "\n".join([
        f"{swaps} `update_module` swaps of `step` while a JIT'd loop calls it "
        f"(`benchmarks/remote_live.py`); pickup latency over {latency_swaps} swaps, each "
        "waited for; medians of "
        f"{rounds} interleaved rounds, wall time.", "",
        table(results), "",
        "Pickup latency is from `update_module` returning to the loop's first call of the "
        "new body (`CLOCK_MONOTONIC` on both sides); negative values mean the loop ran the "
        "new body before `update_module` had returned. `checks`: the loop verified that "
        "every value it got came from a real version, never an older one. The loop spins on "
        "a CPU of its own: on a loaded machine it is descheduled for milliseconds at a time, "
        "and the latency then measures the scheduler more than the engine.", "",
        f"Measured on: {environment_line()}; load average {load}.",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.remote_live",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer swaps, one round")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    swaps, latency_swaps, rounds = QUICK if args.quick else (SWAPS, LATENCY_SWAPS, ROUNDS)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    results = measure(swaps, latency_swaps, rounds, log)
    load = " → ".join(f"{a[0]:.1f}" for a in (load_before, os.getloadavg()))
    print(f"## {TITLE}\n")
    print(section(results, swaps, latency_swaps, rounds, load))
    if not args.no_write:
        update_section(RESULTS, TITLE, section(results, swaps, latency_swaps, rounds, load))
        log(f"remote_live: wrote section '{TITLE}' of {RESULTS}")
    return 1 if any(r.errors for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
