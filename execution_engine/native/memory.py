"""Reading this process's memory without risking a fault.

:func:`read` copies bytes through the kernel (``process_vm_readv`` on this
process, or ``/proc/self/mem`` where that call is not allowed), so an
address that is unmapped or unreadable raises :class:`MemoryAccessError`
instead of killing the process. The copy is made in chunks, so a huge size
costs memory only for what is really readable. Thread-safe.
"""

from __future__ import annotations

import ctypes
import errno
import os

from ..errors import MemoryAccessError

CHUNK = 1 << 20


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


_libc = ctypes.CDLL(None, use_errno=True)
_readv = getattr(_libc, "process_vm_readv", None)
if _readv is not None:
    _readv.restype = ctypes.c_ssize_t
    _readv.argtypes = [ctypes.c_int, ctypes.POINTER(_IOVec), ctypes.c_ulong,
                       ctypes.POINTER(_IOVec), ctypes.c_ulong, ctypes.c_ulong]
_use_proc_mem = _readv is None


def read(address: int, size: int) -> bytes:
    """``size`` bytes at ``address`` of this process (validated by the caller:
    ints, ``size >= 0``, the range inside the address space)."""
    out = bytearray()
    while len(out) < size:
        at = address + len(out)
        chunk = _read_some(at, min(CHUNK, size - len(out)))
        if not chunk:
            raise MemoryAccessError(address, size, at)
        out += chunk
    return bytes(out)


def _read_some(address: int, size: int) -> bytes:
    """Up to ``size`` readable bytes at ``address`` (fewer at the end of the
    readable range, none if ``address`` itself is unreadable)."""
    global _use_proc_mem
    if _readv is not None and not _use_proc_mem:
        buffer = ctypes.create_string_buffer(size)
        local, remote = _IOVec(ctypes.addressof(buffer), size), _IOVec(address, size)
        got = _readv(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if got >= 0:
            return buffer.raw[:got]
        if ctypes.get_errno() not in (errno.ENOSYS, errno.EPERM):
            return b""
        _use_proc_mem = True
    try:
        fd = os.open("/proc/self/mem", os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.pread(fd, size, address)
    except (OSError, OverflowError):
        return b""
    finally:
        os.close(fd)
