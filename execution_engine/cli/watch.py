"""Live reload for the command line's ``--watch``.

A daemon thread polls the program's source files. When one changes it is
parsed again and handed to ``ExecutionEngine.update_module(new,
replaces=previous)``: functions whose IR changed (and new ones) are compiled
and swapped in while the program keeps running; variables, internal ones
included, keep their storage and values. A file that does not parse or
verify, or an update the engine refuses (a changed signature, say), is
reported on stderr and the program keeps running the code it had.

Replaced code is never freed while watching: the program may still be
inside a replaced body (its ``main`` loop, typically). With ``--remote``
the program runs in the executor, which links and re-points stubs while
``main`` runs there, so reloads reach it the same way.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

import llvmlite.binding as llvm

from ..engine import ExecutionEngine
from ..errors import ExecutionEngineError, ProgramError


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class Watcher(threading.Thread):
    """Polls ``modules`` (path -> the ModuleRef last loaded from it) every
    ``interval`` seconds and hot-swaps edits into ``engine``."""

    def __init__(self, engine: ExecutionEngine, modules: dict[str, llvm.ModuleRef],
                 load: Callable[[str], llvm.ModuleRef], *, interval: float = 0.2):
        super().__init__(name="execution-engine-watch", daemon=True)
        self.engine = engine
        self.modules = dict(modules)
        self.load = load
        self.interval = interval
        self.reloads = 0
        self._stamps = {path: _stamp(path) for path in self.modules}
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def halt(self, timeout: float = 5.0) -> None:
        """Stop and wait (up to ``timeout`` seconds) for a reload in progress."""
        self.stop()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout)

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            for path in list(self.modules):
                stamp = _stamp(path)
                if stamp is not None and stamp != self._stamps[path]:
                    self._stamps[path] = stamp
                    self.reload(path)

    def reload(self, path: str) -> bool:
        """Swap ``path``'s current contents in; report and keep the old code on error."""
        try:
            new = self.load(path)
        except ProgramError as exc:
            _report(f"{exc}; still running the previous version")
            return False
        try:
            self.engine.update_module(new, replaces=self.modules[path])
        except (ExecutionEngineError, KeyError, ValueError) as exc:
            _report(f"{path}: {exc}; still running the previous version")
            new.close()
            return False
        self.modules[path] = new
        self.reloads += 1
        _report(f"reloaded {path}")
        return True


def _report(message: str) -> None:
    sys.stderr.write(f"execution-engine: watch: {message}\n")
    sys.stderr.flush()
