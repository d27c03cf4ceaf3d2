"""Getting the bytes behind a llvmlite ``ObjectFileRef``.

llvmlite does not expose an object file's buffer, only its sections, whose
contents point into that buffer. An ELF file starts with its 64-byte header
and LLVM (like GNU as) places the first section right after it, so the
buffer starts 64 bytes before the lowest section contents; the header then
tells the file's full size (the section header table comes last). Objects
made while :func:`execution_engine.install` is active carry their bytes and
need none of this.
"""

from __future__ import annotations

import ctypes
import os
import struct

import llvmlite.binding as llvm
from llvmlite.binding import ffi

from ..errors import InvalidObjectError

_EHDR_SIZE = 64


def read_object(obj_file: llvm.ObjectFileRef | str | os.PathLike[str] | bytes) -> tuple[str, bytes]:
    """A label naming ``obj_file`` and its bytes: an ``ObjectFileRef``, a path
    or bytes (``bytearray``/``memoryview`` too)."""
    if isinstance(obj_file, (str, os.PathLike)):
        with open(obj_file, "rb") as f:
            return f"object file '{os.fspath(obj_file)}'", f.read()
    if isinstance(obj_file, (bytes, bytearray, memoryview)):
        return "object bytes", bytes(obj_file)
    return "object file", object_file_bytes(obj_file)


def object_file_bytes(obj: llvm.ObjectFileRef) -> bytes:
    """The complete object file ``obj`` was made from."""
    data = getattr(obj, "_ee_data", None)
    if data is not None:
        return bytes(data)
    if not isinstance(obj, llvm.ObjectFileRef) or obj.closed:
        raise TypeError(f"expected an open llvmlite ObjectFileRef, got {obj!r}")
    starts = []
    for section in obj.sections():
        if section.size():
            pointer = ffi.lib.LLVMPY_GetSectionContents(section)
            starts.append(ctypes.cast(pointer, ctypes.c_void_p).value or 0)
    if not starts:
        raise InvalidObjectError("object file has no sections with contents")
    base = min(starts) - _EHDR_SIZE
    header = ctypes.string_at(base, _EHDR_SIZE)
    if header[:4] != b"\x7fELF" or header[4] != 2:
        raise InvalidObjectError(
            "cannot recover the bytes of this ObjectFileRef; pass its path or bytes instead"
        )
    shoff, = struct.unpack_from("<Q", header, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", header, 0x3A)
    return ctypes.string_at(base, shoff + shentsize * shnum)
