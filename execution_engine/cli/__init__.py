"""The command line: ``python -m execution_engine run FILE`` runs an IR program like ``lli``."""

from .main import main

__all__ = ["main"]
