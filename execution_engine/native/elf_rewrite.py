"""Rewriting an ELF64 relocatable object's symbol table (and, to share
sections with an earlier copy of the object, its relocations).

:func:`rewrite` turns definitions into references, adds global aliases for
local symbols, renames definitions, makes weak definitions strong and
defines absent weak references as 0. That is how the engine routes every
reference to a function through its stub and lets a new object share
storage that already exists. With ``shared`` it also makes a second copy of
an object use the first copy's writable sections (the re-link of
:mod:`..linking.relink`): those sections are not loaded again, and the
relocations that reached them through local symbols reach the first copy's
memory instead. Section contents are never touched; new tables are
appended so every other offset stays valid.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from ..errors import InvalidObjectError
from .elf import (
    SHDR,
    SHF_ALLOC,
    SHN_ABS,
    SHN_COMMON,
    SHN_UNDEF,
    STB_GLOBAL,
    STB_LOCAL,
    STB_WEAK,
    STT_FUNC,
    STT_NOTYPE,
    STV_DEFAULT,
    STV_HIDDEN,
    SYM,
    ObjectFile,
)

RELA = struct.Struct("<QQq")


def rewrite(
    obj: ObjectFile,
    *,
    undefine: Iterable[str] = (),
    rename: Mapping[str, str] | None = None,
    aliases: Mapping[str, tuple[int, int]] | None = None,
    globalize: Iterable[str] = (),
    absolute: Mapping[str, int] | None = None,
    shared: Mapping[int, str] | None = None,
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

    * ``shared``: ``{section_index: name}`` for allocatable sections the
      object shares with a copy of it already in memory. Each such section
      loses ``SHF_ALLOC`` (it is not loaded), relocations applying to it are
      dropped, and every other relocation that refers to it through a local
      or section symbol refers instead to a new global reference ``name``
      (its offset added to the addend): the linker imports ``name`` as the
      section's address in the earlier copy. Global symbols defined in a
      shared section must be in ``undefine``.

    The symbol and string tables (and rewritten relocation tables) move to
    the end of the file so that every other offset stays valid.
    """
    rename = dict(rename or {})
    aliases = dict(aliases or {})
    undefine = set(undefine)
    globalize = set(globalize)
    absolute = dict(absolute or {})
    shared = dict(shared or {})
    if not (undefine or rename or aliases or globalize or absolute or shared):
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

    imported = {}
    for shndx, name in shared.items():
        if not obj.sections[shndx].flags & SHF_ALLOC:
            raise ValueError(f"{obj.name}: section {shndx} is not loaded; it cannot be shared")
        imported[shndx] = len(table) // SYM.size
        table.extend(SYM.pack(add_name(name), (STB_GLOBAL << 4) | STT_NOTYPE, STV_DEFAULT,
                               SHN_UNDEF, 0, 0))
    for name, sym in by_name.items():
        if sym.shndx in shared and name not in undefine:
            raise ValueError(f"{obj.name}: '{name}' is defined in shared section "
                             f"{sym.shndx}; it must become a reference")

    # The output is the input with new tables appended and its section header
    # table patched in place: joined from views, so the object (megabytes for a
    # big module) is copied once.
    data = memoryview(obj.data)
    e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
    headers_end = e_shoff + len(obj.sections) * SHDR.size
    headers = bytearray(data[e_shoff:headers_end])
    tail = bytearray()
    size = len(data)

    def append(blob: bytes | bytearray) -> int:
        tail.extend(b"\0" * (-(size + len(tail)) % 8))
        offset = size + len(tail)
        tail.extend(blob)
        return offset

    relocations = _share_relocations(obj, shared, imported) if shared else {}
    for index, entries in relocations.items():
        _patch_section(headers, index, append(entries), len(entries))
    _patch_section(headers, symtab.index, append(table), len(table))
    strtab_off = size + len(tail)
    tail.extend(names)
    _patch_section(headers, strtab.index, strtab_off, len(names))
    for shndx in shared:
        _clear_alloc(headers, shndx)
    return b"".join((data[:e_shoff], headers, data[headers_end:], tail))


def _share_relocations(obj: ObjectFile, shared: Mapping[int, str],
                       imported: Mapping[int, int]) -> dict[int, bytes]:
    """New contents of the relocation sections ``shared`` changes (see rewrite)."""
    changed: dict[int, bytes] = {}
    for rela in obj.relocation_sections():
        if rela.info in shared:
            changed[rela.index] = b""  # the section is not loaded: nothing to relocate
            continue
        entries = bytearray(obj.data[rela.offset : rela.offset + rela.size])
        touched = False
        for at in range(0, len(entries), RELA.size):
            offset, info, addend = RELA.unpack_from(entries, at)
            sym = obj.symbols[info >> 32]
            if sym.bind == STB_LOCAL and sym.shndx in shared:
                info = (imported[sym.shndx] << 32) | (info & 0xFFFFFFFF)
                RELA.pack_into(entries, at, offset, info, addend + sym.value)
                touched = True
        if touched:
            changed[rela.index] = bytes(entries)
    return changed


def _clear_alloc(headers: bytearray, index: int) -> None:
    base = index * SHDR.size
    flags = struct.unpack_from("<Q", headers, base + 8)[0]
    struct.pack_into("<Q", headers, base + 8, flags & ~SHF_ALLOC)


def _patch_section(headers: bytearray, index: int, offset: int, size: int) -> None:
    """Section ``index`` of the section header table ``headers`` now lies at
    ``offset`` (``size`` bytes)."""
    base = index * SHDR.size
    struct.pack_into("<QQ", headers, base + 24, offset, size)
