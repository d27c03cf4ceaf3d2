"""How a batch of modules is spread over the compile workers.

Pure arithmetic on estimates, so that it can be tested alone:

* a module's cost is estimated by the size of its bitcode (which the host
  writes anyway, to send it): code generation time per bitcode byte varies
  less than 2x across the modules of Lua, brotli and SQLite (3.4-9 ms per KB
  at O2), where function counts vary 100x;
* a module with at least :data:`SPLIT_MIN_FUNCTIONS` defined functions, and
  a large enough share of the batch's functions (:func:`cut_candidates`), may
  be cut into partitions (:func:`~.partition.split`), for which it is
  printed; when every module of a batch may be cut, costs are estimated
  from the texts instead (:data:`TEXT_PER_BITCODE`: no bitcode is written
  for a module that is cut). :func:`partition_counts` cuts only where it
  shortens the batch's estimated wall time - the time the busiest worker
  needs when pieces are handed out largest first - counting what a cut
  costs (workers parse text instead of bitcode, every partition declares
  what the others define and pays code generation's fixed cost);
* :func:`largest_first` is the order in which pieces go to the pool's one
  queue: each free worker takes the largest piece left (the LPT rule).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

# Modules with fewer defined functions are never cut. Measured with
# `python -m benchmarks.parallel_eager --threshold` (generated modules of about
# 40 instructions per function, opt 2, 2 workers, one finalization through the
# engine, wall time, medians): cut / whole in one worker was 1.27 at N = 8,
# 1.06 at 16, 1.18 at 32, 0.78 at 64, 0.63 at 128 and 0.71 at 256 with the
# other sessions' load at 0.6; with one core busy elsewhere (load 1.5) cutting
# did not pay up to N = 96 (1.06-1.16). A cut costs ~3 ms (print, split, text
# parsing) before any parallelism.
SPLIT_MIN_FUNCTIONS = 64
# A cut module's pieces cost this much more in all (text instead of bitcode,
# every partition declares what the others define), and each piece this many
# bytes-equivalent of fixed cost (one emit_object, ~0.85 ms at O2).
SPLIT_OVERHEAD = 0.1
PIECE_COST = 1_000
# A module is a candidate for cutting only if it holds at least this share of
# the batch's functions per worker (Lua's 33 modules: none; SQLite's library:
# yes); the others are not printed.
CANDIDATE_SHARE = 0.5
# Printed IR is about this many times its bitcode's size (Lua 6.7, SQLite 7.3,
# brotli's encoder 8.1; generated modules 1.6-2.9): only for the absolute
# threshold of a batch whose every module may be cut.
TEXT_PER_BITCODE = 7.0


def cut_candidates(functions: Sequence[int], workers: int,
                   splittable: Sequence[bool]) -> list[bool]:
    """Which modules may be cut: splittable, at least :data:`SPLIT_MIN_FUNCTIONS`
    functions, and at least ``CANDIDATE_SHARE / workers`` of the batch's."""
    total = sum(functions)
    return [workers > 1 and ok and n >= SPLIT_MIN_FUNCTIONS
            and n * workers >= CANDIDATE_SHARE * total
            for n, ok in zip(functions, splittable, strict=True)]


def partition_counts(costs: Sequence[float], functions: Sequence[int], workers: int, *,
                     splittable: Sequence[bool] | None = None) -> list[int]:
    """How many partitions to cut each module into (1: whole). ``costs``: the
    modules' estimated costs (bitcode bytes); ``functions``: their defined
    functions; ``splittable[i]`` False: module i stays whole."""
    counts = [1] * len(costs)
    if workers < 2:
        return counts
    allowed = [
        (splittable is None or splittable[i]) and functions[i] >= SPLIT_MIN_FUNCTIONS
        for i in range(len(costs))]
    best = makespan(_pieces(costs, counts), workers)
    while True:
        # cut further the module whose pieces are largest, if that helps
        candidates = [i for i in range(len(costs)) if allowed[i]
                      and counts[i] < min(2 * workers, functions[i])]
        if not candidates:
            return counts
        i = max(candidates, key=lambda j: piece_cost(costs[j], counts[j]))
        trial = counts.copy()
        trial[i] += 1
        span = makespan(_pieces(costs, trial), workers)
        if span >= best:
            return counts
        counts, best = trial, span


def piece_cost(cost: float, count: int) -> float:
    """The estimated cost of one of ``count`` pieces of a module of ``cost``."""
    if count == 1:
        return cost + PIECE_COST
    return cost * (1 + SPLIT_OVERHEAD) / count + PIECE_COST


def makespan(pieces: Sequence[float], workers: int) -> float:
    """The busiest worker's load when ``pieces`` go out largest first."""
    loads = [0.0] * max(1, workers)
    for cost in sorted(pieces, reverse=True):
        heapq.heapreplace(loads, loads[0] + cost)
    return max(loads)


def largest_first(pieces: Sequence[float]) -> list[int]:
    """Indices of ``pieces``, largest first (ties: in order)."""
    return sorted(range(len(pieces)), key=lambda i: (-pieces[i], i))


def _pieces(costs: Sequence[float], counts: Sequence[int]) -> list[float]:
    return [piece_cost(c, k) for c, k in zip(costs, counts, strict=True) for _ in range(k)]
