"""Exception types raised by the engine.

Every failure the engine can foresee is raised as one of these before LLVM
sees the offending input, so that nothing a caller does through the API can
reach an LLVM fatal error. Each message names the culprit (symbol, module,
file). Every class derives from :class:`ExecutionEngineError`, which derives
from ``RuntimeError`` because that is what llvmlite's MCJIT raises, so
existing ``except RuntimeError`` handlers keep working.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Mapping


class ExecutionEngineError(RuntimeError):
    """Base class of every error this package raises."""


class InvalidModuleError(ExecutionEngineError, ValueError):
    """The IR is malformed or fails verification (message carries LLVM's diagnostic)."""


class TargetMismatchError(ExecutionEngineError, ValueError):
    """A module's triple or data layout does not match the engine's target machine."""


class InvalidObjectError(ExecutionEngineError, ValueError):
    """Object bytes (from a file, ``add_object_file`` or an object cache) are not
    a relocatable ELF object this engine can link for its target."""


class DuplicateSymbolError(ExecutionEngineError):
    """A strong symbol is defined twice where that is not allowed."""

    def __init__(self, symbol: str, first: str, second: str):
        self.symbol = symbol
        self.first = first
        self.second = second
        super().__init__(
            f"duplicate definition of symbol '{symbol}': defined in {first} and again in {second}"
        )


class UnresolvedSymbolError(ExecutionEngineError):
    """Symbols referenced by code being linked are defined nowhere.

    ``missing`` maps each unit (module or object name) to the sorted list of
    names it needs and nobody defines.
    """

    def __init__(self, missing: Mapping[str, Iterable[str]]):
        self.missing = {unit: sorted(set(names)) for unit, names in missing.items()}
        parts = [f"{unit}: {', '.join(names)}" for unit, names in self.missing.items()]
        super().__init__("unresolved external symbol(s): " + "; ".join(parts))


class SignatureMismatchError(ExecutionEngineError, TypeError):
    """A replacement function's type differs from the function it replaces."""


class SwapNotSupportedError(ExecutionEngineError):
    """The engine's redirection policy cannot replace function bodies."""


class EngineClosedError(ExecutionEngineError, ctypes.ArgumentError):
    """The engine was closed; it can no longer be used.

    Also a ``ctypes.ArgumentError``, which is what llvmlite's engine raises
    when used after ``close()``."""


class LinkError(ExecutionEngineError):
    """LLVM's JIT linker rejected an object (message carries LLVM's diagnostic)."""


class ProgramError(ExecutionEngineError):
    """A program cannot be loaded (missing file, bad IR); the message names the file."""


class ExecutorError(ExecutionEngineError):
    """The executor process is gone or did not answer."""


class ExecutorCrashedError(ExecutorError):
    """The executor was killed by a signal (``signal`` is its number)."""

    def __init__(self, message: str, signal_number: int | None, running: str):
        super().__init__(message)
        self.signal = signal_number
        self.running = running


class ExecutorExitedError(ExecutorError):
    """The executor exited (JIT'd code called ``exit``); ``status`` is its code."""

    def __init__(self, message: str, status: int, running: str):
        super().__init__(message)
        self.status = status
        self.running = running


class ExecutorTimeoutError(ExecutorError):
    """A request took longer than the session's timeout; the executor was killed.
    ``running`` names what was running (empty if nothing was)."""

    def __init__(self, message: str, running: str = ""):
        super().__init__(message)
        self.running = running


class ThreadLocalError(ExecutionEngineError, ValueError):
    """A thread-local variable is used in a way the engine's thread-local
    storage cannot lower (its address in a global initializer, a
    thread-local alias, ...), or where it is not available; names the
    module and the variable."""


class LazyCompileError(ExecutionEngineError):
    """A lazily compiled function could not be compiled or linked on its first
    call. ``function`` and ``module`` name it; the cause is chained."""

    def __init__(self, function: str, module: str, reason: str):
        self.function = function
        self.module = module
        self.reason = reason
        super().__init__(f"compiling function '{function}' of {module} on its first call "
                         f"failed: {reason}")


class CacheUnavailableWarning(UserWarning):
    """The persistent object cache cannot be written (or read) and is bypassed:
    a read-only or full disk, a missing permission. Issued once per store; the
    code is compiled as if there were no cache. A warning, not an error."""


class MemoryAccessError(ExecutionEngineError, ValueError):
    """``read_memory`` asked for bytes that are not readable memory of the
    process the code runs in. ``address`` and ``size`` are the request,
    ``unreadable`` the first address that could not be read."""

    def __init__(self, address: int, size: int, unreadable: int):
        self.address = address
        self.size = size
        self.unreadable = unreadable
        super().__init__(f"cannot read {size} bytes at {address:#x}: the memory at "
                         f"{unreadable:#x} is not readable")


class ObjectCacheWarning(RuntimeWarning):
    """An object-cache hook (``set_object_cache``) raised; the engine reported
    it and carried on as if the hook had not been set for that module, as
    llvmlite's MCJIT does. Make it an error with ``warnings.filterwarnings``
    to stop on it instead."""


class CompileError(ExecutionEngineError):
    """LLVM could not compile a module or function (``label`` names it).

    Raised when a check before code generation finds what LLVM would abort
    on (``detail`` says what; ``llvm_message`` is empty), and when a compile
    worker died (or was killed) while compiling it:
    ``llvm_message`` is what LLVM wrote to the worker's stderr before it died
    (e.g. ``"LLVM ERROR: Cannot select: ..."`` or the assembler's ``"error:
    invalid instruction mnemonic"``), ``status`` the worker's exit status
    (negative: killed by that signal; None: not known)."""

    def __init__(self, label: str, llvm_message: str, status: int | None = None,
                 detail: str = ""):
        self.label = label
        self.llvm_message = llvm_message
        self.status = status
        message = f"compiling {label}: {detail or 'LLVM failed'}"
        if llvm_message:
            message += f": {llvm_message}"
        super().__init__(message)
