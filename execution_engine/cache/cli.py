"""``python -m execution_engine cache info|clear [--cache-dir DIR]`` and where the cache lives.

Directory precedence (:func:`resolve_cache_dir`): ``--cache-dir`` (or an
explicit ``cache_dir=``), then the environment variable :data:`ENV_VAR`,
then :func:`default_cache_dir`: ``$XDG_CACHE_HOME/execution_engine`` when
``XDG_CACHE_HOME`` is an absolute path, else ``~/.cache/execution_engine``.
Drop-in users who cannot change their calls (numba under ``install()``)
turn the cache on with :data:`ENV_VAR` alone (:func:`cache_dir_from_env`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from .stats import RUNS_KEPT, CacheStats, read_runs
from .store import clear_directory, directory_usage

ENV_VAR = "EXECUTION_ENGINE_CACHE_DIR"
_APP = "execution_engine"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user cache directory's ``execution_engine`` folder (XDG base directory rules)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG specification says to ignore relative paths
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / _APP


def cache_dir_from_env(environ: Mapping[str, str] | None = None) -> Path | None:
    """The directory :data:`ENV_VAR` names, or None when it is unset or empty."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    return Path(value).expanduser() if value else None


def resolve_cache_dir(explicit: str | os.PathLike[str] | None = None,
                      environ: Mapping[str, str] | None = None) -> Path:
    """``explicit``, else :data:`ENV_VAR`, else :func:`default_cache_dir`."""
    if explicit:
        return Path(explicit).expanduser()
    return cache_dir_from_env(environ) or default_cache_dir(environ)


def add_cache_parser(subparsers: Any) -> None:
    """Add the ``cache`` command to an ``argparse`` sub-parser collection."""
    cache = subparsers.add_parser("cache", help="show or clear the persistent object cache")
    cache.add_argument("action", choices=("info", "clear"),
                       help="info: entries, bytes and hit rate of the last runs; "
                            "clear: remove every cached object")
    cache.add_argument("--cache-dir", metavar="DIR", default=None,
                       help=f"the cache directory (default: ${ENV_VAR}, else "
                            f"$XDG_CACHE_HOME/{_APP} or ~/.cache/{_APP})")


def run_cache_command(opts: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``cache info`` or ``cache clear``; the exit status."""
    out = sys.stdout if out is None else out
    directory = resolve_cache_dir(opts.cache_dir)
    if opts.action == "info":
        out.write(info_text(directory))
        return 0
    try:
        removed = clear_directory(directory)
    except OSError as exc:
        sys.stderr.write(f"execution-engine: error: cannot clear {directory}: "
                         f"{exc.strerror or exc}\n")
        return 1
    out.write(f"cache directory: {directory}\nremoved {removed} file(s)\n")
    return 0


def info_text(directory: Path) -> str:
    """What ``cache info`` prints for ``directory`` (which it does not create)."""
    usage = directory_usage(directory)
    lines = [f"cache directory: {directory}" + ("" if directory.is_dir() else " (absent)"),
             f"entries: {usage.entries}",
             f"bytes: {usage.bytes} ({_human(usage.bytes)})"]
    runs = read_runs(directory)
    if not runs:
        lines.append("runs recorded: 0")
    else:
        total = sum((r.stats for r in runs), CacheStats())
        last = runs[-1]
        lines += [
            f"runs recorded: {len(runs)} (the last {RUNS_KEPT} are kept)",
            f"hit rate, last {len(runs)} runs: {_rate(total)}",
            f"hit rate, last run ({_when(last.time)}): {_rate(last.stats)}",
            f"last {len(runs)} runs: {total.stores} stored, {total.evictions} evicted, "
            f"{total.corrupt} corrupt",
        ]
    return "\n".join(lines) + "\n"


def _rate(stats: CacheStats) -> str:
    rate = stats.hit_rate
    shown = "n/a" if rate is None else f"{rate * 100:.1f}%"
    return f"{shown} ({stats.hits} hits, {stats.misses} misses)"


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _human(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
