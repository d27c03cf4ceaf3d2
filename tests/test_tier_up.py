"""Tier-up: compile low, count calls, recompile hot functions high (issue 13).

The engine's tier-up thread polls every ``interval``; tests wait for what it
does with :func:`until` (a deadline, never a fixed sleep that could pass by
luck)."""

from __future__ import annotations

import ctypes
import gc
import subprocess
import sys
import threading
import time

import pytest
from conftest import cfunc, make_tm, parse_ir

from execution_engine import (
    CompileError,
    EngineOptions,
    ExecutionEngineError,
    InProcessCompiler,
    TierUp,
    create_mcjit_compiler,
)
from execution_engine.native.counters import CountingTrampolines
from execution_engine.policies import STUB
from execution_engine.target_spec import spec_of

HOT = """
define i64 @hot(i64 %x) {
  %y = mul i64 %x, 3
  %z = add i64 %y, 1
  ret i64 %z
}
define i64 @loop(i64 %n) {
entry:
  %empty = icmp sle i64 %n, 0
  br i1 %empty, label %done, label %l
l:
  %i = phi i64 [0, %entry], [%i2, %l]
  %acc = phi i64 [0, %entry], [%acc2, %l]
  %v = call i64 @hot(i64 %i)
  %acc2 = add i64 %acc, %v
  %i2 = add i64 %i, 1
  %c = icmp slt i64 %i2, %n
  br i1 %c, label %l, label %done
done:
  %r = phi i64 [0, %entry], [%acc2, %l]
  ret i64 %r
}
"""
HOT_V2 = """
define i64 @hot(i64 %x) {
  %y = mul i64 %x, 5
  ret i64 %y
}
"""
FAST = dict(threshold=100, interval=0.002)


def expected(n: int, mul: int = 3, add: int = 1) -> int:
    return sum(mul * i + add for i in range(n))


def until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return condition()


def engine_with(text: str = HOT, **options):
    return create_mcjit_compiler(parse_ir(text, "m"), make_tm(), **options)


class LevelRecorder(InProcessCompiler):
    """Records the code generation level of every compile; a compile at
    ``block_level`` waits until ``release`` is set (a promotion in flight)."""

    def __init__(self, block_level: int | None = None):
        self.levels: list[int] = []
        self.block_level = block_level
        self.blocked = threading.Event()
        self.release = threading.Event()

    def compile(self, module, target_machine, *, label):
        level = spec_of(target_machine).opt_level
        self.levels.append(level)
        if level == self.block_level:
            self.blocked.set()
            assert self.release.wait(20)
        return super().compile(module, target_machine, label=label)


# -- options ---------------------------------------------------------------------


def test_tier_up_true_is_the_default_policy_and_chooses_stubs():
    options = EngineOptions.from_keywords(tier_up=True)
    assert options.tier_up == TierUp()
    assert options.redirection is STUB
    assert EngineOptions.from_keywords(tier_up=False).tier_up is None
    assert EngineOptions(tier_up=TierUp(threshold=5), redirection=STUB).tier_up.threshold == 5
    with pytest.raises(ValueError, match="redirection=.direct."):
        EngineOptions(tier_up=TierUp())  # the default policy binds calls inside an object


@pytest.mark.parametrize("keywords, error, words", [
    (dict(threshold=0), ValueError, "threshold"),
    (dict(threshold=2.5), TypeError, "threshold"),
    (dict(threshold=True), TypeError, "threshold"),
    (dict(low=2, high=2), ValueError, "below high"),
    (dict(low=3, high=1), ValueError, "below high"),
    (dict(high=4), ValueError, "high must be 0, 1, 2 or 3"),
    (dict(low=-1), ValueError, "low must be"),
    (dict(low="0"), TypeError, "low"),
    (dict(interval=0), ValueError, "interval"),
    (dict(interval=float("nan")), ValueError, "interval"),
    (dict(interval=float("inf")), ValueError, "interval"),
    (dict(interval="1"), TypeError, "interval"),
])
def test_bad_policies_are_refused_naming_the_knob(keywords, error, words):
    with pytest.raises(error, match=words):
        TierUp(**keywords)


@pytest.mark.parametrize("keywords, error, words", [
    (dict(tier_up=1), TypeError, "tier_up must be"),
    (dict(tier_up="yes"), TypeError, "tier_up must be"),
    (dict(tier_up=True, redirection="none"), ValueError, "redirection='none'"),
    (dict(tier_up=True, remote=True), ValueError, "in-process executor"),
])
def test_bad_tier_up_options_are_refused(keywords, error, words):
    with pytest.raises(error, match=words):
        EngineOptions.from_keywords(**keywords)
    with pytest.raises(error, match=words):
        engine_with(**keywords)


# -- the trampolines ---------------------------------------------------------------


def test_counting_trampoline_counts_and_continues_at_its_target():
    libc = ctypes.CDLL(None)
    labs = ctypes.cast(libc.labs, ctypes.c_void_p).value
    trampolines = CountingTrampolines()
    try:
        indices = [trampolines.allocate() for _ in range(513)]  # two chunks
        last = indices[-1]
        trampolines.set_target(last, labs)
        call = cfunc(trampolines.address(last), ctypes.c_long, ctypes.c_long)
        assert [call(-i) for i in range(7)] == list(range(7))
        assert trampolines.count(last) == 7 and trampolines.count(indices[0]) == 0
        assert trampolines.at_least(7) == [last] and trampolines.at_least(8) == []
        trampolines.reset(last)
        assert trampolines.count(last) == 0
    finally:
        trampolines.close()


# -- promotion ---------------------------------------------------------------------


def test_low_tier_first_then_promotion_after_the_threshold():
    recorder = LevelRecorder()
    engine = engine_with(tier_up=TierUp(threshold=1000, interval=0.002), compiler=recorder)
    try:
        loop = cfunc(engine.get_function_address("loop"), ctypes.c_int64, ctypes.c_int64)
        assert recorder.levels == [0]  # the module, at the low level
        assert loop(999) == expected(999)
        info = engine.function_info("hot")
        assert (info.tier, info.calls) == (0, 999)
        time.sleep(0.1)  # many polls: below the threshold nothing happens
        assert engine.function_info("hot").tier == 0
        assert engine.stats().tier_up_promotions == 0
        low_body = engine.function_info("hot").body
        assert loop(1) == expected(1)  # the 1000th call
        assert until(lambda: engine.function_info("hot").tier == 2)
        info = engine.function_info("hot")
        assert info.body != low_body and info.calls == 1000
        assert recorder.levels == [0, 2]
        assert loop(5000) == expected(5000)
        assert engine.function_info("hot").calls == 1000  # promoted code is not counted
        assert engine.function_info("loop").tier == 0  # called twice: stays low
        stats = engine.stats()
        assert (stats.tier_up_promotions, stats.tier_up_pending, stats.tier_up_failures) == (
            1, 0, 0)
        assert stats.tier_up_counted == 1  # loop, still counted
        assert stats.recompiled_bodies == 1
    finally:
        engine.close()


PAIR = """
define i64 @h1(i64 %x) {
  %y = mul i64 %x, 3
  ret i64 %y
}
define i64 @h2(i64 %x) {
  %y = add i64 %x, 7
  ret i64 %y
}
define i64 @both(i64 %n) {
entry:
  br label %l
l:
  %i = phi i64 [0, %entry], [%i2, %l]
  %acc = phi i64 [0, %entry], [%acc2, %l]
  %a = call i64 @h1(i64 %i)
  %b = call i64 @h2(i64 %i)
  %s = add i64 %a, %b
  %acc2 = add i64 %acc, %s
  %i2 = add i64 %i, 1
  %c = icmp slt i64 %i2, %n
  br i1 %c, label %l, label %done
done:
  ret i64 %acc2
}
"""
H1_V2 = "define i64 @h1(i64 %x) {\n  %y = mul i64 %x, 5\n  ret i64 %y\n}"


def both(n: int, mul: int = 3) -> int:
    return sum(mul * i + i + 7 for i in range(n))


class FailingFor(LevelRecorder):
    """A compiler whose high-level compiles of a partition defining ``name``
    raise ``error`` (default: the engine's CompileError)."""

    def __init__(self, name: str, error: type[Exception] | None = None):
        super().__init__()
        self.name = name
        self.error = error
        self.labels: list[str] = []

    def compile(self, module, target_machine, *, label):
        if spec_of(target_machine).opt_level == 2:
            self.labels.append(label)
            if any(fn.name == self.name and not fn.is_declaration for fn in module.functions):
                if self.error is not None:
                    raise self.error(f"refused by the test: {label}")
                raise CompileError(label, "", detail="refused by the test")
        return super().compile(module, target_machine, label=label)


def test_functions_hot_together_are_promoted_in_one_object():
    recorder = LevelRecorder()
    # The polls are rarer than the whole loop, so both cross the threshold
    # between two polls and are found hot in the same one.
    engine = engine_with(PAIR, compiler=recorder, tier_up=TierUp(threshold=100, interval=0.05))
    try:
        assert engine.call("both", 300) == both(300)
        assert until(lambda: engine.stats().tier_up_promotions == 2)
        assert recorder.levels == [0, 2]  # one compile for the two
        first, second = engine.function_info("h1"), engine.function_info("h2")
        assert (first.tier, second.tier) == (2, 2)
        assert 0 < abs(second.body - first.body) < 4096  # side by side, one object
        assert engine.call("both", 1000) == both(1000)
        assert engine.stats().recompiled_bodies == 1
    finally:
        engine.close()


def test_a_group_with_a_function_swapped_meanwhile_is_dropped_and_promoted_again():
    recorder = LevelRecorder(block_level=2)
    engine = engine_with(PAIR, compiler=recorder, tier_up=TierUp(threshold=100, interval=0.05))
    try:
        assert engine.call("both", 300) == both(300)
        assert recorder.blocked.wait(10)
        engine.update_module(parse_ir(H1_V2, "v2"))
        recorder.release.set()
        # Both are still hot (h1's count carries over to its new body): each is
        # promoted again from its current module.
        assert until(lambda: engine.stats().tier_up_promotions == 2)
        assert engine.stats().tier_up_discarded == 2
        assert (engine.function_info("h1").tier, engine.function_info("h2").tier) == (2, 2)
        assert engine.call("both", 50) == both(50, 5)
    finally:
        recorder.release.set()
        engine.close()


@pytest.mark.parametrize("error", [None, RuntimeError], ids=["CompileError", "RuntimeError"])
def test_a_group_that_fails_to_compile_is_promoted_function_by_function(error):
    """Whatever the compiler raises (a user's may raise anything), the
    promotion fails, the thread carries on and the rest is promoted."""
    compiler = FailingFor("h1", error)
    engine = engine_with(PAIR, compiler=compiler, tier_up=TierUp(threshold=100, interval=0.05))
    try:
        assert engine.call("both", 300) == both(300)
        assert until(lambda: engine.function_info("h2").tier == 2)
        assert until(lambda: engine.stats().tier_up_failures == 1)
        assert len(compiler.labels) == 3  # the pair, then each alone
        assert compiler.labels[0].startswith("functions ") and "'h1'" in compiler.labels[0] and (
            "'h2'" in compiler.labels[0])
        assert all(label.startswith("function '") for label in compiler.labels[1:])
        info = engine.function_info("h1")
        assert info.tier == 0 and not engine.stats().tier_up_pending
        assert engine.call("both", 500) == both(500)
        time.sleep(0.2)  # several polls: h1 gave up, it is not tried again
        assert len(compiler.labels) == 3
    finally:
        engine.close()


def test_without_tier_up_the_fields_are_empty():
    engine = engine_with()
    try:
        engine.get_function_address("hot")
        info = engine.function_info("hot")
        assert (info.tier, info.calls) == (None, None)
        assert engine.stats().tier_up_promotions == 0
    finally:
        engine.close()


def test_update_of_a_promoted_function_starts_low_again():
    engine = engine_with(tier_up=TierUp(**FAST))
    try:
        assert engine.call("loop", 200) == expected(200)
        assert until(lambda: engine.function_info("hot").tier == 2)
        engine.update_module(parse_ir(HOT_V2, "v2"))
        assert engine.function_info("hot").tier == 0
        assert engine.call("loop", 10) == expected(10, 5, 0)
        assert engine.call("loop", 200) == expected(200, 5, 0)
        assert until(lambda: engine.function_info("hot").tier == 2)
        assert engine.call("loop", 300) == expected(300, 5, 0)
        assert engine.stats().tier_up_promotions == 2
    finally:
        engine.close()


def test_a_body_recompiled_at_the_high_level_is_not_counted():
    engine = engine_with(tier_up=TierUp(**FAST))
    try:
        engine.recompile_and_relink_function("hot", opt_level=3)
        assert engine.function_info("hot").tier == 3
        assert engine.call("loop", 500) == expected(500)
        time.sleep(0.05)
        assert engine.stats().tier_up_promotions == 0
        assert engine.function_info("hot").tier == 3
    finally:
        engine.close()


def test_functions_without_ir_stop_being_counted():
    from conftest import compile_ir

    engine = engine_with("define i64 @unused() {\n ret i64 0\n}", tier_up=TierUp(**FAST))
    try:
        engine.add_object_file(compile_ir("define i64 @obj(i64 %x) {\n  ret i64 %x\n}"))
        obj = cfunc(engine.get_function_address("obj"), ctypes.c_int64, ctypes.c_int64)
        assert sum(obj(i) for i in range(200)) == sum(range(200))
        assert engine.stats().tier_up_counted == 2  # obj and unused
        assert until(lambda: engine.stats().tier_up_counted == 1)  # obj given up
        stats = engine.stats()
        assert (stats.tier_up_promotions, stats.tier_up_failures) == (0, 0)
        assert obj(41) == 41
    finally:
        engine.close()


def test_lazy_engines_tier_up_too():
    recorder = LevelRecorder()
    engine = engine_with(tier_up=TierUp(**FAST), lazy=True, compiler=recorder)
    try:
        assert engine.call("loop", 300) == expected(300)
        assert until(lambda: engine.function_info("hot").tier == 2)
        assert engine.call("loop", 300) == expected(300)
        assert recorder.levels[:2] == [0, 0] and recorder.levels[-1] == 2
    finally:
        engine.close()


def test_single_policy_counts_slot_calls():
    engine = engine_with(tier_up=TierUp(**FAST), redirection="single")
    try:
        assert engine.call("loop", 300) == expected(300)
        assert until(lambda: engine.function_info("hot").tier == 2)
        assert engine.call("loop", 300) == expected(300)
    finally:
        engine.close()


# -- races -------------------------------------------------------------------------


def test_promotion_under_concurrent_calls_from_threads():
    engine = engine_with(tier_up=TierUp(threshold=10_000, interval=0.002))
    loop = cfunc(engine.get_function_address("loop"), ctypes.c_int64, ctypes.c_int64)
    errors: list[str] = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():  # ctypes releases the GIL: threads run JIT'd code at once
            result = loop(2000)
            if result != expected(2000):
                errors.append(f"loop(2000) = {result}")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        assert until(lambda: engine.function_info("hot").tier == 2)
        time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    try:
        assert errors == []
        assert engine.stats().tier_up_promotions == 1  # exactly one body won
        assert loop(100) == expected(100)
    finally:
        engine.close()


def test_removal_stops_the_counters():
    engine = engine_with("define i64 @keep() {\n ret i64 7\n}",
                         tier_up=TierUp(threshold=1000, interval=0.002))
    try:
        module = parse_ir(HOT, "hot")
        engine.add_module(module)
        assert engine.call("loop", 900) == expected(900)
        assert engine.stats().tier_up_counted == 3  # keep, hot, loop
        engine.remove_module(module)
        assert engine.stats().tier_up_counted == 1
        assert engine.function_info("hot").body is None
        time.sleep(0.05)
        assert engine.stats().tier_up_promotions == 0
        assert engine.call("keep") == 7
    finally:
        engine.close()


def test_a_promotion_in_flight_when_its_module_is_removed_is_dropped():
    recorder = LevelRecorder(block_level=2)
    engine = engine_with("define i64 @keep() {\n ret i64 7\n}", compiler=recorder,
                         tier_up=TierUp(**FAST))
    try:
        module = parse_ir(HOT, "hot")
        engine.add_module(module)
        assert engine.call("loop", 200) == expected(200)
        assert recorder.blocked.wait(10)  # compiling off the lock: the API still answers
        assert engine.stats().tier_up_pending == 1
        engine.remove_module(module)
        recorder.release.set()
        assert until(lambda: engine.stats().tier_up_pending == 0)
        stats = engine.stats()
        assert (stats.tier_up_promotions, stats.tier_up_discarded) == (0, 1)
        assert engine.get_function_address("hot") == 0
        assert engine.call("keep") == 7
    finally:
        recorder.release.set()
        engine.close()


def test_a_swap_during_a_promotion_wins_over_it():
    recorder = LevelRecorder(block_level=2)
    engine = engine_with(compiler=recorder, tier_up=TierUp(**FAST))
    try:
        assert engine.call("loop", 200) == expected(200)
        assert recorder.blocked.wait(10)
        engine.update_module(parse_ir(HOT_V2, "v2"))
        recorder.release.set()
        assert until(lambda: engine.stats().tier_up_pending == 0)
        assert engine.stats().tier_up_discarded == 1
        assert engine.call("loop", 10) == expected(10, 5, 0)
    finally:
        recorder.release.set()
        engine.close()


def test_close_during_a_promotion_and_a_dropped_engine_end_their_threads():
    def tier_threads():
        return [t for t in threading.enumerate() if t.name == "execution_engine-tier-up"]

    gc.collect()
    before = set(tier_threads())
    recorder = LevelRecorder(block_level=2)
    engine = engine_with(compiler=recorder, tier_up=TierUp(**FAST))
    assert engine.call("loop", 200) == expected(200)
    assert recorder.blocked.wait(10)
    engine.close()
    recorder.release.set()
    dropped = engine_with(tier_up=TierUp(**FAST))
    assert dropped.call("loop", 10) == expected(10)
    del dropped
    gc.collect()
    assert until(lambda: not set(tier_threads()) - before)


# -- workers and the command line ------------------------------------------------


def test_promotion_in_a_compile_worker():
    from execution_engine.compile_service.pool import shared_pool

    recorder = LevelRecorder()
    engine = engine_with(tier_up=TierUp(**FAST), compile_workers=1, compiler=recorder)
    try:
        before = {w.pid: w.requests for w in shared_pool(1).stats()}
        assert engine.call("loop", 300) == expected(300)
        assert until(lambda: engine.function_info("hot").tier == 2, timeout=30)
        assert engine.call("loop", 300) == expected(300)
        assert 2 not in recorder.levels  # not compiled in process
        # a worker an earlier test crashed may have been replaced meanwhile
        assert any(w.requests > before.get(w.pid, 0) for w in shared_pool(1).stats())
    finally:
        engine.close()


def test_command_line_tier_up(tmp_path):
    program = tmp_path / "hot.ll"
    program.write_text(HOT + """
define i32 @main(i32 %argc, i8** %argv) {
  %r = call i64 @loop(i64 3000000)
  %ok = icmp eq i64 %r, """ + str(expected(3_000_000)) + """
  %s = select i1 %ok, i32 0, i32 1
  ret i32 %s
}
""")
    import json

    proc = subprocess.run([sys.executable, "-m", "execution_engine", "run", "--tier-up",
                           "--no-cache", "--stats=json", str(program)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["engine"]["tier_up_counted"] + report["engine"]["tier_up_promotions"] >= 1
    bad = subprocess.run([sys.executable, "-m", "execution_engine", "run", "--tier-up",
                          "--opt", "0", str(program)], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "--tier-up" in bad.stderr


def test_engine_errors_are_not_raised_by_the_thread():
    """A promotion that fails to compile leaves the function at the low tier."""

    class FailingHigh(InProcessCompiler):
        def compile(self, module, target_machine, *, label):
            if spec_of(target_machine).opt_level == 2:
                raise ExecutionEngineError(f"no high tier for {label}")
            return super().compile(module, target_machine, label=label)

    engine = engine_with(tier_up=TierUp(**FAST), compiler=FailingHigh())
    try:
        assert engine.call("loop", 300) == expected(300)
        assert until(lambda: engine.stats().tier_up_failures == 1)
        assert engine.function_info("hot").tier == 0
        assert engine.call("loop", 300) == expected(300)
        time.sleep(0.05)
        assert engine.stats().tier_up_failures == 1  # not retried
    finally:
        engine.close()
