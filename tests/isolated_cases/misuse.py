"""Misuse cases (asserted by tests/test_misuse.py), each run in a fresh interpreter.

A case does the wrong thing once inside :func:`attempt`, which records the
exception, then returns :func:`report`: the exception's class names and
message, and whether the engine still works afterwards (a new module is
added, finalized and called, and code added before the error is still
callable), with any extra values the test checks.

LLVM's asm parser is deliberately not initialised: a caller who forgets it
must not crash.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import llvmlite.binding as llvm
import llvmlite.ir as ir

import execution_engine as xe
from execution_engine.native import elf

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()

T = TypeVar("T")
Report = dict[str, Any]


def new_tm(**options: Any) -> llvm.TargetMachine:
    return llvm.Target.from_default_triple().create_target_machine(jit=True, **options)


def module(text: str, name: str) -> llvm.ModuleRef:
    m = llvm.parse_assembly(text)
    m.name = name
    return m


def fn(name: str, value: int) -> str:
    return f"define i64 @{name}() {{\n  ret i64 {value}\n}}\n"


def call(address: int) -> int:
    assert address, "null function address"
    return ctypes.CFUNCTYPE(ctypes.c_int64)(address)()


# good()'s address in the engine engine() made last, taken before anything went
# wrong (module state is the case's own: each case has a process to itself).
_good_address = 0


def engine(tm: llvm.TargetMachine | None = None, **options: Any) -> xe.ExecutionEngine:
    """An engine whose module 'base' defines good() = 42, finalized."""
    global _good_address
    ee = xe.create_mcjit_compiler(module(fn("good", 42), "base"), tm or new_tm(), **options)
    ee.finalize_object()
    _good_address = ee.get_function_address("good")
    return ee


def obj_bytes(text: str, **tm_options: Any) -> bytes:
    return bytes(new_tm(**tm_options).emit_object(module(text, "obj")))


@dataclass
class Attempt(Generic[T]):
    """What :func:`attempt` saw: the action's value, or the exception it raised."""

    value: T | None = None
    error: dict[str, Any] | None = field(default=None)


def attempt(action: Callable[[], T]) -> Attempt[T]:
    """Run ``action()``, recording the exception it raises (if any)."""
    try:
        return Attempt(value=action())
    except BaseException as exc:  # noqa: BLE001 - recorded for the test to check
        return Attempt(error={"types": [c.__name__ for c in type(exc).__mro__],
                              "message": str(exc)})


def in_turn(*actions: Callable[[], object]) -> Callable[[], None]:
    """One action doing ``actions`` in order (for :func:`attempt`)."""
    def run() -> None:
        for action in actions:
            action()
    return run


def good_module_works(ee: xe.ExecutionEngine) -> bool:
    """A new module can be added, finalized and called; good() still works,
    through the address taken before the error and through a new lookup."""
    ee.add_module(module(fn("after", 4242), "after"))
    ee.finalize_object()
    assert call(ee.get_function_address("after")) == 4242
    assert call(_good_address) == 42 and call(ee.get_function_address("good")) == 42
    return True


def report(ee: xe.ExecutionEngine, tried: Attempt[Any], **extra: Any) -> Report:
    works: bool | str
    try:
        works = good_module_works(ee)
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        works = f"{type(exc).__name__}: {exc}"
    return {"error": tried.error, "works": works, **extra}


# -- IR modules ------------------------------------------------------------------

NEEDY = """
declare i64 @miss_a()
declare i64 @miss_b()
declare i64 @miss_c()
define i64 @user() {
  %a = call i64 @miss_a()
  %b = call i64 @miss_b()
  %c = call i64 @miss_c()
  %ab = add i64 %a, %b
  %r = add i64 %ab, %c
  ret i64 %r
}
"""


def unresolved_externals_are_all_named_and_can_be_mapped_later() -> Report:
    ee = engine()
    needy = module(NEEDY, "needy")
    ee.add_module(needy)
    tried = attempt(ee.finalize_object)
    # the module stays in the engine; mapping what it misses fixes it
    callbacks = []
    for name, value in (("miss_a", 1), ("miss_b", 20), ("miss_c", 300)):
        callbacks.append(ctypes.CFUNCTYPE(ctypes.c_int64)(lambda v=value: v))
        address = ctypes.cast(callbacks[-1], ctypes.c_void_p).value
        assert address
        ee.add_global_mapping(needy.get_function(name), address)
    ee.finalize_object()
    return report(ee, tried, user=call(ee.get_function_address("user")))


def call_to_unresolved_function_is_prevented() -> Report:
    ee = engine()
    needy = module(NEEDY, "needy")
    ee.add_module(needy)
    tried = attempt(lambda: ee.get_function_address("user"))
    ee.remove_module(needy)
    return report(ee, tried, address=tried.value,
                  after_removal=ee.get_function_address("user"))


CTOR_TABLE = ("@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] "
              "[{ i32, ptr, ptr } { i32 65535, ptr @%s, ptr null }]\n")
CTOR_ONLY = "declare void @ctor_missing()\n" + CTOR_TABLE % "ctor_missing"
CTOR_CALLS = """
@flag = external global i64
declare void @undefined_in_ctor()
define internal void @init() {
  store i64 1, ptr @flag
  call void @undefined_in_ctor()
  ret void
}
""" + CTOR_TABLE % "init"


def unresolved_external_referenced_only_by_static_constructor() -> Report:
    ee = engine()
    bad = module(CTOR_ONLY, "ctor_only")
    ee.add_module(bad)
    tried = attempt(ee.finalize_object)
    ee.remove_module(bad)
    ee.run_static_constructors()
    return report(ee, tried)


def constructor_calling_undefined_function_never_runs() -> Report:
    flag = ctypes.c_int64(0)
    ee = engine()
    bad = module(CTOR_CALLS, "ctor_calls")
    ee.add_module(bad)
    ee.add_global_mapping(bad.get_global_variable("flag"), ctypes.addressof(flag))
    tried = attempt(ee.run_static_constructors)
    ee.remove_module(bad)
    ee.run_static_constructors()
    return report(ee, tried, flag=flag.value)


def module_for_another_target(attribute: str, value: str) -> Report:
    ee = engine()
    foreign = module(fn("foreign", 1), "foreign")
    setattr(foreign, attribute, value)
    tried = attempt(lambda: ee.add_module(foreign))
    # not added, so still the caller's: usable and closable
    str(foreign)
    foreign.close()
    return report(ee, tried, lookup=ee.get_function_address("foreign"))


def ir_that_parses_but_does_not_verify() -> Report:
    # Built with llvmlite.ir: 'entry' uses %y, which is defined in a block that
    # does not dominate it. parse_assembly accepts this; verify() does not.
    i64 = ir.IntType(64)
    m = ir.Module(name="unverified")
    f = ir.Function(m, ir.FunctionType(i64, []), "broken_fn")
    entry, other = f.append_basic_block("entry"), f.append_basic_block("other")
    b = ir.IRBuilder(other)
    y = b.add(ir.Constant(i64, 1), ir.Constant(i64, 2), name="y")
    b.ret(y)
    b.position_at_end(entry)
    b.add(y, ir.Constant(i64, 1), name="x")
    b.branch(other)
    bad = llvm.parse_assembly(str(m))
    bad.name = "unverified"
    ee = engine()
    tried = attempt(lambda: ee.add_module(bad))
    return report(ee, tried, lookup=ee.get_function_address("broken_fn"))


def unresolved_weak_reference_links_as_null() -> Report:
    ee = engine()
    ee.add_module(module("""declare extern_weak i64 @weak_missing()
        define ptr @weak_address() {
          ret ptr @weak_missing
        }""", "weak_mod"))
    tried = attempt(lambda: call(ee.get_function_address("weak_address")))
    return report(ee, tried, address=tried.value)


def inline_asm_without_initializing_the_asm_parser() -> Report:
    # Without llvm.initialize_native_asmparser() code generation of inline asm
    # was a fatal error ("Inline asm not supported by this streamer ...").
    ee = engine()
    ee.add_module(module("""define i64 @asm_seven() {
          %r = call i64 asm "movq $$7, $0", "=r"()
          ret i64 %r
        }""", "asm_mod"))
    tried = attempt(lambda: call(ee.get_function_address("asm_seven")))
    return report(ee, tried, seven=tried.value)


def _finalize_bad_module(ee: xe.ExecutionEngine, text: str, name: str) -> Attempt[None]:
    """Add ``text`` as module ``name``, try to finalize, remove it again."""
    bad = module(text, name)
    ee.add_module(bad)
    tried = attempt(ee.finalize_object)
    ee.remove_module(bad)
    return tried


def invalid_inline_asm() -> Report:
    ee = engine()
    tried = _finalize_bad_module(ee, """define void @bad_asm() {
          call void asm sideeffect "bogus_instruction %eax", ""()
          ret void
        }""", "bad_asm_mod")
    return report(ee, tried)


def intrinsic_of_another_target() -> Report:
    ee = engine()
    bad = module("""declare i64 @llvm.aarch64.get.fpcr()
        define i64 @read_fpcr() {
          %v = call i64 @llvm.aarch64.get.fpcr()
          ret i64 %v
        }""", "foreign_intrinsic")
    tried = attempt(in_turn(lambda: ee.add_module(bad), ee.finalize_object))
    try:
        ee.remove_module(bad)
    except KeyError:  # refused when added
        pass
    return report(ee, tried)


def intrinsic_needing_a_cpu_feature_the_target_machine_lacks() -> Report:
    ee = engine()
    tried = _finalize_bad_module(ee, """
        declare <16 x float> @llvm.x86.avx512.sqrt.ps.512(<16 x float>, i32)
        define <16 x float> @sqrt16(<16 x float> %x) {
          %v = call <16 x float> @llvm.x86.avx512.sqrt.ps.512(<16 x float> %x, i32 4)
          ret <16 x float> %v
        }""", "avx512_mod")
    return report(ee, tried)


def thread_local_variable_runs() -> Report:
    # RuntimeDyld's memory manager cannot allocate TLS ("LLVM ERROR: allocation
    # of TLS not implemented"); the engine lowers TLS to its own per-thread storage.
    ee = engine()
    ee.add_module(module("""@tls_counter = thread_local global i64 5
        define i64 @read_tls() {
          %v = load i64, ptr @tls_counter
          ret i64 %v
        }""", "tlsmod"))
    tried = attempt(lambda: ctypes.CFUNCTYPE(ctypes.c_int64)(
        ee.get_function_address("read_tls"))())
    return report(ee, tried, value=tried.value)


def thread_local_address_in_initializer_is_rejected() -> Report:
    # A thread-local variable has no constant address: refused, naming both.
    ee = engine()
    tried = _finalize_bad_module(ee, """@tls_counter = thread_local global i64 5
        @where = global ptr @tls_counter""", "tlsmod")
    return report(ee, tried)


def global_larger_than_memory_is_rejected() -> Report:
    # A 256 TB zero-initialised global (more than the x86-64 user address
    # space): RuntimeDyld's memory manager cannot map it ("LLVM ERROR: Unable to
    # allocate section memory!").
    ee = engine()
    tried = _finalize_bad_module(ee, """
        @huge = global [281474976710656 x i8] zeroinitializer
        define ptr @get_huge() {
          ret ptr @huge
        }""", "hugemod")
    return report(ee, tried)


def small_code_model_static_code_is_rejected() -> Report:
    # codemodel="small" with static relocation addresses data with 32-bit
    # absolute relocations; JIT memory lies above 4 GB and RuntimeDyld asserts.
    ee = engine(tm=new_tm(codemodel="small", reloc="static"))
    tried = _finalize_bad_module(ee, """@counter = internal global i64 5
        define ptr @counter_address() {
          ret ptr @counter
        }""", "static32")
    return report(ee, tried)


def pc_relative_reference_to_far_mapping() -> Report:
    ee = engine(tm=new_tm(codemodel="small", reloc="static"))
    m = module("""@far_counter = external dso_local global i64
        define i64 @read_far() {
          %v = load i64, ptr @far_counter
          ret i64 %v
        }""", "farmod")
    ee.add_module(m)
    far = m.get_global_variable("far_counter")
    tried = attempt(in_turn(lambda: ee.add_global_mapping(far, 0x1000), ee.finalize_object))
    ee.remove_module(m)
    return report(ee, tried)


def pc_relative_reference_to_near_mapping_links() -> Report:
    ee = engine(tm=new_tm(codemodel="small", reloc="static"))
    m = module("""@near_counter = external dso_local global i64
        define i64 @read_near() {
          %v = load i64, ptr @near_counter
          ret i64 %v
        }""", "nearmod")
    ee.add_module(m)
    near = ctypes.c_int64(41)
    ee.add_global_mapping(m.get_global_variable("near_counter"), ctypes.addressof(near))
    return {"value": call(ee.get_function_address("read_near"))}


# -- object files ----------------------------------------------------------------

OBJECT_SOURCE = """
@data = global i64 7
@shared = common global i64 0, align 8
declare i64 @ext()
define i64 @obj_fn() {
  %a = call i64 @ext()
  %b = load i64, ptr @data
  %c = add i64 %a, %b
  ret i64 %c
}
"""
SMALL_PIC = {"codemodel": "small", "reloc": "pic"}  # PC-relative relocations

Patch = Callable[[bytearray, elf.ObjectFile], bytearray]


@dataclass(frozen=True)
class Corruption:
    """``patch(data, o)`` turns ``data``, a real object that ``o`` parses, into
    the bad object; ``words`` must be in the error message; ``tm_options``
    configure the target machine that compiles the object."""

    patch: Patch
    words: tuple[str, ...]
    tm_options: dict[str, str]


OBJECT_CORRUPTIONS: dict[str, Corruption] = {}


def corruption(name: str, *words: str,
               tm_options: dict[str, str] | None = None) -> Callable[[Patch], Patch]:
    def register(patch: Patch) -> Patch:
        OBJECT_CORRUPTIONS[name] = Corruption(patch, words, tm_options or {})
        return patch
    return register


# Where things are in an elf.ObjectFile `o`, as offsets into its bytes.
def header(o: elf.ObjectFile, name: str) -> int:
    """The section header of section ``name``."""
    e_shoff = struct.unpack_from("<Q", o.data, 0x28)[0]
    return int(e_shoff) + next(s for s in o.sections if s.name == name).index * 64


def symbol(o: elf.ObjectFile, name: str) -> int:
    """The symbol table entry of symbol ``name``."""
    return o.sections[o.symtab_index].offset + next(
        s for s in o.symbols if s.name == name).index * 24


def relocation(o: elf.ObjectFile, *types: int) -> tuple[int, int]:
    """The first RELA entry (of one of ``types``, if given) and the bytes it patches."""
    for rela in (s for s in o.sections if s.type == elf.SHT_RELA):
        for entry in range(rela.offset, rela.offset + rela.size, 24):
            offset, info = struct.unpack_from("<QQ", o.data, entry)
            if not types or info & 0xFFFFFFFF in types:
                return entry, o.sections[rela.info].offset + offset
    raise AssertionError(f"no relocation of type {types}")


@corruption("garbage", "not an ELF")
def _garbage(data: bytearray, o: elf.ObjectFile) -> bytearray:
    return bytearray(b"this is not an object file" * 4)


@corruption("truncated", "outside the file")
def _truncated(data: bytearray, o: elf.ObjectFile) -> bytearray:
    return data[: len(data) // 2]


@corruption("other-machine", "machine 183")
def _other_machine(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<H", data, 18, elf.EM_AARCH64)
    return data


@corruption("unsupported-relocation", "relocation type 200")
def _unsupported_relocation(data: bytearray, o: elf.ObjectFile) -> bytearray:
    data[relocation(o)[0] + 8] = 200
    return data


@corruption("section-headers-past-end", "section header table")
def _section_headers_past_end(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<Q", data, 0x28, len(data) + 4096)
    return data


@corruption("symbol-section-index", "missing section 4660")
def _symbol_section_index(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<H", data, symbol(o, "obj_fn") + 6, 0x1234)
    return data


@corruption("relocation-symbol-index", "missing symbol")
def _relocation_symbol_index(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<I", data, relocation(o)[0] + 12, 999)
    return data


@corruption("section-link-index", "missing section 77")
def _section_link_index(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<I", data, header(o, ".symtab") + 40, 77)
    return data


# The rest aborted, crashed or hung inside LLVM before elf.py checked them.

@corruption("alignment-not-power-of-two", "alignment 3")
def _alignment_not_power_of_two(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<Q", data, header(o, ".ltext") + 48, 3)
    return data


@corruption("common-alignment-not-power-of-two", "'shared'", "alignment 3")
def _common_alignment_not_power_of_two(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<Q", data, symbol(o, "shared") + 8, 3)
    return data


@corruption("common-type-outside-common", "'data'", "STT_COMMON")
def _common_type_outside_common(data: bytearray, o: elf.ObjectFile) -> bytearray:
    data[symbol(o, "data") + 4] = (elf.STB_GLOBAL << 4) | elf.STT_COMMON
    return data


@corruption("reserved-symbol-section-index", "'data'", "0xff05")
def _reserved_symbol_section_index(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<H", data, symbol(o, "data") + 6, 0xff05)
    return data


@corruption("eh-frame-not-loaded", ".eh_frame")
def _eh_frame_not_loaded(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<Q", data, header(o, ".eh_frame") + 8, 0)
    return data


@corruption("code-not-loaded", "'obj_fn'", "not loaded", tm_options=SMALL_PIC)
def _code_not_loaded(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<Q", data, header(o, ".text") + 8, 0)
    return data


@corruption("relocation-against-file-symbol", "cannot resolve")
def _relocation_against_file_symbol(data: bytearray, o: elf.ObjectFile) -> bytearray:
    file_symbol = next(s for s in o.symbols if s.type == elf.STT_FILE)
    struct.pack_into("<I", data, relocation(o)[0] + 12, file_symbol.index)
    return data


@corruption("unimplemented-relocation-type", "relocation type 28")
def _unimplemented_relocation_type(data: bytearray, o: elf.ObjectFile) -> bytearray:
    data[relocation(o)[0] + 8] = 28
    return data


@corruption("thread-local-relocation-type", "thread-local relocation")
def _thread_local_relocation_type(data: bytearray, o: elf.ObjectFile) -> bytearray:
    data[relocation(o)[0] + 8] = 23
    return data


@corruption("pc-relative-addend-out-of-reach", "cannot reach", tm_options=SMALL_PIC)
def _pc_relative_addend_out_of_reach(data: bytearray, o: elf.ObjectFile) -> bytearray:
    struct.pack_into("<q", data, relocation(o, 2)[0] + 16, 1 << 31)
    return data


@corruption("pc-relative-implicit-addend", "cannot reach", tm_options=SMALL_PIC)
def _pc_relative_implicit_addend(data: bytearray, o: elf.ObjectFile) -> bytearray:
    # RuntimeDyld adds the bytes at the site
    struct.pack_into("<I", data, relocation(o, 2)[1], 0xFFFFFFF0)
    return data


def write(data: bytes, name: str) -> str:
    with open(name, "wb") as f:
        f.write(data)
    return os.path.abspath(name)


def bad_object_file(corruption_name: str, how: str) -> Report:
    """Add the corrupted object as bytes (``how == "bytes"``) or as a path."""
    bad = OBJECT_CORRUPTIONS[corruption_name]
    # 'ext' resolves, so an object that gets past the checks is linked
    ext = ctypes.CFUNCTYPE(ctypes.c_int64)(lambda: 35)
    llvm.add_symbol("ext", ctypes.cast(ext, ctypes.c_void_p).value)
    data = bytearray(obj_bytes(OBJECT_SOURCE, **bad.tm_options))
    data = bad.patch(data, elf.ObjectFile(bytes(data)))
    ee = engine()
    obj: bytes | str = bytes(data) if how == "bytes" else write(bytes(data), "corrupt.o")
    tried = attempt(lambda: ee.add_object_file(obj))
    return report(ee, tried, lookup=ee.get_function_address("obj_fn"))


def object_file_path_that_does_not_exist() -> Report:
    ee = engine()
    return report(ee, attempt(lambda: ee.add_object_file("no/such/object.o")))


def non_object_passed_to_add_object_file() -> Report:
    ee = engine()
    return report(ee, attempt(lambda: ee.add_object_file(12345)))


BAD_CACHED_OBJECTS: dict[str, Callable[[bytes], bytes]] = {
    "garbage": lambda compiled: b"\x7fELF" + b"garbage" * 10,
    "truncated": lambda compiled: compiled[:200],
}


def object_cache_returning_bad_bytes(kind: str) -> Report:
    # After the error the module is still pending; once the cache behaves,
    # finalizing compiles it normally.
    compiled = obj_bytes(fn("cached", 7))
    bad = BAD_CACHED_OBJECTS[kind](compiled)
    ee = engine()
    broken = [True]

    def getbuffer(m: llvm.ModuleRef) -> bytes | None:
        return bad if broken[0] and m.name == "cachemod" else None

    ee.set_object_cache(None, getbuffer)
    ee.add_module(module(fn("cached", 7), "cachemod"))
    tried = attempt(ee.finalize_object)
    broken[0] = False
    ee.finalize_object()
    return report(ee, tried, cached=call(ee.get_function_address("cached")))


# -- module bookkeeping ------------------------------------------------------------

def _add_twice(ee: xe.ExecutionEngine) -> tuple[Attempt[None], Report]:
    twice = module(fn("twice", 2), "twice_mod")
    ee.add_module(twice)
    tried = attempt(lambda: ee.add_module(twice))
    return tried, {"twice": call(ee.get_function_address("twice"))}


def _remove_never_added(ee: xe.ExecutionEngine) -> tuple[Attempt[None], Report]:
    stranger = module(fn("stranger", 3), "stranger_mod")
    return attempt(lambda: ee.remove_module(stranger)), {}


def _remove_twice(ee: xe.ExecutionEngine) -> tuple[Attempt[None], Report]:
    gone = module(fn("gone", 4), "gone_mod")
    ee.add_module(gone)
    ee.finalize_object()
    ee.remove_module(gone)
    tried = attempt(lambda: ee.remove_module(gone))
    return tried, {"gone": ee.get_function_address("gone")}


BOOKKEEPING: dict[str, Callable[[xe.ExecutionEngine], tuple[Attempt[None], Report]]] = {
    "add-twice": _add_twice,
    "remove-never-added": _remove_never_added,
    "remove-twice": _remove_twice,
}


def module_bookkeeping(case: str) -> Report:
    ee = engine()
    tried, extra = BOOKKEEPING[case](ee)
    return report(ee, tried, **extra)


def closed_module_passed_to_add_module() -> Report:
    ee = engine()
    closed = module(fn("closed_fn", 5), "closed_mod")
    closed.close()
    return report(ee, attempt(lambda: ee.add_module(closed)))


def non_module_passed_to_add_module() -> Report:
    ee = engine()
    text = "define i64 @f() { ret i64 1 }"
    return report(ee, attempt(lambda: ee.add_module(text)))


def module_owned_by_another_engine() -> Report:
    # Accepting it left this engine unusable once the owner closed (and so
    # disposed of) the module: every finalize_object raised ctypes.ArgumentError.
    owner = xe.create_mcjit_compiler(module(fn("owner_fn", 1), "owner_base"), new_tm())
    shared = module(fn("shared_fn", 5), "shared_mod")
    owner.add_module(shared)
    ee = engine()
    tried = attempt(lambda: ee.add_module(shared))
    owner.close()
    return report(ee, tried)


# -- a closed engine ----------------------------------------------------------------

CLOSED_CALLS: dict[str, Callable[[xe.ExecutionEngine, llvm.ModuleRef, llvm.ValueRef], Any]] = {
    "add_module": lambda ee, base, good: ee.add_module(module(fn("late", 1), "late")),
    "finalize_object": lambda ee, base, good: ee.finalize_object(),
    "get_function_address": lambda ee, base, good: ee.get_function_address("good"),
    "get_global_value_address": lambda ee, base, good: ee.get_global_value_address("good"),
    "remove_module": lambda ee, base, good: ee.remove_module(base),
    "add_global_mapping": lambda ee, base, good: ee.add_global_mapping(good, 1234),
    "set_object_cache": lambda ee, base, good: ee.set_object_cache(None, None),
    "add_object_file": lambda ee, base, good: ee.add_object_file(obj_bytes(fn("late", 1))),
    "run_static_constructors": lambda ee, base, good: ee.run_static_constructors(),
}


def use_after_close(method: str) -> Report:
    base = module(fn("good", 42), "base")
    good_ref = base.get_function("good")
    ee = xe.create_mcjit_compiler(base, new_tm())
    ee.finalize_object()
    ee.close()
    tried = attempt(lambda: CLOSED_CALLS[method](ee, base, good_ref))
    return report(engine(), tried)  # and a new engine works in the same process


# -- global mappings ----------------------------------------------------------------

def global_mapping_for_a_module_not_in_the_engine() -> Report:
    ee = engine()
    other = module("@foreign_var = global i64 0", "other_mod")
    return report(ee, attempt(
        lambda: ee.add_global_mapping(other.get_global_variable("foreign_var"), 1)))


NON_GLOBAL_VALUES: dict[str, Callable[[llvm.ValueRef], llvm.ValueRef]] = {
    "argument": lambda f: list(f.arguments)[0],
    "instruction": lambda f: list(list(f.blocks)[0].instructions)[0],
}


def global_mapping_for_a_non_global_value(kind: str) -> Report:
    ee = engine()
    m = module("""define i64 @with_locals(i64 %the_arg) {
          %the_sum = add i64 %the_arg, 1
          ret i64 %the_sum
        }""", "locals_mod")
    ee.add_module(m)
    value = NON_GLOBAL_VALUES[kind](m.get_function("with_locals"))
    return report(ee, attempt(lambda: ee.add_global_mapping(value, 1234)))


def global_mapping_to_an_impossible_address(address: int) -> Report:
    # The linker took address 0 (and 2**70, truncated) for an unresolved
    # symbol: "LLVM ERROR: Program used external function ... could not be
    # resolved!" killed the process at finalize_object.
    ee = engine()
    m = module("""declare i64 @mapped_ext()
        define i64 @call_mapped() {
          %r = call i64 @mapped_ext()
          ret i64 %r
        }""", "mapped_mod")
    ee.add_module(m)
    ext = m.get_function("mapped_ext")
    tried = attempt(in_turn(lambda: ee.add_global_mapping(ext, address), ee.finalize_object))
    ee.remove_module(m)
    return report(ee, tried)


# -- strict mode, lookups ------------------------------------------------------------

def duplicate_strong_definition_in_strict_mode(batch: str) -> Report:
    # 'separately': the first definition is linked (and its address taken)
    # before the second module comes; 'together': both arrive in one batch.
    ee = engine(strict=True)
    ee.add_module(module(fn("dup", 1), "first"))
    dup = ee.get_function_address("dup") if batch == "separately" else 0
    second = module(fn("dup", 2), "second")
    tried = attempt(in_turn(lambda: ee.add_module(second), ee.finalize_object))
    early = call(dup) if dup else None
    try:
        ee.remove_module(second)
    except KeyError:  # refused when added
        pass
    return report(ee, tried, early=early, dup=call(ee.get_function_address("dup")))


def unknown_name_looks_up_as_zero() -> Report:
    ee = engine()
    tried = attempt(lambda: (ee.get_function_address("no_such_function"),
                             ee.get_global_value_address("no_such_global")))
    return report(ee, tried, addresses=tried.value)
