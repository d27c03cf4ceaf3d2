"""When replaced code may be freed: the reclamation rule.

A body that was replaced (hot-swap) may still be executing on another
thread: a caller that loaded the old slot value a moment before the swap is
still inside it. Such memory is *retired*, not freed, and is freed at the
first reclamation point at which one of these holds:

* the grace period has passed since it was retired (``grace_period``
  seconds; a call into replaced code that finishes within the grace period
  is therefore safe), or
* the client declared a quiescent point (:meth:`Reclaimer.quiescent`, the
  engine's ``reclaim()``): no thread is running replaced code.

Reclamation points are the engine's mutating calls and ``reclaim()``.
``grace_period=None`` disables the time rule (only quiescent points free:
the right choice when code may stay inside a replaced body for long, like
an audio callback looping forever); ``grace_period=0`` frees at once.

Thread-safety: all methods take the reclaimer's lock; the free callbacks
run outside it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class Reclaimer:
    """Holds retired memory until it is safe to free."""

    def __init__(self, grace_period: float | None = 1.0):
        if grace_period is not None and grace_period < 0:
            raise ValueError("grace_period must be >= 0 or None")
        self.grace_period = grace_period
        self._lock = threading.Lock()
        self._retired: deque[tuple[float, Callable[[], None]]] = deque()

    def __len__(self) -> int:
        return len(self._retired)

    def retire(self, free: Callable[[], None]) -> None:
        """Schedule ``free()`` under the rule above."""
        with self._lock:
            self._retired.append((time.monotonic(), free))
        if self.grace_period == 0:
            self.poll()

    def poll(self) -> int:
        """Free what has passed the grace period; return how many were freed."""
        if self.grace_period is None:
            return 0
        deadline = time.monotonic() - self.grace_period
        return self._free(lambda retired_at: retired_at <= deadline)

    def quiescent(self) -> int:
        """The client guarantees no thread runs replaced code: free everything."""
        return self._free(lambda retired_at: True)

    def _free(self, due: Callable[[float], bool]) -> int:
        ready: list[Callable[[], None]] = []
        with self._lock:
            while self._retired and due(self._retired[0][0]):
                ready.append(self._retired.popleft()[1])
        for free in ready:
            free()
        return len(ready)
