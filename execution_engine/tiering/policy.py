"""The tier-up policy: when and how hot functions are recompiled.

``create_mcjit_compiler(..., tier_up=True)`` (or a :class:`TierUp`) makes
the engine compile every module at the *low* code generation level first,
count the calls of each function through a counting trampoline in front of
its body (:mod:`..native.counters`), and recompile a function whose count
reaches ``threshold`` at the *high* level - the engine's optimisation
pipeline (:mod:`..ir.optimise`) and code generation at that level - off the
callers' path, swapping it in as ``recompile_and_relink_function`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LEVELS = (0, 1, 2, 3)


@dataclass(frozen=True)
class TierUp:
    """Knobs of tier-up (immutable; validated when made).

    ``threshold``: calls counted at the low tier after which a function is
    recompiled (an int >= 1). ``low``: the code generation level modules are
    first compiled at (their IR as given, no optimisation pipeline).
    ``high``: the level of a promoted body: the optimisation pipeline at that
    level, then code generation at that level (``low < high``, both 0-3).
    ``interval``: seconds between two reads of the counters by the engine's
    tier-up thread (> 0); a promotion waits at most that long to be queued.
    """

    threshold: int = 1000
    low: int = 0
    high: int = 2
    interval: float = 0.01

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise TypeError(f"TierUp threshold must be an int, not {self.threshold!r}")
        if self.threshold < 1:
            raise ValueError(f"TierUp threshold must be at least 1 call, not {self.threshold}")
        for name in ("low", "high"):
            level = getattr(self, name)
            if isinstance(level, bool) or not isinstance(level, int):
                raise TypeError(f"TierUp {name} must be an optimisation level (an int), "
                                f"not {level!r}")
            if level not in LEVELS:
                raise ValueError(f"TierUp {name} must be 0, 1, 2 or 3, not {level}")
        if self.low >= self.high:
            raise ValueError(f"TierUp low ({self.low}) must be below high ({self.high})")
        if isinstance(self.interval, bool) or not isinstance(self.interval, (int, float)):
            raise TypeError(f"TierUp interval must be a number of seconds, not {self.interval!r}")
        if not (self.interval > 0 and math.isfinite(self.interval)):
            raise ValueError(f"TierUp interval must be a finite number of seconds > 0, not "
                             f"{self.interval!r}")


def tier_up_policy(value: bool | TierUp | None) -> TierUp | None:
    """The policy ``tier_up=value`` asks for: ``True`` the defaults, ``False`` or
    ``None`` none, a :class:`TierUp` itself; ``TypeError`` otherwise."""
    if value is None or value is False:
        return None
    if value is True:
        return TierUp()
    if isinstance(value, TierUp):
        return value
    raise TypeError(f"tier_up must be True, False, None or a TierUp(...), not {value!r}")
