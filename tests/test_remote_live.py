"""Live code in a running remote program (``remote=True``): the executor
serves the host while JIT'd code runs, so a function can be swapped, memory
read and other calls made while a call is in flight; lazy compiles are
served for several executor threads at once; crashes, timeouts and close
during a running call; ``run --watch --remote``."""

from __future__ import annotations

import ctypes.util
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import RecordingCompiler, make_tm, parse_ir

from execution_engine import (
    ExecutorCrashedError,
    ExecutorError,
    ExecutorTimeoutError,
    InProcessCompiler,
    create_mcjit_compiler,
)

LIBC = ctypes.util.find_library("c")
REPO = Path(__file__).resolve().parent.parent
LIVENESS = 60.0  # seconds to wait for something that must happen (not a timing)


@pytest.fixture
def remote():
    """``remote(ir_text, **options)``: a remote engine holding the module; closed after."""
    made = []

    def make(text: str, **options):
        engine = create_mcjit_compiler(parse_ir(text, "m0"), make_tm(), remote=True, **options)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


class Running:
    """``engine.call(name)`` on a host thread of its own."""

    def __init__(self, engine, name: str):
        self.result = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(engine, name), daemon=True)
        self.thread.start()

    def _run(self, engine, name: str) -> None:
        try:
            self.result = engine.call(name)
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            self.error = exc

    def join(self):
        self.thread.join(LIVENESS)
        assert not self.thread.is_alive(), "the call never returned"
        return self


def read_i64(engine, name: str) -> int:
    return struct.unpack("<q", engine.read_memory(engine.get_global_value_address(name), 8))[0]


def wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + LIVENESS
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.001)


def executor_running(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# A loop that calls @step until @stop is set, recording what step returned.
LOOP = r"""
@stop = global i64 0
@count = global i64 0
@last = global i64 0

define i64 @step() {
  ret i64 1
}

define void @halt() {
  store atomic i64 1, ptr @stop seq_cst, align 8
  ret void
}

define i64 @loop() {
entry:
  br label %head
head:
  %s = load atomic i64, ptr @stop seq_cst, align 8
  %done = icmp ne i64 %s, 0
  br i1 %done, label %out, label %body
body:
  %v = call i64 @step()
  store atomic i64 %v, ptr @last seq_cst, align 8
  %c = load i64, ptr @count
  %c1 = add i64 %c, 1
  store atomic i64 %c1, ptr @count seq_cst, align 8
  br label %head
out:
  %r = load i64, ptr @last
  ret i64 %r
}
"""


def step_returning(value: int) -> str:
    return f"define i64 @step() {{\n  ret i64 {value}\n}}\n"


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_running_loop_picks_up_a_function_swapped_from_another_thread(remote, lazy):
    # redirection="stub": the loop calls step through its stub (under the
    # default "direct" a loop keeps calling the step of its own copy, below)
    engine = remote(LOOP, lazy=lazy, redirection="stub")
    loop = Running(engine, "loop")
    wait_until(lambda: read_i64(engine, "count") > 0, "the loop runs")
    assert read_i64(engine, "last") == 1

    engine.update_module(parse_ir(step_returning(2)))
    # update_module returned while the call is still in flight...
    assert loop.thread.is_alive() and loop.error is None
    # ...and every iteration that starts after it returned calls the new body.
    seen = read_i64(engine, "count")
    wait_until(lambda: read_i64(engine, "count") >= seen + 2, "the loop goes on")
    assert read_i64(engine, "last") == 2

    engine.call("halt", restype=None)  # a second call while the first runs
    assert loop.join().error is None
    assert loop.result == 2


def test_under_direct_a_running_loop_keeps_its_copy_and_new_calls_reach_the_swap(remote):
    """The default policy's documented limit: ``loop`` calls ``step`` of its
    own module directly, so the call in flight keeps calling the first copy's
    ``step`` after the swap; every call that starts after update_module
    returned reaches the new body, from Python and from JIT'd code alike."""
    engine = remote(LOOP)
    loop = Running(engine, "loop")
    wait_until(lambda: read_i64(engine, "count") > 0, "the loop runs")
    engine.update_module(parse_ir(step_returning(2)))
    assert engine.call("step") == 2  # through the stub
    seen = read_i64(engine, "count")
    wait_until(lambda: read_i64(engine, "count") >= seen + 2, "the loop goes on")
    assert read_i64(engine, "last") == 1  # still the first copy's step
    engine.call("halt", restype=None)
    assert loop.join().error is None and loop.result == 1
    engine.update_module(parse_ir(
        "@stop = external global i64\n"
        "define void @resume() {\n  store atomic i64 0, ptr @stop seq_cst, align 8\n"
        "  ret void\n}\n"))
    engine.call("resume", restype=None)
    again = Running(engine, "loop")  # a new call runs the copy linked through stubs
    seen = read_i64(engine, "count")
    wait_until(lambda: read_i64(engine, "count") >= seen + 2, "the new loop runs")
    engine.call("halt", restype=None)
    assert again.join().error is None and again.result == 2


def test_recompile_and_relink_reaches_the_running_loop(remote):
    engine = remote(LOOP, redirection="stub")
    loop = Running(engine, "loop")
    wait_until(lambda: read_i64(engine, "count") > 0, "the loop runs")
    before = engine.function_info("step").body
    body = engine.recompile_and_relink_function("step", opt_level=3)
    assert body != before and engine.function_info("step").body == body
    seen = read_i64(engine, "count")
    wait_until(lambda: read_i64(engine, "count") >= seen + 2, "the loop goes on")
    engine.call("halt", restype=None)
    assert loop.join().error is None and loop.result == 1


def test_memory_is_read_while_the_call_runs(remote):
    engine = remote(LOOP)
    loop = Running(engine, "loop")
    counts = []
    wait_until(lambda: read_i64(engine, "count") > 0, "the loop runs")
    for _ in range(20):
        counts.append(read_i64(engine, "count"))
        wait_until(lambda: read_i64(engine, "count") > counts[-1], "the count grows")
    assert counts == sorted(counts) and len(set(counts)) == 20
    engine.call("halt", restype=None)
    assert loop.join().error is None


# Two calls that each wait for the other: they finish only if they run at once.
MEET = r"""
@flags = global [2 x i64] zeroinitializer

define i64 @meet(i64 %me) {
entry:
  %mine = getelementptr [2 x i64], ptr @flags, i64 0, i64 %me
  store atomic i64 1, ptr %mine seq_cst, align 8
  %other = sub i64 1, %me
  %theirs = getelementptr [2 x i64], ptr @flags, i64 0, i64 %other
  br label %wait
wait:
  %f = load atomic i64, ptr %theirs seq_cst, align 8
  %met = icmp ne i64 %f, 0
  br i1 %met, label %done, label %wait
done:
  ret i64 %me
}
"""


def test_calls_from_two_host_threads_run_at_the_same_time(remote):
    engine = remote(MEET, timeout=LIVENESS)
    results: dict[int, object] = {}

    def meet(i: int) -> None:
        try:
            results[i] = engine.call("meet", i)
        except BaseException as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=meet, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LIVENESS + 10)
    assert results == {0: 0, 1: 1}


# JIT'd code starts threads; each reaches lazily compiled functions at once.
THREADS = r"""
declare i32 @pthread_create(ptr, ptr, ptr, ptr)
declare i32 @pthread_join(i64, ptr)

@arrived = global i64 0
@results = global [4 x i64] zeroinitializer

define i64 @common(i64 %x) {
  %r = add i64 %x, 100
  ret i64 %r
}
define i64 @w0(i64 %x) {
  %a = mul i64 %x, 2
  %r = call i64 @common(i64 %a)
  ret i64 %r
}
define i64 @w1(i64 %x) {
  %a = mul i64 %x, 3
  %r = call i64 @common(i64 %a)
  ret i64 %r
}
define i64 @w2(i64 %x) {
  %a = mul i64 %x, 5
  %r = call i64 @common(i64 %a)
  ret i64 %r
}
define i64 @w3(i64 %x) {
  %a = mul i64 %x, 7
  %r = call i64 @common(i64 %a)
  ret i64 %r
}

define ptr @worker(ptr %arg) {
entry:
  %i = ptrtoint ptr %arg to i64
  atomicrmw add ptr @arrived, i64 1 seq_cst
  br label %barrier
barrier:
  %n = load atomic i64, ptr @arrived seq_cst, align 8
  %all = icmp eq i64 %n, 4
  br i1 %all, label %go, label %barrier
go:
  switch i64 %i, label %w3 [ i64 0, label %w0
                             i64 1, label %w1
                             i64 2, label %w2 ]
w0:
  %r0 = call i64 @w0(i64 10)
  br label %store
w1:
  %r1 = call i64 @w1(i64 10)
  br label %store
w2:
  %r2 = call i64 @w2(i64 10)
  br label %store
w3:
  %r3 = call i64 @w3(i64 10)
  br label %store
store:
  %r = phi i64 [ %r0, %w0 ], [ %r1, %w1 ], [ %r2, %w2 ], [ %r3, %w3 ]
  %slot = getelementptr [4 x i64], ptr @results, i64 0, i64 %i
  store i64 %r, ptr %slot
  ret ptr null
}

define i64 @spawn() {
entry:
  %ids = alloca [4 x i64]
  br label %create
create:
  %i = phi i64 [ 0, %entry ], [ %i1, %create ]
  %id = getelementptr [4 x i64], ptr %ids, i64 0, i64 %i
  %arg = inttoptr i64 %i to ptr
  call i32 @pthread_create(ptr %id, ptr null, ptr @worker, ptr %arg)
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, 4
  br i1 %more, label %create, label %join
join:
  %j = phi i64 [ 0, %create ], [ %j1, %join ]
  %jid = getelementptr [4 x i64], ptr %ids, i64 0, i64 %j
  %t = load i64, ptr %jid
  call i32 @pthread_join(i64 %t, ptr null)
  %j1 = add i64 %j, 1
  %jmore = icmp ult i64 %j1, 4
  br i1 %jmore, label %join, label %sum
sum:
  %k = phi i64 [ 0, %join ], [ %k1, %sum ]
  %acc = phi i64 [ 0, %join ], [ %acc1, %sum ]
  %rs = getelementptr [4 x i64], ptr @results, i64 0, i64 %k
  %rv = load i64, ptr %rs
  %acc1 = add i64 %acc, %rv
  %k1 = add i64 %k, 1
  %kmore = icmp ult i64 %k1, 4
  br i1 %kmore, label %sum, label %done
done:
  ret i64 %acc1
}
"""


def test_lazy_compiles_requested_by_several_executor_threads_are_served(remote):
    compiler = RecordingCompiler()
    engine = remote(THREADS, lazy=True, timeout=LIVENESS, compiler=compiler)
    engine.load_library(LIBC)
    engine.finalize_object()
    workers = {"worker", "w0", "w1", "w2", "w3", "common"}
    assert not workers & {f for fs in compiler.log for f in fs}  # nothing compiled yet
    # (20 + 100) + (30 + 100) + (50 + 100) + (70 + 100)
    assert engine.call("spawn") == 570
    assert workers <= {f for fs in compiler.log for f in fs}


# -- failures while a call runs ----------------------------------------------------

SPIN = LOOP + r"""
define void @crash() {
  store volatile i64 1, ptr null
  ret void
}
define i64 @answer() {
  ret i64 42
}
"""


def test_a_timeout_bounds_the_running_call_not_the_requests_served_meanwhile(remote):
    engine = remote(SPIN, timeout=3)
    pid = engine.executor.pid
    loop = Running(engine, "loop")
    wait_until(lambda: read_i64(engine, "count") > 0, "the loop runs")
    # Each read is a request of its own, answered while the call runs.
    reads = 0
    while loop.thread.is_alive() and reads < 5:
        read_i64(engine, "count")
        reads += 1
    assert reads == 5
    loop.join()
    assert isinstance(loop.error, ExecutorTimeoutError)
    assert loop.error.running == "loop" and "'call'" in str(loop.error)
    with pytest.raises(ExecutorError):
        engine.read_memory(engine.get_global_value_address("count"), 8)
    assert not executor_running(pid)
    engine.restart_executor()
    assert engine.call("answer") == 42


def test_a_crash_during_a_running_call_fails_both_calls(remote):
    engine = remote(SPIN)
    loop = Running(engine, "loop")
    wait_until(lambda: read_i64(engine, "count") > 0, "the loop runs")
    with pytest.raises(ExecutorCrashedError) as info:
        engine.call("crash", restype=None)
    assert info.value.signal == signal.SIGSEGV and info.value.running == "crash"
    loop.join()
    assert isinstance(loop.error, ExecutorCrashedError)
    assert loop.error.running == "loop" and "'loop'" in str(loop.error)
    engine.restart_executor()
    assert engine.call("answer") == 42


def test_closing_the_engine_during_a_call_ends_the_call(remote):
    engine = remote(SPIN)
    pid = engine.executor.pid
    loop = Running(engine, "loop")
    wait_until(lambda: read_i64(engine, "count") > 0, "the loop runs")
    engine.close()
    loop.join()
    assert isinstance(loop.error, ExecutorError) and "closed" in str(loop.error)
    assert "'loop'" in str(loop.error)
    assert not executor_running(pid)


def test_restarting_the_executor_during_a_call_ends_the_call(remote):
    engine = remote(SPIN)
    pid = engine.executor.pid
    loop = Running(engine, "loop")
    wait_until(lambda: read_i64(engine, "count") > 0, "the loop runs")
    engine.restart_executor()
    loop.join()
    assert isinstance(loop.error, ExecutorError) and "closed" in str(loop.error)
    assert not executor_running(pid) and engine.executor.pid != pid
    assert engine.call("answer") == 42 and read_i64(engine, "count") == 0


class SlowCompiler(InProcessCompiler):
    """Takes ``delay`` seconds to compile a module that defines ``slow``."""

    def __init__(self, slow: str, delay: float):
        self.slow, self.delay = slow, delay

    def compile(self, module, target_machine, *, label):
        if any(f.name.endswith(self.slow) and not f.is_declaration for f in module.functions):
            time.sleep(self.delay)
        return super().compile(module, target_machine, label=label)


def test_time_the_host_spends_compiling_for_a_call_is_not_the_calls_time(remote):
    """The executor waits 3 s for the host to compile ``callee`` lazily during
    a call bounded by 2 s: the call is not timed out, it ran for no time."""
    engine = remote("""
        define i64 @callee() {
          ret i64 5
        }
        define i64 @caller() {
          %r = call i64 @callee()
          ret i64 %r
        }
    """, lazy=True, timeout=2, compiler=SlowCompiler("callee", 3))
    assert engine.call("caller") == 5


def test_executor_leaves_when_the_host_dies_during_a_call(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys, threading, time
        sys.path.insert(0, {str(REPO / "tests")!r})
        from conftest import RecordingCompiler, make_tm, parse_ir
        from execution_engine import create_mcjit_compiler
        LOOP = {LOOP!r}
        engine = create_mcjit_compiler(parse_ir(LOOP), make_tm(), remote=True)
        engine.finalize_object()
        threading.Thread(target=engine.call, args=("loop",), daemon=True).start()
        while engine.read_memory(engine.get_global_value_address("count"), 8) == bytes(8):
            time.sleep(0.01)
        print(engine.executor.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    host = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=env)
    assert host.returncode == -signal.SIGKILL, host.stderr
    pid = int(host.stdout.split()[0])
    wait_until(lambda: not executor_running(pid), "the orphaned executor leaves")


# -- stress: swaps while the program runs --------------------------------------

STRESS_SWAPS = 1000
_MULT, _ADD = 1_000_003, 7

# The loop checks every result: it must be some version's value, never an
# older one than the last it saw; @bad counts those that are not.
STRESS = r"""
@stop = global i64 0
@count = global i64 0
@last = global i64 7
@bad = global i64 0
@changes = global i64 0

define i64 @step() {
  ret i64 7
}

define void @halt() {
  store atomic i64 1, ptr @stop seq_cst, align 8
  ret void
}

define i64 @loop() {
entry:
  br label %head
head:
  %s = load atomic i64, ptr @stop seq_cst, align 8
  %done = icmp ne i64 %s, 0
  br i1 %done, label %out, label %body
body:
  %v = call i64 @step()
  %prev = load i64, ptr @last
  %k = sub i64 %v, 7
  %rem = urem i64 %k, 1000003
  %real = icmp eq i64 %rem, 0
  %older = icmp ult i64 %v, %prev
  %unreal = xor i1 %real, true
  %wrong = or i1 %older, %unreal
  br i1 %wrong, label %bad, label %good
bad:
  %b = load i64, ptr @bad
  %b1 = add i64 %b, 1
  store atomic i64 %b1, ptr @bad seq_cst, align 8
  br label %next
good:
  %changed = icmp ne i64 %v, %prev
  %ch = load i64, ptr @changes
  %inc = zext i1 %changed to i64
  %ch1 = add i64 %ch, %inc
  store atomic i64 %ch1, ptr @changes seq_cst, align 8
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


def version_value(k: int) -> int:
    return k * _MULT + _ADD


@pytest.mark.slow
def test_a_thousand_swaps_while_the_program_runs(remote):
    engine = remote(STRESS, redirection="stub")  # the running loop reaches each swap
    loop = Running(engine, "loop")
    wait_until(lambda: read_i64(engine, "count") > 0, "the loop runs")
    for k in range(1, STRESS_SWAPS + 1):
        engine.update_module(parse_ir(step_returning(version_value(k))))
        if k % 100 == 0:  # the running loop reaches the version just installed
            wait_until(lambda k=k: read_i64(engine, "last") == version_value(k),
                       f"the loop calls version {k}")
    assert loop.thread.is_alive() and loop.error is None
    engine.call("halt", restype=None)
    assert loop.join().error is None
    assert loop.result == version_value(STRESS_SWAPS)  # the last wait saw it
    assert read_i64(engine, "bad") == 0
    assert STRESS_SWAPS // 100 <= read_i64(engine, "changes") <= STRESS_SWAPS
    stats = engine.stats()
    assert stats.swaps == STRESS_SWAPS
    # Replaced bodies were unlinked in the executor under the grace period
    # while the loop ran: what is linked is what was swapped in last second.
    assert stats.linked_resources < STRESS_SWAPS


# -- the command line --------------------------------------------------------

TICK = re.compile(r"tick (\d+): compute = (\d+)")


def test_watch_remote_swaps_an_edit_into_the_running_program(tmp_path):
    program = tmp_path / "live.ll"
    shutil.copy(REPO / "examples" / "live.ll", program)
    proc = subprocess.Popen(
        [sys.executable, "-m", "execution_engine", "run", str(program), "--watch", "--remote",
         "--", "400"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    seen: list[tuple[int, int]] = []

    def wait_for(predicate) -> tuple[int, int]:
        deadline = time.monotonic() + LIVENESS
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            m = TICK.match(line)
            if m:
                seen.append((int(m.group(1)), int(m.group(2))))
                if predicate(seen[-1]):
                    return seen[-1]
        raise AssertionError(f"expected output never came; saw {seen[-5:]}")

    try:
        wait_for(lambda t: t[0] >= 3)
        assert all(v == 2 * t for t, v in seen)
        text = program.read_text()
        program.write_text(text.replace("mul i64 %i, 2", "mul i64 %i, 1000"))
        swapped = wait_for(lambda t: t[1] == 1000 * t[0])
        program.write_text(text.replace("mul i64 %i, 2", "mul i64 %i, 5"))
        wait_for(lambda t: t[1] == 5 * t[0])
        assert proc.poll() is None  # the program was still running
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    ticks = [t for t, _ in seen]
    assert ticks == list(range(1, len(ticks) + 1))  # one program, never restarted
    assert swapped[0] < 400 and err.count("reloaded") >= 2
