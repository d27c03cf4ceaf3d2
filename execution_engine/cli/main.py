"""``python -m execution_engine run FILE [options] [ARGS]``: run an IR program like ``lli``.

``main(argc, argv, envp)`` is called with ``argv[0]`` = FILE and the program
arguments after it; the exit status is main's return value, or the status
given to ``exit()``. Static constructors run before main and destructors
after; C stdio is flushed at exit.

Program arguments (:func:`split_arguments`): as with ``lli``, the words
after FILE are the program's, except that the engine's own options may
still come right after FILE (``run FILE --remote 5 x``); the first word
that is not one of them starts the program's arguments. A ``--`` among the
engine's words ends them explicitly (``run FILE -- --remote``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import llvmlite
import llvmlite.binding as llvm

from .. import ExecutionEngineError, __version__, create_mcjit_compiler
from ..cache.cli import add_cache_parser, resolve_cache_dir, run_cache_command
from ..compile_service.pool import resolve_worker_count, start_workers
from ..errors import ProgramError
from ..executors.remote.host import ExecutorCrashedError, ExecutorExitedError
from ..native.c_runtime import c_runtime_libraries, restore_stdio_buffering
from ..options import WORKERS_ENV
from ..process_exit import leave, on_exit
from ..tiering.policy import TierUp
from .program import load_module
from .watch import Watcher

_PROG = "execution-engine"
# The command line's compile workers unless told (--compile-workers, or the
# environment), per JIT kind. mcjit: one per core (docs/benchmarks.md, "Real
# programs with compile workers": Lua, brotli and SQLite cold in 0.59-0.63x
# the in-process wall time on 2 idle cores). orc-lazy: one per core too: first
# calls compile in process while the workers compile ahead (layers/background.py;
# docs/benchmarks.md, "Lazy compilation ahead in compile workers").
DEFAULT_COMPILE_WORKERS: dict[str, int | str] = {"mcjit": "auto", "orc-lazy": "auto"}
_DESCRIPTION = ("Run an LLVM IR (.ll) or bitcode (.bc) program on a layered JIT, as lli "
                "does. See 'run --help'.")

# The run command's options: (flag, argparse keywords). The argument splitter
# reads which of them take a value from here.
_RUN_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--extra-module", dict(action="append", default=[], metavar="FILE",
                            help="another module to load (repeatable)")),
    ("--entry-function", dict(default="main", metavar="NAME",
                              help="function to call instead of main")),
    ("--jit-kind", dict(choices=("mcjit", "orc-lazy"), default="mcjit",
                        help="mcjit: compile everything first (default); orc-lazy: compile "
                             "functions on first call")),
    ("--relocation-model", dict(choices=("static", "pic", "default"), default="default")),
    ("--code-model", dict(choices=("small", "medium", "large", "default"),
                          default="default")),
    ("--opt", dict(type=int, choices=(0, 1, 2, 3), default=2,
                   help="code generation optimisation level (default 2, as lli)")),
    ("--remote", dict(action="store_true",
                      help="run the program's code in a separate process")),
    ("--stats", dict(action="store_true",
                     help="print times and what the engine did (engine.stats()) on stderr at "
                          "exit; --stats=json prints one JSON object")),
    ("--stats-json", dict(action="store_true", help=argparse.SUPPRESS)),
    ("--perf-map", dict(action="store_true",
                        help="write /tmp/perf-<pid>.map so that perf names JIT'd functions")),
    ("--compile-workers", dict(metavar="N", default=None,
                               help="compile in N worker processes ('auto': one per core; "
                                    "0: in process; default: "
                                    "$EXECUTION_ENGINE_COMPILE_WORKERS, else 'auto'; "
                                    "orc-lazy compiles ahead in them)")),
    ("--tier-up", dict(action="store_true",
                       help="compile at level 0 first, count calls and recompile hot "
                            "functions at the --opt level in the background")),
    ("--no-cache", dict(action="store_true",
                        help="compile everything (no persistent object cache)")),
    ("--cache-dir", dict(metavar="DIR", default=None,
                         help="the object cache's directory (default: "
                              "$EXECUTION_ENGINE_CACHE_DIR, else $XDG_CACHE_HOME/execution_engine "
                              "or ~/.cache/execution_engine)")),
    ("--jitdump", dict(action="store_true",
                       help="write jit-<pid>.dump (with code bytes) for 'perf inject --jit'")),
    ("--watch", dict(action="store_true",
                     help="hot-swap functions edited in FILE or an extra module while it "
                          "runs")),
]
_FLAGS = {"-h", "--help"} | {name for name, kw in _RUN_OPTIONS if kw.get("action") == "store_true"}
_VALUED = {name for name, kw in _RUN_OPTIONS if kw.get("action") != "store_true"}


def version() -> str:
    return (f"{_PROG} {__version__} (llvmlite {llvmlite.__version__}, LLVM "
            f"{'.'.join(map(str, llvm.llvm_version_info))})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="run an LLVM IR (.ll) or bitcode (.bc) program", allow_abbrev=False,
        usage=f"{_PROG} run [options] FILE [options] [ARGS...]",
        description="Call main(argc, argv, envp) of FILE, as lli does.",
        epilog="The words after FILE are the program's arguments, as with lli; the options "
               "above may still follow FILE directly, and the first word that is not one of "
               "them starts the program's arguments. '--' ends the options explicitly.")
    run.add_argument("file", help="the program (.ll or .bc)")
    for name, keywords in _RUN_OPTIONS:
        run.add_argument(name, **keywords)
    add_cache_parser(sub)
    return parser


def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(the engine's words, the program's arguments)`` of a command line
    (see the module docstring)."""
    argv = list(argv)
    if not argv or argv[0] != "run":
        return argv, []
    seen_file = False
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return argv[:i], argv[i + 1:]
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            if name in _VALUED:
                i += 1 if "=" in word else 2
                continue
            if name in _FLAGS or not seen_file:
                i += 1  # ours, or an error argparse reports
                continue
            return argv[:i], argv[i:]
        if seen_file:
            return argv[:i], argv[i:]
        seen_file = True
        i += 1
    return argv, []


def _fail(message: str, status: int = 1) -> int:
    sys.stderr.write(f"{_PROG}: error: {message}\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    words, args = split_arguments(sys.argv[1:] if argv is None else argv)
    words = ["--stats-json" if w == "--stats=json" else w for w in words]
    opts = _parser().parse_args(words)
    if opts.command == "cache":
        return run_cache_command(opts)
    if not opts.entry_function:
        return _fail("--entry-function name cannot be empty")
    if opts.tier_up and opts.opt == 0:
        return _fail("--tier-up recompiles hot functions at the --opt level: give --opt 1-3")
    try:
        return run_program(opts, args)
    except ExecutorExitedError as exc:  # the program called exit() in the executor
        return exc.status
    except ExecutorCrashedError as exc:
        _fail(str(exc))
        return 128 + (exc.signal or 0)
    except (ProgramError, ExecutionEngineError) as exc:
        return _fail(str(exc))


def compile_workers(opts: argparse.Namespace) -> int | str:
    """The workers this run compiles in: ``--compile-workers``, else the
    environment's, else :data:`DEFAULT_COMPILE_WORKERS` for the JIT kind."""
    if opts.compile_workers is not None:
        return str(opts.compile_workers)
    return (os.environ.get(WORKERS_ENV, "").strip()
            or DEFAULT_COMPILE_WORKERS[opts.jit_kind])


def run_program(opts: argparse.Namespace, args: list[str]) -> int:
    workers = compile_workers(opts)
    try:
        # Without the cache every module is compiled: the workers start now, while
        # the program is parsed. With it, on the first miss (a warm run needs none).
        count = resolve_worker_count(workers)
        if opts.no_cache:
            start_workers(count)
    except ValueError as exc:
        raise ProgramError(str(exc)) from None
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    stats: dict[str, float] = {}
    codemodel = "jitdefault" if opts.code_model == "default" else opts.code_model
    target_machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=opts.opt, reloc=opts.relocation_model, codemodel=codemodel, jit=True,
    )
    t0 = time.perf_counter()
    # A lazy engine verifies each partition before compiling it; the whole
    # program is verified here first, so that an invalid file fails at once.
    lazy = opts.jit_kind == "orc-lazy"
    modules = [load_module(path, target_machine, verify=lazy)
               for path in [opts.file, *opts.extra_module]]
    stats["parse"] = time.perf_counter() - t0
    main_module = modules[0]
    entry = main_module.get_function(opts.entry_function) if _defines(
        main_module, opts.entry_function) else None
    if entry is None and not any(_defines(m, opts.entry_function) for m in modules):
        raise ProgramError(f"'{opts.entry_function}' is not defined in {opts.file}")
    engine = create_mcjit_compiler(modules[0], target_machine,
                                   lazy=lazy, remote=opts.remote,
                                   grace_period=None if opts.watch else 1.0,
                                   # a running loop must reach edited functions, and tier-up
                                   # counts every call: calls through stubs (direct calls
                                   # stay in the old copy, uncounted)
                                   redirection="stub" if opts.watch or opts.tier_up
                                   else "direct",
                                   # reloads compare the edited file with the module as written
                                   compile_in_place=not opts.watch,
                                   cache_dir=None if opts.no_cache else os.fspath(
                                       resolve_cache_dir(opts.cache_dir)),
                                   **({"perf_map": True} if opts.perf_map else {}),
                                   compile_workers=workers,
                                   **({"jitdump": True} if opts.jitdump else {}),
                                   tier_up=TierUp(high=opts.opt) if opts.tier_up else None)
    for library in c_runtime_libraries():
        engine.load_library(library)
    for module in modules[1:]:
        engine.add_module(module)
    if opts.watch:
        paths = [opts.file, *opts.extra_module]
        watcher = Watcher(engine, dict(zip(paths, modules, strict=True)),
                          lambda path: load_module(path, target_machine))
        on_exit(watcher.halt)  # a reload may be inside LLVM when the program exits
        watcher.start()
    t0 = time.perf_counter()
    engine.finalize_object()
    engine.get_function_address(opts.entry_function)
    engine.run_static_constructors()
    stats["compile+link"] = time.perf_counter() - t0
    restore_stdio_buffering()
    sys.stdout.flush()
    t0 = time.perf_counter()
    status = engine.run_main([opts.file, *args], entry=opts.entry_function)
    stats["run"] = time.perf_counter() - t0
    if _returns_void(main_module, opts.entry_function):
        status = 0
    engine.run_static_destructors()
    if opts.stats or opts.stats_json:
        _print_stats(engine, stats, as_json=opts.stats_json)
    sys.stdout.flush()
    sys.stderr.flush()
    if opts.remote:
        engine.close()  # the executor flushes its stdio and runs atexit handlers
    # C exit() flushes C stdio and runs the program's atexit handlers while its
    # code is still mapped, after the exit hooks stopped every engine thread.
    leave(status & 0xFF)
    return status  # pragma: no cover - exit() does not return


def _print_stats(engine: Any, times: dict[str, float], *, as_json: bool) -> None:
    """Times of the run's phases and the engine's stats, on stderr."""
    report = {"seconds": {k: round(v, 6) for k, v in times.items()},
              "engine": dataclasses.asdict(engine.stats())}
    if as_json:
        sys.stderr.write(json.dumps(report) + "\n")
        return
    sys.stderr.write(f"{_PROG}: stats: " + " ".join(
        f"{k}={v * 1e3:.2f}ms" for k, v in times.items()) + "\n")
    sys.stderr.write(f"{_PROG}: engine: " + " ".join(
        f"{k}={round(v, 4) if isinstance(v, float) else v}"
        for k, v in report["engine"].items()) + "\n")


def _defines(module: llvm.ModuleRef, name: str) -> bool:
    try:
        return not module.get_function(name).is_declaration
    except NameError:
        return False


def _returns_void(module: llvm.ModuleRef, name: str) -> bool:
    try:
        fn = module.get_function(name)
    except NameError:
        return False
    return str(fn.global_value_type).startswith("void ")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
