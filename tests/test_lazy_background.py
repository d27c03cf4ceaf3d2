"""Background compilation for lazy engines (issue 13 item 4): a lazy engine with
compile workers compiles ahead while JIT'd code runs; exactly one body per
function; removal, update and failure while a partition is in flight."""

from __future__ import annotations

import ctypes
import threading
from concurrent.futures import Future

import llvmlite.binding as llvm
import pytest
from conftest import cfunc, make_tm, parse_ir

from execution_engine import create_mcjit_compiler
from execution_engine.errors import CompileError
from execution_engine.layers.background import BackgroundCompiler
from execution_engine.policies import BACKGROUND, OFF, BackgroundPolicy, background_policy
from execution_engine.target_spec import spec_of

I64 = ctypes.c_int64
N = 40


def module_text(n: int = N, offset: int = 0) -> str:
    """``f0..f{n-1}`` (f_i(x) = x * (i + 2) + i + offset, f_i calls f_{i+1} when
    x < 0) and ``main`` calling each once and summing."""
    lines = []
    for i in range(n):
        nxt = f"call i64 @f{i + 1}(i64 %x)" if i + 1 < n else "add i64 %x, 0"
        lines.append(f"""define i64 @f{i}(i64 %x) {{
entry:
  %neg = icmp slt i64 %x, 0
  br i1 %neg, label %down, label %here
down:
  %d = {nxt}
  ret i64 %d
here:
  %a = mul i64 %x, {i + 2}
  %b = add i64 %a, {i + offset}
  ret i64 %b
}}""")
    body = ["define i64 @main(i64 %x) {", "entry:", "  %s0 = add i64 0, 0"]
    for i in range(n):
        body += [f"  %c{i} = call i64 @f{i}(i64 %x)", f"  %s{i + 1} = add i64 %s{i}, %c{i}"]
    body += [f"  ret i64 %s{n}", "}"]
    return "\n".join(lines + body) + "\n"


def expected_main(x: int, n: int = N, offset: int = 0) -> int:
    return sum(x * (i + 2) + i + offset for i in range(n))


def lazy_engine(text: str | None = None, **options):
    return create_mcjit_compiler(parse_ir(text or module_text()), make_tm(), lazy=True,
                                 compile_workers=1, **options)


def background_of(engine) -> BackgroundCompiler:
    background = engine._stack.top.background  # noqa: SLF001 - the component under test
    assert background is not None
    return background


# -- the policy ---------------------------------------------------------------


def test_policy_values_and_errors():
    assert background_policy(True) is BACKGROUND and background_policy(False) is OFF
    assert background_policy("off") is OFF and background_policy("workers") is BACKGROUND
    custom = BackgroundPolicy("mine", enabled=True, first_batch=2, batch_functions=8)
    assert background_policy(custom) is custom
    assert custom.batch_limit(0)[0] == 2 and custom.batch_limit(1)[0] == 4
    assert custom.batch_limit(10)[0] == 8  # grows to the cap
    assert BACKGROUND.batches_in_flight(2) == 3
    with pytest.raises(ValueError, match="background"):
        background_policy("sometimes")
    with pytest.raises(ValueError, match="batch_functions"):
        BackgroundPolicy("bad", enabled=True, batch_functions=0)


def test_no_background_without_workers_or_when_off(tm):
    engine = create_mcjit_compiler(parse_ir(module_text()), tm, lazy=True, compile_workers=0)
    assert engine._stack.top.background is None  # noqa: SLF001
    engine.close()
    engine = lazy_engine(background=False)
    assert engine._stack.top.background is None  # noqa: SLF001
    assert cfunc(engine.get_function_address("main"), I64, I64)(3) == expected_main(3)
    engine.close()


# -- with the real workers ----------------------------------------------------


def test_compiles_ahead_and_every_result_is_right():
    engine = lazy_engine()
    try:
        f0 = cfunc(engine.get_function_address("f0"), I64, I64)
        assert f0(5) == 10
        assert background_of(engine).idle(120)
        stats = engine.stats()
        assert stats.background_functions > 0 and stats.background_failures == 0
        main = cfunc(engine.get_function_address("main"), I64, I64)
        assert main(7) == expected_main(7)
        for i in range(N):
            # negative: the chain of calls down to the last function, which returns x
            assert cfunc(engine.get_function_address(f"f{i}"), I64, I64)(-1) == -1
        # exactly one body per function: what the background linked plus what
        # first calls compiled (one function each) is every function, once
        stats = engine.stats()
        linked = stats.background_batches - stats.background_discarded
        foreground = stats.compiles - linked
        assert stats.background_functions + foreground == N + 1
    finally:
        engine.close()


def test_concurrent_first_calls_while_compiling_ahead():
    engine = lazy_engine(module_text(120))
    try:
        results: dict[int, int] = {}
        errors: list[BaseException] = []

        def call(i: int) -> None:
            try:
                results[i] = cfunc(engine.get_function_address(f"f{i}"), I64, I64)(3)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        cfunc(engine.get_function_address("f0"), I64, I64)(1)  # starts the background
        threads = [threading.Thread(target=call, args=(i,)) for i in range(0, 120, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert results == {i: 3 * (i + 2) + i for i in range(0, 120, 3)}
        assert background_of(engine).idle(120)
        main = cfunc(engine.get_function_address("main"), I64, I64)
        assert main(2) == expected_main(2, 120)
        stats = engine.stats()
        linked = stats.background_batches - stats.background_discarded
        assert stats.background_functions + (stats.compiles - linked) == 121
    finally:
        engine.close()


# -- races, with partitions held in flight ---------------------------------------


class HeldPool:
    """A stand-in for the compile pool: every partition waits until released,
    then compiles in this process (or fails)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Future[bytes]]] = []
        self.sent = threading.Condition()
        self.released: bool | None = None  # once released: later requests finish at once

    def submit(self, text: str, spec, label: str, **options) -> Future[bytes]:
        future: Future[bytes] = Future()
        with self.sent:
            self.requests.append((text, future))
            self.sent.notify_all()
            if self.released is not None:
                self._finish(text, future, fail=not self.released)
        return future

    def wait_sent(self, count: int = 1) -> None:
        with self.sent:
            assert self.sent.wait_for(lambda: len(self.requests) >= count, timeout=60)

    def release(self, fail: bool = False) -> None:
        with self.sent:
            self.released = not fail
            for text, future in self.requests:
                if not future.done():
                    self._finish(text, future, fail)

    @staticmethod
    def _finish(text: str, future: Future[bytes], fail: bool) -> None:
        if fail:
            future.set_exception(CompileError("a held partition", "LLVM ERROR: held", status=-6))
        else:
            future.set_result(bytes(make_tm().emit_object(llvm.parse_assembly(text))))


def held_engine(text: str | None = None):
    """A lazy engine whose background sends its partitions to a HeldPool."""
    engine = lazy_engine(text)
    pool = HeldPool()
    layer = engine._stack.top  # noqa: SLF001
    layer.background.close()
    policy = BackgroundPolicy("held", enabled=True, first_batch=64)
    layer.set_background(BackgroundCompiler(policy, lambda: pool, spec_of(engine._target_machine),  # noqa: SLF001
                                            1, engine._locked))  # noqa: SLF001
    return engine, pool


def test_first_call_of_a_function_in_flight_waits_for_its_partition():
    engine, pool = held_engine()
    try:
        assert cfunc(engine.get_function_address("f0"), I64, I64)(1) == 2
        pool.wait_sent()
        out: list[int] = []
        caller = threading.Thread(target=lambda: out.append(
            cfunc(engine.get_function_address("f5"), I64, I64)(1)))
        caller.start()
        caller.join(0.2)  # it waits for the held partition (no timing is asserted)
        pool.release()
        caller.join(60)
        assert out == [1 * 7 + 5]
        stats = engine.stats()
        assert stats.background_waits >= 1 and stats.background_functions >= 1
    finally:
        pool.release()
        engine.close()


def test_update_while_in_flight_discards_the_stale_partition():
    engine, pool = held_engine()
    try:
        assert cfunc(engine.get_function_address("f0"), I64, I64)(1) == 2
        pool.wait_sent()
        engine.update_module(parse_ir(module_text(offset=1000), "new"))
        pool.release()
        assert background_of(engine).idle(60)
        assert engine.stats().background_discarded >= 1
        main = cfunc(engine.get_function_address("main"), I64, I64)
        assert main(2) == expected_main(2, offset=1000)  # the update's bodies, not the held
    finally:
        pool.release()
        engine.close()


def test_removal_while_in_flight_is_safe():
    engine, pool = held_engine(module_text(1))
    try:
        extra = parse_ir(module_text(N, offset=7).replace("@f", "@g").replace("@main", "@gmain"),
                         "extra")
        engine.add_module(extra)
        assert cfunc(engine.get_function_address("g0"), I64, I64)(1) == 9
        pool.wait_sent()
        engine.remove_module(extra)
        pool.release()
        assert background_of(engine).idle(60)
        assert engine.stats().background_discarded >= 1
        assert engine.get_function_address("g3") == 0
        assert cfunc(engine.get_function_address("main"), I64, I64)(1) == expected_main(1, 1)
    finally:
        pool.release()
        engine.close()


def test_failed_partition_compiles_on_first_call_in_a_worker():
    engine, pool = held_engine()
    try:
        assert cfunc(engine.get_function_address("f0"), I64, I64)(1) == 2
        pool.wait_sent()
        pool.release(fail=True)
        assert background_of(engine).idle(60)
        assert engine.stats().background_failures >= 1
        assert cfunc(engine.get_function_address("main"), I64, I64)(4) == expected_main(4)
    finally:
        engine.close()


def test_close_while_in_flight():
    engine, pool = held_engine()
    assert cfunc(engine.get_function_address("f0"), I64, I64)(1) == 2
    pool.wait_sent()
    engine.close()
    pool.release()  # arrives after the engine is gone: nothing happens
    assert engine.closed
