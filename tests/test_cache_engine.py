"""The persistent object cache, wired into engines (cache_dir=, the
environment, the command line): warm runs compile nothing they compiled before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import llvmlite.binding as llvm
from conftest import parse_ir

from execution_engine import create_mcjit_compiler

REPO = Path(__file__).resolve().parents[1]
PROGRAM = """
define i64 @f(i64 %x) {
  %y = mul i64 %x, 3
  ret i64 %y
}
define i64 @g(i64 %x) {
  %y = call i64 @f(i64 %x)
  %z = add i64 %y, 1
  ret i64 %z
}
"""


def new_tm() -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine(jit=True)


def test_a_second_engine_links_the_cached_object(tmp_path):
    cold = create_mcjit_compiler(parse_ir(PROGRAM, "p"), new_tm(), cache_dir=str(tmp_path))
    assert cold.call("g", 4) == 13
    assert (cold.stats().cache_misses, cold.stats().cache_hits) == (1, 0)
    warm = create_mcjit_compiler(parse_ir(PROGRAM, "p"), new_tm(), cache_dir=str(tmp_path))
    assert warm.call("g", 5) == 16
    stats = warm.stats()
    assert (stats.cache_hits, stats.cache_misses, stats.compiles) == (1, 0, 0)
    cold.close()
    warm.close()


def test_different_code_never_shares_an_entry(tmp_path):
    first = create_mcjit_compiler(parse_ir(PROGRAM, "p"), new_tm(), cache_dir=str(tmp_path))
    assert first.call("g", 1) == 4
    other = create_mcjit_compiler(parse_ir(PROGRAM.replace("mul i64 %x, 3", "mul i64 %x, 5"),
                                           "p"), new_tm(), cache_dir=str(tmp_path))
    assert other.call("g", 1) == 6 and other.stats().cache_hits == 0
    o3 = llvm.Target.from_default_triple().create_target_machine(jit=True, opt=3)
    at_o3 = create_mcjit_compiler(parse_ir(PROGRAM, "p"), o3, cache_dir=str(tmp_path))
    assert at_o3.call("g", 1) == 4 and at_o3.stats().cache_hits == 0  # another opt level
    for engine in (first, other, at_o3):
        engine.close()


def test_the_users_getbuffer_hook_wins(tmp_path):
    warmup = create_mcjit_compiler(parse_ir(PROGRAM, "p"), new_tm(), cache_dir=str(tmp_path))
    warmup.finalize_object()
    warmup.close()
    asked: list[str] = []
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "p"), new_tm(), cache_dir=str(tmp_path))
    compiled = new_tm().emit_object(parse_ir(PROGRAM, "p"))
    engine.set_object_cache(getbuffer_func=lambda m: asked.append(m.name) or compiled)
    assert engine.call("g", 2) == 7
    assert asked == ["p"] and engine.stats().cache_hits == 0  # never reached the store
    engine.close()


SCRIPT = """
import json, sys
import llvmlite.binding as llvm
{before}
import execution_engine
llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
tm = {tm}
m = llvm.parse_assembly('''{program}''')
m.name = "p"
engine = execution_engine.create_mcjit_compiler(m, tm, lazy={lazy})
result = engine.call("g", 6)
s = engine.stats()
print(json.dumps({{"result": result, "hits": s.cache_hits, "misses": s.cache_misses,
                  "compiles": s.compiles}}))
"""


def run_script(tmp_path: Path, *, lazy: bool = False, tm_before_import: bool = False) -> dict:
    tm = "llvm.Target.from_default_triple().create_target_machine(jit=True)"
    before = ""
    if tm_before_import:
        before, tm = ("llvm.initialize_native_target(); llvm.initialize_native_asmprinter(); "
                      f"early = {tm}"), "early"
    code = SCRIPT.format(before=before, tm=tm, program=PROGRAM, lazy=lazy)
    env = dict(os.environ, EXECUTION_ENGINE_CACHE_DIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_the_environment_turns_the_cache_on_and_a_warm_lazy_run_compiles_nothing(tmp_path):
    for lazy in (False, True):
        cold = run_script(tmp_path, lazy=lazy)
        warm = run_script(tmp_path, lazy=lazy)
        assert cold["result"] == warm["result"] == 19
        assert cold["misses"] > 0 and cold["hits"] == 0
        assert warm["hits"] == cold["misses"] and warm["misses"] == 0 and warm["compiles"] == 0


def test_a_target_machine_made_before_the_import_is_not_cached(tmp_path):
    # Its creation arguments are unknown, so no key could name them: no caching.
    for _ in range(2):
        run = run_script(tmp_path, tm_before_import=True)
        assert run["result"] == 19 and run["hits"] == run["misses"] == 0


def test_the_command_line_caches_by_default(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    env.pop("EXECUTION_ENGINE_CACHE_DIR", None)
    command = [sys.executable, "-m", "execution_engine", "run", str(REPO / "examples/hello.ll"),
               "--stats=json"]
    runs = []
    for extra in ([], [], ["--no-cache"]):
        proc = subprocess.run([*command, *extra], capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=120)
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stderr.strip().splitlines()[-1])["engine"])
    assert runs[0]["cache_misses"] > 0
    assert runs[1]["cache_hits"] == runs[0]["cache_misses"] and runs[1]["compiles"] == 0
    assert runs[2]["cache_hits"] == runs[2]["cache_misses"] == 0
    assert (tmp_path / "execution_engine").is_dir()
