"""The W^X case (asserted by tests/test_wx.py): sample this process's
mappings while another thread swaps a function in a loop. In a process of its
own, so that the only writable+executable pages present are the ones the
baseline records (see the test's docstring)."""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import llvmlite.binding as llvm

import execution_engine

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()

SAMPLES = 200
MIN_SWAPS = 200
Mapping = tuple[int, int, str, str]  # start, end, permissions, the whole line


def mappings() -> list[Mapping]:
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            out.append((lo, hi, fields[1], line.strip()))
    return out


def rwx(maps: list[Mapping]) -> set[str]:
    return {line for _, _, perms, line in maps if "w" in perms and "x" in perms}


def perms_at(maps: list[Mapping], address: int | None) -> str | None:
    if address is None:
        return None
    return next((perms for lo, hi, perms, _ in maps if lo <= address < hi), None)


def swap_while_sampling(policy: str) -> dict[str, Any]:
    """Swap ``f`` (``redirection=policy``) in one thread while sampling the
    mappings in this one; what was seen."""
    tm = llvm.Target.from_default_triple().create_target_machine(opt=2)

    def module(text: str, name: str) -> llvm.ModuleRef:
        m = llvm.parse_assembly(text)
        m.name, m.triple, m.data_layout = name, tm.triple, str(tm.target_data)
        return m

    def version(v: int) -> str:
        return f"define i64 @f() {{\n  ret i64 {v}\n}}\n"

    baseline = rwx(mappings())  # before the engine exists
    engine = execution_engine.create_mcjit_compiler(
        module(version(0) + "define i64 @g() {\n  %r = call i64 @f()\n  ret i64 %r\n}\n",
               "base"), tm, redirection=policy, grace_period=0)
    stubs = [engine.get_function_address("f"), engine.get_function_address("g")]
    info = engine.function_info("f")
    slot = info.slot if info is not None else None
    handed_out = list(stubs)
    f = ctypes.CFUNCTYPE(ctypes.c_int64)(stubs[0])
    g = ctypes.CFUNCTYPE(ctypes.c_int64)(stubs[1])
    stop = threading.Event()
    swaps = [0]
    errors: list[str] = []

    def swapper() -> None:
        v = 0
        try:
            while not stop.is_set():
                v += 1
                if v % 2:
                    engine.update_module(module(version(v), f"v{v}"))
                    expected = v
                else:
                    handed_out.append(engine.recompile_and_relink_function("f"))
                    expected = v - 1
                handed_out.append(engine.get_function_address("f"))
                assert f() == expected and g() == expected, (f(), g(), expected)
                swaps[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            errors.append(repr(exc))

    thread = threading.Thread(target=swapper)
    thread.start()
    grown: set[str] = set()
    inside_rwx: list[str] = []
    samples = 0
    while (samples < SAMPLES or swaps[0] < MIN_SWAPS) and thread.is_alive() and samples < 50_000:
        addresses = list(handed_out)
        maps = mappings()
        samples += 1
        grown |= rwx(maps) - baseline
        for lo, hi, perms, line in maps:
            if "w" in perms and "x" in perms:
                inside_rwx.extend(f"{a:#x} in {line}" for a in addresses if lo <= a < hi)
    stop.set()
    thread.join()
    info = engine.function_info("f")
    body = info.body if info is not None else None
    maps = mappings()
    report = {
        "baseline": sorted(baseline),
        "grown": sorted(grown),
        "inside_rwx": inside_rwx[:20],
        "samples": samples,
        "swaps": swaps[0],
        "errors": errors,
        "stub_perms": [perms_at(maps, a) for a in stubs],
        "body_perms": perms_at(maps, body),
        "slot_perms": perms_at(maps, slot),
        "final_rwx": sorted(rwx(maps)),
    }
    engine.close()
    return report
