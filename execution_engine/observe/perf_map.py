"""``/tmp/perf-<pid>.map``: names of JIT'd code for ``perf report``.

perf resolves samples in anonymous executable memory through this text
file, one ``START SIZE name`` line per function (START and SIZE in hex,
without ``0x``; the name is the rest of the line). It reads the file when
it reports, so lines must reach the file before the process exits, and
a line stays true only while its memory holds that code: perf has no way
to hear that code was freed, so an address reused by later code carries
both names (the jitdump format, :mod:`.jitdump`, has no such limit).

One :class:`PerfMap` per process (:func:`perf_map`) serves every engine:
lines are appended (other JITs in the process, such as CPython's own perf
support, may write the same file) and each batch is written with one
``write`` on a descriptor opened ``O_APPEND``, so batches never interleave
and are on disk when :meth:`PerfMap.write` returns. A forked child gets its
own file on its first write.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from .events import CodeFreed, CodeRange, Event, ObjectLinked

DEFAULT_DIRECTORY = "/tmp"


def map_path(pid: int | None = None, directory: str = DEFAULT_DIRECTORY) -> str:
    """Where perf looks for process ``pid``'s map (this process by default)."""
    return os.path.join(directory, f"perf-{os.getpid() if pid is None else pid}.map")


def format_lines(ranges: Iterable[CodeRange]) -> str:
    """``ranges`` as perf map lines (newlines in names become spaces)."""
    return "".join(
        f"{r.start:x} {r.size:x} {r.name.replace(chr(10), ' ')}\n" for r in ranges if r.size > 0)


class PerfMap:
    """Appends perf map lines for this process. Thread-safe.

    The file is opened on the first write and stays open until
    :meth:`close` (which the process's exit does as well).
    """

    def __init__(self, directory: str = DEFAULT_DIRECTORY):
        self.directory = directory
        self._lock = threading.Lock()
        self._fd = -1
        self._pid = 0
        self.lines = 0

    @property
    def path(self) -> str:
        return map_path(self._pid or None, self.directory)

    def write(self, ranges: Iterable[CodeRange]) -> None:
        """Append one line per range with a size, in one ``write``."""
        data = format_lines(ranges).encode("utf-8", "replace")
        if not data:
            return
        with self._lock:
            fd = self._open()
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            self.lines += data.count(b"\n")

    def __call__(self, event: Event) -> None:
        """As an event listener: bodies and stubs of every linked object."""
        if isinstance(event, ObjectLinked):
            self.write((*event.functions, *event.stubs))
        elif isinstance(event, CodeFreed):
            pass  # perf maps cannot say so; see the module's docstring

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = -1

    def _open(self) -> int:
        pid = os.getpid()
        if self._fd >= 0 and self._pid == pid:
            return self._fd
        if self._fd >= 0:  # inherited across fork: the parent's file is not ours
            os.close(self._fd)
        self._pid = pid
        self._fd = os.open(map_path(pid, self.directory),
                           os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        return self._fd


_process_map: PerfMap | None = None
_process_lock = threading.Lock()


def perf_map() -> PerfMap:
    """The process's :class:`PerfMap` (``/tmp/perf-<pid>.map``), shared by all engines."""
    global _process_map
    with _process_lock:
        if _process_map is None:
            _process_map = PerfMap()
        return _process_map
