"""ObjectStore: object bytes on disk, named by key, verified on every read.

Layout: ``<directory>/v<ENTRY_VERSION>/<key[:2]>/<key>`` holds one entry;
``<directory>/stats.json`` (and its lock file ``stats.lock``) the history of
recent runs (:mod:`.stats`).
Nothing else in the directory is touched, not even by :meth:`clear`.

An entry (:mod:`.entry`) is a header (magic, format version, key, payload
length, BLAKE2b-256 of the payload) and the payload. A read checks all of it
every time: magic, version, that the key is the one asked for, that the
file holds exactly the stated length, and the digest. An entry that
fails any check (truncated, bit-flipped, foreign, zero-length, extended) is
counted as corrupt, removed and reported as a miss.

Concurrency (threads and processes): an entry is written to a temporary
file in its own directory and renamed over its name (``os.replace``), so a
reader sees the whole old entry, the whole new one or none; readers read
from the file they opened, so an entry evicted or replaced meanwhile still
reads whole (POSIX keeps an unlinked file's data while it is open). Two
writers of one key both write complete entries; the last rename wins.
Counters and the size estimate are guarded by the store's lock; file I/O
runs outside it. Entries are created with mode 0600 (the cache is the
user's own). No fsync: an entry cut short by a power failure fails its
checks and is recompiled.

Size bound (least recently used): a hit sets the entry's mtime to now. The
store counts what it writes; when that passes an eighth of ``max_bytes``, or
the last scanned total plus it passes ``max_bytes``, it scans the directory
and removes the entries of oldest mtime until the total is at most 90 % of
``max_bytes``, skipping any entry whose mtime changed since the scan (it was
just used or rewritten). Best effort: between scans each writing process may
add up to an eighth of the bound.

Failure: the cache is an optimisation, so no method but :meth:`clear` raises
``OSError``. A write that fails (read-only file system, no permission, disk
full, quota, anything) turns writing off; a read that fails other than by a
missing file turns reading off; the first of these issues one
:class:`CacheUnavailableWarning` per store, the others are silent. A
read-only cache keeps serving the entries it has.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path

from ..errors import CacheUnavailableWarning
from . import stats as history
from .entry import ENTRY_VERSION, HEADER_SIZE, encode_header, read_entry
from .keys import is_key
from .stats import CacheStats

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_TEMP_PREFIX = ".tmp-"
_STALE_TEMP_SECONDS = 3600.0
_LOW_WATER = 0.9
_SCAN_FRACTION = 8


@dataclass(frozen=True)
class Usage:
    """What a directory scan found: entries and their bytes on disk (headers included)."""

    entries: int
    bytes: int


class _Counters:
    """The counters of one store, apart from it so a finalizer can flush them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits = self.misses = self.stores = self.evictions = self.corrupt = 0
        self.flushed = CacheStats()

    def snapshot(self) -> CacheStats:
        with self.lock:
            return CacheStats(self.hits, self.misses, self.stores, self.evictions, self.corrupt)

    def take_delta(self) -> CacheStats:
        """What was counted since the last call."""
        with self.lock:
            current = CacheStats(self.hits, self.misses, self.stores, self.evictions,
                                 self.corrupt)
            delta, self.flushed = current - self.flushed, current
        return delta


def _flush(directory: Path, counters: _Counters) -> None:
    """Append the counters' news to the history; silent (runs at exit or collection)."""
    delta = counters.take_delta()
    if delta:
        with contextlib.suppress(OSError):
            history.append_run(directory, delta)


@dataclass(frozen=True)
class _Entry:
    path: Path
    size: int
    mtime_ns: int


class ObjectStore:
    """A directory of verified object entries with a least-recently-used size bound.

    The store owns nothing but files in its directory; it can be dropped at
    any time: its counters are appended to the history by :meth:`close`, or
    when it is collected or the interpreter exits. Thread-safe and
    multi-process-safe (see the module docstring).
    """

    def __init__(self, directory: str | os.PathLike[str], *,
                 max_bytes: int = DEFAULT_MAX_BYTES, record_stats: bool = True):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._entries_dir = self.directory / f"v{ENTRY_VERSION}"
        self._lock = threading.Lock()
        self._evict_lock = threading.Lock()
        self._counters = _Counters()
        self._written_since_scan = 0
        self._scanned_total: int | None = None
        self._warned = False
        self.readable = True
        self.writable = True
        try:
            self._entries_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.writable = False
            self.readable = self._entries_dir.is_dir()
            self._warn(f"cannot create the object cache directory {self._entries_dir}: "
                       f"{_describe(exc)}; objects will not be cached")
        self._finalizer = weakref.finalize(self, _flush, self.directory, self._counters)
        if not record_stats or not self.writable:
            self._finalizer.detach()

    # -- reading -----------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The payload stored under ``key``, or None (a miss). Never raises
        ``OSError``; ``ValueError`` if ``key`` is not a key."""
        path = self._path(key)
        payload = None
        if self.readable:
            try:
                with open(path, "rb") as f:
                    opened = os.fstat(f.fileno())
                    payload = read_entry(f, key, opened.st_size)
                if payload is None:
                    self._discard(path, opened)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                pass
            except OSError as exc:
                self.readable = False
                self._warn(f"cannot read the object cache in {self.directory}: "
                           f"{exc.strerror or exc}; reading it is turned off")
        if payload is not None:
            with contextlib.suppress(OSError):
                os.utime(path)  # least recently used = oldest mtime
        with self._counters.lock:
            if payload is None:
                self._counters.misses += 1
            else:
                self._counters.hits += 1
        return payload

    def _discard(self, path: Path, opened: os.stat_result) -> None:
        """Remove a corrupt entry, unless a writer has renamed a new one over it."""
        with self._counters.lock:
            self._counters.corrupt += 1
        with contextlib.suppress(OSError):
            now = os.stat(path)
            if (now.st_ino, now.st_dev) == (opened.st_ino, opened.st_dev):
                os.unlink(path)

    # -- writing -----------------------------------------------------------------

    def put(self, key: str, payload: bytes) -> bool:
        """Store ``payload`` under ``key``; whether it was stored. Never raises
        ``OSError``; ``ValueError`` if ``key`` is not a key."""
        path = self._path(key)
        size = HEADER_SIZE + len(payload)
        if not self.writable or size > self.max_bytes:
            return False
        tmp = None
        try:
            try:
                fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
            except FileNotFoundError:  # a new shard, or the cache was cleared meanwhile
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
            payload = bytes(payload)
            with os.fdopen(fd, "wb") as f:
                f.write(encode_header(key, payload))
                f.write(payload)
            os.replace(tmp, path)
        except OSError as exc:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            self.writable = False
            self._warn(f"cannot write the object cache in {self.directory}: "
                       f"{_describe(exc)}; objects will not be cached")
            return False
        with self._counters.lock:
            self._counters.stores += 1
        with self._lock:
            self._written_since_scan += size
            scan = self._written_since_scan * _SCAN_FRACTION > self.max_bytes or (
                self._scanned_total is not None
                and self._scanned_total + self._written_since_scan > self.max_bytes)
        if scan:
            self.evict()
        return True

    # -- size bound --------------------------------------------------------------

    def evict(self, max_bytes: int | None = None) -> int:
        """Scan the directory and remove least recently used entries until at most
        90 % of ``max_bytes`` (default: the store's bound) remain if it was over;
        the number removed. One thread of a process scans at a time; others skip."""
        bound = self.max_bytes if max_bytes is None else max_bytes
        if not self._evict_lock.acquire(blocking=False):
            return 0
        try:
            with self._lock:
                self._written_since_scan = 0
            entries = self._scan(remove_stale=self.writable)
            total = sum(e.size for e in entries)
            removed = 0
            if total > bound and self.writable:
                for entry in sorted(entries, key=lambda e: e.mtime_ns):
                    if total <= bound * _LOW_WATER:
                        break
                    if _unlink_if_unchanged(entry):
                        removed += 1
                        total -= entry.size
            with self._counters.lock:
                self._counters.evictions += removed
            with self._lock:
                self._scanned_total = total
            return removed
        finally:
            self._evict_lock.release()

    def usage(self) -> Usage:
        """Entries and bytes in the directory now (a scan)."""
        return directory_usage(self.directory)

    def clear(self) -> int:
        """:func:`clear_directory` on the store's directory."""
        try:
            return clear_directory(self.directory)
        finally:
            with self._lock:
                self._scanned_total = 0

    def _scan(self, *, remove_stale: bool) -> list[_Entry]:
        return _scan(self._entries_dir, remove_stale=remove_stale)

    # -- counters ----------------------------------------------------------------

    def stats(self) -> CacheStats:
        """This store's counters since it was created."""
        return self._counters.snapshot()

    def flush_stats(self) -> None:
        """Append the counters gathered since the last flush to the run history
        (nothing when there were none, or the store does not record or cannot write)."""
        if not self._finalizer.alive or not self.writable:
            return
        delta = self._counters.take_delta()
        if not delta:
            return
        try:
            history.append_run(self.directory, delta)
        except OSError as exc:
            self.writable = False
            self._warn(f"cannot write the object cache statistics in {self.directory}: "
                       f"{_describe(exc)}; objects will not be cached")

    def close(self) -> None:
        """Flush the counters to the history; the store stays usable (later
        counts are flushed when it is collected or at exit)."""
        self.flush_stats()

    # -- helpers -----------------------------------------------------------------

    def _path(self, key: str) -> Path:
        if not is_key(key):
            raise ValueError(f"not an object cache key: {key!r}")
        return self._entries_dir / key[:2] / key

    def _warn(self, message: str) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        warnings.warn(CacheUnavailableWarning(message), stacklevel=3)

    def __repr__(self) -> str:
        return f"ObjectStore({str(self.directory)!r}, max_bytes={self.max_bytes})"


def directory_usage(directory: str | os.PathLike[str]) -> Usage:
    """Entries (of the current format) and their bytes under ``directory``, by a
    scan that creates and changes nothing."""
    entries = _scan(Path(directory) / f"v{ENTRY_VERSION}", remove_stale=False)
    return Usage(len(entries), sum(e.size for e in entries))


def clear_directory(directory: str | os.PathLike[str]) -> int:
    """Remove every entry (of any format version), temporary file and the run
    history under ``directory``; the number of files removed. Other files are
    left alone. Raises the first ``OSError`` met (after trying everything) when
    something could not be removed."""
    directory = Path(directory)
    removed = 0
    failure: OSError | None = None
    for version_dir in _subdirectories(directory):
        if not (version_dir.name.startswith("v") and version_dir.name[1:].isdigit()):
            continue
        for shard in _subdirectories(version_dir):
            for item in _listing(shard):
                if is_key(item.name) or item.name.startswith(_TEMP_PREFIX):
                    try:
                        os.unlink(item.path)
                        removed += 1
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        failure = failure or exc
            with contextlib.suppress(OSError):
                shard.rmdir()  # only when empty
        with contextlib.suppress(OSError):
            version_dir.rmdir()
    try:
        removed += history.remove_history(directory)
    except OSError as exc:
        failure = failure or exc
    if failure is not None:
        raise failure
    return removed


def _scan(entries_dir: Path, *, remove_stale: bool) -> list[_Entry]:
    found = []
    stale_before = time.time() - _STALE_TEMP_SECONDS
    for shard in _subdirectories(entries_dir):
        for item in _listing(shard):
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue  # removed meanwhile
            if is_key(item.name) and item.is_file(follow_symlinks=False):
                found.append(_Entry(Path(item.path), st.st_size, st.st_mtime_ns))
            elif (remove_stale and item.name.startswith(_TEMP_PREFIX)
                  and st.st_mtime < stale_before):
                with contextlib.suppress(OSError):
                    os.unlink(item.path)  # left by a writer that died
    return found


def _unlink_if_unchanged(entry: _Entry) -> bool:
    try:
        if os.stat(entry.path).st_mtime_ns != entry.mtime_ns:
            return False  # used or rewritten since the scan
        os.unlink(entry.path)
        return True
    except OSError:
        return False


def _subdirectories(directory: Path) -> list[Path]:
    return [Path(item.path) for item in _listing(directory)
            if item.is_dir(follow_symlinks=False)]


def _listing(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return list(it)
    except OSError:
        return []


def _describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0)
    reason = exc.strerror or str(exc)
    return f"{reason} ({name})" if name else reason
