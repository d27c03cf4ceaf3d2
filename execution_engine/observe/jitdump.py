"""``jit-<pid>.dump``: JIT'd code with its bytes, for ``perf inject --jit``.

The format is the one perf documents (tools/perf/Documentation/
jitdump-specification.txt, version 1 records): a file header, then records,
each a record header followed by its payload; here ``JIT_CODE_LOAD`` (name,
address, size and the code's bytes) and ``JIT_CODE_CLOSE``. Timestamps are
``CLOCK_MONOTONIC`` nanoseconds, so ``perf record`` must use the same clock
(``-k mono``). perf finds the file through the process's executable mapping
of it, which :class:`JitDump` makes when it opens the file and keeps until
:meth:`JitDump.close`; ``perf inject --jit`` then writes one small ELF file
per record next to the dump and rewrites samples to name them. Unlike the
perf map, a record is tied to when it was written, so code loaded later at
a reused address is told apart.

Workflow::

    perf record -k mono -o perf.data python3 prog.py
    perf inject --jit -i perf.data -o perf.jit.data
    perf report -i perf.jit.data

Thread-safety: every method takes the writer's lock.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import tempfile
import threading
import time
from collections.abc import Callable

from .events import Event, ObjectLinked

MAGIC = 0x4A695444  # "JiTD"
VERSION = 1
JIT_CODE_LOAD = 0
JIT_CODE_CLOSE = 3
FILE_HEADER = struct.Struct("<IIIIIIQQ")  # magic version size elf_mach pad pid timestamp flags
RECORD_HEADER = struct.Struct("<IIQ")  # id total_size timestamp
CODE_LOAD = struct.Struct("<IIQQQQ")  # pid tid vma code_addr code_size code_index

_MACHINES = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183}


def timestamp() -> int:
    """The clock every record uses (and ``perf record -k mono``)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def default_directory() -> str:
    """``$JITDUMPDIR`` or ``~/.debug/jit``, where perf's tools look by habit."""
    return os.environ.get("JITDUMPDIR") or os.path.join(os.path.expanduser("~"), ".debug", "jit")


def _read_memory(address: int, size: int) -> bytes:
    return ctypes.string_at(address, size)


class JitDump:
    """A ``jit-<pid>.dump`` being written.

    ``directory``: where to create the file; by default a fresh
    ``execution_engine-*`` directory under :func:`default_directory` (perf
    inject writes its ELF files beside the dump). ``read(address, size)``
    returns the code bytes to record (this process's memory by default).
    The file and its marker mapping stay open until :meth:`close`.
    """

    def __init__(self, directory: str | None = None, *,
                 read: Callable[[int, int], bytes] = _read_memory):
        if directory is None:
            base = default_directory()
            os.makedirs(base, exist_ok=True)
            directory = tempfile.mkdtemp(prefix="execution_engine-", dir=base)
        self.pid = os.getpid()
        self.path = os.path.join(directory, f"jit-{self.pid}.dump")
        self._read = read
        self._lock = threading.Lock()
        self._index = 0
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        machine = _MACHINES.get(os.uname().machine, 0)
        self._write(FILE_HEADER.pack(MAGIC, VERSION, FILE_HEADER.size, machine, 0, self.pid,
                                     timestamp(), 0))
        self._marker: mmap.mmap | None = mmap.mmap(
            self._fd, FILE_HEADER.size, flags=mmap.MAP_PRIVATE,
            prot=mmap.PROT_READ | mmap.PROT_EXEC)
        self.records = 0

    def code_load(self, name: str, address: int, size: int, code: bytes | None = None) -> int:
        """Record that ``name``'s code is at ``address`` (``size`` bytes; read
        from memory unless ``code`` is given). Returns the record's code index."""
        if code is None:
            code = self._read(address, size) if size else b""
        encoded = name.encode("utf-8", "replace") + b"\0"
        with self._lock:
            if self._fd < 0:
                raise ValueError("the jitdump file is closed")
            index = self._index
            self._index += 1
            total = RECORD_HEADER.size + CODE_LOAD.size + len(encoded) + len(code)
            self._write(
                RECORD_HEADER.pack(JIT_CODE_LOAD, total, timestamp())
                + CODE_LOAD.pack(self.pid, threading.get_native_id(), address, address,
                                 len(code), index)
                + encoded + code)
            self.records += 1
            return index

    def __call__(self, event: Event) -> None:
        """As an event listener: one record per body and stub of each linked object."""
        if isinstance(event, ObjectLinked):
            for r in (*event.functions, *event.stubs):
                self.code_load(r.name, r.start, r.size)

    def close(self) -> None:
        """Write ``JIT_CODE_CLOSE``, unmap the marker and close the file. Idempotent."""
        with self._lock:
            if self._fd < 0:
                return
            self._write(RECORD_HEADER.pack(JIT_CODE_CLOSE, RECORD_HEADER.size, timestamp()))
            if self._marker is not None:
                self._marker.close()
                self._marker = None
            os.close(self._fd)
            self._fd = -1

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]


_process_dump: JitDump | None = None
_process_lock = threading.Lock()


def jit_dump(directory: str | None = None) -> JitDump:
    """The process's :class:`JitDump`, shared by all engines (created on first
    use, in ``directory`` if given; a forked child gets a new one)."""
    global _process_dump
    with _process_lock:
        if _process_dump is None or _process_dump.pid != os.getpid():
            _process_dump = JitDump(directory)
        return _process_dump
