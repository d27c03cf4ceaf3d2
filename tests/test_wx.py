"""W^X: no memory the engine maps is ever writable and executable at once,
not even for an instant while functions are being swapped.

The check (``isolated_cases/wx.py``) samples ``/proc/self/maps`` in a child
process while another thread swaps a function in a loop (``update_module``
and ``recompile_and_relink_function``, replaced bodies freed at once).

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
import mmap

import isolated
import pytest
from isolated_cases import wx as cases
from isolated_cases.wx import mappings, perms_at, rwx


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


@pytest.mark.parametrize("policy", ["direct", "stub", "single"])
def test_no_writable_executable_memory_during_swaps(policy):
    report = isolated.run(cases.swap_while_sampling, policy, timeout=300).value

    assert report["errors"] == []
    assert report["samples"] >= cases.SAMPLES and report["swaps"] >= cases.MIN_SWAPS
    assert report["grown"] == [], "new writable+executable mappings appeared"
    assert report["inside_rwx"] == [], "engine code lies in a writable+executable mapping"
    assert set(report["final_rwx"]) <= set(report["baseline"])
    # Code the engine hands out is read+execute only; pointer slots are data.
    assert all(p is not None and p.startswith("r-x") for p in report["stub_perms"])
    assert report["body_perms"] is not None and report["body_perms"].startswith("r-x")
    assert report["slot_perms"] is not None and report["slot_perms"].startswith("rw-")
