"""perf and GDB see JIT'd code by name: the real tools, on the command line.

Programs run with ``python -m execution_engine run``; until the engine's
own switches exist (``--perf-map``), the writers are enabled through the
temporary hook by a one-line driver (:data:`DRIVER`). Each test skips when
its tool is missing or cannot work here (perf needs to be allowed to
sample; the ``-g`` test needs clang).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # about 25 s: each test runs a program under a tool

REPO = Path(__file__).resolve().parent.parent
PYTHON = os.path.realpath(sys.executable)  # gdb needs the ELF, not a shim script

HOT_LOOP = """
@sink = global i64 0

define i64 @jit_hot_loop(i64 %n) noinline {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc1, %loop ]
  %m = mul i64 %acc, 31
  %s = ashr i64 %acc, 3
  %x = xor i64 %i, %s
  %acc1 = add i64 %m, %x
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %n
  br i1 %c, label %loop, label %done
done:
  store volatile i64 %acc1, ptr @sink
  ret i64 %acc1
}

define i64 @jit_middle(i64 %n) noinline {
  %r = call i64 @jit_hot_loop(i64 %n)
  %r1 = add i64 %r, 1
  ret i64 %r1
}

declare i64 @atol(ptr)

define i32 @main(i32 %argc, ptr %argv) {
  %p = getelementptr ptr, ptr %argv, i64 1
  %a = load ptr, ptr %p
  %n = call i64 @atol(ptr %a)
  %r = call i64 @jit_middle(i64 %n)
  ret i32 0
}
"""

HOT_LOOP_C = """\
#include <stdlib.h>

static volatile long sink;

__attribute__((noinline)) long jit_hot_loop(long n) {
    long acc = 0;
    for (long i = 0; i < n; i++)
        acc = acc * 31 + (i ^ (acc >> 3));  /* the loop body */
    sink = acc;
    return acc;
}

__attribute__((noinline)) long jit_middle(long n) {
    return jit_hot_loop(n) + 1;  /* the call */
}

int main(int argc, char **argv) {
    return (int)(jit_middle(atol(argv[1])) & 0);
}
"""


_WRITER_VARIABLES = {"perf_map": "EXECUTION_ENGINE_PERF_MAP",
                     "jitdump": "EXECUTION_ENGINE_JITDUMP", "gdb": "EXECUTION_ENGINE_JIT_EVENTS"}


def driver(*writers: str) -> list[str]:
    """The command line, with the named writers enabled (by the environment
    variables drop-in users set)."""
    code = "".join(f"os.environ[{_WRITER_VARIABLES[w]!r}] = '1'; " for w in writers)
    return [PYTHON, "-c", f"import os; {code}from execution_engine.cli import main; "
            "raise SystemExit(main())"]


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), out.get("PYTHONPATH")]))
    out.update(extra)
    return out


@pytest.fixture
def hot_loop(tmp_path: Path) -> str:
    path = tmp_path / "hot.ll"
    path.write_text(HOT_LOOP)
    return str(path)


# -- perf ----------------------------------------------------------------------

def _perf_can_record() -> str:
    """Why perf cannot sample here ('' if it can)."""
    perf = shutil.which("perf")
    if perf is None:
        return "perf is not installed"
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"ee-perf-probe-{os.getpid()}.data"
    try:
        done = subprocess.run([perf, "record", "-q", "-e", "cpu-clock", "-o", str(probe),
                               "--", "true"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"perf record failed: {exc}"
    finally:
        probe.unlink(missing_ok=True)
    if done.returncode != 0:
        return f"perf record cannot sample here: {done.stderr.strip()[:200]}"
    return ""


@pytest.fixture(scope="module")
def perf() -> str:
    why = _perf_can_record()
    if why:
        pytest.skip(why)
    return shutil.which("perf") or "perf"


def perf_report(perf: str, data: Path) -> str:
    done = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--sort", "dso,sym"],
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


ITERATIONS = "300000000"  # about half a second of the JIT'd loop


def test_perf_report_names_the_jit_function_from_the_perf_map(perf, hot_loop, tmp_path):
    data = tmp_path / "perf.data"
    run = subprocess.run(
        [perf, "record", "-q", "-e", "cpu-clock", "-F", "999", "-o", str(data), "--",
         *driver("perf_map"), "run", hot_loop, "--", ITERATIONS],
        capture_output=True, text=True, timeout=300, env=env())
    assert run.returncode == 0, run.stderr
    report = perf_report(perf, data)
    pid = re.search(r"\[JIT\] tid (\d+)", report)
    try:
        line = next((x for x in report.splitlines() if "jit_hot_loop" in x), "")
        assert "[JIT]" in line, report[:3000]
        share = float(line.split("%")[0])
        assert share > 10.0, line  # the hot loop is where the time went
    finally:
        if pid:
            Path(f"/tmp/perf-{pid.group(1)}.map").unlink(missing_ok=True)


def test_perf_inject_jit_names_the_jit_function_from_the_jitdump(perf, hot_loop, tmp_path):
    data, injected = tmp_path / "perf.data", tmp_path / "perf.jit.data"
    dumps = tmp_path / "jit"
    run = subprocess.run(
        [perf, "record", "-q", "-k", "mono", "-e", "cpu-clock", "-F", "999", "-o", str(data),
         "--", *driver("jitdump"), "run", hot_loop, "--", ITERATIONS],
        capture_output=True, text=True, timeout=300, env=env(JITDUMPDIR=str(dumps)))
    assert run.returncode == 0, run.stderr
    assert list(dumps.glob("execution_engine-*/jit-*.dump"))
    inject = subprocess.run([perf, "inject", "--jit", "-i", str(data), "-o", str(injected)],
                            capture_output=True, text=True, timeout=300)
    if inject.returncode != 0 and "jit" in inject.stderr.lower():
        pytest.skip(f"this perf cannot inject JIT code: {inject.stderr.strip()[:200]}")
    assert inject.returncode == 0, inject.stderr
    assert list(dumps.glob("execution_engine-*/jitted-*.so"))
    report = perf_report(perf, injected)
    line = next((x for x in report.splitlines() if "jit_hot_loop" in x), "")
    assert re.search(r"jitted-\d+-\d+\.so", line), report[:3000]
    assert float(line.split("%")[0]) > 10.0, line


# -- gdb -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def gdb() -> str:
    path = shutil.which("gdb")
    if path is None:
        pytest.skip("gdb is not installed")
    true = shutil.which("true") or "/bin/true"
    probe = subprocess.run([path, "-nx", "-batch", "-ex", "run", "--args", true],
                           capture_output=True, text=True, timeout=120)
    if "exited normally" not in probe.stdout + probe.stderr:  # e.g. ptrace not permitted
        pytest.skip(f"gdb cannot run a program here: {probe.stderr.strip()[:200]}")
    return path


def run_gdb(gdb: str, commands: str, argv: list[str], **extra_env: str) -> str:
    script_args = []
    for line in textwrap.dedent(commands).strip().splitlines():
        script_args += ["-ex", line]
    done = subprocess.run(
        [gdb, "-nx", "-batch", "-iex", "set debuginfod enabled off",
         "-iex", "set auto-load no", "-ex", "set pagination off",
         "-ex", "set breakpoint pending on", *script_args, "--args", *argv],
        capture_output=True, text=True, timeout=300, env=env(**extra_env))
    return done.stdout + done.stderr


def frames(output: str) -> list[str]:
    """The function names of the backtrace's frames, in order."""
    return re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?([\w.]+) \(", output, re.M)


def test_gdb_breaks_on_a_jit_function_by_name_and_bt_names_its_frames(gdb, hot_loop):
    out = run_gdb(gdb, """
        break jit_hot_loop
        run
        bt
        kill
    """, [*driver("gdb"), "run", hot_loop, "--", "1000"])
    assert re.search(r"Breakpoint 1, .*jit_hot_loop", out), out[-3000:]
    assert frames(out)[:3] == ["jit_hot_loop", "jit_middle", "main"], out[-3000:]


@pytest.fixture
def debug_program(tmp_path: Path) -> Path:
    clang = shutil.which("clang-14") or shutil.which("clang")
    if clang is None:
        pytest.skip("clang-14 is not installed")
    source = tmp_path / "hot.c"
    source.write_text(HOT_LOOP_C)
    out = tmp_path / "hot.ll"
    subprocess.run([clang, "-g", "-O1", "-S", "-emit-llvm", str(source), "-o", str(out)],
                   check=True, capture_output=True, timeout=120)
    return out


@pytest.mark.parametrize("registration", ["linker only", "with names"])
def test_gdb_shows_source_lines_of_a_debug_build(gdb, debug_program, registration):
    command = ([PYTHON, "-m", "execution_engine"] if registration == "linker only"
               else driver("gdb"))
    out = run_gdb(gdb, """
        break jit_hot_loop
        run
        bt
        up
        info source
        kill
    """, [*command, "run", str(debug_program), "--", "1000"])
    assert re.search(r"Breakpoint 1, jit_hot_loop \(n=1000\) at .*hot\.c:\d+", out), out[-3000:]
    assert re.search(r"#1 .* in jit_middle \(n=\S+\) at .*hot\.c:14", out), out[-3000:]
    assert "/* the call */" in out, out[-3000:]  # `up` prints the caller's source line
    assert frames(out)[:3] == ["jit_hot_loop", "jit_middle", "main"], out[-3000:]


REMOVE_SCRIPT = """
import os
import llvmlite.binding as llvm
import execution_engine as ee
llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
tm = llvm.Target.from_default_triple().create_target_machine(jit=True)

def module(name, fn):
    m = llvm.parse_assembly(f"define i64 @{fn}(i64 %x) {{\\n %y = add i64 %x, 1\\n ret i64 %y\\n}}")
    m.name, m.triple, m.data_layout = name, tm.triple, str(tm.target_data)
    return m

engine = ee.create_mcjit_compiler(module("base", "base_fn"), tm)
if os.environ.get("EE_GDB_NAMES"):
    engine.enable_jit_events()
removable = module("removable", "removable_fn")
engine.add_module(removable)
engine.finalize_object()
assert engine.call("removable_fn", 41) == 42
os.getsid(0)  # checkpoint: linked
engine.remove_module(removable)
os.getsid(0)  # checkpoint: removed
"""


@pytest.mark.parametrize("names", [False, True], ids=["linker only", "with names"])
def test_gdb_forgets_code_when_its_module_is_removed(gdb, tmp_path, names):
    script = tmp_path / "remove.py"
    script.write_text(REMOVE_SCRIPT)
    commands = """
        break getsid
        run
        echo ==linked==\\n
        maint info jit
        info functions removable_fn
        continue
        echo ==removed==\\n
        maint info jit
        info functions removable_fn
        kill
    """
    extra = {"EE_GDB_NAMES": "1"} if names else {}
    out = run_gdb(gdb, commands, [PYTHON, str(script)], **extra)
    assert "==removed==" in out, out[-3000:]
    linked, removed = out.split("==linked==", 1)[1].split("==removed==", 1)
    entries = [len(re.findall(r"^0x[0-9a-f]+\s+0x[0-9a-f]+\s+\d+\s*$", part, re.M))
               for part in (linked, removed)]
    # the linker's entry for the module goes, and with names the registrar's too
    assert entries[1] == entries[0] - (2 if names else 1), out[-3000:]
    symbols = [sorted(re.findall(r"^0x[0-9a-f]+\s+(removable_fn\S*)\s*$", part, re.M))
               for part in (linked, removed)]
    assert symbols[0] == (["removable_fn", "removable_fn..body2"] if names
                          else ["removable_fn..body2"]), linked[-2000:]
    assert symbols[1] == [], removed[-2000:]
