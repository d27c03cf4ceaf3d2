"""CompileOnDemandLayer: modules in, functions compiled on their first call.

The top of a lazy engine's stack (eager engines have none). Adding a module
compiles nothing and walks nothing:

* the module's variables form one *globals partition*, held by the
  LazyEmitLayer until the first symbol of the module is needed, then
  linked once;
* a function becomes callable through its stub as soon as anybody refers
  to it (a lookup, or a reference from code being linked); the stub's slot
  starts unbound, so the first call enters the resolver, which asks this
  layer to :meth:`materialize` the function: its partition (cut out by
  :class:`~execution_engine.ir.extract.ModuleView`, in time proportional to the
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
compiled or not; removing it brings back the one before. A set added with
``AddOptions.eager`` (a swapped body) goes straight down.

Besides the :class:`~.base.Layer` interface the layer answers the engine's
on-demand questions (:class:`OnDemand`): what a reference to a lazy symbol
resolves to, compiling a function whose stub was called, which sets hold a
module's constructors; :data:`EAGER` answers them for eager stacks.

With a :class:`~.background.BackgroundCompiler` (a lazy engine with compile
workers) the layer tells it what each compile referred to, lets it cut and
link partitions compiled ahead, and a first call of a function whose
partition is being compiled ahead waits for that partition instead of
compiling the function again; first calls themselves then compile in
process (``AddOptions.in_process``).

Thread-safety: the engine serialises calls (materialization runs under the
engine's lock, so concurrent first calls compile a function exactly once).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import llvmlite.binding as llvm

from ..errors import DuplicateSymbolError, ExecutionEngineError
from ..ir.extract import ExtractionError, ModuleView, unquote
from ..ir.linkage import is_local, is_weak, shared_prefix
from ..ir.module_text import HEADER_NAME
from ..ir.parse import parse_partition
from ..linking.symbols import Definition, SymbolTable, conflicts, winner
from ..native.elf import uses_thread_local
from ..policies import FUNCTION, PartitionPolicy
from .background import BackgroundCompiler, Batch, Host
from .base import DEFAULT, AddOptions, Handle, Layer, add_and_emit
from .lazy_emit import DeferredModule, LazyEmitLayer

if TYPE_CHECKING:
    from .ir_compile import IRCompileLayer


@dataclass(eq=False)
class _Source:
    """A lazily added module."""

    handle: Handle
    module: llvm.ModuleRef
    view: ModuleView
    globals_handle: Handle
    options: AddOptions
    partitions: list[Handle] = field(default_factory=list)
    compiled: set[str] = field(default_factory=set)
    claimed: set[str] = field(default_factory=set)  # names an update took over
    functions: dict[str, bool | None] = field(default_factory=dict)  # name -> weak (None: absent)
    forwardable: dict[str, bool] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    # Updates only: the external functions it defines, and whether it defines
    # variables (then it never leaves by itself: its storage may be referenced).
    defined: frozenset[str] | None = None
    defines_data: bool = True
    # Held while the background cuts a partition of the module without the
    # engine's lock; removal waits for it.
    cut_lock: threading.Lock = field(default_factory=threading.Lock)
    removed: bool = False
    # The names of the functions and variables it defines, local ones aside
    # (indexed by the layer on the first lookup after the module was added).
    names: frozenset[str] = frozenset()

    def defined_names(self) -> frozenset[str]:
        """One walk of the module: its non-local definitions' symbol names."""
        view, names = self.view, set()
        for fn in self.module.functions:
            if (not fn.is_declaration and fn.linkage != llvm.Linkage.available_externally
                    and not view.is_local(fn)):
                names.add(fn.name.removeprefix("\x01"))
        for var in self.module.global_variables:
            if not var.is_declaration and not view.is_local(var):
                names.add(var.name.removeprefix("\x01"))
        return frozenset(names)


class OnDemand(Protocol):
    """What the engine asks the top of its stack about code not compiled yet."""

    def resolve(self, name: str) -> int | None:
        """What a reference to a lazily defined ``name`` resolves to, if any."""

    def materialize(self, name: str) -> int | None:
        """Compile function ``name`` now; the address calls continue at, or None."""

    def constructor_sets(self, handle: Handle) -> list[Handle]:
        """The sets holding the constructor tables of module set ``handle``."""

    def owner(self, handle: Handle) -> Handle:
        """The module set a partition belongs to (``handle`` itself otherwise)."""

    def home(self, name: str) -> Handle | None:
        """The lazy module set whose definition of function ``name`` wins."""

    def is_lazy(self, handle: Handle) -> bool:
        """Whether module set ``handle`` is compiled on demand."""

    def is_superseded(self, handle: Handle) -> bool:
        """Whether lazy update ``handle`` is left with nothing current, compiled
        or not (and defines no data), so it may leave the engine."""

    def superseded_updates(self, handle: Handle) -> list[Handle]:
        """Earlier lazy updates that update ``handle`` left superseded."""


class _Eager:
    """:class:`OnDemand` for eager stacks: nothing is ever pending compilation."""

    def resolve(self, name: str) -> int | None:
        return None

    def materialize(self, name: str) -> int | None:
        return None

    def constructor_sets(self, handle: Handle) -> list[Handle]:
        return [handle]

    def owner(self, handle: Handle) -> Handle:
        return handle

    def home(self, name: str) -> Handle | None:
        return None

    def is_lazy(self, handle: Handle) -> bool:
        return False

    def is_superseded(self, handle: Handle) -> bool:
        return False

    def superseded_updates(self, handle: Handle) -> list[Handle]:
        return []


EAGER: OnDemand = _Eager()


class CompileOnDemandLayer(Host):
    """Modules in, one function at a time down to the IR layers."""

    def __init__(self, base: Layer, symbols: SymbolTable, *,
                 partition: PartitionPolicy = FUNCTION,
                 release_direct: Callable[[Iterable[str]], None] | None = None,
                 compile_layer: IRCompileLayer | None = None):
        self.base = base
        self.compile_layer = compile_layer
        self.background: BackgroundCompiler | None = None  # see set_background
        self.symbols = symbols
        self.partition = partition
        # Before a stub is pointed away from a linked body: code that calls
        # that body directly (the DIRECT policy) is linked again through stubs.
        self._release_direct = release_direct or (lambda names: None)
        self.lazy_emit = LazyEmitLayer(base)
        self._lock = threading.RLock()
        self._sources: list[_Source] = []  # oldest first
        self._by_handle: dict[Handle, _Source] = {}
        self._owner: dict[Handle, Handle] = {}  # partition, globals or alias handle -> module's
        # Which sources define a name, so that a lookup costs what the name's
        # definers cost, not one probe of every lazy module: symbol name ->
        # sources in add order; sources added since the last lookup; sources
        # by the prefix of their shared local names.
        self._definers: dict[str, list[_Source]] = {}
        self._unindexed: list[_Source] = []
        self._by_prefix: dict[str, _Source] = {}

    def set_background(self, background: BackgroundCompiler | None) -> None:
        """Compile ahead with ``background`` (needs ``compile_layer``); None: not."""
        if background is not None:
            assert self.compile_layer is not None
            background.host = self
        self.background = background

    def close(self) -> None:
        """Stop compiling ahead (the engine is closing)."""
        if self.background is not None:
            self.background.close()

    # -- the Layer interface ------------------------------------------------------

    def add(self, handle: Handle, module: llvm.ModuleRef,
            options: AddOptions = DEFAULT) -> Handle:
        """Add ``module`` (borrowed): nothing is compiled now. The module is
        walked only when it can replace something: an update, or a module
        added once functions have stubs (a later strong definition takes over
        a compiled body); strict mode checks its names against the engine's."""
        if options.eager:
            return self.base.add(handle, module, options)
        with self._lock:
            if self.symbols.strict:
                self._check_strict(handle, module)
            view = ModuleView(module, prefix=shared_prefix(handle.id))
            globals_handle = Handle(f"variables of {handle.name}")
            source = _Source(handle, module, view, globals_handle, options)
            self._sources.append(source)
            self._by_handle[handle] = source
            self._unindexed.append(source)
            self._by_prefix[view.prefix] = source
            self._owner[globals_handle] = handle
            self.lazy_emit.add(globals_handle, DeferredModule(
                lambda name: self._defines_variable(source, name),
                lambda: _parse(view, handle.name)),
                AddOptions(keep_existing_data=options.keep_existing_data,
                           reinitialize_data=options.reinitialize_data))
            if options.keep_existing_data:  # an update: swap what is replaced
                self._link_variables()
                defined = self._take_over(source, module, only_bound=False)
                source.defined = frozenset(defined)
                source.defines_data = any(not g.is_declaration for g in module.global_variables)
            elif len(self.symbols.stubs):
                # A later strong definition wins over a body already compiled
                # (the linker's rule, as in an eager engine). Without any stub
                # nothing is compiled yet, and the module is not walked.
                self._take_over(source, module, only_bound=True)
        return handle

    def _take_over(self, source: _Source, module: llvm.ModuleRef, *,
                   only_bound: bool) -> list[str]:
        """Unbind the stubs of the functions ``source`` now provides (the
        next call compiles its definition; ``only_bound``: of those whose
        stub is bound to a body) and claim them, so that removing ``source``
        brings the previous definition back. Returns the external names it
        defines (engine's lock held)."""
        defined = []
        unbind = []
        for fn in module.functions:
            if fn.is_declaration:
                continue
            name = fn.name
            if not is_local(fn):
                defined.append(name)
            if not self.symbols.has_stub(name):
                continue
            if only_bound and not self.symbols.stub(name).is_bound():
                continue
            source.claimed.add(name)
            if self._provider(name)[0] is source:
                unbind.append(name)
        if unbind:
            self._release_direct(unbind)
        for name in unbind:
            self.symbols.stubs.unbind(self.symbols.stub(name))
        return defined

    def emit(self, handles: Iterable[Handle] | None = None) -> None:
        """Lazy sets are ready to compile on demand as soon as they are added;
        eager ones (and anything queued below) are compiled and linked."""
        self.base.emit(handles)

    def is_pending(self, handle: Handle) -> bool:
        return self.base.is_pending(handle)

    def pending(self) -> list[Handle]:
        return self.base.pending()

    def remove(self, handle: Handle) -> None:
        with self._lock:
            source = self._by_handle.pop(handle, None)
            if source is not None:
                with source.cut_lock:
                    source.removed = True
                if self.background is not None:
                    self.background.forget(source)
                self._sources.remove(source)
                self._forget_names(source)
                for part in source.partitions:
                    self.base.remove(part)
                    del self._owner[part]
                self.lazy_emit.remove(source.globals_handle)
                del self._owner[source.globals_handle]
                self.symbols.remove_handle(source.globals_handle, source.aliases)
                for name in source.compiled | source.claimed:
                    self._resync(name)
        self.base.remove(handle)

    def find_symbol(self, name: str) -> int | None:
        """Address of ``name``: functions answer with their stub (nothing is
        compiled); a variable links the lazy modules' variables."""
        with self._lock:
            source, kind = self._provider(name)
            if source is None:
                return self.base.find_symbol(name)
            return self._address(source, name, kind)

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        return self.base.find_symbol_in(handle, name)

    # -- lazy machinery ----------------------------------------------------------

    def resolve(self, name: str) -> int | None:
        """For the linker: what a reference to a not-yet-compiled symbol resolves
        to (a stub; or the storage, once the variables are linked)."""
        if not self._sources:
            return None
        with self._lock:
            source, kind = self._provider(name)
            return None if source is None else self._address(source, name, kind)

    def materialize(self, name: str) -> int | None:
        """Compile the winning lazy definition of function ``name``; return the
        address calls should continue at, or None if no lazy module defines it."""
        with self._lock:
            stub = self.symbols.stub(name) if self.symbols.has_stub(name) else None
            if stub is not None and stub.is_bound():
                return stub.target()  # another thread compiled it meanwhile
            source, kind = self._provider(name)
            if source is None or kind != "function":
                return None
            batch = self._reserved(source, name)
            if batch is not None:  # being compiled ahead: wait for it, link it
                assert self.background is not None
                self.background.claim(batch)
            if batch is None or self._provider(name)[0] is source:
                self._compile(source, name)
            if self.background is not None:
                self.background.pump()
            current = self.symbols.current(name)
            return current.address if current is not None else None

    def constructor_sets(self, handle: Handle) -> list[Handle]:
        """The handles holding ``handle``'s constructor tables (linking them)."""
        source = self._by_handle.get(handle)
        if source is None:
            return [handle]
        self._link_variables()
        return [source.globals_handle]

    def is_lazy(self, handle: Handle) -> bool:
        return handle in self._by_handle

    def is_superseded(self, handle: Handle) -> bool:
        source = self._by_handle.get(handle)
        if source is None or source.defined is None or source.defines_data or source.aliases:
            return False
        with self._lock:
            for name in source.defined:
                current = self.symbols.current(name)
                if current is not None and self.owner(current.handle) is handle:
                    return False
                if self._provider(name)[0] is source:
                    return False
            return True

    def superseded_updates(self, handle: Handle) -> list[Handle]:
        new = self._by_handle.get(handle)
        if new is None or not new.defined:
            return []
        return [s.handle for s in self._sources
                if s is not new and s.defined and not new.defined.isdisjoint(s.defined)
                and self.is_superseded(s.handle)]

    def owner(self, handle: Handle) -> Handle:
        """The module handle a partition or globals handle belongs to."""
        return self._owner.get(handle, handle)

    def home(self, name: str) -> Handle | None:
        """The lazy module whose definition of function ``name`` wins, if any."""
        with self._lock:
            source, kind = self._provider(name)
            return source.handle if source is not None and kind == "function" else None

    def _provider(self, name: str) -> tuple[_Source | None, str]:
        """Which lazy module provides ``name`` and as what ("function",
        "variable" or "alias"), when it beats the current linked definition.

        Functions follow the linker's rules, as the eager engine does: the
        newest strong definition wins; if all are weak, the first one.
        Variables live in the variables partitions, linked together in add
        order (so the same rules apply there); aliases are defined on request.
        """
        current = self.symbols.current(name)
        current_order = self.owner(current.handle).id if current is not None else -1
        candidates: list[tuple[int, bool, _Source | None]] = []
        if current is not None:
            candidates.append((current_order, current.weak, None))
        definers = self._sources_defining(name)
        for source in definers:
            weak = self._function_weakness(source, name)
            if weak is None:
                continue
            if source.handle.id == current_order:
                continue  # that definition is the current one, already linked
            candidates.append((source.handle.id, weak, source))
        if len(candidates) > (current is not None):
            candidates.sort(key=lambda c: c[0])  # oldest first
            best = winner((weak, source) for _, weak, source in candidates)
            return (best, "function") if best is not None else (None, "")
        if current is not None:
            return None, ""
        for source in reversed(definers):
            if self._defines_variable(source, name):
                return source, "variable"
        for source in reversed(self._sources):
            original = self._original_name(source, name)
            if original is not None and source.view.alias_target(original) is not None:
                return source, "alias"
        return None, ""

    def _sources_defining(self, name: str) -> list[_Source]:
        """The sources that may define symbol ``name`` (a function or variable),
        oldest first: those whose definitions carry the name, and for a shared
        local name the source whose prefix it has."""
        while self._unindexed:
            source = self._unindexed.pop(0)
            source.names = source.defined_names()
            for defined in source.names:
                self._definers.setdefault(defined, []).append(source)
        definers = self._definers.get(name, [])
        if name.startswith("__ee.h"):
            owner = self._by_prefix.get(name[:name.find(".", 6) + 1])
            if owner is not None and owner not in definers:
                definers = sorted([*definers, owner], key=lambda s: s.handle.id)
        return definers

    def _forget_names(self, source: _Source) -> None:
        if source in self._unindexed:
            self._unindexed.remove(source)
        self._by_prefix.pop(source.view.prefix, None)
        for name in source.names:
            definers = self._definers[name]
            definers.remove(source)
            if not definers:
                del self._definers[name]

    def _function_weakness(self, source: _Source, name: str) -> bool | None:
        """Whether ``source`` defines function ``name`` weakly (None: not at all)."""
        if name not in source.functions:
            original = self._original_name(source, name)
            fn = None if original is None else source.view.defined_function(original)
            source.functions[name] = None if fn is None else is_weak(fn)
        return source.functions[name]

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

    def _address(self, source: _Source, name: str, kind: str) -> int | None:
        if kind == "function":
            return self._function_address(source, name)
        if kind == "alias":
            return self._define_alias(source, name)
        self._link_variables()
        return self.base.find_symbol(name)

    def _link_variables(self) -> None:
        """Link every lazy module's variables not linked yet, as one batch: in add
        order, so weak and strong definitions resolve as in an eager engine, and
        variables that refer to each other across modules link together."""
        held = [s.globals_handle for s in self._sources
                if self.lazy_emit.is_held(s.globals_handle)]
        if held:
            self.lazy_emit.emit(held)

    def _define_alias(self, source: _Source, name: str) -> int | None:
        """An alias is what it aliases (plus a constant offset)."""
        original = self._original_name(source, name) or name
        target = source.view.alias_target(original) or ""
        m = re.fullmatch(r"ptr\s+(@\S+)|ptr\s+getelementptr\s*(?:inbounds\s*)?\(\s*i8,\s*ptr\s+"
                         r"(@\S+),\s*i\d+\s+(-?\d+)\s*\)", target.strip())
        if m is None:
            raise ExtractionError(f"alias '{name}' of {source.handle.name} aliases '{target}', "
                                  "which this engine cannot resolve lazily")
        token = m.group(1) or m.group(2)
        aliasee = unquote(token)
        value = source.view.lookup(aliasee)
        shared = source.view.shared_name(value, aliasee) if value is not None else aliasee
        base = self.find_symbol(shared) or self.base.find_symbol(shared)
        if not base:
            return None
        address = base + int(m.group(3) or 0)
        self.symbols.define(Definition(name, source.globals_handle, address, False, False,
                                       source.handle.name))
        source.aliases.append(name)
        return address

    def _function_address(self, source: _Source, name: str) -> int:
        stub = self.symbols.stub(name)
        original = self._original_name(source, name) or name
        forwardable = source.forwardable.get(name)
        if forwardable is None:
            forwardable = source.forwardable[name] = source.view.forwardable(original)
        if not forwardable and not stub.is_bound():
            batch = self._reserved(source, name)
            if batch is not None:
                assert self.background is not None
                self.background.claim(batch)
            if not stub.is_bound():
                self._compile(source, name)
        return stub.address

    def _reserved(self, source: _Source, name: str) -> Batch | None:
        return None if self.background is None else self.background.reserved(source, name)

    def _compile(self, source: _Source, name: str) -> None:
        self._link_variables()
        current = self.symbols.current(name)
        if current is not None and self.owner(current.handle) is source.handle:
            return  # the variables partition defined it (its block addresses are taken)
        original = self._original_name(source, name) or name

        def uncompiled(ref: str) -> bool:
            value = source.view.lookup(ref)
            engine_name = source.view.shared_name(value, ref) if value else ref
            return (self._provider(engine_name)[0] is source and engine_name not in source.compiled
                    and self._reserved(source, engine_name) is None)

        cut = source.view.partition([original], callees=self.partition.callee_filter(uncompiled))
        handle = Handle(f"function '{name}' of {source.handle.name}")
        partition = parse_partition(cut.text, handle.name)
        background = self.background
        options = replace(source.options, reinitialize_data=False, replaceable=True, in_place=True,
                          in_process=background is not None and not background.isolated(
                              source, name))
        try:
            add_and_emit(self.base, handle, partition, options)
        finally:
            partition.close()
        source.partitions.append(handle)
        self._owner[handle] = source.handle
        source.compiled.update(cut.defines)
        if background is not None:
            background.compiled(source, self._callees(cut.text), first_call=True)

    # -- compiling ahead (the background's Host) -----------------------------------

    def _callees(self, text: str) -> list[tuple[_Source, str]]:
        """The lazy functions a partition's text declares, with their modules."""
        found = []
        for line in text.splitlines():
            if not line.startswith("declare"):
                continue
            m = HEADER_NAME.match(line)
            if m is None:
                continue
            name = unquote(m.group(1))
            source, kind = self._provider(name)
            if source is not None and kind == "function" and name not in source.compiled:
                found.append((source, name))
        return found

    def queue_order(self, source: _Source) -> list[str]:
        with source.cut_lock:
            if source.removed:
                raise ExtractionError(f"{source.handle.name} was removed")
            view = source.view
            view.index()  # one print of the module: every later cut is a slice of it
            names = []
            for fn in source.module.functions:
                if fn.is_declaration or not fn.name or (
                        fn.linkage == llvm.Linkage.available_externally):
                    continue
                names.append(view.shared_name(fn, fn.name))
            return names

    def wanted(self, source: _Source, name: str) -> bool:
        if self._by_handle.get(source.handle) is not source or name in source.compiled:
            return False
        if self._provider(name)[0] is not source:
            return False
        current = self.symbols.current(name)
        return current is None or self.owner(current.handle) is not source.handle

    def size(self, source: _Source, name: str) -> int:
        return source.view.text_size(self._original_name(source, name) or name)

    def cut_apart(self, source: _Source, names: list[str]) -> tuple[str, list[str]]:
        with source.cut_lock:
            if source.removed:
                raise ExtractionError(f"{source.handle.name} was removed")
            cut = source.view.partition([self._original_name(source, n) or n for n in names])
        return cut.text, cut.defines

    def link(self, batch: Batch, data: bytes, seconds: float) -> bool:
        source = batch.source
        if not all(self.wanted(source, name) for name in batch.defines):
            return False  # removed, updated or compiled meanwhile: stale
        if uses_thread_local(data):
            return False  # its first calls compile it here, where TLS is lowered
        assert self.compile_layer is not None
        handle = Handle(f"{len(batch.defines)} functions compiled ahead from {source.handle.name}")
        options = replace(source.options, reinitialize_data=False, replaceable=True, in_place=True)
        self.compile_layer.add_object(handle, data, batch.text, options, seconds)
        try:
            self.base.emit([handle])
        except ExecutionEngineError:
            self.base.remove(handle)
            return False  # its first calls compile (and report) as without the background
        source.partitions.append(handle)
        self._owner[handle] = source.handle
        source.compiled.update(batch.defines)
        if self.background is not None:
            self.background.compiled(source, self._callees(batch.text), first_call=False)
        return True

    def _resync(self, name: str) -> None:
        """After a removal: the stub of ``name`` goes to the winning definition,
        compiled on the next call if it is lazy and not compiled yet."""
        if not self.symbols.has_stub(name):
            return
        stub = self.symbols.stub(name)
        current = self.symbols.current(name)
        if self._provider(name)[0] is not None or current is None or not current.is_function:
            self._release_direct([name])
            self.symbols.stubs.unbind(stub)
        else:
            self.symbols.stubs.bind(stub, current.address)

    def _check_strict(self, handle: Handle, module: llvm.ModuleRef) -> None:
        """Strict mode: a strong definition of a name already defined strongly
        (linked, or by another lazy module) is refused when the module is added."""
        for value in (*module.functions, *module.global_variables):
            if value.is_declaration or is_local(value) or not value.name:
                continue
            weak = is_weak(value)
            self.symbols.check_name(value.name, weak, handle.name)
            for source in self._sources:
                other = source.view.lookup(value.name)
                if other is not None and not other.is_declaration and conflicts(is_weak(other),
                                                                                 weak):
                    raise DuplicateSymbolError(value.name, source.handle.name, handle.name)


def _parse(view: ModuleView, label: str) -> llvm.ModuleRef | None:
    """The variables partition of ``view`` (None if the module has no variables)."""
    partition = view.globals_partition()
    if partition is None:
        return None
    return parse_partition(partition.text, f"the variables partition of {label}")

