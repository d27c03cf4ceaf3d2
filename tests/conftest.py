"""Shared helpers for the unit tests: target machines, IR -> module / object,
calling JIT'd code, direct construction of the layer stack, and lazy engines
whose compilations are recorded (``make_lazy``)."""

from __future__ import annotations

import ctypes
import os
import re
import tempfile
import textwrap
from dataclasses import dataclass, field

import llvmlite.binding as llvm
import pytest

from execution_engine import (
    ExecutionEngine,
    ExecutionEngineError,
    InProcessCompiler,
    create_mcjit_compiler,
)
from execution_engine.layers.base import DEFAULT, AddOptions, Handle
from execution_engine.layers.ir_compile import IRCompileLayer
from execution_engine.layers.object_linking import ObjectLinkingLayer
from execution_engine.layers.redirection import RedirectionLayer
from execution_engine.linking.resolver import GlobalMappings, ProcessResolver
from execution_engine.linking.symbols import SymbolTable
from execution_engine.native import elf
from execution_engine.native.stubs import StubManager
from execution_engine.policies import redirection_policy

# The command line caches objects under the user's cache directory by default:
# tests (and the processes they start) use a private one.
os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="ee-test-cache-"))

llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
llvm.initialize_native_asmparser()


_SHARED_PREFIX = re.compile(r"^__ee\.h\d+\.")


class RecordingCompiler(InProcessCompiler):
    """A compile backend (``compiler=`` option) that compiles in process and
    records, per compile, the functions the module defines (shared-local
    prefixes stripped) and the module's text."""

    def __init__(self) -> None:
        self.log: list[list[str]] = []
        self.texts: list[str] = []

    def compile(self, module, target_machine, *, label):
        self.log.append([_SHARED_PREFIX.sub("", f.name) for f in module.functions
                         if not f.is_declaration])
        self.texts.append(str(module))
        return super().compile(module, target_machine, label=label)


def make_tm(opt: int = 2) -> llvm.TargetMachine:
    """A fresh host target machine (engines take ownership of theirs)."""
    return llvm.Target.from_default_triple().create_target_machine(opt=opt)


_SHARED_TM = make_tm()


@pytest.fixture
def tm() -> llvm.TargetMachine:
    """A fresh target machine per test (an engine closes its machine on close)."""
    return make_tm()


def parse_ir(text: str, name: str = "") -> llvm.ModuleRef:
    """Parse and verify IR text, retargeted to the host."""
    module = llvm.parse_assembly(textwrap.dedent(text))
    module.verify()
    if name:
        module.name = name
    module.triple = _SHARED_TM.triple
    module.data_layout = str(_SHARED_TM.target_data)
    return module


def compile_ir(text: str) -> bytes:
    """Relocatable object bytes for IR ``text``."""
    return _SHARED_TM.emit_object(parse_ir(text))


def parse_object(text: str, name: str = "<object>") -> elf.ObjectFile:
    return elf.ObjectFile(compile_ir(text), name=name)


def cfunc(address: int, restype=ctypes.c_int64, *argtypes):
    """A ctypes function for a native address (asserting it is non-null)."""
    assert address, "null function address"
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


def i64_at(address: int) -> int:
    assert address, "null data address"
    return ctypes.c_int64.from_address(address).value


def is_mapped(address: int) -> bool:
    """Whether ``address`` lies in any mapping of this process."""
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= address < hi:
                return True
    return False


class Stack:
    """The redirection + linking layers over a symbol table, built by hand."""

    def __init__(self, on_unbound=None, *, policy: str = "stub", session_capacity: int = 256):
        self.unbound_calls: list[str] = []
        self.stubs = StubManager(on_unbound or self._unbound)
        self.symbols = SymbolTable(self.stubs)
        self.mappings = GlobalMappings()
        self.linker = ObjectLinkingLayer(_SHARED_TM, session_capacity=session_capacity)
        self.redirection = RedirectionLayer(self.linker, self.symbols, self.mappings,
                                            ProcessResolver(),
                                            policy=redirection_policy(policy))
        self.compiler = IRCompileLayer(_SHARED_TM, self.redirection)

    def _unbound(self, stub) -> int:  # pragma: no cover - a test bug if reached
        raise AssertionError(f"unbound stub {stub.name} called")

    def add_ir(self, *texts: str) -> list[Handle]:
        """Link the modules as one batch through the redirection layer."""
        handles = [Handle(f"m{i}") for i in range(len(texts))]
        for handle, text in zip(handles, texts, strict=True):
            self.redirection.add(handle, parse_object(text, handle.name))
        self.redirection.emit(handles)
        return handles

    def fn(self, name: str, restype=ctypes.c_int64, *argtypes):
        return cfunc(self.redirection.find_symbol(name), restype, *argtypes)

    def close(self) -> None:
        self.linker.close()
        self.stubs.close()


class RecordingLayer:
    """A bottom layer for unit tests of the layers above it: records what
    reaches it and "links" a set by noting it. Sets defining a name in
    ``fail_names`` fail to link: they stay pending and emit raises after the
    others are linked (the Layer contract). A linked set's functions answer
    ``find_symbol`` with ``address_of(name)``."""

    def __init__(self) -> None:
        self.added: dict[Handle, tuple[object, AddOptions]] = {}
        self.texts: dict[Handle, str] = {}  # each module's text when added
        self.defines: dict[Handle, set[str]] = {}
        self.emits: list[list[Handle]] = []
        self.linked: list[Handle] = []
        self.removed: list[Handle] = []
        self.fail_names: set[str] = set()

    @staticmethod
    def address_of(name: str) -> int:
        return 0x1000 + sum(map(ord, name))

    def add(self, handle: Handle, unit, options: AddOptions = DEFAULT) -> Handle:
        self.added[handle] = (unit, options)
        self.texts[handle] = str(unit)
        self.defines[handle] = {f.name for f in unit.functions if not f.is_declaration}
        return handle

    def emit(self, handles=None) -> None:
        chosen = [h for h in (list(self.added) if handles is None else handles)
                  if self.is_pending(h)]
        self.emits.append(chosen)
        failed = [h for h in chosen if self.defines[h] & self.fail_names]
        self.linked += [h for h in chosen if h not in failed]
        if failed:
            raise ExecutionEngineError(f"{failed[0].name} failed to link")

    def is_pending(self, handle: Handle) -> bool:
        return handle in self.added and handle not in self.linked

    def pending(self) -> list[Handle]:
        return [h for h in self.added if self.is_pending(h)]

    def remove(self, handle: Handle) -> None:
        self.added.pop(handle, None)
        if handle in self.linked:
            self.linked.remove(handle)
        self.removed.append(handle)

    def find_symbol(self, name: str) -> int | None:
        for handle in self.linked:
            found = self.find_symbol_in(handle, name)
            if found:
                return found
        return None

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        if handle in self.linked and name in self.defines[handle]:
            return self.address_of(name)
        return None


@pytest.fixture
def stack():
    s = Stack()
    yield s
    s.close()


@dataclass
class Lazy:
    """A lazy engine, its modules, and a log of every module it compiled: for
    each, the functions it defines (shared-local prefixes stripped) and its text."""

    engine: ExecutionEngine
    modules: list[llvm.ModuleRef]
    log: list[list[str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def fn(self, name: str, restype=ctypes.c_int64, *argtypes):
        return cfunc(self.engine.get_function_address(name), restype, *argtypes)

    def compiled(self) -> list[str]:
        """Functions compiled so far, in order (one entry per compilation)."""
        return [name for names in self.log for name in names]


@pytest.fixture
def make_lazy():
    """``make_lazy(*ir_texts, policy=..., **options)``: a lazy engine holding the
    modules (named m0, m1, ...), its compilations recorded; closed after the test."""
    made: list[Lazy] = []

    def make(*texts: str, policy: str = "direct", **options) -> Lazy:
        modules = [parse_ir(t, f"m{i}") for i, t in enumerate(texts)]
        recorder = RecordingCompiler()
        engine = create_mcjit_compiler(modules[0], make_tm(), lazy=True, redirection=policy,
                                       compiler=recorder, **options)
        lazy = Lazy(engine, modules, recorder.log, recorder.texts)
        for m in modules[1:]:
            engine.add_module(m)
        made.append(lazy)
        return lazy

    yield make
    for lazy in made:
        lazy.engine.close()
