"""Cases that exercise the harness itself (asserted by tests/test_isolated.py)."""

from __future__ import annotations

import os
import sys
from typing import Any


def echo(*args: Any) -> dict[str, Any]:
    """The arguments as received, and where the child runs."""
    import execution_engine

    return {"args": list(args), "cwd": os.getcwd(), "pid": os.getpid(),
            "package": execution_engine.__file__}


def print_and_return(text: str) -> int:
    print(text, flush=True)
    print(text.upper(), file=sys.stderr, flush=True)
    return len(text)


def environment(name: str) -> str | None:
    return os.environ.get(name)


def exit_with(status: int) -> None:
    sys.exit(status)


def abort() -> None:
    os.abort()


def raise_value_error(message: str) -> None:
    raise ValueError(message)
