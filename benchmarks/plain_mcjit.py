"""Run a C program's bitcode on stock llvmlite MCJIT, as a plain llvmlite program would.

The reference for the engine's command line (``python -m execution_engine
run``): the same target machine (host CPU and features, ``--opt``, JIT
code model), the same bitcode loading and C runtime libraries, then
llvmlite's own ``create_mcjit_compiler`` + ``add_module`` +
``finalize_object`` + ``run_static_constructors``, ``main(argc, argv,
envp)`` through ctypes, and C ``exit()`` with its status (which runs the
program's atexit handlers and flushes C stdio).

Run: ``python -m benchmarks.plain_mcjit MAIN.bc [--extra-module M.bc ...]
[--opt N] -- ARGS...``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys


def main(argv: list[str] | None = None) -> int:
    import llvmlite.binding as llvm

    from execution_engine.cli.program import load_module
    from execution_engine.native.c_runtime import c_runtime_libraries, restore_stdio_buffering

    parser = argparse.ArgumentParser(prog="python -m benchmarks.plain_mcjit")
    parser.add_argument("file")
    parser.add_argument("--extra-module", action="append", default=[])
    parser.add_argument("--opt", type=int, default=2)
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    opts = parser.parse_args(argv[:split])
    opts.args = argv[split + 1:]
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    tm = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
        opt=opts.opt, codemodel="jitdefault", jit=True)
    modules = [load_module(p, tm) for p in [opts.file, *opts.extra_module]]
    for library in c_runtime_libraries():
        llvm.load_library_permanently(library)
    ee = llvm.create_mcjit_compiler(modules[0], tm)
    for module in modules[1:]:
        ee.add_module(module)
    ee.finalize_object()
    ee.run_static_constructors()
    restore_stdio_buffering()
    sys.stdout.flush()
    args = [opts.file, *opts.args]
    env = [f"{k}={v}" for k, v in os.environ.items()]
    c_argv = (ctypes.c_char_p * (len(args) + 1))(*[a.encode() for a in args], None)
    c_env = (ctypes.c_char_p * (len(env) + 1))(*[e.encode() for e in env], None)
    entry = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(
        ee.get_function_address("main"))
    status = entry(len(args), c_argv, c_env)
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.CDLL(None).exit(ctypes.c_int(status & 0xFF))
    return status  # pragma: no cover - exit() does not return


if __name__ == "__main__":
    sys.exit(main())
