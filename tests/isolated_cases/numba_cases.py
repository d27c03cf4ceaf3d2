"""Cases run with numba on this engine (a fresh interpreter: the engine must be
installed before numba is imported). The tests skip when numba is absent."""

from __future__ import annotations

import gc
from typing import Any


def dead_libraries_leave_the_engine(cycles: int) -> dict[str, Any]:
    import execution_engine
    execution_engine.install()
    from execution_engine import numba_integration
    numba_integration.enable()
    import numba
    from numba.core.registry import cpu_target

    pair: dict[str, Any] = {"njit": numba.njit}
    exec("@njit\ndef callee(x):\n    return x * 3\n\n"
         "@njit\ndef caller(x):\n    return callee(x) + 1\n", pair)
    caller = pair["caller"]
    assert caller(2) == 7
    engine = cpu_target.target_context.codegen()._engine._ee
    tracker = numba_integration.tracker(engine)
    held_before = len(engine._modules)
    for i in range(cycles):
        namespace: dict[str, Any] = {}
        exec(f"def f(x):\n    return x + {i}\n", namespace)
        f = numba.njit(namespace["f"])
        assert f(1) == 1 + i
        del f, namespace
        gc.collect()
    del pair["callee"]  # the name only: caller's library links callee's in
    gc.collect()
    numba_integration.collect()
    return {"removed": tracker.removed, "held_before": held_before,
            "held_after": len(engine._modules), "caller": caller(5),
            "retired_left": tracker.retired()}
