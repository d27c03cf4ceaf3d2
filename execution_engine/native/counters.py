"""Counting trampolines, written as x86-64 machine code (for tier-up).

A counting trampoline counts a call and continues at the function's body::

    inc qword ptr [rip + counter]     48 FF 05 rel32
    jmp qword ptr [rip + target]      FF 25 rel32

A function being counted has its stub's slot pointed at its trampoline and
the trampoline's *target cell* at its body; pointing the slot straight at a
body (a promoted one) takes the trampoline out of the path, so code that is
not counted pays nothing. The increment is not atomic: calls made at the
same instant on several threads may be counted once, which a hotness count
can afford (an atomic one costs a locked bus cycle per call).

Layout of one chunk (4 pages, 512 trampolines)::

    pages 0-1  trampolines  r-x   16 bytes each (13 used, CC padding)
    page 2     counters     rw-   8 bytes each
    page 3     target cells rw-   8 bytes each

Code pages are written once, while still read-write, and then made
read-execute; they are never writable and executable at once. Counters and
cells are ordinary data. Trampolines are never freed before the owner is
closed: a thread that loaded a slot just before it was re-pointed may still
enter the trampoline (and jump to the target the cell held, freed only under
the reclamation rule, as any replaced body).

Thread-safety: allocation is serialised by the object's lock; counters and
cells are aligned 8-byte words, read and written atomically.
"""

from __future__ import annotations

import ctypes
import struct
import threading

from .pages import PAGE_SIZE, PROT_EXEC, PROT_READ, PageBlock

PER_CHUNK = 512
_SIZE = 16
_COUNTERS_OFFSET = 2 * PAGE_SIZE
_TARGETS_OFFSET = 3 * PAGE_SIZE
_CHUNK_PAGES = 4
assert PER_CHUNK * _SIZE == 2 * PAGE_SIZE and PER_CHUNK * 8 == PAGE_SIZE


class CountingTrampolines:
    """Counting trampolines in pages this object owns (see the module docstring).

    Each trampoline is named by its index (0, 1, ...). Freed by :meth:`close`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: list[PageBlock] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def allocate(self) -> int:
        """A new trampoline's index; its counter is 0 and its cell unset."""
        with self._lock:
            if self._count % PER_CHUNK == 0:
                self._chunks.append(_new_chunk())
            index = self._count
            self._count += 1
            return index

    def address(self, index: int) -> int:
        """Where the trampoline's code starts (what a slot points at)."""
        return self._base(index) + (index % PER_CHUNK) * _SIZE

    def set_target(self, index: int, target: int) -> None:
        """Continue the trampoline's calls at ``target``."""
        ctypes.c_uint64.from_address(self._cell(index)).value = target

    def target(self, index: int) -> int:
        return ctypes.c_uint64.from_address(self._cell(index)).value

    def count(self, index: int) -> int:
        """Calls counted so far."""
        return ctypes.c_uint64.from_address(self._counter(index)).value

    def reset(self, index: int) -> None:
        ctypes.c_uint64.from_address(self._counter(index)).value = 0

    def at_least(self, threshold: int) -> list[int]:
        """Indices whose counter is ``threshold`` or more. Reads each chunk's
        counter page as one block; a chunk whose largest counter is below the
        threshold costs a C-level ``max`` of 512 words."""
        with self._lock:
            chunks = [(n, c.address) for n, c in enumerate(self._chunks)]
        found: list[int] = []
        for number, base in chunks:
            counters = memoryview((ctypes.c_char * PAGE_SIZE).from_address(
                base + _COUNTERS_OFFSET)).cast("B").cast("Q")
            if max(counters) < threshold:
                continue
            first = number * PER_CHUNK
            found += [first + i for i, value in enumerate(counters) if value >= threshold]
        return found

    def close(self) -> None:
        """Unmap every chunk. No code may run through a trampoline afterwards."""
        with self._lock:
            for chunk in self._chunks:
                chunk.release()
            self._chunks.clear()
            self._count = 0

    def _base(self, index: int) -> int:
        return self._chunks[index // PER_CHUNK].address

    def _counter(self, index: int) -> int:
        return self._base(index) + _COUNTERS_OFFSET + (index % PER_CHUNK) * 8

    def _cell(self, index: int) -> int:
        return self._base(index) + _TARGETS_OFFSET + (index % PER_CHUNK) * 8


def _new_chunk() -> PageBlock:
    block = PageBlock(_CHUNK_PAGES)
    code = bytearray()
    for i in range(PER_CHUNK):
        at = i * _SIZE
        code += b"\x48\xff\x05" + struct.pack("<i", _COUNTERS_OFFSET + 8 * i - (at + 7))
        code += b"\xff\x25" + struct.pack("<i", _TARGETS_OFFSET + 8 * i - (at + 13))
        code += b"\xcc" * 3
    block.write(0, bytes(code))
    block.protect(0, 2 * PAGE_SIZE, PROT_READ | PROT_EXEC)
    return block
