"""elf: parsing objects LLVM emits, and symbol-table rewriting."""

from __future__ import annotations

import struct

import pytest
from conftest import compile_ir, parse_object

from execution_engine import InvalidObjectError
from execution_engine.native import elf, elf_rewrite

SOURCE = """
@g = global i64 5
@w = weak global i64 7
@c = common global i64 0, align 8
@loc = internal global i64 3
@ext = external global i64
declare i64 @imp(i64)
declare extern_weak i64 @wimp(i64)
define i64 @f(i64 %x) {
  %a = call i64 @imp(i64 %x)
  %b = load i64, ptr @loc
  %c = add i64 %a, %b
  ret i64 %c
}
define weak i64 @wf() {
  %v = load i64, ptr @ext
  ret i64 %v
}
define internal i64 @helper() {
  %p = call i64 @wimp(i64 1)
  ret i64 %p
}
define i64 @uses_helper() {
  %r = call i64 @helper()
  ret i64 %r
}
"""


@pytest.fixture(scope="module")
def obj() -> elf.ObjectFile:
    return parse_object(SOURCE, "source")


def test_defined_and_undefined_globals(obj):
    assert set(obj.defined_globals()) == {"f", "wf", "uses_helper", "g", "w", "c"}
    assert set(obj.undefined_globals()) == {"imp", "ext", "wimp"}


def test_symbol_kinds_and_flags(obj):
    d = obj.defined_globals()
    assert d["f"].is_function and not d["f"].is_weak and d["f"].bind == elf.STB_GLOBAL
    assert d["wf"].is_function and d["wf"].is_weak and d["wf"].bind == elf.STB_WEAK
    assert not d["g"].is_function and not d["g"].is_weak
    assert d["w"].is_weak and not d["w"].is_function
    # A common symbol counts as weak (another definition may replace it).
    assert d["c"].shndx == elf.SHN_COMMON and d["c"].is_weak
    u = obj.undefined_globals()
    assert u["wimp"].is_weak and not u["imp"].is_weak
    assert all(not s.is_defined for s in u.values())


def test_locals_are_not_globals(obj):
    assert obj.local_symbol("loc") is not None and obj.local_symbol("helper") is not None
    assert obj.local_symbol("f") is None
    assert "loc" not in obj.defined_globals() and "helper" not in obj.defined_globals()


def test_sections(obj):
    names = [s.name for s in obj.sections]
    assert ".symtab" in names and ".strtab" in names
    assert obj.sections[obj.symtab_index].type == elf.SHT_SYMTAB
    f = obj.defined_globals()["f"]
    text = obj.sections[f.shndx]
    assert text.flags & elf.SHF_ALLOC and f.value + f.size <= text.size
    # Every relocation section applies to an existing section.
    relas = [s for s in obj.sections if s.type == elf.SHT_RELA]
    assert relas and all(0 < s.info < len(obj.sections) for s in relas)


def test_invalid_objects_are_rejected():
    data = compile_ir(SOURCE)
    with pytest.raises(InvalidObjectError, match="bad magic"):
        elf.ObjectFile(b"not an elf file at all" * 4, name="junk")
    with pytest.raises(InvalidObjectError, match="machine"):
        elf.ObjectFile(data, machine=elf.EM_AARCH64)
    with pytest.raises(InvalidObjectError, match="outside the file"):
        elf.ObjectFile(data[: len(data) // 2], name="truncated")


def _changed_offsets(old: bytes, new: bytes) -> set[int]:
    return {i for i in range(len(old)) if old[i] != new[i]}


def _header_field_bytes(obj: elf.ObjectFile, index: int) -> set[int]:
    """Byte offsets of sh_offset and sh_size of section ``index``."""
    e_shoff = struct.unpack_from("<Q", obj.data, 0x28)[0]
    base = e_shoff + index * 64
    return set(range(base + 24, base + 40))


def test_rewrite_without_edits_returns_same_bytes(obj):
    assert elf_rewrite.rewrite(obj) == obj.data


def test_rewrite_preserves_untouched_bytes(obj):
    text = obj.defined_globals()["f"].shndx
    out = elf_rewrite.rewrite(obj, undefine={"g"}, rename={"f": "f.body"}, aliases={"a": (text, 0)})
    assert len(out) > len(obj.data)
    symtab = obj.sections[obj.symtab_index]
    allowed = _header_field_bytes(obj, symtab.index) | _header_field_bytes(obj, symtab.link)
    assert _changed_offsets(obj.data, out) <= allowed
    again = elf.ObjectFile(out)
    for before, after in zip(obj.sections, again.sections, strict=True):
        if before.index not in (symtab.index, symtab.link):
            assert before == after
            assert out[after.offset:after.offset + after.size] == \
                obj.data[before.offset:before.offset + before.size]


def test_rewrite_undefine(obj):
    again = elf.ObjectFile(elf_rewrite.rewrite(obj, undefine={"g", "w", "c"}))
    assert {"g", "w", "c"} <= set(again.undefined_globals())
    assert set(again.defined_globals()) == {"f", "wf", "uses_helper"}
    assert again.undefined_globals()["w"].bind == elf.STB_WEAK
    assert again.undefined_globals()["c"].type == elf.STT_NOTYPE
    # Symbol indices are unchanged, so relocations still name the same symbols.
    assert [s.name for s in again.symbols] == [s.name for s in obj.symbols]


def test_rewrite_rename_in_place(obj):
    again = elf.ObjectFile(elf_rewrite.rewrite(obj, rename={"g": "g2"}))
    old = obj.defined_globals()["g"]
    new = again.defined_globals()["g2"]
    assert "g" not in again.defined_globals() and "g" not in again.undefined_globals()
    assert (new.index, new.shndx, new.value, new.size) == (old.index, old.shndx, old.value,
                                                          old.size)


def test_rewrite_split_into_body_and_reference(obj):
    again = elf.ObjectFile(elf_rewrite.rewrite(obj, undefine={"f"}, rename={"f": "f.body"}))
    old = obj.defined_globals()["f"]
    body = again.defined_globals()["f.body"]
    assert "f" in again.undefined_globals() and "f" not in again.defined_globals()
    assert again.symbols[old.index].name == "f"
    assert (body.shndx, body.value, body.size, body.type) == (old.shndx, old.value, old.size,
                                                              elf.STT_FUNC)


def test_rewrite_aliases(obj):
    helper = obj.local_symbol("helper")
    aliases = {"ee.alias": (helper.shndx, helper.value)}
    again = elf.ObjectFile(elf_rewrite.rewrite(obj, aliases=aliases))
    alias = again.defined_globals()["ee.alias"]
    assert (alias.shndx, alias.value) == (helper.shndx, helper.value)
    assert alias.visibility == elf.STV_HIDDEN and alias.bind == elf.STB_GLOBAL
    assert len(again.symbols) == len(obj.symbols) + 1


def test_rewrite_unknown_name_raises(obj):
    with pytest.raises(KeyError, match="imp"):
        elf_rewrite.rewrite(obj, undefine={"imp"})
    with pytest.raises(KeyError, match="loc"):
        elf_rewrite.rewrite(obj, rename={"loc": "x"})
