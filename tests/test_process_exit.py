"""Leaving through C exit() with the engine's threads stopped first
(``execution_engine.process_exit``): from the command line's end and from
JIT'd code that calls ``exit()`` itself."""

from __future__ import annotations

import isolated
import pytest
from isolated_cases import process_exit as cases


@pytest.mark.parametrize("options", [{}, {"lazy": True}, {"lazy": True, "compile_workers": 1}],
                         ids=["eager", "lazy", "lazy+workers"])
def test_jit_code_calling_exit_stops_engine_threads_before_llvm_is_torn_down(options):
    # Without the hook LLVM's global context is destroyed under the parsing
    # thread (SIGSEGV), and the hook's line never appears.
    for _ in range(3):
        outcome = isolated.run(cases.exit_while_a_thread_is_inside_llvm, 7, options)
        assert outcome.returncode == 7, outcome.describe()
        # the hook runs first, then the program's own atexit handler
        assert outcome.stdout.splitlines() == ["hook ran", "program atexit"], outcome.describe()


def test_leave_runs_every_hook_latest_first_services_last_and_flushes_python_stdio():
    # A service hook (a compile pool's close) registered before a thread's
    # stop still runs after it: a promotion in flight finds its pool open.
    outcome = isolated.run(cases.leave_runs_hooks_in_reverse, 300)
    assert outcome.returncode == 300 & 0xFF, outcome.describe()
    assert outcome.stderr.splitlines() == ["registered second", "registered first", "service"]
    assert outcome.stdout == "buffered"
