"""extract.ModuleView: partitions, shared names, the module index and its staleness rule."""

from __future__ import annotations

import re

import llvmlite.binding as llvm
import pytest

from execution_engine.ir import extract, module_text
from execution_engine.ir.extract import ExtractionError, ModuleView

PREFIX = "__ee.h7."

SOURCE = r"""
%T = type { i32, ptr }
%U = type { %T, i8 }
%Unused = type { i64 }

@counter = internal global i32 0
@table = constant [2 x ptr] [ptr @leaf, ptr @helper]
@.str = private unnamed_addr constant [4 x i8] c"@no\00"
@tls = thread_local global i32 3
@0 = internal global i64 5
@ext = external global i32
@al = alias i32, ptr @counter
$grp = comdat any
@in_comdat = global i32 1, comdat($grp)
@targets = global [1 x ptr] [ptr blockaddress(@jumps, %two)]

declare i32 @printf(ptr, ...)
declare i64 @llvm.smax.i64(i64, i64)

define i32 @leaf(i32 %x) #0 {
  %y = add nsw i32 %x, 1
  ret i32 %y
}

define internal i32 @helper(i32 %x) {
  %v = load i32, ptr @counter
  %s = add i32 %v, %x
  store i32 %s, ptr @counter
  ret i32 %s
}

define i32 @caller(i32 %x) comdat($grp) {
  %a = call i32 @leaf(i32 %x)
  %b = call i32 @helper(i32 %a)
  %c = load i32, ptr @al
  %d = load i64, ptr @0
  %e = call i64 @llvm.smax.i64(i64 %d, i64 1)
  %f = trunc i64 %e to i32
  %g = load i32, ptr @ext
  %h = load i32, ptr @tls
  %p = call i32 (ptr, ...) @printf(ptr @.str, i32 %c)
  %s1 = add i32 %b, %c
  %s2 = add i32 %s1, %f
  %s3 = add i32 %s2, %g
  %s4 = add i32 %s3, %h
  ret i32 %s4
}

define i32 @jumps(i32 %x) {
entry:
  %t = getelementptr [1 x ptr], ptr @targets, i64 0, i64 0
  %addr = load ptr, ptr %t
  indirectbr ptr %addr, [label %one, label %two]
one:
  ret i32 1
two:
  ret i32 2
}

define i32 @uses_type() {
  %u = alloca %U
  %p = getelementptr %U, ptr %u, i32 0, i32 1
  store i8 1, ptr %p
  ret i32 0
}

define <8 x i32> @wide(<8 x i32> %v) {
  ret <8 x i32> %v
}

define preserve_mostcc void @preserving() {
  ret void
}

attributes #0 = { nounwind "frame-pointer"="all" }
"""


@pytest.fixture(autouse=True)
def _llvm() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def module() -> llvm.ModuleRef:
    m = llvm.parse_assembly(SOURCE)
    m.verify()
    return m


def parse(part: extract.Partition) -> llvm.ModuleRef:
    m = llvm.parse_assembly(part.text)
    m.verify()
    return m


def test_function_partition_declares_what_it_refers_to() -> None:
    view = ModuleView(module(), prefix=PREFIX)
    part = view.function_partition("caller")
    m = parse(part)
    assert part.defines == ["caller"]
    assert not m.get_function("caller").is_declaration
    for name in ("leaf", "printf", "llvm.smax.i64"):
        assert m.get_function(name).is_declaration, name
    assert m.get_function("printf").type is not None
    assert "comdat(" not in part.text
    # Attribute groups are written out in place.
    assert 'declare i32 @leaf(i32 %x) nounwind "frame-pointer"="all"' in part.text
    assert "#0" not in part.text
    assert "declare i32 @printf(ptr, ...)" in part.text


def test_locals_get_shared_names_and_externals_keep_theirs() -> None:
    view = ModuleView(module(), prefix=PREFIX)
    part = view.function_partition("caller")
    m = parse(part)
    assert m.get_function(PREFIX + "helper").is_declaration
    assert part.shared == {PREFIX + "helper": "helper", PREFIX + "counter": "counter",
                           PREFIX + "anon.0": "0", PREFIX + ".str": ".str"}
    assert f"@{PREFIX}anon.0 = external global i64" in part.text
    assert "@ext = external global i32" in part.text
    assert "@tls = external thread_local global i32" in part.text
    # The string constant keeps its "@" (not a reference).
    assert 'c"@no\\00"' not in part.text


def test_alias_is_replaced_by_its_aliasee() -> None:
    view = ModuleView(module(), prefix=PREFIX)
    text = view.function_partition("caller").text
    assert "@al" not in text
    assert f"load i32, ptr @{PREFIX}counter" in text
    assert view.alias_target("al") == "ptr @counter"


def test_local_definition_is_hidden_under_its_shared_name() -> None:
    part = ModuleView(module(), prefix=PREFIX).function_partition("helper")
    assert part.defines == [PREFIX + "helper"]
    assert f"define hidden i32 @{PREFIX}helper(" in part.text
    parse(part)


def test_recompile_mode_copies_private_constants() -> None:
    view = ModuleView(module(), prefix=PREFIX, mode="recompile")
    text = view.function_partition("caller").text
    assert '@.str = private unnamed_addr constant [4 x i8] c"@no\\00"' in text
    assert view.mutable


def test_globals_partition_defines_variables_and_blockaddress_functions() -> None:
    part = ModuleView(module(), prefix=PREFIX).globals_partition()
    assert part is not None
    m = parse(part)
    assert part.defines == ["jumps"]  # its block address is in @targets
    assert not m.get_function("jumps").is_declaration
    names = {g.name for g in m.global_variables if not g.is_declaration}
    assert {"table", "tls", "in_comdat", "targets", PREFIX + "counter",
            PREFIX + "anon.0"} <= names
    assert "comdat(" not in part.text


def test_partitions_link_into_one_program() -> None:
    view = ModuleView(module(), prefix=PREFIX)
    globals_part = view.globals_partition()
    assert globals_part is not None
    linked = parse(globals_part)
    for name in ("leaf", "helper", "caller", "wide", "preserving"):
        linked.link_in(parse(view.function_partition(name)))
    linked.verify()
    defined = {f.name for f in linked.functions if not f.is_declaration}
    assert {"leaf", PREFIX + "helper", "caller", "jumps", "wide", "preserving"} <= defined


def test_partition_defines_the_struct_types_it_uses() -> None:
    view = ModuleView(module(), prefix=PREFIX)
    text = view.function_partition("uses_type").text
    # (Named types live in the LLVM context: parsed again, they are renamed %U.1 etc.)
    u = re.search(r"alloca (%U[.\d]*)", text)
    assert u is not None
    t = re.search(re.escape(u.group(1)) + r" = type \{ (%T[.\d]*), i8 \}", text)
    assert t is not None and t.group(1) + " = type { i32, ptr }" in text
    assert "%Unused" not in text
    assert "%Unused" not in view.function_partition("leaf").text
    parse(extract.Partition(text))


def test_missing_function_is_an_extraction_error() -> None:
    view = ModuleView(module(), prefix=PREFIX)
    with pytest.raises(ExtractionError, match="does not define function 'printf'"):
        view.function_partition("printf")


def test_forwardable() -> None:
    view = ModuleView(module(), prefix=PREFIX)
    assert view.forwardable("leaf")
    assert not view.forwardable("wide")  # 256-bit vector argument
    assert not view.forwardable("preserving")
    assert view.forwardable("printf")  # not defined here: nothing to decide


def test_index_gives_the_texts_one_value_prints_give(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("helper", "leaf", "jumps", "wide")  # no alias: nothing needs the index
    monkeypatch.setattr(extract, "PRINT_BUDGET", float("inf"))
    monkeypatch.setattr(extract, "SLOW_PRINT", float("inf"))
    printed = ModuleView(module(), prefix=PREFIX)
    expected = [printed.function_partition(n).text for n in names]
    expected_globals = printed.globals_partition()
    assert printed._index is None

    monkeypatch.setattr(extract, "PRINT_BUDGET", 0.0)  # the first print spends it
    indexed = ModuleView(module(), prefix=PREFIX)
    assert [indexed.function_partition(n).text for n in names] == expected
    assert indexed._index is not None
    got_globals = indexed.globals_partition()
    assert got_globals is not None and expected_globals is not None
    assert got_globals.text == expected_globals.text


def test_one_slow_print_indexes_the_module_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract, "PRINT_BUDGET", float("inf"))
    monkeypatch.setattr(extract, "SLOW_PRINT", float("inf"))
    view = ModuleView(module(), prefix=PREFIX)
    view.function_partition("leaf")
    assert view._index is None  # cheap prints: one value at a time
    monkeypatch.setattr(extract, "SLOW_PRINT", 0.0)  # every print is "slow"
    view = ModuleView(module(), prefix=PREFIX)
    text = view.function_partition("leaf").text
    assert view._index is not None
    assert "define" in text and "@leaf" in text


def test_module_index_spans() -> None:
    m = module()
    index = module_text.ModuleIndex(str(m))
    leaf = index.get("leaf")
    assert leaf is not None and leaf.startswith("define i32 @leaf(i32 %x) #")
    assert leaf.endswith("ret i32 %y\n}\n")
    assert index.header("caller").startswith("define i32 @caller(i32 %x) comdat($grp) {")
    assert index.get("printf") == "declare i32 @printf(ptr, ...)"
    assert index.get("0") == "@0 = internal global i64 5"
    assert index.aliases() == {"al": "ptr @counter"}


class _Prints:
    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.count = 0
        original = llvm.ValueRef.__str__

        def counting(value: llvm.ValueRef) -> str:
            self.count += 1
            return original(value)
        monkeypatch.setattr(llvm.ValueRef, "__str__", counting)


def test_unchanging_module_prints_each_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    view = ModuleView(module(), prefix=PREFIX)
    prints = _Prints(monkeypatch)
    view.function_partition("caller")
    first = prints.count
    view.function_partition("caller")
    view.forwardable("caller")
    assert first > 0 and prints.count == first


def _instcombine(m: llvm.ModuleRef) -> None:
    tm = llvm.Target.from_default_triple().create_target_machine()
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=1))
    mpm = llvm.create_new_module_pass_manager()
    mpm.add_instruction_combine_pass()
    mpm.run(m, pb)


def test_mutable_view_sees_a_function_changed_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    m = llvm.parse_assembly("""
define i32 @f(i32 %x) {
  %a = add i32 %x, 1
  %b = add i32 %a, 2
  ret i32 %b
}
""")
    view = ModuleView(m, prefix=PREFIX, mode="recompile")
    before = view.function_partition("f").text
    assert "add i32 %a, 2" in before
    prints = _Prints(monkeypatch)
    assert view.function_partition("f").text == before
    assert prints.count == 0  # unchanged: the fingerprint matches, nothing is printed

    _instcombine(m)  # folds the two adds into one, in place
    after = view.function_partition("f").text
    assert after != before and "add i32 %x, 3" in after
    assert prints.count == 1
    parse(extract.Partition(after))


def test_mutable_view_sees_a_relinked_function() -> None:
    m = module()
    view = ModuleView(m, prefix=PREFIX, mode="recompile")
    assert "define i32 @leaf(" in view.function_partition("leaf").text
    m.get_function("leaf").linkage = llvm.Linkage.weak_any
    assert "define weak i32 @leaf(" in view.function_partition("leaf").text


def test_mutable_view_follows_a_callee_made_internal() -> None:
    m = module()
    view = ModuleView(m, prefix=PREFIX, mode="recompile")
    assert "declare i32 @leaf(" in view.function_partition("caller").text
    m.get_function("leaf").linkage = llvm.Linkage.internal  # as an internalising pass does
    part = view.function_partition("caller")
    assert f"declare i32 @{PREFIX}leaf(" in part.text
    assert part.shared[PREFIX + "leaf"] == "leaf"
    parse(part)


def test_fingerprint_follows_the_function() -> None:
    m = module()
    fp = module_text.fingerprint(m.get_function("caller"))
    assert fp is not None
    assert fp == module_text.fingerprint(m.get_function("caller"))
    assert fp != module_text.fingerprint(m.get_function("helper"))
