"""Where a linked object's functions are: (name, start, size) records.

The RedirectionLayer knows where each allocated section of an object was
loaded (one hidden alias per section); the object's symbol table gives
every function's section, offset and size. Together they give each
function's body in memory, under the name the user wrote: the object
handed to the layer is the one before the layer renamed its bodies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..native import elf
from .events import CodeRange

# Internal symbols of lazily compiled modules get a per-module hidden name.
_HIDDEN_PREFIX = re.compile(r"^__ee\.h\d+\.")


def display_name(name: str) -> str:
    """The name a person wrote for ``name`` (``__ee.h3.helper`` -> ``helper``)."""
    return _HIDDEN_PREFIX.sub("", name, count=1) if name.startswith("__ee.h") else name


def code_ranges(obj: elf.ObjectFile, section_bases: Mapping[int, int]) -> list[CodeRange]:
    """The functions ``obj`` defines, at their run-time addresses.

    ``section_bases`` maps a section index of ``obj`` to the address that
    section was loaded at; functions in sections it does not list are left
    out. Local (``static``) functions are included. A function whose symbol
    gives no size gets the distance to the next function of its section
    (or to the section's end). Sorted by address.
    """
    by_section: dict[int, list[elf.Symbol]] = {}
    for sym in obj.symbols:
        if sym.type == elf.STT_FUNC and sym.name and sym.shndx in section_bases:
            by_section.setdefault(sym.shndx, []).append(sym)
    ranges: list[CodeRange] = []
    for index, syms in by_section.items():
        base = section_bases[index]
        section_end = obj.sections[index].size
        syms.sort(key=lambda s: s.value)
        for i, sym in enumerate(syms):
            size = sym.size
            if not size:
                following = [s.value for s in syms[i + 1:] if s.value > sym.value]
                size = (following[0] if following else section_end) - sym.value
            ranges.append(CodeRange(display_name(sym.name), base + sym.value, size))
    ranges.sort(key=lambda r: r.start)
    return ranges


def stub_ranges(stubs: Iterable[tuple[str, int]], size: int = 8) -> list[CodeRange]:
    """Perf/debugger records for stubs given as ``(function name, stub address)``;
    each is named ``stub:<name>``."""
    return [CodeRange(f"stub:{display_name(name)}", address, size) for name, address in stubs]
