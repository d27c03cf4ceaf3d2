"""CompileOnDemandLayer: modules in, functions compiled on their first call.

Eager (``lazy=False``) the layer passes whole modules to the IRCompileLayer:
MCJIT behaviour. Lazy, adding a module compiles nothing and walks nothing:

* the module's variables form one *globals partition*, held by the
  LazyEmitLayer until the first symbol of the module is needed, then
  linked once;
* a function becomes callable through its stub as soon as anybody refers
  to it (a lookup, or a reference from code being linked); the stub's slot
  starts unbound, so the first call enters the resolver, which asks this
  layer to :meth:`materialize` the function: its partition (cut out by
  :class:`~execution_engine.extract.ModuleView`, in time proportional to the
  function) is compiled and linked, the slot is pointed at the body, and the
  call continues with its original arguments;
* internal and private symbols are shared between partitions under unique
  hidden names (``__ee.h<handle>.<name>``).

Functions whose arguments the resolver cannot forward - vectors wider than
128 bits (the resolver saves xmm registers only) and calling conventions
that promise to preserve more registers than the C convention - are
compiled at once when first referenced instead of through a lazy stub.
Varargs functions are forwarded (the resolver preserves ``al`` and the
stack).

When several modules define a function, the most recently added one wins,
compiled or not; removing it brings back the one before.

Thread-safety: the engine serialises calls (materialization runs under the
engine's lock, so concurrent first calls compile a function exactly once).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import llvmlite.binding as llvm

from ..errors import InvalidModuleError
from ..extract import ExtractionError, ModuleView
from ..symbols import SymbolTable
from .base import Handle
from .ir_compile import IRCompileLayer
from .lazy_emit import LazyEmitLayer

_WIDE_VECTOR = re.compile(r"<\s*(\d+)\s*x\s*(i\d+|half|bfloat|float|double|ptr)\s*>")
_BITS = {"half": 16, "bfloat": 16, "float": 32, "double": 64, "ptr": 64}
_UNFORWARDABLE_CC = re.compile(r"^define\s+(?:\w+\s+)*?(preserve_mostcc|preserve_allcc|"
                               r"cxx_fast_tlscc|ghccc|x86_regcallcc|x86_vectorcallcc|anyregcc|"
                               r"cc\s*\d+)\b")


@dataclass(eq=False)
class _Source:
    """A lazily added module."""

    handle: Handle
    module: llvm.ModuleRef
    view: ModuleView
    globals_handle: Handle
    options: dict[str, Any]
    partitions: list[Handle] = field(default_factory=list)
    compiled: set[str] = field(default_factory=set)
    forwardable: dict[str, bool] = field(default_factory=dict)


class CompileOnDemandLayer:
    """Whole modules (eager) or one function at a time (lazy) down to the IRCompileLayer."""

    def __init__(self, base: IRCompileLayer, symbols: SymbolTable, *, lazy: bool = False):
        self.base = base
        self.symbols = symbols
        self.lazy = lazy
        self.lazy_emit = LazyEmitLayer(base)
        self._lock = threading.RLock()
        self._sources: list[_Source] = []  # oldest first
        self._by_handle: dict[Handle, _Source] = {}
        self._owner: dict[Handle, Handle] = {}  # partition or globals handle -> module's

    # -- the IRCompileLayer-shaped interface the facade uses ---------------------

    @property
    def notify(self) -> Any:
        return self.base.notify

    @notify.setter
    def notify(self, hook: Any) -> None:
        self.base.notify = hook

    @property
    def getbuffer(self) -> Any:
        return self.base.getbuffer

    @getbuffer.setter
    def getbuffer(self, hook: Any) -> None:
        self.base.getbuffer = hook

    def add(self, handle: Handle, module: llvm.ModuleRef, **options: Any) -> Handle:
        """Add ``module`` (borrowed). Lazy: nothing is compiled or walked now."""
        if not self.lazy or options.get("target_machine") is not None:
            return self.base.add(handle, module, **options)
        with self._lock:
            view = ModuleView(module, prefix=f"__ee.h{handle.id}.")
            globals_handle = Handle(f"variables of {handle.name}")
            source = _Source(handle, module, view, globals_handle, options)
            self._sources.append(source)
            self._by_handle[handle] = source
            self._owner[globals_handle] = handle
            self.lazy_emit.add(
                globals_handle, lambda name: self._defines_variable(source, name),
                lambda: _parse(view.globals_partition, handle.name),
                keep_existing_data=options.get("keep_existing_data", False),
                reinitialize_data=options.get("reinitialize_data", False))
            if options.get("keep_existing_data"):  # an update: swap what is replaced
                self.lazy_emit.emit(globals_handle)
                for fn in module.functions:
                    if not fn.is_declaration and self.symbols.has_stub(fn.name):
                        self.symbols.stubs.unbind(self.symbols.stub(fn.name))
        return handle

    def add_object(self, handle: Handle, data: bytes) -> Handle:
        return self.base.add_object(handle, data)

    def pending(self) -> list[Handle]:
        return self.base.pending()

    def emit(self, handles: Iterable[Handle] | None = None) -> None:
        """Eager sets are compiled; lazy ones are ready to compile on demand."""
        self.base.emit(handles)

    def remove(self, handle: Handle) -> None:
        with self._lock:
            source = self._by_handle.pop(handle, None)
            if source is not None:
                self._sources.remove(source)
                for part in source.partitions:
                    self.base.remove(part)
                    del self._owner[part]
                self.lazy_emit.remove(source.globals_handle)
                del self._owner[source.globals_handle]
                self._rebind_after_removal(source)
        self.base.remove(handle)

    def find_symbol(self, name: str) -> int | None:
        """Address of ``name``: functions answer with their stub (nothing is
        compiled); a variable links its module's globals partition."""
        with self._lock:
            source, value_kind = self._provider(name)
            if source is None:
                return self.base.find_symbol(name)
            if value_kind == "function":
                return self._function_address(source, name)
            self.lazy_emit.emit(source.globals_handle)
            return self.base.find_symbol(name)

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        return self.base.find_symbol_in(handle, name)

    # -- lazy machinery ----------------------------------------------------------

    def resolve_lazy(self, name: str) -> int | None:
        """For the linker: what a reference to a not-yet-compiled symbol resolves
        to (a stub; or the storage, once the globals partition is linked)."""
        if not self._sources:
            return None
        with self._lock:
            source, value_kind = self._provider(name)
            if source is None:
                return None
            if value_kind == "function":
                return self._function_address(source, name)
            self.lazy_emit.emit(source.globals_handle)
            cur = self.symbols.current(name)
            return cur.address if cur is not None else None

    def materialize(self, name: str) -> int | None:
        """Compile the newest lazy definition of function ``name``; return the
        address calls should continue at, or None if no lazy module defines it."""
        with self._lock:
            stub = self.symbols.stub(name) if self.symbols.has_stub(name) else None
            if stub is not None and stub.is_bound():
                return stub.target()  # another thread compiled it meanwhile
            source, value_kind = self._provider(name)
            if source is None or value_kind != "function":
                return None
            self._compile(source, name)
            current = self.symbols.current(name)
            return current.address if current is not None else None

    def structor_handles(self, handle: Handle) -> list[Handle]:
        """The handles holding ``handle``'s constructor tables (linking them)."""
        source = self._by_handle.get(handle)
        if source is None:
            return [handle]
        self.lazy_emit.emit(source.globals_handle)
        return [source.globals_handle]

    def is_lazy(self, handle: Handle) -> bool:
        return handle in self._by_handle

    def owner(self, handle: Handle) -> Handle:
        """The module handle a partition or globals handle belongs to."""
        return self._owner.get(handle, handle)

    def _provider(self, name: str) -> tuple[_Source | None, str]:
        """The newest lazy module defining ``name`` that is newer than the current
        compiled definition, and whether it defines a function or a variable."""
        current = self.symbols.current(name)
        current_owner = self.owner(current.handle).id if current is not None else -1
        for source in reversed(self._sources):
            if source.handle.id < current_owner:
                break
            if source.handle.id == current_owner:
                return None, ""  # the newest definition is compiled already
            original = self._original_name(source, name)
            if original is None:
                continue
            if source.view.defined_function(original) is not None:
                return source, "function"
            if self._defines_variable(source, name):
                return source, "variable"
        return None, ""

    def _original_name(self, source: _Source, name: str) -> str | None:
        """The IR name in ``source`` for engine symbol ``name``."""
        prefix = source.view.prefix
        if name.startswith(prefix):
            rest = name[len(prefix):]
            return rest[5:] if rest.startswith("anon.") else rest
        value = source.view.lookup(name)
        if value is not None and source.view.is_local(value):
            return None  # locals are only reachable under their shared name
        return name

    def _defines_variable(self, source: _Source, name: str) -> bool:
        original = self._original_name(source, name)
        if original is None:
            return False
        value = source.view.lookup(original)
        return value is not None and value.value_kind == llvm.ValueKind.global_variable and not (
            value.is_declaration)

    def _function_address(self, source: _Source, name: str) -> int:
        stub = self.symbols.stub(name)
        original = self._original_name(source, name) or name
        forwardable = source.forwardable.get(name)
        if forwardable is None:
            value = source.view.defined_function(original)
            forwardable = source.forwardable[name] = value is None or _forwardable(value)
        if not forwardable and not stub.is_bound():
            self._compile(source, name)
        return stub.address

    def _compile(self, source: _Source, name: str) -> None:
        self.lazy_emit.emit(source.globals_handle)
        original = self._original_name(source, name) or name
        partition = _parse(lambda: source.view.function_partition(original), source.handle.name)
        assert partition is not None
        handle = Handle(f"function '{name}' of {source.handle.name}")
        options = {k: v for k, v in source.options.items() if k != "reinitialize_data"}
        options["replaceable"] = True
        self.base.add(handle, partition, **options)
        try:
            self.base.emit([handle])
        except BaseException:
            self.base.remove(handle)
            raise
        finally:
            partition.close()
        source.partitions.append(handle)
        self._owner[handle] = source.handle
        source.compiled.add(name)

    def _rebind_after_removal(self, source: _Source) -> None:
        """Functions the removed module provided fall back to the newest remaining
        definition; if that one is not compiled yet, the next call compiles it."""
        for name in source.compiled:
            if self._provider(name)[0] is not None:
                self.symbols.stubs.unbind(self.symbols.stub(name))


def _parse(build: Callable[[], Any], label: str) -> llvm.ModuleRef | None:
    try:
        partition = build()
    except ExtractionError:
        raise
    if partition is None:
        return None
    try:
        module = llvm.parse_assembly(partition.text)
        module.verify()
    except RuntimeError as exc:
        raise InvalidModuleError(f"a partition of {label} does not compile on its own: "
                                 f"{exc}\n{partition.text}") from None
    return module


def _forwardable(fn: llvm.ValueRef) -> bool:
    """Whether a lazy stub can forward calls to ``fn`` through the resolver."""
    signature = str(fn.global_value_type)
    for count, element in _WIDE_VECTOR.findall(signature):
        bits = _BITS.get(element) or int(element[1:])
        if int(count) * bits > 128:
            return False
    header = next((line for line in str(fn).splitlines() if line.startswith("define")), "")
    return _UNFORWARDABLE_CC.search(header) is None
