"""Cache counters and the small history file of recent runs.

:class:`CacheStats` is a snapshot of one store's counters. The history
(``stats.json`` in the cache directory) keeps the counters of the last
:data:`RUNS_KEPT` runs (one record per :meth:`ObjectStore.flush_stats` that
saw activity) so that ``python -m execution_engine cache info`` can report
the hit rate of the last runs.

Several processes append to the history at once: each append takes an
exclusive ``flock`` on ``stats.lock``, reads the history, adds its record,
trims it and replaces the file (temporary file + ``os.replace``), so a reader
never sees a partial file and no record is lost to a race.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

STATS_FILE = "stats.json"
LOCK_FILE = "stats.lock"
RUNS_KEPT = 20


@dataclass(frozen=True)
class CacheStats:
    """Counters of one store (or the sum over several runs)."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    evictions: int = 0
    corrupt: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        """Hits per lookup, or None before the first lookup."""
        return self.hits / self.lookups if self.lookups else None

    def __add__(self, other: CacheStats) -> CacheStats:
        return CacheStats(self.hits + other.hits, self.misses + other.misses,
                          self.stores + other.stores, self.evictions + other.evictions,
                          self.corrupt + other.corrupt)

    def __sub__(self, other: CacheStats) -> CacheStats:
        return CacheStats(self.hits - other.hits, self.misses - other.misses,
                          self.stores - other.stores, self.evictions - other.evictions,
                          self.corrupt - other.corrupt)

    def __bool__(self) -> bool:
        return any(asdict(self).values())


@dataclass(frozen=True)
class RunRecord:
    """The counters one process recorded, and when (seconds since the epoch)."""

    time: float
    pid: int
    stats: CacheStats


def _parse(data: object) -> list[RunRecord]:
    runs: list[RunRecord] = []
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        return runs
    names = list(CacheStats.__dataclass_fields__)
    for item in data["runs"]:
        try:
            counts = {name: int(item[name]) for name in names}
            runs.append(RunRecord(float(item["time"]), int(item["pid"]), CacheStats(**counts)))
        except (KeyError, TypeError, ValueError):
            continue  # a record this version does not understand
    return runs


def read_runs(directory: Path) -> list[RunRecord]:
    """The recorded runs, oldest first; ``[]`` when there are none or the file is unreadable."""
    try:
        with open(directory / STATS_FILE, encoding="utf-8") as f:
            return _parse(json.load(f))
    except (OSError, ValueError):
        return []


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def append_run(directory: Path, stats: CacheStats) -> None:
    """Add one run's counters to the history, keeping the last :data:`RUNS_KEPT`.

    Raises ``OSError`` when the directory cannot be written (the store turns
    that into its one warning)."""
    record = {"time": time.time(), "pid": os.getpid(), **asdict(stats)}
    with _locked(directory):
        runs = [{"time": r.time, "pid": r.pid, **asdict(r.stats)} for r in read_runs(directory)]
        runs = [*runs, record][-RUNS_KEPT:]
        fd, tmp = tempfile.mkstemp(prefix=".tmp-stats-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"runs": runs}, f)
            os.replace(tmp, directory / STATS_FILE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def remove_history(directory: Path) -> int:
    """Delete the history and its lock file; the number of files removed."""
    removed = 0
    for name in (STATS_FILE, LOCK_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / name)
            removed += 1
    return removed
