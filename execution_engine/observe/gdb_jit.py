"""GDB's JIT interface: JIT'd functions by the names their authors gave them.

The linker underneath already registers every object it loads with GDB
(and unregisters it when the memory is freed), so code compiled with debug
information shows its functions and source lines. But the engine renames
each function's body (``f`` -> ``f.__body<N>``, see the RedirectionLayer),
so without debug information GDB knows only the renamed bodies: ``break f``
finds nothing. :class:`GdbJitRegistrar` adds, per linked object, a small
symbol file naming each body ``f`` (no code, only section headers at the
code's run-time addresses and a symbol table), and removes it when the code
is freed.

The interface is a documented C ABI: the process defines a descriptor
``__jit_debug_descriptor`` (version, action, the entry just changed, a
doubly linked list of entries each pointing at an in-memory object file)
and a function ``__jit_debug_register_code`` on which GDB sets a breakpoint;
a JIT edits the list, sets the action, and calls the function. The
linker's own descriptor is private to it (its lock is not reachable), so
this module defines a second one, in a tiny module linked once per process
by its own LLJIT: GDB reads the linker's registration of that module,
finds the two symbols in it and watches them too.

Ownership: the registrar owns the entries and the symbol files; an entry
lives until :meth:`GdbJitRegistrar.unregister`. Thread-safety: every method
takes the registrar's lock. GDB may be attached at any time (it reads the
whole list when it attaches).
"""

from __future__ import annotations

import ctypes
import struct
import threading
from collections.abc import Sequence

import llvmlite.binding as llvm

from .events import CodeFreed, CodeRange, Event, ObjectLinked

JIT_NOACTION, JIT_REGISTER_FN, JIT_UNREGISTER_FN = 0, 1, 2

_DESCRIPTOR_IR = """
@__jit_debug_descriptor = global { i32, i32, ptr, ptr } { i32 1, i32 0, ptr null, ptr null }

define void @__jit_debug_register_code() noinline optnone {
  call void asm sideeffect "", ""()
  ret void
}
"""


class _Entry(ctypes.Structure):
    pass


_Entry._fields_ = [
    ("next_entry", ctypes.POINTER(_Entry)),
    ("prev_entry", ctypes.POINTER(_Entry)),
    ("symfile_addr", ctypes.c_void_p),
    ("symfile_size", ctypes.c_uint64),
]


class _Descriptor(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint32),
        ("action_flag", ctypes.c_uint32),
        ("relevant_entry", ctypes.POINTER(_Entry)),
        ("first_entry", ctypes.POINTER(_Entry)),
    ]


# -- symbol files ------------------------------------------------------------

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
# Each section starts this many bytes before its first function. GDB maps an
# address to one section, and of two that start together it takes the one
# registered first: the linker's own, whose symbols carry the renamed bodies.
# A section starting earlier wins (a byte of padding that precedes page-aligned
# JIT code is all it claims).
_LEAD = 1
_SECTION_GAP = 64  # functions closer than this share a section (alignment padding)
_SHT_SYMTAB, _SHT_STRTAB, _SHT_NOBITS = 2, 3, 8
_SHF_ALLOC_EXEC = 0x2 | 0x4
_GLOBAL_FUNC = (1 << 4) | 2  # STB_GLOBAL, STT_FUNC


def _runs(ranges: Sequence[CodeRange]) -> list[list[CodeRange]]:
    """``ranges`` with a size, by address, split where they stop being adjacent."""
    runs: list[list[CodeRange]] = []
    end = 0
    for r in sorted((r for r in ranges if r.size > 0), key=lambda r: r.start):
        if runs and r.start - end <= _SECTION_GAP:
            runs[-1].append(r)
            end = max(end, r.end)
        else:
            runs.append([r])
            end = r.end
    return runs


def symbol_file(ranges: Sequence[CodeRange], machine: int = 62) -> bytes:
    """An ELF relocatable object with no contents that names ``ranges``:
    one ``SHT_NOBITS`` executable section per run of adjacent ranges, at
    their run-time address (``sh_addr``, less ``_LEAD``), and a global
    function symbol per range (value relative to its section, as in any
    relocatable object)."""
    runs = _runs(ranges)
    strtab = bytearray(b"\0")
    symbols = [_SYM.pack(0, 0, 0, 0, 0, 0)]
    for index, run in enumerate(runs, start=1):
        base = run[0].start - _LEAD
        for r in run:
            symbols.append(_SYM.pack(len(strtab), _GLOBAL_FUNC, 0, index, r.start - base, r.size))
            strtab += r.name.encode("utf-8", "replace") + b"\0"
    symtab = b"".join(symbols)
    shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
    text, sym, str_, shstr = 1, 7, 15, 23  # offsets of the names above
    symtab_at = _EHDR.size
    strtab_at = symtab_at + len(symtab)
    shstrtab_at = strtab_at + len(strtab)
    shoff = (shstrtab_at + len(shstrtab) + 7) & ~7
    symtab_index = len(runs) + 1
    headers = [_SHDR.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    for run in runs:
        start = run[0].start - _LEAD
        size = max(r.end for r in run) - start
        headers.append(_SHDR.pack(text, _SHT_NOBITS, _SHF_ALLOC_EXEC, start, symtab_at, size,
                                  0, 0, 1, 0))
    headers.append(_SHDR.pack(sym, _SHT_SYMTAB, 0, 0, symtab_at, len(symtab), symtab_index + 1,
                              1, 8, _SYM.size))
    headers.append(_SHDR.pack(str_, _SHT_STRTAB, 0, 0, strtab_at, len(strtab), 0, 0, 1, 0))
    headers.append(_SHDR.pack(shstr, _SHT_STRTAB, 0, 0, shstrtab_at, len(shstrtab), 0, 0, 1, 0))
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)  # 64-bit, little-endian, version 1
    header = _EHDR.pack(ident, 1, machine, 1, 0, 0, shoff, 0, _EHDR.size, 0, 0, _SHDR.size,
                        len(headers), len(headers) - 1)
    image = header + symtab + bytes(strtab) + shstrtab
    return image + bytes(shoff - len(image)) + b"".join(headers)


# -- the registrar -------------------------------------------------------------

class GdbJitRegistrar:
    """Registers symbol files with GDB through a descriptor of its own.

    Creating one links the descriptor module (about a millisecond); use
    :func:`gdb_registrar` for the process's shared instance.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self._jit = llvm.create_lljit_compiler()
        self._tracker = (llvm.JITLibraryBuilder().add_ir(_DESCRIPTOR_IR)
                         .export_symbol("__jit_debug_descriptor")
                         .export_symbol("__jit_debug_register_code")
                         .link(self._jit, "execution_engine.gdb_jit"))
        self._descriptor = _Descriptor.from_address(self._tracker["__jit_debug_descriptor"])
        self._notify = ctypes.CFUNCTYPE(None)(self._tracker["__jit_debug_register_code"])
        self._entries: dict[int, tuple[_Entry, ctypes.Array[ctypes.c_char]]] = {}
        self._ids = 0

    def register(self, ranges: Sequence[CodeRange]) -> int:
        """Tell GDB that ``ranges`` are functions; returns the entry's id.
        Ranges without a size are left out; with none left nothing is
        registered and the id is 0."""
        ranges = [r for r in ranges if r.size > 0]
        if not ranges:
            return 0
        image = symbol_file(ranges)
        buffer = ctypes.create_string_buffer(image, len(image))
        entry = _Entry(None, None, ctypes.addressof(buffer), len(image))
        with self._lock:
            first = self._descriptor.first_entry
            if first:
                entry.next_entry = first
                first.contents.prev_entry = ctypes.pointer(entry)
            self._descriptor.first_entry = ctypes.pointer(entry)
            self._ids += 1
            self._entries[self._ids] = (entry, buffer)
            self._announce(entry, JIT_REGISTER_FN)
            return self._ids

    def unregister(self, entry_id: int) -> None:
        """Remove entry ``entry_id`` (unknown ids, and 0, are ignored)."""
        with self._lock:
            found = self._entries.pop(entry_id, None)
            if found is None:
                return
            entry = found[0]
            if entry.prev_entry:
                entry.prev_entry.contents.next_entry = entry.next_entry
            else:
                self._descriptor.first_entry = entry.next_entry
            if entry.next_entry:
                entry.next_entry.contents.prev_entry = entry.prev_entry
            self._announce(entry, JIT_UNREGISTER_FN)

    def entry_count(self) -> int:
        """Entries in the descriptor's list (walked, as GDB walks it)."""
        with self._lock:
            count, node = 0, self._descriptor.first_entry
            while node:
                count += 1
                node = node.contents.next_entry
            return count

    @property
    def descriptor_address(self) -> int:
        return ctypes.addressof(self._descriptor)

    def _announce(self, entry: _Entry, action: int) -> None:
        self._descriptor.relevant_entry = ctypes.pointer(entry)
        self._descriptor.action_flag = action
        self._notify()
        self._descriptor.action_flag = JIT_NOACTION
        self._descriptor.relevant_entry = ctypes.POINTER(_Entry)()


_process_registrar: GdbJitRegistrar | None = None
_process_lock = threading.Lock()


def gdb_registrar() -> GdbJitRegistrar:
    """The process's registrar (created, and its descriptor linked, on first use)."""
    global _process_registrar
    with _process_lock:
        if _process_registrar is None:
            _process_registrar = GdbJitRegistrar()
        return _process_registrar


class GdbJitListener:
    """An event listener: registers each linked object's functions and
    unregisters them when their memory is freed."""

    def __init__(self, registrar: GdbJitRegistrar | None = None):
        self.registrar = registrar if registrar is not None else gdb_registrar()
        self._lock = threading.Lock()
        self._by_start: dict[int, int] = {}  # function start -> entry id
        self._starts: dict[int, list[int]] = {}  # entry id -> its function starts

    def __call__(self, event: Event) -> None:
        if isinstance(event, ObjectLinked):
            entry = self.registrar.register(event.functions)
            if entry:
                starts = [r.start for r in event.functions]
                with self._lock:
                    for start in starts:
                        stale = self._by_start.get(start)
                        if stale is not None:  # memory reused without a CodeFreed
                            self._drop(stale)
                        self._by_start[start] = entry
                    self._starts[entry] = starts
        elif isinstance(event, CodeFreed):
            with self._lock:
                entries = {self._by_start[r.start] for r in event.ranges
                           if r.start in self._by_start}
                for entry in entries:
                    self._drop(entry)

    def _drop(self, entry: int) -> None:
        for start in self._starts.pop(entry, []):
            if self._by_start.get(start) == entry:
                del self._by_start[start]
        self.registrar.unregister(entry)
