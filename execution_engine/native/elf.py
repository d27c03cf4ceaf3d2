"""Reading, validating and rewriting ELF64 relocatable objects.

The linker underneath (LLVM's RuntimeDyld, reached through llvmlite's LLJIT)
runs with assertions enabled in the llvmlite wheel: a malformed object, an
unknown relocation type or a relocation that points outside its section
aborts the process. :class:`ObjectFile` therefore validates every structural
fact the linker relies on and raises :class:`InvalidObjectError` instead.

Rewriting a symbol table is :mod:`.elf_rewrite`'s job.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

from ..errors import InvalidObjectError

EM_X86_64 = 62
EM_AARCH64 = 183

SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_NOBITS = 8
SHT_REL = 9
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_TLS = 0x400

SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF

STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
STT_FILE = 4
STT_COMMON = 5
STT_TLS = 6
STV_DEFAULT = 0
STV_HIDDEN = 2

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
SHDR = struct.Struct("<IIQQQQIIQQ")
SYM = struct.Struct("<IBBHQQ")
_RELA_SIZE = 24

# Relocation types RuntimeDyldELF implements for each machine; anything else
# reaches an llvm_unreachable or a fatal error inside LLVM (R_X86_64_GOTPCREL64,
# 28, is accepted by its parser but not implemented).
_SUPPORTED_RELOCATIONS = {
    EM_X86_64: frozenset(
        {0, 1, 2, 4, 9, 10, 11, 12, 14, 15, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
         29, 41, 42}
    ),
}
# Absolute relocations narrower than a pointer (R_X86_64_32, _32S, _16, _8).
# RuntimeDyld asserts that the address fits, and JIT memory always lies above
# 4 GB, so one of these against anything the object itself defines aborts the
# process. Code gets them from the small/medium/kernel code model with static
# relocation (e.g. ``create_target_machine(codemodel="small")``).
_NARROW_ABSOLUTE_RELOCATIONS = {
    EM_X86_64: {10: "R_X86_64_32", 11: "R_X86_64_32S", 12: "R_X86_64_16", 14: "R_X86_64_8"},
}
# PC-relative relocations with a narrow field (type: width in bits). When the
# target lies in the object's own memory - a symbol it defines, or a GOT entry
# or stub the linker adds (PLT32, GOTPCREL*, GOTPC32) - the distance is
# bounded by the object's size, so only a corrupt addend can overflow it; that
# would abort in RuntimeDyld's range assertion.
_PC_RELATIVE_RELOCATIONS = {EM_X86_64: {2: 32, 4: 32, 9: 32, 15: 8, 26: 32, 41: 32, 42: 32}}
_THROUGH_LINKER = {EM_X86_64: frozenset({4, 9, 26, 41, 42})}
# Relocations for which the linker writes a stub or GOT entry into the memory
# of the section they apply to: in a section that is not loaded (no
# SHF_ALLOC) that memory does not exist and the linker writes through null.
_NEED_LOADED_SECTION = {EM_X86_64: frozenset({4, 9, 25, 26, 27, 28, 29, 41, 42})}
_LINKER_SLACK = 16 << 20  # room for the GOT and stubs the linker adds
# RuntimeDyld adds the 32 bits at the site, unsigned, to the addend of these
# (R_X86_64_PC32, local R_X86_64_PLT32); LLVM and GNU as leave them zero.
_IMPLICIT_ADDEND = {EM_X86_64: frozenset({2, 4})}
# Thread-local relocations (the JIT linker cannot allocate TLS; see below).
_TLS_RELOCATIONS = {EM_X86_64: frozenset(range(16, 24))}
# Allocatable sections bigger than this in total are checked to be mappable:
# RuntimeDyld's memory manager raises a fatal error when mmap fails (say, a
# 1 TB zero-initialised global).
_PROBE_ALLOCATIONS_ABOVE = 64 << 20
_NONE: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


@dataclass(frozen=True, slots=True)
class Symbol:
    index: int
    name: str
    bind: int
    type: int
    visibility: int
    shndx: int
    value: int
    size: int

    @property
    def is_defined(self) -> bool:
        return self.shndx != SHN_UNDEF

    @property
    def is_global(self) -> bool:
        return self.bind in (STB_GLOBAL, STB_WEAK)

    @property
    def is_function(self) -> bool:
        return self.type == STT_FUNC

    @property
    def is_weak(self) -> bool:
        """Weak, or common: a definition another one may replace."""
        return self.bind == STB_WEAK or self.shndx == SHN_COMMON


class ObjectFile:
    """A parsed, validated ELF64 little-endian relocatable object.

    Construction raises :class:`InvalidObjectError` (naming ``name``) unless
    the bytes are a relocatable object for ``machine`` whose headers, symbol
    table, string tables and relocations are all consistent. The instance
    keeps a reference to ``data`` and never mutates it.
    """

    def __init__(self, data: bytes, *, machine: int = EM_X86_64, name: str = "<object>"):
        self.data = bytes(data)
        self.name = name
        self.machine = machine
        self._sections: list[Section] | None = []
        self._symbols: list[Symbol] | None = []
        self.symtab_index = -1
        self._alloc_total = 0
        # symbols defined in sections that are not loaded (rare: a set only then)
        self._unloaded: set[int] | frozenset[int] = _NONE
        # Imports reached by PC-relative relocations the linker resolves directly
        # (no stub or GOT entry): name -> (fewest bits, largest |addend|). Their
        # address must lie within reach of the memory the object is linked into.
        self.near_imports: dict[str, tuple[int, int]] = {}
        try:
            self._parse()
        except InvalidObjectError:
            raise
        except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidObjectError(f"{name}: malformed ELF object ({exc})") from None

    # -- the parsed tables, dropped by compact() -------------------------------

    @property
    def sections(self) -> list[Section]:
        if self._sections is None:
            self._reparse()
        assert self._sections is not None
        return self._sections

    @property
    def symbols(self) -> list[Symbol]:
        if self._symbols is None:
            self._reparse()
        assert self._symbols is not None
        return self._symbols

    def compact(self) -> None:
        """Drop the parsed section and symbol tables (about 3 KB of Python
        objects for a small object); they are parsed again from the bytes
        when next used. The engine calls this for objects it keeps linked."""
        self._sections = self._symbols = None

    def _reparse(self) -> None:
        self._sections, self._symbols = [], []
        self.near_imports = {}
        self._unloaded = _NONE
        self._parse()

    # -- parsing -------------------------------------------------------------

    def _fail(self, why: str) -> None:
        raise InvalidObjectError(f"{self.name}: {why}")

    def _parse(self) -> None:
        data = self.data
        if len(data) < _EHDR.size or data[:4] != b"\x7fELF":
            self._fail("not an ELF object (bad magic or too short)")
        ident = data[:16]
        if ident[4] != 2 or ident[5] != 1:
            self._fail("only 64-bit little-endian ELF objects are supported")
        (_, e_type, e_machine, _, _, _, e_shoff, _, _, _, _, e_shentsize, e_shnum,
         e_shstrndx) = _EHDR.unpack_from(data, 0)
        if e_type != 1:
            self._fail(f"not a relocatable object (ELF type {e_type})")
        if e_machine != self.machine:
            self._fail(f"object is for machine {e_machine}, the engine targets {self.machine}")
        if e_shentsize != SHDR.size or e_shnum == 0 or e_shnum >= SHN_LORESERVE:
            self._fail("bad section header table")
        if e_shoff + e_shnum * SHDR.size > len(data):
            self._fail("section header table lies outside the file")
        raw = [SHDR.unpack_from(data, e_shoff + i * SHDR.size) for i in range(e_shnum)]
        for i, (_, typ, _, _, off, size, link, _, align, _) in enumerate(raw):
            if typ != SHT_NOBITS and off + size > len(data):
                self._fail(f"section {i} lies outside the file")
            if link >= e_shnum:
                self._fail(f"section {i} links to missing section {link}")
            if align & (align - 1):  # LLVM's Align() asserts a power of two
                self._fail(f"section {i} has alignment {align}, which is not a power of two")
        if e_shstrndx >= e_shnum or raw[e_shstrndx][1] != SHT_STRTAB:
            self._fail("missing section name table")
        shstr = self._blob(raw[e_shstrndx])
        for i, (nm, typ, flags, _, off, size, link, info, _, entsize) in enumerate(raw):
            self.sections.append(
                Section(i, _cstring(shstr, nm), typ, flags, off, size, link, info, entsize)
            )
        for sec in self.sections:
            if sec.name == ".eh_frame" and (not sec.flags & SHF_ALLOC or sec.type == SHT_NOBITS):
                # RuntimeDyld registers .eh_frame from memory it never loaded.
                self._fail("section .eh_frame is not loadable (not SHF_ALLOC, or NOBITS)")
        symtabs = [s for s in self.sections if s.type == SHT_SYMTAB]
        if len(symtabs) > 1:
            self._fail("more than one symbol table")
        if symtabs:
            self._parse_symbols(symtabs[0])  # names a thread-local symbol first
        for sec in self.sections:
            if sec.flags & SHF_TLS and sec.flags & SHF_ALLOC:
                # RuntimeDyld's memory manager cannot allocate TLS: fatal error.
                self._fail(f"section {sec.name} holds thread-local storage, which the JIT "
                           "linker does not support")
        self._check_allocatable()
        for sec in self.sections:
            if sec.type == SHT_REL:
                self._fail(f"REL relocations (section {sec.name}) are not supported")
            if sec.type == SHT_RELA:
                self._check_relocations(sec)

    def _blob(self, raw_or_sec: tuple | Section) -> bytes:
        if isinstance(raw_or_sec, Section):
            return self.data[raw_or_sec.offset : raw_or_sec.offset + raw_or_sec.size]
        off, size = raw_or_sec[4], raw_or_sec[5]
        return self.data[off : off + size]

    def _parse_symbols(self, symtab: Section) -> None:
        if symtab.entsize != SYM.size or symtab.size % SYM.size:
            self._fail("bad symbol table entry size")
        strtab = self.sections[symtab.link]
        if strtab.type != SHT_STRTAB:
            self._fail("symbol table does not link to a string table")
        names = self._blob(strtab)
        self.symtab_index = symtab.index
        nsec = len(self.sections)
        for i, (nm, info, other, shndx, value, size) in enumerate(
            SYM.iter_unpack(self._blob(symtab))
        ):
            if shndx == SHN_XINDEX or (nsec <= shndx < SHN_LORESERVE):
                self._fail(f"symbol {i} refers to missing section {shndx}")
            sym = Symbol(i, _cstring(names, nm), info >> 4, info & 0xF, other & 3, shndx, value,
                         size)
            label = f"symbol '{sym.name}'" if sym.name else f"symbol {i}"
            if shndx >= SHN_LORESERVE and shndx not in (SHN_ABS, SHN_COMMON):
                # e.g. SHN_X86_64_LCOMMON: RuntimeDyld finds no section and the
                # lookup of the symbol never completes.
                self._fail(f"{label} has special section index {shndx:#x}, which the JIT "
                           "linker does not support")
            if 0 < shndx < nsec and not self.sections[shndx].flags & SHF_ALLOC:
                if sym.is_global:  # the linker would give it an address in no memory
                    self._fail(f"global {label} is defined in section "
                               f"{self.sections[shndx].name}, which is not loaded (no SHF_ALLOC)")
                if not isinstance(self._unloaded, set):
                    self._unloaded = set()
                self._unloaded.add(i)
            if i and not sym.name and shndx and sym.type not in (STT_SECTION, STT_FILE):
                # RuntimeDyld would enter it as the symbol named '', which
                # relocations against section symbols then resolve to.
                self._fail(f"{label} is defined but has no name")
            if sym.type == STT_COMMON and shndx != SHN_COMMON:
                self._fail(f"{label} has type STT_COMMON but is not in SHN_COMMON")
            if shndx == SHN_COMMON and (value == 0 or value & (value - 1)):
                # its value is its alignment; LLVM's alignTo() asserts a power of two
                self._fail(f"common {label} has alignment {value}, which is not a power of two")
            if sym.type == STT_TLS:
                self._fail(f"{label} is thread-local, which the JIT linker does not support")
            self.symbols.append(sym)

    def _check_relocations(self, rela: Section) -> None:
        if rela.entsize != _RELA_SIZE or rela.size % _RELA_SIZE:
            self._fail(f"bad relocation entry size in {rela.name}")
        if rela.link != self.symtab_index:
            self._fail(f"relocation section {rela.name} does not use the symbol table")
        if not 0 < rela.info < len(self.sections):
            self._fail(f"relocation section {rela.name} applies to missing section {rela.info}")
        target = self.sections[rela.info]
        words = memoryview(self._blob(rela)).cast("Q")
        if not words:
            return
        infos = words[1::3].tolist()
        if max(infos) >> 32 >= len(self.symbols):
            self._fail(f"relocation in {rela.name} refers to a missing symbol")
        supported = _SUPPORTED_RELOCATIONS.get(self.machine)
        if supported is not None:
            unknown = {info & 0xFFFFFFFF for info in infos} - supported
            if unknown:
                self._fail(f"relocation type {min(unknown)} in {rela.name} is not supported "
                           "by the linker")
        offsets = words[0::3].tolist()
        if target.type != SHT_NOBITS and max(offsets) >= target.size:
            self._fail(f"relocation in {rela.name} points outside section {target.name}")
        # The same entries as 32-bit halves: [offset x2, type, symbol, addend x2].
        halves = memoryview(self._blob(rela)).cast("I")
        types, symbols = halves[2::6].tolist(), halves[3::6].tolist()
        nsec = len(self.sections)
        for index in sorted(set(symbols)):
            sym = self.symbols[index]
            # RuntimeDyld reaches an llvm_unreachable for a file symbol or a
            # section symbol without a section, and resolves any other unnamed
            # symbol as address 0.
            if index and (sym.type == STT_FILE
                          or (sym.type == STT_SECTION and not 0 < sym.shndx < nsec)
                          or (sym.type != STT_SECTION and not sym.name)):
                self._fail(f"relocation in {rela.name} refers to symbol {index}, which the JIT "
                           "linker cannot resolve (a file symbol, a section symbol without "
                           "a section, or an unnamed symbol)")
        tls = _TLS_RELOCATIONS.get(self.machine, frozenset()).intersection(types)
        if tls:
            self._fail(f"thread-local relocation type {min(tls)} in {rela.name}: the JIT "
                       "linker does not support thread-local storage")
        if target.flags & SHF_ALLOC:
            self._check_pc_relative(rela, offsets, types, symbols)
        else:
            unloaded = _NEED_LOADED_SECTION.get(self.machine, frozenset()).intersection(types)
            if unloaded:
                self._fail(f"relocation type {min(unloaded)} in {rela.name} needs a stub or GOT "
                           f"entry in section {target.name}, which is not loaded (no SHF_ALLOC)")
        narrow = _NARROW_ABSOLUTE_RELOCATIONS.get(self.machine, {})
        if target.flags & SHF_ALLOC and not narrow.keys().isdisjoint(types):
            for rtype, index in zip(types, symbols, strict=True):
                sym = self.symbols[index]
                if rtype in narrow and (0 < sym.shndx < nsec or sym.shndx == SHN_COMMON):
                    what = f"'{sym.name}'" if sym.name else self.sections[sym.shndx].name
                    self._fail(
                        f"{narrow[rtype]} relocation in {rela.name} against {what}: the code "
                        "needs addresses below 4 GB, but JIT memory lies above; compile with "
                        "the JIT's default code model (codemodel='jitdefault') or reloc='pic'")

    def _check_pc_relative(self, rela: Section, offsets: list[int], types: list[int],
                           symbols: list[int]) -> None:
        """Raise if a PC-relative relocation into the object's own memory cannot reach."""
        pcrel = _PC_RELATIVE_RELOCATIONS.get(self.machine, {})
        present = pcrel.keys() & set(types)
        if not present:
            return
        addends = memoryview(self._blob(rela)).cast("q")[2::3].tolist()
        target = self.sections[rela.info]
        implicit = _IMPLICIT_ADDEND.get(self.machine, frozenset())
        if target.type != SHT_NOBITS and not implicit.isdisjoint(types):
            site = self._blob(target)
            addends = [a + int.from_bytes(site[o:o + 4], "little") if t in implicit else a
                       for o, t, a in zip(offsets, types, addends, strict=True)]
        through = _THROUGH_LINKER.get(self.machine, frozenset())
        if not present <= through:
            for rtype, index, addend in zip(types, symbols, addends, strict=True):
                sym = self.symbols[index]
                if index and sym.shndx == SHN_UNDEF and rtype in pcrel and rtype not in through:
                    fewest, farthest = self.near_imports.get(sym.name, (64, 0))
                    self.near_imports[sym.name] = (min(fewest, pcrel[rtype]),
                                                   max(farthest, abs(addend)))
        # |S - P| <= symbol offset + object size <= 2 * object size
        reach = 2 * self._alloc_total + _LINKER_SLACK
        if (min(pcrel[t] for t in present) == 32 and max(map(abs, addends)) + reach < 1 << 31
                and 0 not in symbols and self._unloaded.isdisjoint(symbols)):
            return  # the common case: nothing can overflow
        nsec = len(self.sections)
        for rtype, index, addend in zip(types, symbols, addends, strict=True):
            bits = pcrel.get(rtype)
            if bits is None:
                continue
            sym = self.symbols[index]
            inside = rtype in through or 0 < sym.shndx < nsec or sym.shndx == SHN_COMMON
            # Symbol 0 is address 0, and a symbol of a section that is not loaded
            # has no address: neither is within reach of JIT memory.
            unreachable = (not index and not inside) or (index in self._unloaded
                                                         and rtype not in through)
            if unreachable or (inside and abs(addend) + reach >= 1 << (bits - 1)):
                what = f"'{sym.name}'" if sym.name else f"symbol {index}"
                self._fail(f"{bits}-bit PC-relative relocation (type {rtype}) in {rela.name} "
                           f"against {what} with addend {addend} cannot reach its target")

    def _check_allocatable(self) -> None:
        """Raise unless the linker can map this object's memory.

        RuntimeDyld raises a fatal error when its memory manager cannot map a
        section, and it zero-fills NOBITS sections and common symbols, so
        more than the machine's RAM cannot be linked either.
        """
        parts = [(s.size, f"section {s.name}") for s in self.sections if s.flags & SHF_ALLOC]
        parts += [(s.size, f"common symbol '{s.name}'") for s in self.symbols
                  if s.shndx == SHN_COMMON]
        total = self._alloc_total = sum(size for size, _ in parts)
        if total <= _PROBE_ALLOCATIONS_ABOVE:
            return
        size, what = max(parts)
        if total > _physical_memory():
            self._fail(f"the object needs {total} bytes of memory ({what} alone {size}), "
                       "more than this machine has")
        try:
            probe = mmap.mmap(-1, total, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, OverflowError, ValueError):
            self._fail(f"the object needs {total} bytes of memory ({what} alone {size}), "
                       "more than can be mapped")
        else:
            probe.close()

    # -- queries -------------------------------------------------------------

    @property
    def allocated_size(self) -> int:
        """Bytes of memory the object's sections and common symbols need."""
        return self._alloc_total

    def defined_globals(self) -> dict[str, Symbol]:
        """Global and weak symbols this object defines (common ones included)."""
        return {s.name: s for s in self.symbols if s.is_global and s.is_defined and s.name}

    def undefined_globals(self) -> dict[str, Symbol]:
        """Symbols this object needs from elsewhere."""
        return {
            s.name: s for s in self.symbols if s.is_global and not s.is_defined and s.name
        }

    def called_definitions(self) -> set[str]:
        """Global functions this object defines that its own code refers to (by
        relocations in executable sections): the calls a linker may bind
        directly."""
        found: set[str] = set()
        for rela in self.sections:
            if (rela.type != SHT_RELA or not rela.size
                    or not self.sections[rela.info].flags & SHF_EXECINSTR):
                continue
            halves = memoryview(self._blob(rela)).cast("I")
            for index in set(halves[3::6].tolist()):
                sym = self.symbols[index]
                if sym.is_function and sym.is_global and sym.is_defined and sym.name:
                    found.add(sym.name)
        return found

    def relocation_sections(self) -> list[Section]:
        """The RELA sections, each applying to section ``info``."""
        return [s for s in self.sections if s.type == SHT_RELA]

    def local_symbol(self, name: str) -> Symbol | None:
        """The first local, named, non-section symbol called ``name``."""
        for s in self.symbols:
            if s.bind == STB_LOCAL and s.name == name and s.type not in (STT_SECTION, STT_FILE):
                return s
        return None

    def sections_named(self, prefix: str) -> list[Section]:
        return [s for s in self.sections if s.name == prefix or s.name.startswith(prefix + ".")]


def reach_error(obj: ObjectFile, imports: dict[str, int], near: int) -> str | None:
    """Why ``obj`` cannot be linked near address ``near`` with ``imports``
    (name -> address), or None: a PC-relative reference to an import that
    lies out of its relocation's reach would be fatal in the linker."""
    reach = 2 * obj._alloc_total + _LINKER_SLACK
    for name, (bits, addend) in obj.near_imports.items():
        address = imports.get(name)
        if address is not None and abs(address - near) + addend + reach >= 1 << (bits - 1):
            return (f"{obj.name}: a {bits}-bit PC-relative reference to '{name}' cannot reach "
                    f"its address {address:#x} from JIT memory (near {near:#x}); compile with "
                    "the JIT's default code model (codemodel='jitdefault') or reloc='pic', or "
                    "map the symbol within 2 GB of JIT memory")
    return None


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return 1 << 64


def _cstring(table: bytes, offset: int) -> str:
    end = table.index(b"\0", offset)
    return table[offset:end].decode("utf-8")


def uses_thread_local(data: bytes) -> bool:
    """Whether ELF64 object ``data`` defines or refers to thread-local storage
    (a TLS section or symbol): what the engine lowers (:mod:`..ir.thread_local`)
    before linking. Reads the section headers and symbol tables only; a
    malformed object answers False (``ObjectFile`` then says what is wrong)."""
    try:
        header = _EHDR.unpack_from(data, 0)
        shoff, shentsize, shnum = header[6], header[11], header[12]
        if shentsize != SHDR.size or not shoff:
            return False
        for i in range(shnum):
            sh = SHDR.unpack_from(data, shoff + i * shentsize)
            if sh[2] & SHF_TLS:
                return True
            if sh[1] == SHT_SYMTAB and sh[9] == SYM.size:
                infos = memoryview(data)[sh[4]:sh[4] + sh[5]].cast("B")[4::SYM.size]
                if any(info & 0xF == STT_TLS for info in infos):
                    return True
    except (struct.error, ValueError, TypeError):
        return False
    return False
