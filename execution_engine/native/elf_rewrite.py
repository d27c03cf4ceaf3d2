"""Rewriting an ELF64 relocatable object's symbol table (nothing else).

:func:`rewrite` turns definitions into references, adds global aliases for
local symbols, renames definitions, makes weak definitions strong and
defines absent weak references as 0. That is how the engine routes every
reference to a function through its stub and lets a new object share
storage that already exists. Section contents and relocations are never
touched; the new tables are appended so every other offset stays valid.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from ..errors import InvalidObjectError
from .elf import (
    SHDR,
    SHN_ABS,
    SHN_COMMON,
    SHN_UNDEF,
    STB_GLOBAL,
    STB_WEAK,
    STT_FUNC,
    STT_NOTYPE,
    STV_DEFAULT,
    STV_HIDDEN,
    SYM,
    ObjectFile,
)


def rewrite(
    obj: ObjectFile,
    *,
    undefine: Iterable[str] = (),
    rename: Mapping[str, str] | None = None,
    aliases: Mapping[str, tuple[int, int]] | None = None,
    globalize: Iterable[str] = (),
    absolute: Mapping[str, int] | None = None,
) -> bytes:
    """Return a copy of ``obj``'s bytes with its symbol table edited.

    * ``undefine``: global definitions whose name becomes a reference. The
      bytes stay in their section (unreferenced); every relocation that
      named the symbol now resolves to whatever the linker imports.
    * ``rename``: ``{name: new_name}`` for global definitions. Combined with
      ``undefine`` of the same name this splits a definition into a body
      (under ``new_name``) and references to ``name`` (e.g. a stub).
    * ``aliases``: ``{new_name: (section_index, offset)}`` adds hidden
      global symbols, e.g. to export a local constructor.
    * ``globalize``: weak global definitions that become strong (binding
      ``STB_GLOBAL``).
    * ``absolute``: ``{name: value}`` for references that become weak absolute
      definitions (an ``extern_weak`` reference nobody defines is 0; the
      linker would call an unresolved reference fatal).

    Only the symbol and string tables change; they move to the end of the
    file so that every other offset stays valid.
    """
    rename = dict(rename or {})
    aliases = dict(aliases or {})
    undefine = set(undefine)
    globalize = set(globalize)
    absolute = dict(absolute or {})
    if not (undefine or rename or aliases or globalize or absolute):
        return obj.data
    symtab = obj.sections[obj.symtab_index]
    strtab = obj.sections[symtab.link]
    table = bytearray(obj.data[symtab.offset : symtab.offset + symtab.size])
    names = bytearray(obj.data[strtab.offset : strtab.offset + strtab.size])

    def add_name(text: str) -> int:
        pos = len(names)
        names.extend(text.encode("utf-8") + b"\0")
        return pos

    by_name = obj.defined_globals()
    for name in undefine | set(rename):
        if name not in by_name:
            raise KeyError(f"{obj.name} does not define '{name}'")
    for name, sym in by_name.items():
        off = sym.index * SYM.size
        if name in globalize:
            table[off + 4] = (STB_GLOBAL << 4) | sym.type
        if name in rename and name in undefine:
            # The body moves to a new symbol; the old index stays a reference.
            table.extend(
                SYM.pack(add_name(rename[name]), (STB_GLOBAL << 4) | sym.type,
                          sym.visibility, sym.shndx, sym.value, sym.size)
            )
        elif name in rename:
            struct.pack_into("<I", table, off, add_name(rename[name]))
        if name in undefine:
            bind = STB_WEAK if sym.bind == STB_WEAK else STB_GLOBAL
            typ = STT_NOTYPE if sym.shndx == SHN_COMMON else sym.type
            name_offset = struct.unpack_from("<I", table, off)[0]
            SYM.pack_into(table, off, name_offset, (bind << 4) | typ, sym.visibility,
                           SHN_UNDEF, 0, 0)
    for name, sym in obj.undefined_globals().items():
        if name in absolute:
            off = sym.index * SYM.size
            name_offset = struct.unpack_from("<I", table, off)[0]
            SYM.pack_into(table, off, name_offset, (STB_WEAK << 4) | STT_NOTYPE, STV_DEFAULT,
                           SHN_ABS, absolute[name], 0)
    for alias, (shndx, value) in aliases.items():
        if not (0 < shndx < len(obj.sections) and 0 <= value <= obj.sections[shndx].size):
            # e.g. a constructor table entry whose addend points elsewhere
            raise InvalidObjectError(
                f"{obj.name}: symbol '{alias}' would lie outside section {shndx} "
                f"(offset {value})")
        table.extend(SYM.pack(add_name(alias), (STB_GLOBAL << 4) | STT_FUNC, STV_HIDDEN,
                               shndx, value, 0))

    out = bytearray(obj.data)
    out.extend(b"\0" * (-len(out) % 8))
    symtab_off = len(out)
    out.extend(table)
    strtab_off = len(out)
    out.extend(names)
    _patch_section(out, symtab.index, symtab_off, len(table))
    _patch_section(out, strtab.index, strtab_off, len(names))
    return bytes(out)


def _patch_section(out: bytearray, index: int, offset: int, size: int) -> None:
    e_shoff = struct.unpack_from("<Q", out, 0x28)[0]
    base = e_shoff + index * SHDR.size
    struct.pack_into("<QQ", out, base + 24, offset, size)
