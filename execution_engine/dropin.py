"""Making llvmlite hand out this engine: ``install()`` / ``uninstall()``.

After :func:`install`, ``llvmlite.binding.create_mcjit_compiler`` and
``llvmlite.binding.ExecutionEngine`` (also as
``llvmlite.binding.executionengine.*``) are this package's. Code that copied
those names before ``install()`` ran (``from llvmlite.binding import
create_mcjit_compiler``, or numba's codegen, which captures
``ll.ExecutionEngine.<method>`` when it is imported) keeps the originals, so
call ``install()`` before importing such code.

``ObjectFileRef.from_data`` / ``from_path`` are wrapped too, so that object
files made while installed remember their bytes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import llvmlite.binding as llvm
from llvmlite.binding import executionengine, object_file

from .engine import ExecutionEngine, create_mcjit_compiler

_lock = threading.Lock()
_saved: list[tuple[Any, str, Any]] = []


def _object_from_data(cls: type, data: bytes) -> llvm.ObjectFileRef:
    obj = _original_from_data.__func__(cls, data)
    obj._ee_data = bytes(data)
    return obj


def _object_from_path(cls: type, path: str) -> llvm.ObjectFileRef:
    with open(path, "rb") as f:
        return _object_from_data(cls, f.read())


_original_from_data = object_file.ObjectFileRef.from_data


def install() -> None:
    """Make llvmlite's MCJIT entry points refer to this engine. Idempotent."""
    with _lock:
        if _saved:
            return
        replacements = [
            (llvm, "create_mcjit_compiler", create_mcjit_compiler),
            (llvm, "ExecutionEngine", ExecutionEngine),
            (executionengine, "create_mcjit_compiler", create_mcjit_compiler),
            (executionengine, "ExecutionEngine", ExecutionEngine),
            (object_file.ObjectFileRef, "from_data", classmethod(_object_from_data)),
            (object_file.ObjectFileRef, "from_path", classmethod(_object_from_path)),
        ]
        for owner, name, value in replacements:
            _saved.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, value)


def uninstall() -> None:
    """Restore llvmlite's own MCJIT. Idempotent."""
    with _lock:
        while _saved:
            owner, name, value = _saved.pop()
            setattr(owner, name, value)


def is_installed() -> bool:
    return bool(_saved)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """``with installed(): ...`` runs the block with the engine installed."""
    was = is_installed()
    install()
    try:
        yield
    finally:
        if not was:
            uninstall()
