"""Parsing a partition the engine cut, before anything compiles it."""

from __future__ import annotations

import llvmlite.binding as llvm

from ..errors import InvalidModuleError

_SHOWN_LINES = 200  # a partition longer than this is not quoted in the error


def parse_partition(text: str, what: str) -> llvm.ModuleRef:
    """Parse and verify ``text`` (a partition of ``what``, e.g. "function 'f' of
    module 'm'"); the module is the caller's to close. A partition that does
    not parse or verify raises :class:`InvalidModuleError` naming ``what`` (and
    quoting the partition when it is short)."""
    try:
        module = llvm.parse_assembly(text)
    except RuntimeError as exc:
        raise _invalid(what, exc, text) from None
    try:
        module.verify()
    except RuntimeError as exc:
        module.close()
        raise _invalid(what, exc, text) from None
    return module


def _invalid(what: str, exc: RuntimeError, text: str) -> InvalidModuleError:
    quoted = f"\n{text}" if text.count("\n") < _SHOWN_LINES else ""
    return InvalidModuleError(f"{what} does not compile on its own: {exc}{quoted}")
