"""The GDB JIT registrar without GDB: the symbol files it builds, its
descriptor list, and registration following linked and freed code.
(GDB itself reads them in tests/test_tools_perf_gdb.py.)"""

from __future__ import annotations

import ctypes

from conftest import make_tm, parse_ir

from execution_engine import create_mcjit_compiler
from execution_engine.native import elf
from execution_engine.observe import CodeFreed, CodeRange, ObjectLinked
from execution_engine.observe.gdb_jit import (
    GdbJitListener,
    GdbJitRegistrar,
    _Descriptor,
    gdb_registrar,
    symbol_file,
)

PROGRAM = """
define i64 @alpha(i64 %x) {
  %y = add i64 %x, 1
  ret i64 %y
}
define i64 @beta(i64 %x) {
  %y = call i64 @alpha(i64 %x)
  ret i64 %y
}
"""


def test_symbol_file_is_a_valid_object_naming_each_range():
    ranges = [CodeRange("f", 0x7F0000001000, 0x20), CodeRange("g", 0x7F0000001020, 0x10),
              CodeRange("far", 0x7F0000100000, 0x8), CodeRange("empty", 0x7F0000200000, 0)]
    obj = elf.ObjectFile(symbol_file(ranges), name="symfile")  # validates the structure
    texts = [s for s in obj.sections if s.name == ".text"]
    assert len(texts) == 2  # adjacent ranges share a section, a far one gets its own
    assert all(s.type == elf.SHT_NOBITS and s.flags & elf.SHF_ALLOC for s in texts)
    headers = obj.data[0x28:0x30]
    shoff = int.from_bytes(headers, "little")
    addrs = [int.from_bytes(obj.data[shoff + 64 * s.index + 16: shoff + 64 * s.index + 24],
                            "little") for s in texts]
    found = {}
    for sym in obj.defined_globals().values():
        section = texts.index(obj.sections[sym.shndx])
        found[sym.name] = (addrs[section] + sym.value, sym.size, sym.is_function)
    assert found == {"f": (0x7F0000001000, 0x20, True), "g": (0x7F0000001020, 0x10, True),
                     "far": (0x7F0000100000, 0x8, True)}


def test_register_and_unregister_keep_the_list_linked():
    registrar = GdbJitRegistrar()
    descriptor = _Descriptor.from_address(registrar.descriptor_address)
    assert descriptor.version == 1
    ids = [registrar.register([CodeRange(f"f{i}", 0x1000 * (i + 1), 16)]) for i in range(4)]
    assert registrar.entry_count() == 4
    registrar.unregister(ids[1])  # middle
    registrar.unregister(ids[3])  # head (the newest is first)
    assert registrar.entry_count() == 2
    node = descriptor.first_entry
    assert not node.contents.prev_entry
    assert ctypes.addressof(node.contents.next_entry.contents.prev_entry.contents) == \
        ctypes.addressof(node.contents)
    registrar.unregister(ids[3])  # unknown now: ignored
    registrar.unregister(ids[0])
    registrar.unregister(ids[2])
    assert registrar.entry_count() == 0 and not descriptor.first_entry
    assert descriptor.action_flag == 0 and not descriptor.relevant_entry
    assert registrar.register([CodeRange("nothing", 0x1000, 0)]) == 0


def test_listener_unregisters_what_is_freed():
    registrar = GdbJitRegistrar()
    listener = GdbJitListener(registrar)
    a = (CodeRange("a", 0x10000, 16), CodeRange("b", 0x10010, 16))
    c = (CodeRange("c", 0x20000, 16),)
    listener(ObjectLinked("m1", a))
    listener(ObjectLinked("m2", c))
    assert registrar.entry_count() == 2
    listener(CodeFreed("m1", a))
    assert registrar.entry_count() == 1
    listener(ObjectLinked("m3", (CodeRange("reused", 0x20000, 16),)))  # no CodeFreed seen
    assert registrar.entry_count() == 1
    listener(CodeFreed("m3", (CodeRange("reused", 0x20000, 16),)))
    assert registrar.entry_count() == 0


def test_engine_code_is_registered_until_freed():
    registrar = gdb_registrar()
    before = registrar.entry_count()
    engine = create_mcjit_compiler(parse_ir(PROGRAM, "base"), make_tm(), grace_period=0)
    engine.add_event_listener(GdbJitListener())
    try:
        extra = parse_ir(PROGRAM.replace("alpha", "gamma").replace("beta", "delta"), "extra")
        engine.add_module(extra)
        engine.finalize_object()
        assert registrar.entry_count() == before + 2
        engine.remove_module(extra)
        assert registrar.entry_count() == before + 1
        engine.update_module(parse_ir(PROGRAM.split("define i64 @beta")[0], "v2"))
        engine.reclaim()
        # the update's object is registered; the base object still holds beta
        # (and, under the default "direct" policy, the copy of the base module
        # linked again through stubs is registered too, if beta calls alpha)
        relinked = engine.stats().relinks
        assert registrar.entry_count() == before + 2 + relinked
        engine.update_module(parse_ir(PROGRAM.split("define i64 @beta")[0], "v3"))
        engine.reclaim()  # v2's body is replaced and freed: its entry goes
        assert registrar.entry_count() == before + 2 + relinked
    finally:
        engine.close()
    assert registrar.entry_count() == before
