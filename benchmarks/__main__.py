"""Run the benchmarks: ``python -m benchmarks [name ...]``.

Without names, every module listed in :data:`benchmarks.BENCHMARKS` that
exists is run, in order, each as ``python -m benchmarks.<name>`` would run
it (with no arguments of its own).
"""

from __future__ import annotations

import importlib.util
import runpy
import sys

from . import BENCHMARKS


def main(argv: list[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv) or BENCHMARKS
    status = 0
    for name in names:
        module = f"{__package__}.{name}"
        if importlib.util.find_spec(module) is None:
            if name not in BENCHMARKS:
                print(f"no benchmark module {module}", file=sys.stderr)
                status = 1
            continue
        print(f"\n# {module}\n", flush=True)
        saved_argv = sys.argv
        sys.argv = [module]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                print(f"{module} exited with status {exc.code}", file=sys.stderr)
                status = 1
        finally:
            sys.argv = saved_argv
            sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
