"""execution_engine: a layered JIT with llvmlite's MCJIT API.

``create_mcjit_compiler`` and ``ExecutionEngine`` are drop-ins for
llvmlite's; ``install()`` makes llvmlite itself hand them out.
"""

from .dropin import install, installed, uninstall
from .engine import ExecutionEngine, create_mcjit_compiler
from .errors import (
    DuplicateSymbolError,
    EngineClosedError,
    ExecutionEngineError,
    InvalidModuleError,
    InvalidObjectError,
    LinkError,
    SignatureMismatchError,
    SwapNotSupportedError,
    TargetMismatchError,
    UnresolvedSymbolError,
)

__all__ = [
    "DuplicateSymbolError",
    "EngineClosedError",
    "ExecutionEngine",
    "ExecutionEngineError",
    "InvalidModuleError",
    "InvalidObjectError",
    "LinkError",
    "SignatureMismatchError",
    "SwapNotSupportedError",
    "TargetMismatchError",
    "UnresolvedSymbolError",
    "create_mcjit_compiler",
    "install",
    "installed",
    "uninstall",
]
__version__ = "0.1.0"
