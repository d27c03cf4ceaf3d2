"""Policy objects the stack is composed from (ORC passes strategies to its
layers' constructors; so does the engine's builder).

* :class:`RedirectionPolicy`: how calls reach a function's body. ``DIRECT``
  (the default: calls inside one object to the functions it defines reach
  the bodies directly, as under MCJIT; addresses, and calls from anywhere
  else, go through stubs; the first time one of the object's definitions is
  replaced the object is linked again with every call through stubs, see
  :mod:`.linking.relink`), ``STUB`` (every call and address goes through
  the function's stub, which jumps through its pointer slot), ``SINGLE``
  (call sites load the slot themselves; addresses are still stubs), ``NONE``
  (bodies bound directly, as MCJIT does: no swapping, no laziness).
* :class:`PartitionPolicy`: what a lazy first call compiles. ``FUNCTION``
  (the function alone), ``CALLEES`` (the function and the functions it calls
  that are not compiled yet, in one compile).
* :class:`BackgroundPolicy`: whether a lazy engine compiles ahead in its
  compile workers while JIT'd code runs (ORC's speculation), and in what
  batches. ``BACKGROUND`` (the default with ``compile_workers``) or ``OFF``.

Policies are immutable values; nothing outside this module compares their
names.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import llvmlite.binding as llvm

from .errors import SwapNotSupportedError
from .ir.call_sites import call_only_functions, call_through_slots

IRTransform = Callable[[llvm.ModuleRef], llvm.ModuleRef]


@dataclass(frozen=True)
class RedirectionPolicy:
    """How calls reach a function's body (see the module docstring)."""

    name: str
    redirects: bool  # functions live behind stubs: swappable, lazily compilable
    slot_calls: bool  # call sites load their callee from its pointer slot
    # calls inside one object bind directly to its own functions, until one is replaced
    direct_calls: bool = False

    def check_swappable(self) -> None:
        """Raise :class:`SwapNotSupportedError` if bodies cannot be replaced."""
        if not self.redirects:
            raise SwapNotSupportedError(
                f"this engine was created with redirection='{self.name}': functions are bound "
                "directly to their callers and cannot be replaced")

    def check_lazy(self) -> None:
        """Raise ``ValueError`` if lazy compilation cannot work under this policy."""
        if not self.redirects:
            raise ValueError(f"lazy compilation needs stubs: redirection='{self.name}' binds "
                             "calls directly; use 'direct', 'stub' or 'single'")

    def check_counted(self) -> None:
        """Raise ``ValueError`` unless every call reaches a function through its
        pointer slot, which tier-up counts at (``STUB``, ``SINGLE``)."""
        # A policy that binds some calls directly (``NONE``, and ``DIRECT``
        # inside an object) hides them from the count.
        if not self.redirects or self.direct_calls:
            raise ValueError(f"tier_up counts calls at the functions' pointer slots, which "
                             f"redirection='{self.name}' bypasses; use 'stub' (the default "
                             "with tier_up) or 'single'")

    def ir_transform(self, has_stub: Callable[[str], bool]) -> IRTransform | None:
        """The IR rewrite this policy needs before code generation, if any:
        ``SINGLE`` rewrites calls to the module's own functions, and to
        external ones for which ``has_stub(name)``, into slot loads."""
        if not self.slot_calls:
            return None

        def through_slots(module: llvm.ModuleRef) -> llvm.ModuleRef:
            rewritten = llvm.parse_assembly(call_through_slots(str(module), has_stub))
            rewritten.name = module.name
            return rewritten

        return through_slots

    def direct_callees(self, module: Callable[[], llvm.ModuleRef | str],
                       called: Collection[str]) -> frozenset[str]:
        """Which of ``called`` (functions an object compiled from ``module``
        defines and refers to from its own code) the object may reach
        directly: under ``DIRECT`` those whose every reference in the module
        is a call (no address of theirs exists that is not the stub's; see
        :func:`~.ir.call_sites.call_only_functions`), none otherwise.
        ``module()`` (the IR, or its text) is asked for only when needed:
        printing a module costs about 2 % of compiling it."""
        if not (self.direct_calls and called):
            return _NONE
        return call_only_functions(str(module())).intersection(called)


_NONE: frozenset[str] = frozenset()
DIRECT = RedirectionPolicy("direct", redirects=True, slot_calls=False, direct_calls=True)
STUB = RedirectionPolicy("stub", redirects=True, slot_calls=False)
SINGLE = RedirectionPolicy("single", redirects=True, slot_calls=True)
NONE = RedirectionPolicy("none", redirects=False, slot_calls=False)
REDIRECTION_POLICIES = {p.name: p for p in (DIRECT, STUB, SINGLE, NONE)}

CalleeFilter = Callable[[str], bool]


@dataclass(frozen=True)
class PartitionPolicy:
    """What a lazy first call of a function compiles along with it."""

    name: str
    with_callees: bool

    def callee_filter(self, uncompiled: CalleeFilter) -> CalleeFilter | None:
        """The predicate a partition cut uses to pull a callee in (``None``: none)."""
        return uncompiled if self.with_callees else None


FUNCTION = PartitionPolicy("function", with_callees=False)
CALLEES = PartitionPolicy("callees", with_callees=True)
PARTITION_POLICIES = {p.name: p for p in (FUNCTION, CALLEES)}


@dataclass(frozen=True)
class BackgroundPolicy:
    """How a lazy engine compiles ahead in compile workers (see
    :mod:`.layers.background`).

    ``enabled``: compile ahead at all (it also needs ``compile_workers``).
    Once a lazy module has had ``start_after`` first calls, its functions are
    queued: the callees of every function compiled so far first (in the order
    they were reached), then the rest of the module. They are cut into
    partitions of at most ``batch_functions`` functions and about
    ``batch_bytes`` of IR text each (the first partitions smaller: the k-th
    has at most ``first_batch * 2**k`` functions, so that the first calls
    waiting for them wait little), and at most ``in_flight`` partitions
    (``0``: one more than there are workers) are being compiled at a time.
    """

    name: str
    enabled: bool
    start_after: int = 1
    batch_functions: int = 64
    batch_bytes: int = 96_000
    in_flight: int = 0
    first_batch: int = 8

    def __post_init__(self) -> None:
        for field_name in ("start_after", "batch_functions", "batch_bytes", "in_flight",
                           "first_batch"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (
                    0 if field_name == "in_flight" else 1):
                raise ValueError(f"BackgroundPolicy.{field_name} must be a positive int, "
                                 f"not {value!r}")

    def batch_limit(self, sent: int) -> tuple[int, int]:
        """(functions, bytes) the partition sent after ``sent`` others may hold."""
        scale = 2 ** min(sent, 20)
        return (min(self.batch_functions, self.first_batch * scale),
                min(self.batch_bytes, self.batch_bytes * self.first_batch * scale
                    // self.batch_functions or 1))

    def batches_in_flight(self, workers: int) -> int:
        """How many partitions are sent at once to ``workers`` workers."""
        return self.in_flight or workers + 1


BACKGROUND = BackgroundPolicy("workers", enabled=True)
OFF = BackgroundPolicy("off", enabled=False)
BACKGROUND_POLICIES = {p.name: p for p in (BACKGROUND, OFF)}


def background_policy(value: bool | str | BackgroundPolicy) -> BackgroundPolicy:
    """``True``/``"workers"``: :data:`BACKGROUND`; ``False``/``"off"``: :data:`OFF`;
    or ``value`` itself; ``ValueError`` otherwise."""
    if isinstance(value, bool):
        return BACKGROUND if value else OFF
    return _choose(value, BackgroundPolicy, BACKGROUND_POLICIES, "background")


def redirection_policy(value: str | RedirectionPolicy) -> RedirectionPolicy:
    """The policy named ``value`` (or ``value`` itself); ``ValueError`` otherwise."""
    return _choose(value, RedirectionPolicy, REDIRECTION_POLICIES, "redirection")


def partition_policy(value: str | PartitionPolicy) -> PartitionPolicy:
    """The policy named ``value`` (or ``value`` itself); ``ValueError`` otherwise."""
    return _choose(value, PartitionPolicy, PARTITION_POLICIES, "partition")


def _choose(value, kind, known, what):
    if isinstance(value, kind):
        return value
    if isinstance(value, str) and value in known:
        return known[value]
    raise ValueError(f"unknown {what} policy {value!r}; choose one of "
                     f"{', '.join(repr(n) for n in known)}")
