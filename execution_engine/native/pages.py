"""Page-granular memory the engine owns (stubs, pointer slots, resolver code).

Pages are mapped read-write, filled, then switched to read-execute; no page
is ever writable and executable at once. Foreign-function declarations for
libc live here and nowhere else.
"""

from __future__ import annotations

import ctypes
import mmap

PAGE_SIZE = mmap.PAGESIZE
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
_MAP_PRIVATE, _MAP_ANONYMOUS = 0x02, 0x20
_MAP_FAILED = ctypes.c_void_p(-1).value

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                  ctypes.c_long]
_mmap.restype = ctypes.c_void_p
_mprotect = _libc.mprotect
_mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_mprotect.restype = ctypes.c_int
_munmap = _libc.munmap
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_munmap.restype = ctypes.c_int


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what} failed")


class PageBlock:
    """An anonymous private mapping of ``pages`` pages, initially read-write.

    The block owns the mapping until :meth:`release`. Not thread-safe by
    itself: its owner serialises writes and protection changes.
    """

    def __init__(self, pages: int):
        self.size = pages * PAGE_SIZE
        addr = _mmap(None, self.size, PROT_READ | PROT_WRITE, _MAP_PRIVATE | _MAP_ANONYMOUS, -1, 0)
        if addr in (None, _MAP_FAILED):
            raise MemoryError(f"mmap of {self.size} bytes failed (errno {ctypes.get_errno()})")
        self.address: int = addr

    def write(self, offset: int, data: bytes) -> None:
        ctypes.memmove(self.address + offset, data, len(data))

    def protect(self, offset: int, length: int, prot: int) -> None:
        if prot & PROT_WRITE and prot & PROT_EXEC:
            raise ValueError("refusing to map memory writable and executable at once")
        _check(_mprotect(self.address + offset, length, prot), "mprotect")

    def release(self) -> None:
        if self.address:
            _check(_munmap(self.address, self.size), "munmap")
            self.address = 0
