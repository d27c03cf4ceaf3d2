"""Benchmarks of execution_engine against llvmlite's own JITs.

Run one with ``python -m benchmarks.<name>``, or every module listed in
:data:`BENCHMARKS` (those present) with ``python -m benchmarks``. Results go
to stdout and to their own section of ``docs/benchmarks.md``
(:func:`benchmarks.report.update_section`).
"""

# Modules run by ``python -m benchmarks``, in order; missing ones are skipped.
BENCHMARKS = ["eager", "swap", "calls", "memory", "lazy", "remote", "remote_live",
              "real_programs"]
