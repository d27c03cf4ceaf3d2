"""The format of one cache entry, and its verification.

``MAGIC (8) | ENTRY_VERSION (4, big-endian) | key (64 ASCII hex digits) |
payload length (8, big-endian) | BLAKE2b-256 of the payload (32) | payload``.

:func:`read_entry` accepts an entry only if every field is what it must be:
the magic and version, the very key asked for, a length equal to what the
file holds after the header (nothing more, nothing less) and the payload's
digest. Any truncation, extension or change of a header byte fails a
comparison with an exact expected value; any change of payload bytes fails
the digest.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from .digest import new_digest

MAGIC = b"EEOBJ\r\n\x1a"
ENTRY_VERSION = 1  # BLAKE2b payload digests since key schema 2, whose keys no SHA-256 entry has
HEADER_STRUCT = struct.Struct(">8sI64sQ32s")
HEADER_SIZE = HEADER_STRUCT.size  # 116


def encode_header(key: str, payload: bytes) -> bytes:
    """The header of the entry holding ``payload`` under ``key``."""
    digest = new_digest(payload).digest()
    return HEADER_STRUCT.pack(MAGIC, ENTRY_VERSION, key.encode("ascii"), len(payload), digest)


def encode_entry(key: str, payload: bytes) -> bytes:
    """The bytes of the entry holding ``payload`` under ``key``."""
    return encode_header(key, payload) + payload


def read_entry(f: BinaryIO, key: str, size: int) -> bytes | None:
    """The payload of the open entry ``f`` (a file of ``size`` bytes, read from
    its start) for ``key`` if every check passes, else None."""
    if size < HEADER_SIZE:
        return None
    header = f.read(HEADER_SIZE)
    if len(header) != HEADER_SIZE:
        return None
    magic, version, stored_key, length, digest = HEADER_STRUCT.unpack(header)
    if (magic != MAGIC or version != ENTRY_VERSION or stored_key != key.encode("ascii")
            or length != size - HEADER_SIZE):
        return None
    payload: bytes = f.read(length)
    if len(payload) != length or f.read(1):
        return None
    if new_digest(payload).digest() != digest:
        return None
    return payload
