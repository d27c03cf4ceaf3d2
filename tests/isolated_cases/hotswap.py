"""Hot-swap cases that stop the process on purpose (asserted by tests/test_hotswap.py)."""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm

import execution_engine

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()


def call_removed_function(policy: str) -> None:
    """Call ``doomed_fn`` through the address taken before its module was removed."""
    tm = llvm.Target.from_default_triple().create_target_machine()
    module = llvm.parse_assembly("define i64 @doomed_fn() {\n  ret i64 7\n}\n")
    engine = execution_engine.create_mcjit_compiler(module, tm, redirection=policy)
    doomed = ctypes.CFUNCTYPE(ctypes.c_int64)(engine.get_function_address("doomed_fn"))
    assert doomed() == 7
    engine.remove_module(module)
    print("calling", flush=True)
    doomed()
    print("returned", flush=True)
