"""What every layer shares: the handle that names one added set, the options
it was added with, and the interface every layer offers."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import llvmlite.binding as llvm

_ids = itertools.count(1)


class Handle:
    """Identifies one set of modules or objects as it travels down the stack.

    Every layer keys its own state for the set by the handle; removing the
    handle from the top layer removes that state from every layer below.
    Handles are ordered by creation (``id``): a later add has a larger id.
    """

    __slots__ = ("id", "name", "__weakref__")

    def __init__(self, name: str):
        self.id = next(_ids)
        self.name = name

    def __repr__(self) -> str:
        return f"<Handle {self.id} {self.name!r}>"


@dataclass(frozen=True)
class AddOptions:
    """How a set joins the engine (the same for every layer it passes).

    ``keep_existing_data``: data the engine already defines keeps its storage
    (update semantics). ``reinitialize_data``: such kept storage takes this
    set's initial values. ``replaceable``: the set is freed (under the
    reclamation rule) once nothing it defines is current. ``in_place``:
    code generation may rewrite the module itself (the engine's own
    partitions; the user's modules under ``compile_in_place``) instead of a
    copy. ``eager``: compile when
    emitted even in a lazy stack (a swap needs its body now).
    ``target_machine``: code generation for this set only (another
    optimisation level). ``source``: the module the user added, which
    object-cache hooks receive when a layer above compiles a rewritten copy.
    ``in_process``: compile in this process even when the engine compiles in
    workers (a lazy first call, whose round trip to a worker would cost more
    than the compile).
    """

    keep_existing_data: bool = False
    reinitialize_data: bool = False
    replaceable: bool = False
    in_place: bool = False
    eager: bool = False
    target_machine: llvm.TargetMachine | None = None
    source: llvm.ModuleRef | None = None
    in_process: bool = False


DEFAULT = AddOptions()


class Layer(Protocol):
    """The uniform interface of every layer (the ORC ``Layer`` shape).

    ``add`` queues a set (a module, an object, a deferred module: whatever
    the layer takes); ``emit`` compiles and links queued sets (``None``: all,
    in this layer and below); a set that fails stays queued and the first
    error is raised after the others are linked.
    """

    def add(self, handle: Handle, unit: Any, options: AddOptions = DEFAULT) -> Handle:
        """Queue ``unit`` as the set ``handle``; nothing is compiled yet."""

    def emit(self, handles: Iterable[Handle] | None = None) -> None:
        """Compile and link the given queued sets (all if ``None``)."""

    def remove(self, handle: Handle) -> None:
        """Free every byte the set owns; its symbols become undefined."""

    def is_pending(self, handle: Handle) -> bool:
        """Whether the set is queued here or below and not linked yet."""

    def pending(self) -> list[Handle]:
        """Every queued set, here and below."""

    def find_symbol(self, name: str) -> int | None:
        """A callable address for ``name`` or ``None``."""

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        """Like :meth:`find_symbol`, restricted to one set."""


def add_and_emit(layer: Layer, handle: Handle, unit: Any,
                 options: AddOptions = DEFAULT) -> Handle:
    """``layer.add`` then ``layer.emit`` of that one set; if either fails the
    set is removed again (nothing changes) and the error raised."""
    layer.add(handle, unit, options)
    try:
        layer.emit([handle])
    except BaseException:
        layer.remove(handle)
        raise
    return handle
