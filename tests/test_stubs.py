"""stubs: allocation across chunks, calling through stubs, unbound calls, page rights."""

from __future__ import annotations

import ctypes

import pytest

from execution_engine.native.pages import PAGE_SIZE
from execution_engine.native.stubs import STUBS_PER_CHUNK, StubManager

I64, F64 = ctypes.c_int64, ctypes.c_double
INT_FN = ctypes.CFUNCTYPE(I64, I64, I64)
DBL_FN = ctypes.CFUNCTYPE(F64, F64, F64)
# 8 integer + 10 double arguments: 2 integers and 2 doubles go on the stack.
MANY_FN = ctypes.CFUNCTYPE(F64, *[I64] * 8, *[F64] * 10)
MANY_ARGS = [*range(1, 9), *(0.5 * i for i in range(1, 11))]


def weighted(*args):
    return sum(v * (i + 1) for i, v in enumerate(args))


def address_of(callback) -> int:
    return ctypes.cast(callback, ctypes.c_void_p).value


class Recorder:
    """An ``on_unbound`` handler that records stubs and continues at ``target``."""

    def __init__(self):
        self.calls = []
        self.target = 0

    def __call__(self, stub):
        self.calls.append(stub)
        return self.target


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def manager(recorder):
    m = StubManager(recorder)
    yield m
    m.close()


@pytest.fixture
def many(manager):
    """More stubs than one chunk holds."""
    return [manager.allocate(f"s{i}") for i in range(STUBS_PER_CHUNK + 88)]


def test_allocation_crosses_a_chunk(manager, many):
    assert STUBS_PER_CHUNK == 512
    assert len(manager) == len(many) == 600
    assert [s.id for s in many] == list(range(600))
    assert len({s.address for s in many}) == 600 and len({s.slot for s in many}) == 600
    assert many[1].address - many[0].address == 8
    second = many[STUBS_PER_CHUNK]
    assert second.address % PAGE_SIZE == 0 and second.address - many[511].address != 8
    assert all(not s.is_bound() and s.target() == s.trampoline for s in many)


@pytest.mark.parametrize("index", [0, 511, 512, 599])
def test_call_through_stub(manager, many, index):
    stub = many[index]
    int_cb = INT_FN(lambda a, b: a * 10 + b)
    dbl_cb = DBL_FN(lambda a, b: a / b)
    many_cb = MANY_FN(weighted)
    manager.bind(stub, address_of(int_cb))
    assert stub.is_bound() and stub.target() == address_of(int_cb)
    assert INT_FN(stub.address)(4, -3) == 37
    manager.bind(stub, address_of(dbl_cb))
    assert DBL_FN(stub.address)(1.0, 8.0) == 0.125
    manager.bind(stub, address_of(many_cb))
    assert MANY_FN(stub.address)(*MANY_ARGS) == weighted(*MANY_ARGS)


def test_address_stable_across_rebinds(manager, many):
    stub = many[3]
    before = (stub.address, stub.slot)
    callbacks = [INT_FN(lambda a, b, k=k: a + b + k) for k in range(3)]
    for k, cb in enumerate(callbacks):
        manager.bind(stub, address_of(cb))
        assert INT_FN(stub.address)(1, 2) == 3 + k
    assert (stub.address, stub.slot) == before


@pytest.mark.parametrize(("proto", "fn", "args"), [
    (INT_FN, lambda a, b: a * 10 + b, (7, 5)),
    (DBL_FN, lambda a, b: a - b, (2.5, 0.25)),
    (MANY_FN, weighted, MANY_ARGS),
], ids=["int", "double", "stack-args"])
def test_unbound_call_reaches_handler_then_target(manager, many, recorder, proto, fn, args):
    target = proto(fn)
    stub = many[550]
    manager.bind(stub, address_of(proto(lambda *a: 0)))
    manager.unbind(stub)
    assert not stub.is_bound()
    recorder.target = address_of(target)
    assert proto(stub.address)(*args) == fn(*args)
    assert recorder.calls == [stub]


def test_handler_may_bind_the_stub():
    """Lazy-compilation style: the first call binds, later calls skip the handler."""
    target = INT_FN(lambda a, b: a - b)
    seen = []

    def bind_then_continue(s):
        seen.append(s)
        manager.bind(s, address_of(target))
        return address_of(target)

    manager = StubManager(bind_then_continue)
    try:
        stub = [manager.allocate(f"s{i}") for i in range(3)][2]
        call = INT_FN(stub.address)
        assert [call(9, 4), call(1, 1), call(0, 5)] == [5, 0, -5]
        assert seen == [stub]
    finally:
        manager.close()


def _mappings():
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            span, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in span.split("-"))
            out.append((lo, hi, perms))
    return out


def _perms_at(address: int) -> str:
    return next(p for lo, hi, p in _mappings() if lo <= address < hi)


def _writable_executable():
    return {(lo, hi) for lo, hi, p in _mappings() if "w" in p and "x" in p}


def test_page_protections(many):
    for stub in (many[0], many[599]):
        assert _perms_at(stub.address).startswith("r-x")
        assert _perms_at(stub.trampoline).startswith("r-x")
        assert _perms_at(stub.slot).startswith("rw-")


def test_no_new_writable_executable_mapping(recorder):
    # ctypes callbacks (libffi closures) may already own W+X pages; the engine
    # must not add any, and none may cover its stubs, slots or trampolines.
    keep = INT_FN(lambda a, b: a)
    before = _writable_executable()
    m = StubManager(recorder)
    try:
        stubs = [m.allocate(f"x{i}") for i in range(1100)]
        for s in stubs[::97]:
            m.bind(s, address_of(keep))
        after = _writable_executable()
        assert after <= before
        for s in stubs[::50]:
            for addr in (s.address, s.slot, s.trampoline):
                assert not any(lo <= addr < hi for lo, hi in after)
    finally:
        m.close()

