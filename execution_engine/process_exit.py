"""Leaving the process through C ``exit()`` with the engine's threads quiet.

C ``exit()`` runs the program's atexit handlers and then the static
destructors of every loaded library, LLVM's among them (its global
``LLVMContext`` is destroyed there). A thread of the engine that is inside
LLVM at that moment (a background cut, a tier-up promotion, a watcher's
reload) crashes the process. Whoever leaves through C ``exit()`` therefore
first runs the *exit hooks* that the engine's threaded components register
here: each stops its threads and waits for them.

Two ways out use them: :func:`leave` (the command line after ``main``
returns) and :data:`exit_override`, the address JIT'd code gets for
``exit`` (ORC's runtime overrides, see :mod:`.linking.resolver`), so that a
program that calls ``exit()`` itself leaves the same way. The same hooks
also run at interpreter exit, through :mod:`atexit`.

Thread-safety: hooks may be registered from any thread; they run on the
thread that leaves, once each per exit: first the hooks that stop threads,
latest registered first, then the *service* hooks (compile pools, cache
stores: what those threads use), latest first, so that no thread finds a
service closed under it. A hook must not raise; one that does is skipped.
"""

from __future__ import annotations

import atexit
import ctypes
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

_hooks: list[Callable[[], None]] = []
_service_hooks: list[Callable[[], None]] = []
_hooks_lock = threading.Lock()
_quiesced = False


def on_exit(hook: Callable[[], None], *, service: bool = False) -> Callable[[], None]:
    """Run ``hook`` before the process leaves (C ``exit()`` through this
    module, or interpreter exit). A ``service`` hook closes something the
    engine's threads use and runs after every other hook. Returns ``hook``."""
    with _hooks_lock:
        (_service_hooks if service else _hooks).append(hook)
    return hook


def on_exit_service(hook: Callable[[], None]) -> Callable[[], None]:
    """:func:`on_exit` with ``service=True``, as a decorator."""
    return on_exit(hook, service=True)


def quiesce() -> None:
    """Run every exit hook now: afterwards no engine thread is inside LLVM.
    Engines keep working, without their background threads, and compile in
    process (see :func:`quiesced`)."""
    global _quiesced
    _quiesced = True
    with _hooks_lock:
        hooks = list(reversed(_hooks)) + list(reversed(_service_hooks))
    for hook in hooks:
        try:
            hook()
        except Exception:  # noqa: BLE001 - leaving must not fail half-way
            pass


def quiesced() -> bool:
    """Whether the exit hooks have run: the process is leaving, its compile
    pools are closed, and a compile still needed (a lazy function first
    called by a program's atexit handler) is done in process."""
    return _quiesced


def leave(status: int) -> NoReturn:
    """Leave through C ``exit(status)``: Python's stdio flushed, the engine
    quiet, then C stdio flushed and the program's atexit handlers run while
    its code is still mapped. The GIL stays held, so that no Python thread
    runs while libraries are torn down."""
    quiesce()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    _libc_exit(status)
    raise AssertionError("exit() returned")  # pragma: no cover


_libc_exit = ctypes.PyDLL(None).exit
_libc_exit.argtypes = [ctypes.c_int]
_libc_exit.restype = None

_EXIT_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int)


@_EXIT_TYPE
def _exit_from_jit_code(status: int) -> None:
    leave(status)


exit_override: int = ctypes.cast(_exit_from_jit_code, ctypes.c_void_p).value or 0
"""The address JIT'd code is linked against for ``exit``: :func:`leave`."""

atexit.register(quiesce)

__all__ = ["exit_override", "leave", "on_exit", "quiesce"]
