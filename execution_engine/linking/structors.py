"""Static constructors and destructors found in objects, and running them.

LLVM lowers ``llvm.global_ctors`` / ``llvm.global_dtors`` into ``.ctors`` /
``.dtors`` sections (``.init_array`` / ``.fini_array`` when the target
machine asks for them) whose entries are relocations to the functions. The
priority is in the section name (``.ctors.N`` holds priority ``65535 - N``,
``.init_array.N`` priority ``N``) and ``.ctors``/``.dtors`` list their
entries in reverse table order. Reading the table from the object works for
objects added directly and for object-cache hits alike.

Order (``llvm.global_ctors`` semantics, which stock MCJIT ignores):
constructors run by ascending priority, in table order within a priority,
modules in the order they were added; destructors run by descending
priority, in table order within a priority.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..native import elf

_KINDS = {".ctors": ("ctor", True), ".init_array": ("ctor", False),
          ".dtors": ("dtor", True), ".fini_array": ("dtor", False)}


@dataclass(frozen=True)
class Structor:
    """One table entry. ``symbol`` is the name to look up after linking."""

    kind: str  # "ctor" or "dtor"
    priority: int
    order: int
    symbol: str


def find_structors(obj: elf.ObjectFile, alias_prefix: str) -> tuple[
        list[Structor], dict[str, tuple[int, int]]]:
    """The structors of ``obj`` and the aliases that export their targets.

    Targets defined in ``obj`` (often local functions) get a hidden global
    alias ``alias_prefix + n`` so their address can be looked up after
    linking; targets defined elsewhere are looked up by name.
    """
    relocations = {s.info: s for s in obj.sections if s.type == elf.SHT_RELA}
    found: list[Structor] = []
    aliases: dict[str, tuple[int, int]] = {}
    for sec in obj.sections:
        base, _, suffix = sec.name.partition(".")[2].partition(".")
        kind_reversed = _KINDS.get("." + base)
        if kind_reversed is None or sec.index not in relocations:
            continue
        if suffix and not suffix.isdigit():
            continue
        kind, reverse = kind_reversed
        if suffix:
            priority = 65535 - int(suffix) if reverse else int(suffix)
        else:
            priority = 65535
        entries = sorted(_entries(obj, relocations[sec.index]))
        if reverse:
            entries.reverse()
        for _, sym, addend in entries:
            if sym.is_defined and sym.shndx < elf.SHN_LORESERVE:
                name = f"{alias_prefix}{len(aliases)}"
                aliases[name] = (sym.shndx, sym.value + addend)
            else:
                name = sym.name
            found.append(Structor(kind, priority, len(found), name))
    return found, aliases


def _entries(obj: elf.ObjectFile, rela: elf.Section) -> Iterable[tuple[int, elf.Symbol, int]]:
    words = memoryview(obj.data[rela.offset : rela.offset + rela.size]).cast("q")
    for k in range(0, len(words), 3):
        yield words[k], obj.symbols[(words[k + 1] & 0xFFFFFFFFFFFFFFFF) >> 32], words[k + 2]


_VOID_FN = ctypes.CFUNCTYPE(None)


def run(entries: Iterable[tuple[int, Structor, int]], kind: str,
        call: Callable[[int], None] | None = None) -> int:
    """Run the ``kind`` entries of ``(set_order, structor, address)`` triples
    in the documented order; return how many ran."""
    chosen = [e for e in entries if e[1].kind == kind]
    if kind == "ctor":
        chosen.sort(key=lambda e: (e[1].priority, e[0], e[1].order))
    else:
        chosen.sort(key=lambda e: (-e[1].priority, e[0], e[1].order))
    for _, _, address in chosen:
        if call is not None:
            call(address)
        else:
            _VOID_FN(address)()
    return len(chosen)
