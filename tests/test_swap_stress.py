"""Bounded stress test: JIT'd code runs on 4 threads while the function it runs
is swapped 2,000 times and unrelated modules come and go.

Each case runs in a child process (``isolated_cases/swap_stress.py``) so that a
crash fails the test instead of killing pytest. Worker threads call the function
through ctypes, which releases the GIL for the call, so the JIT'd code runs
concurrently with the swaps. Two workers call the function's stub (the
address Python got before any swap), two call a caller that lives in the
function's original module.

Workers pace themselves (a short sleep every few dozen calls): the machine may
have only two cores, and four spinning workers would starve the swapping thread.
"""

from __future__ import annotations

import isolated
import pytest
from isolated_cases import swap_stress as cases

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["grace", "quiescent"])
@pytest.mark.parametrize("policy", ["direct", "stub", "single"])
def test_calls_during_swaps(policy, mode):
    report = isolated.run(cases.calls_during_swaps, policy, mode, timeout=300).value
    print(f"{policy}/{mode}: swaps took {report['swap_seconds']} s, calls {report['calls']}, "
          f"{report['sessions']} sessions")

    assert report["errors"] == []
    assert min(report["calls"]) >= 1000  # every worker really ran during the swaps
    seen, allowed = set(report["seen"]), set(report["allowed"])
    assert len(allowed) == cases.SWAPS // 2 + 1
    assert seen <= allowed, sorted(seen - allowed)[:10]
    assert len(seen) >= 50  # the workers saw the function change under them many times
    assert min(report["calls_after"]) >= 200
    assert report["after"] == [report["newest"]]  # after the last swap: the newest version
    assert report["direct"] == [report["newest"]] * 2
    # 2,101 links at 256 per linker session: 9 sessions if none were ever disposed.
    assert report["sessions"] <= 6
    if mode == "quiescent":
        # Nothing is freed between pauses; each pause frees every body replaced since
        # the last (the base module is add_module'd: never retired).
        assert report["reclaimed"] == report["retired_at_pause"]
        assert len(report["reclaimed"]) == cases.SWAPS // cases.PAUSE_EVERY
        assert sum(report["reclaimed"]) == cases.SWAPS - 1
        assert report["retired_at_end"] == 0
    else:
        assert report["retired_at_end"] >= 1  # replaced within the last second: kept
