"""W^X: no memory the engine maps is ever writable and executable at once,
not even for an instant while functions are being swapped.

The check samples ``/proc/self/maps`` in a child process while another thread
swaps a function in a loop (``update_module`` and
``recompile_and_relink_function``, replaced bodies freed at once).

The libffi exception: this process is not free of writable+executable pages
to begin with. ctypes allocates its callback trampolines (``CFUNCTYPE(...)``
of a Python callable, which llvmlite does at import for its diagnostic
handlers and the engine does once for its stub resolver) from libffi's
closure pool, and the libffi build used by this Python maps that pool
``rwxp``. Those pages are not the engine's. So the test records the rwx
mappings that exist before the engine is created and asserts that (a) the
set of rwx mappings never grows beyond them, and (b) none of them contains an
address the engine hands out (stubs from ``get_function_address``, bodies
from ``recompile_and_relink_function``). The engine's closure fits in the
pool page llvmlite already created; the child creates no other callbacks.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import subprocess
import sys

import pytest

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


def perms_at(maps: list[Mapping], address: int) -> str | None:
    return next((perms for lo, hi, perms, _ in maps if lo <= address < hi), None)


def _child(policy: str) -> None:  # pragma: no cover - runs in the child
    import threading

    import llvmlite.binding as llvm

    import execution_engine

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
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
    slot = engine.function_info("f").slot
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
    body = engine.function_info("f").body
    maps = mappings()
    print(json.dumps({
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
    }))
    engine.close()


def test_detector_sees_writable_executable_mapping():
    """The sampling itself can fail: an rwx page made here is found."""
    before = rwx(mappings())
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE,
                         prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:  # pragma: no cover - a kernel that forbids W+X altogether
        pytest.skip("this kernel refuses writable+executable mappings")
    try:
        address = ctypes.addressof(ctypes.c_char.from_buffer(page))
        maps = mappings()
        assert rwx(maps) - before
        assert perms_at(maps, address).startswith("rwx")
    finally:
        page.close()


@pytest.mark.parametrize("policy", ["stub", "single"])
def test_no_writable_executable_memory_during_swaps(policy):
    proc = subprocess.run([sys.executable, __file__, policy],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"child died ({proc.returncode}):\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    assert report["errors"] == []
    assert report["samples"] >= SAMPLES and report["swaps"] >= MIN_SWAPS
    assert report["grown"] == [], "new writable+executable mappings appeared"
    assert report["inside_rwx"] == [], "engine code lies in a writable+executable mapping"
    assert set(report["final_rwx"]) <= set(report["baseline"])
    # Code the engine hands out is read+execute only; pointer slots are data.
    assert all(p is not None and p.startswith("r-x") for p in report["stub_perms"])
    assert report["body_perms"] is not None and report["body_perms"].startswith("r-x")
    assert report["slot_perms"] is not None and report["slot_perms"].startswith("rw-")


if __name__ == "__main__":
    _child(sys.argv[1])
