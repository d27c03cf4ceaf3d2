"""redirection="direct" (the default): calls inside one object bound directly,
and the one-time re-link through stubs when one of its functions is replaced.

Unit tests of the pieces (which functions may be called directly, the
object-level edits, the re-link plan, the layer) and engine tests, in every
mode, that fail if callers inside a module kept calling the body a swap
replaced once the swap returned (no thread being inside the module).
"""

from __future__ import annotations

import ctypes
import struct
import threading
import time

import pytest
from conftest import Stack, cfunc, i64_at, make_tm, parse_ir, parse_object

from execution_engine import LinkError, create_mcjit_compiler
from execution_engine.ir.call_sites import call_only_functions
from execution_engine.layers.base import AddOptions, Handle
from execution_engine.linking.relink import DirectLink, plan_relink, shared_sections
from execution_engine.native import elf, elf_rewrite
from execution_engine.policies import DIRECT, REDIRECTION_POLICIES, STUB, redirection_policy

pytest_plugins = ("engine_modes",)  # the mode, make fixtures

# -- which functions an object may call directly --------------------------------

CALL_ONLY = r"""
@table = global [1 x ptr] [ptr @in_data]
@slot = global ptr null
declare void @use(ptr)
define i64 @leaf(i64 %x) {
  ret i64 %x
}
define i64 @in_data() {
  ret i64 0
}
define i64 @stored() {
  ret i64 0
}
define i64 @passed() {
  ret i64 0
}
define i64 @"quoted name"() {
  ret i64 0
}
define i64 @caller(i64 %x) {
  %a = call i64 @leaf(i64 %x)
  %b = tail call i64 @"quoted name"()
  store ptr @stored, ptr @slot
  call void @use(ptr @passed)
  %r = add i64 %a, %b
  ret i64 %r
}
"""


def test_call_only_functions_are_those_referenced_only_as_callees():
    assert call_only_functions(CALL_ONLY) == {"leaf", "quoted name", "caller"}


def test_the_first_definition_and_names_ending_in_asm_are_read_right():
    text = ("define i64 @leaf() {\n  ret i64 1\n}\n"
            "define i64 @fasm() {\n  %r = call i64 @leaf()\n  ret i64 %r\n}\n"
            "define i64 @top() {\n  %r = call i64 @fasm()\n  ret i64 %r\n}\n")
    assert call_only_functions(text) == {"leaf", "fasm", "top"}
    assert call_only_functions('module asm ".globl g"\n' + text) == frozenset()


@pytest.mark.parametrize("taken", [
    "define internal i64 @cb() {\n  ret i64 1\n}\n"
    "define void @register() {\n  call void @use(ptr @cb)\n  ret void\n}\n",
    "define i64 @f() {\nentry:\n  br label %next\nnext:\n  ret i64 ptrtoint "
    "(ptr blockaddress(@f, %next) to i64)\n}\n",
    'define void @a() {\n  call void asm sideeffect "lea leaf(%rip), %rax", "~{rax}"()\n'
    "  ret void\n}\n",
    'module asm ".globl g"\n',
])
def test_code_that_can_be_entered_by_address_disables_direct_calls(taken):
    # A local function whose address is taken (or a block address) can be
    # reached without a stub, and it would call the first copy's bodies;
    # assembly may name (and take the address of) any symbol.
    text = CALL_ONLY + taken
    assert call_only_functions(text) == frozenset()


def test_aliases_and_address_constants_disqualify_their_target():
    text = ("define i64 @f() {\n  ret i64 1\n}\n@a = alias i64 (), ptr @f\n"
            "define i64 @g() {\n  ret i64 ptrtoint (ptr @g to i64)\n}\n")
    assert call_only_functions(text) == frozenset()


def test_the_direct_policy_object():
    assert redirection_policy("direct") is DIRECT and REDIRECTION_POLICIES["direct"] is DIRECT
    assert DIRECT.redirects and DIRECT.direct_calls and not DIRECT.slot_calls
    DIRECT.check_swappable()
    DIRECT.check_lazy()
    assert DIRECT.ir_transform(lambda name: True) is None
    asked = []

    def module():
        asked.append(1)
        return CALL_ONLY

    # Only what the object's own code calls, and only names the IR calls only.
    assert DIRECT.direct_callees(module, {"leaf", "stored", "nothing"}) == {"leaf"}
    # No module text is made when nothing is called, or for other policies.
    assert DIRECT.direct_callees(module, set()) == frozenset() and len(asked) == 1
    assert STUB.direct_callees(module, {"leaf"}) == frozenset() and len(asked) == 1


def test_an_object_names_the_functions_its_own_code_refers_to():
    obj = parse_object(CALL_ONLY, "calls")
    assert obj.called_definitions() == {"leaf", "quoted name", "stored", "passed"}


# -- the object-level edits and the re-link plan -------------------------------

STATE = r"""
@counter = internal global i64 0
@pub = global i64 5
@const = internal constant [2 x i64] [i64 11, i64 22]
define i64 @leaf(i64 %x) noinline {
  %c = load i64, ptr @counter
  %c1 = add i64 %c, 1
  store i64 %c1, ptr @counter
  %r = add i64 %x, 1
  ret i64 %r
}
define i64 @mid(i64 %x) noinline {
  %a = call i64 @leaf(i64 %x)
  %p = load i64, ptr @pub
  %k = load i64, ptr getelementptr ([2 x i64], ptr @const, i64 0, i64 1)
  %b = add i64 %a, %p
  %r = add i64 %b, %k
  ret i64 %r
}
define i64 @count() {
  %c = load i64, ptr @counter
  ret i64 %c
}
"""


def test_sharing_a_section_drops_it_and_retargets_local_references():
    obj = parse_object(STATE, "state")
    data = next(s for s in obj.sections if s.flags & elf.SHF_WRITE and s.flags & elf.SHF_ALLOC
                and s.type == elf.SHT_NOBITS)  # .lbss: counter
    out = elf.ObjectFile(elf_rewrite.rewrite(obj, undefine={"pub"}, shared={data.index: "old"}),
                         name="copy")
    assert not out.sections[data.index].flags & elf.SHF_ALLOC
    assert "old" in out.undefined_globals() and "pub" in out.undefined_globals()
    for rela in out.relocation_sections():
        entries = out.data[rela.offset:rela.offset + rela.size]
        for _, info, _ in struct.iter_unpack("<QQq", entries):
            sym = out.symbols[info >> 32]
            assert sym.shndx != data.index or sym.bind != elf.STB_LOCAL
        if rela.info == data.index:
            assert rela.size == 0
    with pytest.raises(ValueError, match="must become a reference"):
        elf_rewrite.rewrite(obj, shared={obj.defined_globals()["pub"].shndx: "x"})


def test_the_relink_plan_routes_calls_to_stubs_and_data_to_the_first_copy():
    obj = parse_object(STATE, "state")
    bases = {s.index: 0x10000 * s.index for s in obj.sections if s.flags & elf.SHF_ALLOC}
    link = DirectLink(obj, frozenset({"leaf"}), bases, {"pub": 0xABC0})
    stubs = {"leaf": 0x100, "mid": 0x200, "count": 0x300}
    again = plan_relink(link, 7, stubs.__getitem__)
    assert again.bodies == {n: f"{n}.__body7" for n in stubs}
    assert {n: again.imports[n] for n in (*stubs, "pub")} == {**stubs, "pub": 0xABC0}
    for index in shared_sections(obj, bases):
        assert again.imports[f"__ee.shared7.{index}"] == bases[index]
    assert set(again.exports) == set(again.bodies.values()) | set(again.sections)
    # Code and read-only data are copied; writable data is not loaded again.
    copied = {obj.sections[i].name for i in again.sections.values()}
    assert any("text" in n for n in copied) and any("rodata" in n for n in copied)
    assert ".eh_frame" in copied
    assert not any(obj.sections[i].flags & elf.SHF_WRITE and obj.sections[i].name != ".eh_frame"
                   for i in again.sections.values())
    assert shared_sections(obj, bases)  # .lbss, .ldata
    with pytest.raises(LinkError, match="pub"):
        plan_relink(DirectLink(obj, frozenset({"leaf"}), bases, {}), 8, stubs.__getitem__)


# -- the layer ---------------------------------------------------------------------


@pytest.fixture
def direct_stack():
    s = Stack(policy="direct")
    yield s
    s.close()


def add_direct(stack: Stack, text: str, name: str, **options: bool) -> Handle:
    handle = Handle(name)
    obj = parse_object(text, name)
    module = parse_ir(text, name)
    direct = DIRECT.direct_callees(lambda: module, obj.called_definitions())
    stack.redirection.add(handle, obj, AddOptions(**options), direct=direct)
    stack.redirection.emit([handle])
    return handle


def test_direct_calls_bypass_the_stub_until_the_callee_is_replaced(direct_stack):
    s = direct_stack
    handle = add_direct(s, STATE, "state")
    assert s.redirection.is_direct(handle)
    mid = s.fn("mid", ctypes.c_int64, ctypes.c_int64)
    assert mid(1) == 2 + 5 + 22
    # Pointing leaf's stub elsewhere does not change mid: the call is direct.
    s.stubs.bind(s.symbols.stub("leaf"), s.symbols.stub("count").address)
    assert mid(1) == 2 + 5 + 22
    s.stubs.bind(s.symbols.stub("leaf"), s.symbols.current("leaf").address)
    before = s.symbols.current("mid").address
    s.add_ir("define i64 @leaf(i64 %x) {\n  %r = add i64 %x, 100\n  ret i64 %r\n}\n")
    # The module was linked again through stubs; its current definitions moved.
    assert s.redirection.relinks == 1 and not s.redirection.is_direct(handle)
    assert s.symbols.current("mid").address != before
    assert mid(1) == 101 + 5 + 22
    # The internal counter kept its storage: the first copy counted 2 calls.
    assert s.fn("count")() == 2


SELF = "define i64 @f(i64 %n) {\n  %r = call i64 @f(i64 %n)\n  ret i64 %r\n}\n"


def test_a_set_that_is_freed_when_superseded_is_not_linked_again(direct_stack):
    s = direct_stack
    handle = add_direct(s, SELF, "self", replaceable=True)
    assert s.redirection.is_direct(handle)
    s.add_ir("define i64 @f(i64 %n) {\n  ret i64 %n\n}\n")
    # Nothing of it is current, so nothing can enter it: retired, not linked again.
    assert s.redirection.relinks == 0 and not s.redirection.is_linked(handle)


def test_a_set_superseded_entirely_waits_until_it_is_current_again(direct_stack):
    s = direct_stack
    text = ("define i64 @f(i64 %n) noinline {\n  ret i64 %n\n}\n"
            "define i64 @g(i64 %n) {\n  %r = call i64 @f(i64 %n)\n  ret i64 %r\n}\n")
    handle = add_direct(s, text, "first")  # added: it becomes current again if the others go
    (both,) = s.add_ir(text.replace("ret i64 %n", "%m = add i64 %n, 1\n  ret i64 %m"))
    # Nothing of it is current: nothing can enter it, so it is not linked again (yet).
    assert s.redirection.relinks == 0 and s.redirection.is_direct(handle)
    (only_f,) = s.add_ir("define i64 @f(i64 %n) {\n  %m = add i64 %n, 10\n  ret i64 %m\n}\n")
    s.redirection.remove(both)
    # g is the first module's again, f is not: the first module is linked again.
    assert s.symbols.current("g").handle is handle and s.redirection.relinks == 1
    assert s.fn("g", ctypes.c_int64, ctypes.c_int64)(1) == 11
    s.redirection.remove(only_f)
    assert s.fn("g", ctypes.c_int64, ctypes.c_int64)(1) == 1


def test_a_set_current_again_as_a_whole_keeps_its_direct_calls(direct_stack):
    s = direct_stack
    text = ("define i64 @f(i64 %n) noinline {\n  ret i64 %n\n}\n"
            "define i64 @g(i64 %n) {\n  %r = call i64 @f(i64 %n)\n  ret i64 %r\n}\n")
    handle = add_direct(s, text, "first")
    (both,) = s.add_ir(text.replace("ret i64 %n", "%m = add i64 %n, 1\n  ret i64 %m"))
    assert s.fn("g", ctypes.c_int64, ctypes.c_int64)(1) == 2
    s.redirection.remove(both)
    assert s.redirection.relinks == 0 and s.redirection.is_direct(handle)
    assert s.fn("g", ctypes.c_int64, ctypes.c_int64)(1) == 1


def test_a_global_mapping_or_a_losing_weak_definition_is_not_called_directly(direct_stack):
    s = direct_stack
    s.add_ir("define i64 @w() {\n  ret i64 1\n}\n")
    text = ("define weak i64 @w() {\n  ret i64 2\n}\n"
            "define i64 @user() {\n  %r = call i64 @w()\n  ret i64 %r\n}\n")
    add_direct(s, text, "weak")
    assert s.fn("user")() == 1  # the existing strong definition wins, for everybody


# -- engines, in every mode ----------------------------------------------------------

MODULE = r"""
@calls = global i64 0
define i64 @callee(i64 %x) noinline {
  %c = load i64, ptr @calls
  %c1 = add i64 %c, 1
  store i64 %c1, ptr @calls
  %r = add i64 %x, 1
  ret i64 %r
}
define i64 @caller(i64 %x) noinline {
  %r = call i64 @callee(i64 %x)
  ret i64 %r
}
define i64 @fib(i64 %n) {
  %small = icmp slt i64 %n, 2
  br i1 %small, label %done, label %rec
done:
  ret i64 %n
rec:
  %a = sub i64 %n, 1
  %b = sub i64 %n, 2
  %x = call i64 @fib(i64 %a)
  %y = call i64 @fib(i64 %b)
  %r = add i64 %x, %y
  ret i64 %r
}
"""

CALLEE_V2 = "define i64 @callee(i64 %x) {\n  %r = add i64 %x, 1000\n  ret i64 %r\n}\n"

# fib with an extra +1 per call: fib1(n) = fib1(n-1) + fib1(n-2) + 1
FIB_V2 = r"""
define i64 @fib(i64 %n) {
  %small = icmp slt i64 %n, 2
  br i1 %small, label %done, label %rec
done:
  ret i64 %n
rec:
  %a = sub i64 %n, 1
  %b = sub i64 %n, 2
  %x = call i64 @fib(i64 %a)
  %y = call i64 @fib(i64 %b)
  %s = add i64 %x, %y
  %r = add i64 %s, 1
  ret i64 %r
}
"""


def fib1(n: int) -> int:
    return n if n < 2 else fib1(n - 1) + fib1(n - 2) + 1


def test_direct_is_the_default(make):
    engine = make(MODULE)
    assert engine.options.redirection is DIRECT
    assert engine.call("caller", 1) == 2 and engine.call("fib", 20) == 6765


def test_internal_callers_reach_an_updated_body_when_the_update_returns(make, mode):
    engine = make(MODULE)
    assert engine.call("caller", 1) == 2
    engine.update_module(parse_ir(CALLEE_V2, "v2"))
    assert engine.call("caller", 1) == 1001
    assert engine.stats().relinks == (0 if mode.endswith("lazy") else 1)
    engine.update_module(parse_ir(CALLEE_V2.replace("1000", "2000"), "v3"))
    assert engine.call("caller", 1) == 2001
    assert engine.stats().relinks <= 1  # once per object


def test_internal_callers_reach_a_recompiled_body(make, mode):
    engine = make(MODULE)
    assert engine.call("caller", 1) == 2
    caller_body = engine.function_info("caller").body
    body = engine.recompile_and_relink_function("callee", opt_level=1)
    assert engine.function_info("callee").body == body
    if mode in ("eager", "remote"):
        # caller moved to the copy of its module that calls through stubs
        assert engine.stats().relinks == 1
        assert engine.function_info("caller").body != caller_body
    assert engine.call("caller", 1) == 2
    engine.update_module(parse_ir(CALLEE_V2, "v2"))
    assert engine.call("caller", 1) == 1001


def test_a_later_module_defining_a_function_again_reaches_internal_callers(make, mode):
    engine = make(MODULE)
    assert engine.call("caller", 1) == 2
    later = parse_ir(CALLEE_V2, "later")
    engine.add_module(later)
    engine.finalize_object()
    assert engine.call("caller", 1) == 1001  # the later definition, for every caller
    engine.remove_module(later)
    assert engine.call("caller", 1) == 2  # the first one again


def test_a_recursive_function_recurses_into_its_replacement(make):
    engine = make(MODULE)
    assert engine.call("fib", 15) == 610
    engine.update_module(parse_ir(FIB_V2, "fib2"))
    assert engine.call("fib", 15) == fib1(15)


def test_live_state_survives_the_relink(make, mode):
    engine = make(MODULE)
    address = engine.get_global_value_address("calls")
    for _ in range(3):
        engine.call("caller", 1)
    engine.update_module(parse_ir(
        "@calls = external global i64\n"
        "define i64 @fib(i64 %n) {\n  %c = load i64, ptr @calls\n  ret i64 %c\n}\n", "v2"))
    assert engine.get_global_value_address("calls") == address
    assert engine.call("caller", 1) == 2  # callee of the copy linked again counts on
    assert engine.call("fib", 0) == 4


def test_addresses_taken_by_the_module_are_stubs_and_follow_swaps(make):
    text = MODULE + r"""
@saved = global ptr null
define void @save() {
  store ptr @callee, ptr @saved
  ret void
}
define i64 @through_saved(i64 %x) {
  %f = load ptr, ptr @saved
  %r = call i64 %f(i64 %x)
  ret i64 %r
}
"""
    engine = make(text)
    engine.call("save", restype=None)
    saved = struct.unpack("<Q", engine.read_memory(engine.get_global_value_address("saved"),
                                                   8))[0]
    assert saved == engine.get_function_address("callee")  # the stub, not the body
    engine.update_module(parse_ir(CALLEE_V2, "v2"))
    assert engine.call("through_saved", 1) == 1001 and engine.call("caller", 1) == 1001


def test_removing_a_relinked_module_frees_both_copies(make, mode):
    engine = make(MODULE)
    engine.call("caller", 1)
    update = parse_ir(CALLEE_V2, "v2")
    engine.update_module(update)
    engine.call("caller", 1)
    engine.remove_module(update)
    engine.remove_module(engine._modules.entries()[0][0])
    engine.reclaim()
    assert engine.stats().linked_resources == 0 and engine.stats().linked_sets == 0


def test_lazy_callees_partitions_call_each_other_directly_and_relink():
    engine = create_mcjit_compiler(parse_ir(MODULE, "m"), make_tm(), lazy=True,
                                   partition="callees")
    try:
        assert engine.call("caller", 1) == 2  # caller and callee: one partition
        assert engine._stack.redirection.is_direct(
            engine._stack.symbols.current("caller").handle)
        engine.update_module(parse_ir(CALLEE_V2, "v2"))
        assert engine.call("caller", 1) == 1001
        assert engine.stats().relinks == 1
    finally:
        engine.close()


def test_a_thread_inside_the_module_keeps_its_copy_until_it_returns():
    """The documented limit of "direct": a loop running in the module calls
    the first copy's ``step`` after a swap; new calls reach the new body.
    ("stub" reaches the running loop: see test_hotswap and test_remote_live.)"""
    text = r"""
@stop = global i64 0
@last = global i64 0
@count = global i64 0
define i64 @step() noinline {
  ret i64 1
}
define void @loop() {
entry:
  br label %head
head:
  %s = load atomic i64, ptr @stop seq_cst, align 8
  %done = icmp ne i64 %s, 0
  br i1 %done, label %out, label %body
body:
  %v = call i64 @step()
  store atomic i64 %v, ptr @last seq_cst, align 8
  %c = load i64, ptr @count
  %c1 = add i64 %c, 1
  store atomic i64 %c1, ptr @count seq_cst, align 8
  br label %head
out:
  ret void
}
"""
    for policy, running_sees in (("direct", 1), ("stub", 2)):
        engine = create_mcjit_compiler(parse_ir(text, "loop"), make_tm(), redirection=policy,
                                       grace_period=None)
        loop = cfunc(engine.get_function_address("loop"), None)
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        count = engine.get_global_value_address("count")
        deadline = time.monotonic() + 30
        while i64_at(count) == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        engine.update_module(parse_ir("define i64 @step() {\n  ret i64 2\n}\n", "v2"))
        seen = i64_at(count)
        while i64_at(count) < seen + 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert i64_at(engine.get_global_value_address("last")) == running_sees, policy
        assert engine.call("step") == 2
        ctypes.c_int64.from_address(engine.get_global_value_address("stop")).value = 1
        thread.join(30)
        assert not thread.is_alive()
        engine.close()


def test_a_big_module_is_printed_before_its_code_generation(monkeypatch):
    """Its text (15 MB for SQLite's library) must be gone before code
    generation's memory peaks: found call-only functions first, then compile."""
    from execution_engine import InProcessCompiler
    from execution_engine.layers import ir_compile

    events: list[str] = []
    real = ir_compile.call_only_functions

    def recording(text: str) -> frozenset[str]:
        events.append("print")
        return real(text)

    class Recording(InProcessCompiler):
        def compile(self, module, target_machine, *, label):
            events.append("compile")
            return super().compile(module, target_machine, label=label)

    monkeypatch.setattr(ir_compile, "call_only_functions", recording)
    n = ir_compile.EARLY_PRINT_FUNCTIONS
    body = "".join(f"define i64 @g{i}(i64 %x) {{\n  %r = call i64 @g{i - 1}(i64 %x)\n"
                   f"  ret i64 %r\n}}\n" for i in range(1, n))
    text = "define i64 @g0(i64 %x) {\n  ret i64 %x\n}\n" + body
    ee = create_mcjit_compiler(parse_ir(text), make_tm(), compiler=Recording())
    ee.finalize_object()
    assert events[:2] == ["print", "compile"] and events.count("print") == 1
    assert cfunc(ee.get_function_address(f"g{n - 1}"))(7) == 7
    ee.close()
