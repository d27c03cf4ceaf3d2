"""execution_engine: a layered JIT with llvmlite's MCJIT API.

``create_mcjit_compiler`` and ``ExecutionEngine`` are drop-ins for
llvmlite's; ``install()`` makes llvmlite itself hand them out. Options are
an :class:`EngineOptions` (or its fields as keywords), composed from policy
objects (:mod:`.policies`), an executor spec and a compile backend.
"""

from typing import TYPE_CHECKING

from . import target_spec  # noqa: F401  (first: notes the spec of every target machine)
from .compilers import CompileBackend, InProcessCompiler
from .dropin import install, installed, uninstall
from .engine import ExecutionEngine, create_mcjit_compiler
from .errors import (
    CacheUnavailableWarning,
    CompileError,
    DuplicateSymbolError,
    EngineClosedError,
    ExecutionEngineError,
    ExecutorCrashedError,
    ExecutorError,
    ExecutorExitedError,
    ExecutorTimeoutError,
    InvalidModuleError,
    InvalidObjectError,
    LazyCompileError,
    LinkError,
    MemoryAccessError,
    ObjectCacheWarning,
    ProgramError,
    SignatureMismatchError,
    SwapNotSupportedError,
    TargetMismatchError,
    ThreadLocalError,
    UnresolvedSymbolError,
)
from .executors.local import LocalExecutorSpec
from .introspection import EngineStats, FunctionInfo
from .ir.signature import Signature
from .options import EngineOptions
from .policies import PartitionPolicy, RedirectionPolicy
from .tiering.policy import TierUp

if TYPE_CHECKING:
    from .executors.remote.host import RemoteExecutorSpec


def __getattr__(name: str) -> object:
    # The remote executor's host (sockets, subprocesses, the protocol) is
    # imported by the processes that use it, not by every drop-in user's.
    if name == "RemoteExecutorSpec":
        from .executors.remote.host import RemoteExecutorSpec
        return RemoteExecutorSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

__all__ = [
    "CacheUnavailableWarning",
    "CompileBackend",
    "CompileError",
    "DuplicateSymbolError",
    "EngineClosedError",
    "EngineOptions",
    "EngineStats",
    "ExecutionEngine",
    "ExecutionEngineError",
    "ExecutorCrashedError",
    "ExecutorError",
    "ExecutorExitedError",
    "ExecutorTimeoutError",
    "FunctionInfo",
    "InProcessCompiler",
    "InvalidModuleError",
    "InvalidObjectError",
    "LazyCompileError",
    "LinkError",
    "LocalExecutorSpec",
    "MemoryAccessError",
    "ObjectCacheWarning",
    "PartitionPolicy",
    "ProgramError",
    "RedirectionPolicy",
    "RemoteExecutorSpec",
    "Signature",
    "SignatureMismatchError",
    "SwapNotSupportedError",
    "TargetMismatchError",
    "ThreadLocalError",
    "TierUp",
    "UnresolvedSymbolError",
    "create_mcjit_compiler",
    "install",
    "installed",
    "uninstall",
]
__version__ = "0.1.0"
