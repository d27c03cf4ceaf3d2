"""Tests of execution_engine.partition: every partition must parse and verify on
its own, and the globals partition plus one partition per function (or comdat
group), JIT-compiled as separate modules into one MCJIT engine, must compute
what the unpartitioned module computes."""

from __future__ import annotations

import ctypes
import re

import llvmlite.binding as llvm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution_engine.partition import FunctionInfo, ModulePartitioner

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()

_TM = llvm.Target.from_default_triple().create_target_machine()
_HEADER = f'target datalayout = "{_TM.target_data}"\ntarget triple = "{_TM.triple}"\n'
PREFIX = "__part."


def canonical(ir: str) -> str:
    """The module as LLVM prints it (what the partitioner is given)."""
    return str(parse(_HEADER + ir))


def parse(text: str) -> llvm.ModuleRef:
    try:
        module = llvm.parse_assembly(text)
        module.verify()
    except RuntimeError as exc:  # pragma: no cover - shows the offending partition
        raise AssertionError(f"{exc}\n--- partition ---\n{text}") from None
    return module


def defined(text: str) -> set[str]:
    return {f.name for f in parse(text).functions if not f.is_declaration}


def split(ir: str, groups: list[set[str]] | None = None) -> tuple[ModulePartitioner, list[str]]:
    """Partition ``ir``: the globals partition, then one partition per group
    (default: per comdat group, every other function alone). Checks that each
    partition verifies and that, linked together, they define each symbol once."""
    p = ModulePartitioner(canonical(ir), promote_prefix=PREFIX)
    if groups is None:
        groups = p.comdat_groups()
        grouped = set().union(*groups)
        groups += [{f} for f in p.functions if f not in grouped]
    texts = [p.globals_partition()] + [p.partition(g) for g in groups]
    linked = parse(texts[0])
    for text in texts[1:]:
        linked.link_in(parse(text))
    linked.verify()
    return p, texts


def jit(texts: list[str]) -> llvm.ExecutionEngine:
    """One MCJIT engine with every text added as a separate module."""
    target_machine = llvm.Target.from_default_triple().create_target_machine()
    engine = llvm.create_mcjit_compiler(parse(texts[0]), target_machine)  # takes ownership
    for text in texts[1:]:
        engine.add_module(parse(text))
    engine.finalize_object()
    engine.run_static_constructors()
    return engine


def call(engine: llvm.ExecutionEngine, name: str, *args: int) -> int:
    address = engine.get_function_address(name)
    assert address, name
    func = ctypes.CFUNCTYPE(ctypes.c_int64, *[ctypes.c_int64] * len(args))(address)
    return int(func(*args))


def check_same(
    ir: str, name: str = "main", *args: int, groups: list[set[str]] | None = None
) -> int:
    """Run ``name`` in the whole module and in its partitions; return the common result."""
    whole = call(jit([canonical(ir)]), name, *args)
    parts = call(jit(split(ir, groups)[1]), name, *args)
    assert parts == whole
    return whole


def test_calls_recursion_and_mutual_recursion_across_partitions() -> None:
    ir = """
    define i64 @fib(i64 %n) {
    entry:
      %small = icmp slt i64 %n, 2
      br i1 %small, label %done, label %rec
    rec:
      %a = sub i64 %n, 1
      %b = sub i64 %n, 2
      %fa = call i64 @fib(i64 %a)
      %fb = call i64 @fib(i64 %b)
      %s = add i64 %fa, %fb
      ret i64 %s
    done:
      ret i64 %n
    }
    define internal i1 @even(i64 %n) {
      %z = icmp eq i64 %n, 0
      br i1 %z, label %yes, label %no
    yes:
      ret i1 true
    no:
      %m = sub i64 %n, 1
      %r = call i1 @odd(i64 %m)
      ret i1 %r
    }
    define private i1 @odd(i64 %n) {
      %z = icmp eq i64 %n, 0
      br i1 %z, label %yes, label %no
    yes:
      ret i1 false
    no:
      %m = sub i64 %n, 1
      %r = call i1 @even(i64 %m)
      ret i1 %r
    }
    define i64 @main() {
      %f = call i64 @fib(i64 20)
      %e = call i1 @even(i64 7)
      %ez = zext i1 %e to i64
      %r = add i64 %f, %ez
      ret i64 %r
    }
    """
    assert check_same(ir) == 6765
    p, texts = split(ir)
    assert p.promoted() == {"even": PREFIX + "even", "odd": PREFIX + "odd"}
    assert p.functions["fib"].callees == {"fib"}
    assert p.functions["even"].callees == {"odd"}
    assert p.functions["main"].callees == {"fib", "even"}
    assert "define hidden i1 @__part.even(" in p.partition(["even"])
    assert "declare hidden i1 @__part.odd(" in p.partition(["even"])
    # several functions in one partition: defined exactly, the rest declared
    both = p.partition(["even", "odd"])
    assert defined(both) == {PREFIX + "even", PREFIX + "odd"}
    assert check_same(ir, groups=[{"even", "odd"}, {"fib", "main"}]) == 6765


def test_local_unnamed_and_quoted_names() -> None:
    ir = r"""
    @0 = private unnamed_addr constant [4 x i8] c"abc\00"
    @"a b" = internal global i64 40
    @"only.globals" = internal global ptr @"a b"
    @"ref" = global ptr @"only.globals"
    define i64 @"\01foo"(i64 %x) {
      %v = load i64, ptr @"a b"
      %r = add i64 %x, %v
      ret i64 %r
    }
    define internal i64 @1(i64 %x) {
      %c = load i8, ptr @0
      %w = zext i8 %c to i64
      %r = add i64 %x, %w
      ret i64 %r
    }
    define internal i64 @"we\22ird name"(i64 %x) {
      %r = call i64 @1(i64 %x)
      ret i64 %r
    }
    define i64 @main() {
      %a = call i64 @"\01foo"(i64 2)
      %b = call i64 @"we\22ird name"(i64 %a)
      ret i64 %b
    }
    """
    assert check_same(ir) == 42 + ord("a")
    p, texts = split(ir)
    assert set(p.functions) == {"\x01foo", "1", 'we"ird name', "main"}
    promoted = p.promoted()
    # shared locals and unnamed values are renamed; a local used only by
    # other globals stays local; the \01 marker stays in front
    assert promoted["0"] == PREFIX + "0" and promoted["1"] == PREFIX + "1"
    assert promoted["a b"] == PREFIX + "a b"
    assert promoted['we"ird name'] == PREFIX + 'we"ird name'
    assert "only.globals" not in promoted and "\x01foo" not in promoted
    assert '@"__part.we\\22ird name"' in p.partition(['we"ird name'])
    assert "@only.globals = internal global" in texts[0]
    assert '@"__part.a b" = hidden global i64 40' in texts[0]
    assert '@"\\01foo"' in p.partition(["main"])
    engine = jit(texts)
    assert call(engine, "foo", 1) == 41  # \01 means "do not mangle"


def test_function_pointer_tables_and_constant_expressions() -> None:
    ir = """
    %pair = type { i64, ptr }
    @data = internal global [4 x i64] [i64 1, i64 2, i64 3, i64 4]
    @third = global ptr getelementptr inbounds ([4 x i64], ptr @data, i64 0, i64 2)
    @addr = global i64 ptrtoint (ptr @data to i64)
    @table = internal constant [2 x ptr] [ptr @twice, ptr @square]
    @pair = global %pair { i64 7, ptr @table }
    define internal i64 @twice(i64 %x) {
      %r = mul i64 %x, 2
      ret i64 %r
    }
    define private i64 @square(i64 %x) {
      %r = mul i64 %x, %x
      ret i64 %r
    }
    define i64 @main() {
      %tp = getelementptr %pair, ptr @pair, i64 0, i32 1
      %t = load ptr, ptr %tp
      %fp = getelementptr [2 x ptr], ptr %t, i64 0, i64 1
      %f = load ptr, ptr %fp
      %p3 = load ptr, ptr @third
      %v3 = load i64, ptr %p3
      %sq = call i64 %f(i64 %v3)
      %g = load ptr, ptr getelementptr inbounds ([2 x ptr], ptr @table, i64 0, i64 0)
      %tw = call i64 %g(i64 %sq)
      %a = load i64, ptr @addr
      %same = icmp eq i64 %a, ptrtoint (ptr @data to i64)
      %s = zext i1 %same to i64
      %r = add i64 %tw, %s
      ret i64 %r
    }
    """
    assert check_same(ir) == 19
    p, texts = split(ir)
    assert "declare hidden i64 @__part.twice(i64 %x)" in texts[0]
    assert "[ptr @__part.twice, ptr @__part.square]" in texts[0]
    assert "@__part.table = external hidden constant [2 x ptr]" in p.partition(["main"])


def test_aliases() -> None:
    ir = """
    @g = internal global i64 5
    @ga = alias i64, ptr @g
    @gb = internal alias i64, getelementptr (i8, ptr @g, i64 0)
    define internal i64 @inc(i64 %x) {
      %r = add i64 %x, 1
      ret i64 %r
    }
    @fa = alias i64 (i64), ptr @inc
    @fb = internal alias i64 (i64), ptr @fa
    define i64 @main() {
      %v = load i64, ptr @ga
      %w = load i64, ptr @gb
      %a = call i64 @fa(i64 %v)
      %b = call i64 @fb(i64 %w)
      %r = add i64 %a, %b
      ret i64 %r
    }
    """
    assert check_same(ir) == 12
    p, texts = split(ir)
    # variable aliases live in the globals partition, function aliases with
    # their function (an alias must point to a definition)
    assert "@g = internal global i64 5" in texts[0]  # only aliases refer to it
    assert "@ga = alias i64, ptr @g" in texts[0]
    assert "@__part.gb = hidden alias i64, ptr @g" in texts[0]
    inc = p.partition(["inc"])
    assert "define internal i64 @inc(" in inc  # referred to by its aliases only
    assert "@fa = alias i64 (i64), ptr @inc" in inc
    assert "@__part.fb = hidden alias i64 (i64), ptr @fa" in inc
    main = p.partition(["main"])
    assert "declare i64 @fa(i64)" in main and "declare hidden i64 @__part.fb(i64)" in main
    assert "@ga = external global i64" in main


def test_ifunc_goes_with_its_resolver() -> None:
    ir = """
    define internal i64 @impl(i64 %x) {
      %r = add i64 %x, 5
      ret i64 %r
    }
    define internal ptr @resolve() {
      ret ptr @impl
    }
    @chosen = ifunc i64 (i64), ptr @resolve
    define i64 @main() {
      %r = call i64 @chosen(i64 1)
      ret i64 %r
    }
    """
    assert check_same(ir) == 6
    p, texts = split(ir)
    assert "ifunc" not in texts[0]
    assert "@chosen = ifunc i64 (i64), ptr @resolve" in p.partition(["resolve"])
    assert "declare i64 @chosen(i64)" in p.partition(["main"])


def test_linkages() -> None:
    ir = """
    @common = common global i64 0, align 8
    @weakvar = weak global i64 3
    @odrvar = linkonce_odr global i64 4
    @environ = available_externally global ptr null
    define weak i64 @weakf() {
      ret i64 10
    }
    define linkonce_odr i64 @odrf() {
      ret i64 20
    }
    define available_externally i64 @labs(i64 %x) {
      ret i64 12345
    }
    declare extern_weak i64 @llabs(i64)
    define i64 @main() {
      store i64 100, ptr @common
      %c = load i64, ptr @common
      %w = load i64, ptr @weakvar
      %o = load i64, ptr @odrvar
      %f = call i64 @weakf()
      %g = call i64 @odrf()
      %h = call i64 @labs(i64 -1000)
      %i = call i64 @llabs(i64 -2000)
      %e = load ptr, ptr @environ
      %has_env = icmp ne ptr %e, null
      %j = zext i1 %has_env to i64
      %s1 = add i64 %c, %w
      %s2 = add i64 %s1, %o
      %s3 = add i64 %s2, %f
      %s4 = add i64 %s3, %g
      %s5 = add i64 %s4, %h
      %s6 = add i64 %s5, %i
      %s7 = add i64 %s6, %j
      ret i64 %s7
    }
    """
    p, texts = split(ir)
    assert "labs" not in p.functions  # available_externally: a declaration
    assert p.functions["odrf"].linkage == "linkonce_odr"
    assert p.functions["weakf"].linkage == "weak"
    assert p.functions["main"].linkage == ""
    assert "define weak_odr i64 @odrf()" in p.partition(["odrf"])
    assert "@odrvar = weak_odr global i64 4" in texts[0]
    main = p.partition(["main"])
    assert "declare i64 @labs(i64 %x)" in main
    assert "declare extern_weak i64 @llabs(i64)" in main
    assert "@common = external global i64, align 8" in main
    assert "@environ = external global ptr\n" in main
    assert "@environ" not in texts[0] and "@labs" not in texts[0]
    # labs, llabs and environ come from the C library
    assert check_same(ir) == 3138


def test_comdats() -> None:
    ir = """
    $pair = comdat any
    $solo = comdat any
    $lonely = comdat any
    @pv = linkonce_odr global i64 1, comdat($pair)
    define linkonce_odr i64 @first() comdat($pair) {
      %r = call i64 @second()
      ret i64 %r
    }
    define linkonce_odr i64 @second() comdat($pair) {
      %v = load i64, ptr @pv
      ret i64 %v
    }
    define internal i64 @solo() comdat {
      ret i64 2
    }
    define i64 @main() {
      %a = call i64 @first()
      %b = call i64 @solo()
      %r = add i64 %a, %b
      ret i64 %r
    }
    """
    assert check_same(ir) == 3
    p, texts = split(ir)
    assert p.comdat_groups() == [{"first", "second"}]
    with pytest.raises(ValueError, match="partitioned together"):
        p.partition(["first"])
    pair = p.partition(["first", "second"])
    assert "$pair = comdat any" in pair and "$solo" not in pair
    assert "$pair = comdat any" in texts[0] and "$solo" not in texts[0]
    assert "$lonely" not in "".join(texts)
    # a promoted comdat member keeps its comdat under the old name
    assert "define hidden i64 @__part.solo() comdat($solo)" in p.partition(["solo"])


def test_blockaddress_and_indirectbr() -> None:
    ir = """
    @targets = internal constant [2 x ptr] [ptr blockaddress(@dispatch, %one),
                                            ptr blockaddress(@dispatch, %two)]
    define i64 @dispatch(i64 %i) {
    entry:
      %p = getelementptr [2 x ptr], ptr @targets, i64 0, i64 %i
      %t = load ptr, ptr %p
      indirectbr ptr %t, [label %one, label %two]
    one:
      ret i64 100
    two:
      ret i64 200
    }
    define i64 @peek() {
      %same = icmp ne ptr blockaddress(@dispatch, %one), null
      %r = zext i1 %same to i64
      ret i64 %r
    }
    define i64 @main() {
      %a = call i64 @dispatch(i64 0)
      %b = call i64 @dispatch(i64 1)
      %c = call i64 @peek()
      %s = add i64 %a, %b
      %r = add i64 %s, %c
      ret i64 %r
    }
    """
    assert check_same(ir) == 301
    p, texts = split(ir)
    assert p.functions["dispatch"].uses_blockaddress
    assert p.functions["peek"].uses_blockaddress
    assert not p.functions["main"].uses_blockaddress
    assert p.comdat_groups() == [{"dispatch", "peek"}]
    part = p.partition(["dispatch", "peek"])
    assert "@targets = internal constant" in part and "@targets" not in texts[0]
    assert "targets" not in p.promoted()


def test_indirectbr_without_table_and_table_used_elsewhere() -> None:
    ir = """
    @tbl = internal global ptr blockaddress(@jump, %b)
    define i64 @jump(ptr %to) {
    entry:
      indirectbr ptr %to, [label %a, label %b]
    a:
      ret i64 1
    b:
      ret i64 2
    }
    define i64 @main() {
      %t = load ptr, ptr @tbl
      %r = call i64 @jump(ptr %t)
      ret i64 %r
    }
    """
    assert check_same(ir) == 2
    p, _ = split(ir)
    assert p.functions["jump"].uses_blockaddress and p.comdat_groups() == []
    assert "@__part.tbl = hidden global ptr blockaddress(@jump, %b)" in p.partition(["jump"])


def test_global_ctors_and_dtors() -> None:
    ir = """
    @state = internal global i64 1
    @llvm.global_ctors = appending global [2 x { i32, ptr, ptr }] [
      { i32, ptr, ptr } { i32 65535, ptr @init, ptr null },
      { i32, ptr, ptr } { i32 100, ptr @0, ptr null }]
    @llvm.global_dtors = appending global [1 x { i32, ptr, ptr }] [
      { i32, ptr, ptr } { i32 65535, ptr @fini, ptr null }]
    @llvm.used = appending global [1 x ptr] [ptr @kept], section "llvm.metadata"
    define internal void @init() {
      %v = load i64, ptr @state
      %w = mul i64 %v, 10
      store i64 %w, ptr @state
      ret void
    }
    define internal void @0() {
      %v = load i64, ptr @state
      %w = add i64 %v, 3
      store i64 %w, ptr @state
      ret void
    }
    define internal void @fini() {
      ret void
    }
    define internal void @kept() {
      ret void
    }
    define i64 @main() {
      %v = load i64, ptr @state
      ret i64 %v
    }
    """
    assert check_same(ir) == 13  # MCJIT runs them in array order: (1 * 10) + 3
    p, texts = split(ir)
    for name in ("init", "0", "fini", "kept"):
        assert f"declare hidden void @{p.promoted()[name]}()" in texts[0]
    assert "ptr @__part.init" in texts[0] and "ptr @__part.kept" in texts[0]


def test_thread_local_section_alignment_address_space() -> None:
    ir = """
    @tls = internal thread_local(initialexec) global i64 1, align 16
    @sec = dso_local global i64 6, section ".data.partition_test", align 64
    @as1 = addrspace(1) global i64 7, align 32
    @ua = private unnamed_addr constant i64 8
    @lua = local_unnamed_addr global i64 9
    define dso_local i64 @reads() local_unnamed_addr {
      %a = load i64, ptr @sec
      %b = load i64, ptr addrspace(1) @as1
      %c = load i64, ptr @ua
      %d = load i64, ptr @lua
      %s1 = add i64 %a, %b
      %s2 = add i64 %s1, %c
      %s3 = add i64 %s2, %d
      ret i64 %s3
    }
    define i64 @tlsread() {
      %v = load i64, ptr @tls
      ret i64 %v
    }
    define i64 @main() {
      %r = call i64 @reads()
      ret i64 %r
    }
    """
    p, texts = split(ir)
    reads = p.partition(["reads"])
    assert "@sec = external dso_local global i64, align 64" in reads
    assert "@as1 = external addrspace(1) global i64, align 32" in reads
    assert "@__part.ua = external hidden unnamed_addr constant i64" in reads
    assert "@lua = external local_unnamed_addr global i64" in reads
    tls = p.partition(["tlsread"])
    assert "@__part.tls = external hidden thread_local(initialexec) global i64, align 16" in tls
    assert 'section ".data.partition_test", align 64' in texts[0]
    # MCJIT's memory manager cannot allocate TLS: run the rest only
    without_tls = re.sub(r"@tls = .*\n|define i64 @tlsread\(\) \{[^}]*\}", "", ir)
    assert check_same(without_tls) == 30


def test_intrinsics_are_declared() -> None:
    ir = """
    @src = private constant [2 x i64] [i64 11, i64 31]
    declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)
    declare i64 @llvm.smax.i64(i64, i64)
    declare i64 @llvm.ctpop.i64(i64)
    define i64 @main() {
      %buf = alloca [2 x i64]
      call void @llvm.memcpy.p0.p0.i64(ptr %buf, ptr @src, i64 16, i1 false)
      %p = getelementptr [2 x i64], ptr %buf, i64 0, i64 1
      %v = load i64, ptr %p
      %m = call i64 @llvm.smax.i64(i64 %v, i64 5)
      ret i64 %m
    }
    define i64 @bits(i64 %x) {
      %r = call i64 @llvm.ctpop.i64(i64 %x)
      ret i64 %r
    }
    """
    assert check_same(ir) == 31
    p, _ = split(ir)
    main = p.partition(["main"])
    assert "@llvm.memcpy.p0.p0.i64(" in main and "@llvm.smax.i64(" in main
    assert "ctpop" not in main


def test_personality_and_landingpad() -> None:
    ir = """
    @typeinfo = internal constant i8 0
    define internal i32 @personality(...) {
      ret i32 0
    }
    define i64 @may_throw(i64 %x) {
      %r = mul i64 %x, 2
      ret i64 %r
    }
    define i64 @main() personality ptr @personality {
    entry:
      %r = invoke i64 @may_throw(i64 21) to label %ok unwind label %pad
    ok:
      ret i64 %r
    pad:
      %l = landingpad { ptr, i32 } catch ptr @typeinfo
      ret i64 -1
    }
    """
    assert check_same(ir) == 42
    p, _ = split(ir)
    main = p.partition(["main"])
    assert "personality ptr @__part.personality" in main
    assert "declare hidden i32 @__part.personality(...)" in main
    assert "@__part.typeinfo = external hidden constant i8" in main
    assert p.functions["personality"].is_vararg
    assert p.functions["main"].callees == {"personality", "may_throw", "typeinfo"}


def test_metadata_attachments_come_along() -> None:
    ir = """
    @g = global i64 3, !type !9
    define i64 @load(ptr %p) !prof !4 {
      %v = load i64, ptr %p, !tbaa !5, !range !8
      %c = icmp sgt i64 %v, 1
      br i1 %c, label %a, label %b, !prof !10
    a:
      ret i64 %v
    b:
      ret i64 0
    }
    define i64 @main() {
      %r = call i64 @load(ptr @g)
      ret i64 %r
    }
    !llvm.module.flags = !{!0, !1}
    !llvm.ident = !{!2}
    !0 = !{i32 1, !"wchar_size", i32 4}
    !1 = !{i32 7, !"frame-pointer", i32 2}
    !2 = !{!"partition test"}
    !4 = !{!"function_entry_count", i64 1000}
    !5 = !{!6, !6, i64 0}
    !6 = !{!"long", !7, i64 0}
    !7 = !{!"root"}
    !8 = !{i64 0, i64 100}
    !9 = !{i64 0, !"typeid"}
    !10 = !{!"branch_weights", i32 90, i32 10}
    """
    assert check_same(ir) == 3
    p, texts = split(ir)
    load, main = p.partition(["load"]), p.partition(["main"])
    for text in (load, main, texts[0]):
        assert "!llvm.module.flags = !{" in text and '!"partition test"' in text
    for node in (
        '!"function_entry_count"',
        '!"long"',
        '!"root"',
        "!{i64 0, i64 100}",
        '!"branch_weights"',
    ):
        assert node in load and node not in main
    assert '!"typeid"' in texts[0] and '!"typeid"' not in main
    assert "!tbaa" in load and "!range" in load and "!prof" in load


def test_metadata_referring_to_globals_and_module_asm() -> None:
    ir = """
    module asm ".text"
    module asm ".globl asm_answer"
    module asm "asm_answer: movq $42, %rax"
    module asm "ret"
    declare i64 @asm_answer()
    define internal i64 @kernel() {
      %r = call i64 @asm_answer()
      ret i64 %r
    }
    define internal i64 @target() {
      ret i64 1
    }
    define i64 @main() {
      %f = load ptr, ptr @slot
      %a = call i64 %f(), !callees !2
      %b = call i64 @kernel()
      %r = add i64 %a, %b
      ret i64 %r
    }
    @slot = global ptr @target
    !annotations = !{!1}
    !1 = !{ptr @kernel, !"kernel", i32 1}
    !2 = !{ptr @target}
    """
    assert check_same(ir) == 43
    p, texts = split(ir)
    # named metadata goes everywhere, so @kernel is shared; !callees brings @target
    assert {"kernel", "target"} <= p.promoted().keys()
    main = p.partition(["main"])
    assert "!{ptr @__part.target}" in main and "declare hidden i64 @__part.target()" in main
    assert "!{ptr @__part.kernel" in texts[0] and "declare hidden i64 @__part.kernel()" in texts[0]
    assert "module asm" in texts[0] and all("module asm" not in t for t in texts[1:])


def test_promoted_names_stay_unique() -> None:
    ir = """
    define i64 @"__part.f"() {
      ret i64 1
    }
    define i64 @"__part.f.1"() {
      ret i64 2
    }
    define internal i64 @f() {
      ret i64 3
    }
    define i64 @main() {
      %a = call i64 @f()
      %b = call i64 @"__part.f"()
      %c = call i64 @"__part.f.1"()
      %s = add i64 %a, %b
      %r = add i64 %s, %c
      ret i64 %r
    }
    """
    assert check_same(ir) == 6
    assert split(ir)[0].promoted() == {"f": "__part.f.2"}
    with pytest.raises(ValueError, match="defined twice"):
        ModulePartitioner('@"0" = global i32 0\n@0 = global i32 1\n', promote_prefix=PREFIX)


def test_debug_info_is_kept() -> None:
    ir = """
    @gv = global i64 5, align 8, !dbg !20
    define i64 @dbgf(i64 %x) !dbg !10 {
        #dbg_value(i64 %x, !15, !DIExpression(), !16)
      %v = load i64, ptr @gv, !dbg !16
      %y = add i64 %x, %v, !dbg !16
      ret i64 %y, !dbg !16
    }
    define i64 @main() !dbg !30 {
      %r = call i64 @dbgf(i64 1), !dbg !31
      ret i64 %r, !dbg !31
    }
    !llvm.dbg.cu = !{!0}
    !llvm.module.flags = !{!3, !4}
    !0 = distinct !DICompileUnit(language: DW_LANG_C99, file: !1, producer: "t",
      isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug, globals: !22)
    !1 = !DIFile(filename: "t.c", directory: "/tmp")
    !3 = !{i32 2, !"Debug Info Version", i32 3}
    !4 = !{i32 7, !"Dwarf Version", i32 5}
    !10 = distinct !DISubprogram(name: "dbgf", scope: !1, file: !1, line: 1, type: !11,
      scopeLine: 1, spFlags: DISPFlagDefinition, unit: !0, retainedNodes: !14)
    !11 = !DISubroutineType(types: !12)
    !12 = !{!13, !13}
    !13 = !DIBasicType(name: "long", size: 64, encoding: DW_ATE_signed)
    !14 = !{}
    !15 = !DILocalVariable(name: "x", arg: 1, scope: !10, file: !1, line: 1, type: !13)
    !16 = !DILocation(line: 1, column: 1, scope: !10)
    !20 = !DIGlobalVariableExpression(var: !21, expr: !DIExpression())
    !21 = distinct !DIGlobalVariable(name: "gv", scope: !0, file: !1, line: 2, type: !13,
      isLocal: false, isDefinition: true)
    !22 = !{!20}
    !30 = distinct !DISubprogram(name: "main", scope: !1, file: !1, line: 5, type: !11,
      scopeLine: 5, spFlags: DISPFlagDefinition, unit: !0)
    !31 = !DILocation(line: 6, column: 1, scope: !30)
    """
    assert check_same(ir) == 6
    p, texts = split(ir)
    dbgf, main = p.partition(["dbgf"]), p.partition(["main"])
    assert "!dbg" in dbgf and "#dbg_value" in dbgf and 'name: "x"' in dbgf
    assert 'name: "dbgf"' in dbgf and 'name: "dbgf"' not in main
    assert "declare i64 @dbgf(i64 %x)\n" in main  # no !dbg on declarations
    assert "@gv = external global i64, align 8\n" in dbgf
    assert "!llvm.dbg.cu" in texts[0] and "!dbg" in texts[0]


def test_varargs_and_signatures() -> None:
    ir = """
    %struct.S = type { i64, [2 x i32] }
    declare void @llvm.va_start.p0(ptr)
    declare void @llvm.va_end.p0(ptr)
    define i64 @sum(i64 %n, ...) {
    entry:
      %ap = alloca [24 x i8], align 16
      call void @llvm.va_start.p0(ptr %ap)
      br label %loop
    loop:
      %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
      %acc = phi i64 [ 0, %entry ], [ %acc1, %loop ]
      %v = va_arg ptr %ap, i64
      %acc1 = add i64 %acc, %v
      %i1 = add i64 %i, 1
      %more = icmp slt i64 %i1, %n
      br i1 %more, label %loop, label %done
    done:
      call void @llvm.va_end.p0(ptr %ap)
      ret i64 %acc1
    }
    define { i64, i64 } @pair(ptr noundef byval(%struct.S) align 8 %s, i32 signext %k) {
      ret { i64, i64 } zeroinitializer
    }
    define ptr addrspace(1) @asp(<4 x i32> %v, ptr addrspace(1) %p) {
      ret ptr addrspace(1) %p
    }
    define fastcc i64 @fast(i64 %x) {
      ret i64 %x
    }
    define i64 @main() {
      %r = call i64 (i64, ...) @sum(i64 3, i64 10, i64 20, i64 30)
      %f = call fastcc i64 @fast(i64 %r)
      ret i64 %f
    }
    """
    assert check_same(ir) == 60
    p, _ = split(ir)
    assert p.functions["sum"].is_vararg and not p.functions["main"].is_vararg
    module = parse(canonical(ir))
    for fn in module.functions:
        if fn.name in p.functions:
            assert p.functions[fn.name].signature == str(fn.global_value_type)
    assert p.functions["sum"].signature == "i64 (i64, ...)"
    assert "declare fastcc i64 @fast(i64 %x)" in p.partition(["main"])


def test_function_info_and_errors() -> None:
    p = ModulePartitioner(
        canonical("define i32 @f(i32 %x) {\n  ret i32 %x\n}\n"), promote_prefix=PREFIX
    )
    assert p.functions == {
        "f": FunctionInfo("f", "", "i32 (i32)", False, False, frozenset()),
    }
    with pytest.raises(ValueError, match="not functions defined"):
        p.partition(["g"])
    with pytest.raises(ValueError, match="unsupported top-level"):
        ModulePartitioner("garbage here\n", promote_prefix=PREFIX)


def test_globals_partition_defines_no_function_and_partitions_are_small() -> None:
    ir = (
        "\n".join(
            f"define i64 @f{i}(i64 %x) {{\n  %r = call i64 @f{(i + 1) % 50}(i64 %x)\n"
            "  ret i64 %r\n}"
            for i in range(50)
        )
        + "\n@g = global ptr @f3\n"
    )
    p, texts = split(ir)
    assert defined(texts[0]) == set()
    one = p.partition(["f7"])
    assert defined(one) == {"f7"}
    assert re.findall(r"@f\d+", one) == ["@f7", "@f8", "@f8"]


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, list[set[str]]]:
    """A random module of mutually calling functions over globals and a
    function-pointer table, with a random grouping of its functions."""
    n = draw(st.integers(2, 7))
    linkages = draw(
        st.lists(
            st.sampled_from(["", "internal ", "private ", "linkonce_odr ", "weak "]),
            min_size=n,
            max_size=n,
        )
    )
    n_globals = draw(st.integers(1, 3))
    lines = [
        f"@g{k} = {draw(st.sampled_from(['', 'internal ', 'private ']))}global i64 {k}"
        for k in range(n_globals)
    ]
    table = ", ".join(f"ptr @f{i}" for i in range(n))
    lines.append(f"@table = internal constant [{n} x ptr] [{table}]")
    for i in range(n):
        callees = draw(st.lists(st.integers(0, n - 1), max_size=3))
        g = f"@g{draw(st.integers(0, n_globals - 1))}"
        body = [f"  %v0 = add i64 %x, {i}"]
        for k, j in enumerate(callees):
            body.append(f"  %v{k + 1} = call i64 @f{j}(i64 %v{k}, i32 %d1)")
        last = f"%v{len(callees)}"
        lines.append(
            f"define {linkages[i]}i64 @f{i}(i64 %x, i32 %d) {{\nentry:\n"
            f"  %old = load i64, ptr {g}\n  %new = add i64 %old, {i + 1}\n"
            f"  store i64 %new, ptr {g}\n  %c = icmp sle i32 %d, 0\n"
            f"  br i1 %c, label %leaf, label %rec\nleaf:\n  %l = mul i64 %x, {i + 3}\n"
            f"  ret i64 %l\nrec:\n  %d1 = sub i32 %d, 1\n" + "\n".join(body) + "\n"
            f"  %m = mul i64 {last}, 31\n  %r = add i64 %m, %old\n  ret i64 %r\n}}"
        )
    pick = draw(st.integers(0, n - 1))
    loads = "\n".join(
        f"  %g{k} = load i64, ptr @g{k}\n  %s{k + 1} = add i64 %s{k}, %g{k}"
        for k in range(n_globals)
    )
    lines.append(
        f"define i64 @main() {{\n  %s0 = call i64 @f0(i64 1, i32 3)\n"
        f"  %fp = getelementptr [{n} x ptr], ptr @table, i64 0, i64 {pick}\n"
        f"  %f = load ptr, ptr %fp\n  %t = call i64 %f(i64 2, i32 2)\n{loads}\n"
        f"  %r = xor i64 %s{n_globals}, %t\n  ret i64 %r\n}}"
    )
    names = [f"f{i}" for i in range(n)] + ["main"]
    labels = draw(st.lists(st.integers(0, 3), min_size=len(names), max_size=len(names)))
    groups = [{f for f, label in zip(names, labels, strict=True) if label == k} for k in range(4)]
    return "\n".join(lines) + "\n", [g for g in groups if g]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_call_graphs_run_the_same(program: tuple[str, list[set[str]]]) -> None:
    ir, groups = program
    check_same(ir, groups=groups)
