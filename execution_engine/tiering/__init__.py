"""Tier-up: compile at a low level first, recompile hot functions at a high one.

* :mod:`.policy` - :class:`TierUp`, the knobs (threshold, low, high, interval);
* :mod:`.stubs` - :class:`CountingStubs`, the stub allocator that puts counted
  functions behind counting trampolines (:mod:`..native.counters`);
* :mod:`.controller` - :class:`TierUpController`, the engine's component that
  reads the counters and promotes hot functions off the callers' path.
"""

from .policy import TierUp, tier_up_policy

__all__ = ["TierUp", "tier_up_policy"]
