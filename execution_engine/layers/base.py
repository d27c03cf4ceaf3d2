"""What every layer shares: the handle that names one added set."""

from __future__ import annotations

import itertools
from typing import Any, Protocol

_ids = itertools.count(1)


class Handle:
    """Identifies one set of modules or objects as it travels down the stack.

    Every layer keys its own state for the set by the handle; removing the
    handle from the top layer removes that state from every layer below.
    """

    __slots__ = ("id", "name", "__weakref__")

    def __init__(self, name: str):
        self.id = next(_ids)
        self.name = name

    def __repr__(self) -> str:
        return f"<Handle {self.id} {self.name!r}>"


class Layer(Protocol):
    """The uniform interface of every layer."""

    def remove(self, handle: Handle) -> None:
        """Free every byte the set owns; its symbols become undefined."""

    def find_symbol(self, name: str) -> int | None:
        """Finalize what must be, return a callable address or ``None``."""

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        """Like :meth:`find_symbol`, restricted to one set."""


def add_and_emit(layer: Any, handle: Handle, module: Any, **options: Any) -> Handle:
    """``layer.add`` then ``layer.emit`` of that one set; if either fails the
    set is removed again (nothing changes) and the error raised."""
    layer.add(handle, module, **options)
    try:
        layer.emit([handle])
    except BaseException:
        layer.remove(handle)
        raise
    return handle
