"""Long-run memory growth (issue 12, items 5 and 6), each case in a fresh
interpreter. The bounds are generous (the benchmark, benchmarks.memory,
measures the real figures: about 0.3-0.4 KB per cycle); they catch the leaks
the issue found: llvmlite's standard pipeline leaked about 66 KB per
recompile at an optimisation level, and every name ever seen kept 1.8 KB.
Windows are whole multiples of 256 links: the linker's sessions rotate
every 256 links and RSS saw-tooths by about 1-2 MB with them."""

from __future__ import annotations

import isolated
from isolated_cases import memory as cases


def test_recompiling_at_an_opt_level_does_not_leak_a_pipeline_per_call():
    outcome = isolated.run(cases.recompile_growth, 2, 512, 1024)
    assert outcome.returned, outcome.stderr
    assert outcome.result < 10  # KB per call; llvmlite's standard pipeline: ~66


def test_a_new_name_per_cycle_keeps_little_per_name():
    outcome = isolated.run(cases.new_name_growth, 512, 2560)
    assert outcome.returned, outcome.stderr
    assert outcome.result < 1.5  # KB per cycle
