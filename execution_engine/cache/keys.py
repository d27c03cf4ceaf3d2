"""Cache keys: a BLAKE2b-256 digest (:mod:`.digest`) of exactly what determines an object file.

``object_key(ir, target)`` hashes, in a versioned, length-prefixed encoding:

* the IR as compiled (after the engine's own rewrites), as text or bitcode,
  with its kind, so text and bitcode never share a key;
* the caller's target description (triple, CPU, features, optimisation level,
  relocation and code model: whatever the caller says changes code);
* :data:`OBJECT_FORMAT_VERSION`, the engine's own version of what it does to
  objects after code generation (bump it when that changes);
* llvmlite's version and the version of the LLVM it is built on;
* ``extra``: anything else the caller's compile step depends on.

Every field is written as ``name, len(value), value`` (lengths as 8-byte
big-endian integers), so no two different field tuples encode to the same
bytes. The result is 64 lowercase hexadecimal digits, the same in every
process for the same inputs.

Choosing the IR to hash (:func:`module_ir`): measured on llvmlite 0.50 /
LLVM 22.1 (CPU ms, median of 7), ``module.as_bitcode()`` is cheaper than
``str(module)`` and yields fewer bytes to hash (measured with OpenSSL's
SHA-256; the BLAKE2b now used hashes about 1.8x slower, still a small part
of the serialisation):

=====================================  ===========================  ============================
module                                 ``str(module)`` + SHA-256    ``as_bitcode()`` + SHA-256
=====================================  ===========================  ============================
generated, 5,000 functions             174 ms, 7.1 MB, + 4.7 ms     116 ms, 2.5 MB, + 1.7 ms
Lua 5.4, its 33 modules one by one     94 ms in all                 42 ms in all
Lua 5.4 linked into one module         121 ms, 3.1 MB, + 2.0 ms     34 ms, 0.5 MB, + 0.3 ms
=====================================  ===========================  ============================

Bitcode is deterministic (same bytes from a module and its clone, and from
two processes parsing the same text). It includes the module's name and
source file name, so modules that differ only in name get different keys:
a miss, never a wrong hit. A caller that already holds the text it compiles
(e.g. to send it to a worker process) passes the text instead: no second
serialisation.
"""

from __future__ import annotations

from typing import Any

import llvmlite
import llvmlite.binding as llvm

from .digest import new_digest

# What the engine does to an object after ``emit_object`` (ELF rewrites,
# interposable definitions made strong again, ...). Bump on any change.
OBJECT_FORMAT_VERSION = 1

_SCHEMA = b"execution_engine/object-key/2"  # 2: BLAKE2b-256 (1: SHA-256)

KEY_LENGTH = 64  # hexadecimal digits of a 32-byte digest


def _field(digest: Any, name: bytes, value: bytes) -> None:
    digest.update(len(name).to_bytes(8, "big"))
    digest.update(name)
    digest.update(len(value).to_bytes(8, "big"))
    digest.update(value)


def toolchain() -> str:
    """The llvmlite and LLVM versions every key includes (``"llvmlite 0.50.0; LLVM 22.1.0"``)."""
    llvm_version = ".".join(map(str, llvm.llvm_version_info))
    return f"llvmlite {llvmlite.__version__}; LLVM {llvm_version}"


def object_key(ir: bytes | str, target: str, *, extra: str = "") -> str:
    """The cache key of the object compiled from ``ir`` for ``target``.

    ``ir``: IR text (``str``) or bitcode (``bytes``), exactly as it will be
    compiled. ``target``: a description of the target machine that names
    everything that changes generated code. ``extra``: any further input of
    the compile step. Pure and thread-safe.
    """
    digest = new_digest()
    digest.update(len(_SCHEMA).to_bytes(8, "big"))
    digest.update(_SCHEMA)
    if isinstance(ir, str):
        _field(digest, b"ir-text", ir.encode("utf-8", "surrogatepass"))
    else:
        _field(digest, b"ir-bitcode", bytes(ir))
    _field(digest, b"target", target.encode("utf-8", "surrogatepass"))
    _field(digest, b"object-format", str(OBJECT_FORMAT_VERSION).encode())
    _field(digest, b"toolchain", toolchain().encode())
    _field(digest, b"extra", extra.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def module_ir(module: llvm.ModuleRef) -> bytes:
    """The module's IR in the form cheapest to serialise and hash: its bitcode
    (see the measurements above). The module is read, not changed."""
    return module.as_bitcode()


def is_key(text: str) -> bool:
    """Whether ``text`` has the shape of a key from :func:`object_key`."""
    return len(text) == KEY_LENGTH and all(c in "0123456789abcdef" for c in text)
