"""The facade: llvmlite's MCJIT ``ExecutionEngine``, built from JIT layers.

The engine composes a stack from its options (:mod:`.stack`, where the
layers are listed) and translates the MCJIT API onto it; hot-swap is a
component it owns (:mod:`.hotswap`), the modules it owns are in a
:class:`~.module_table.ModuleTable`.

Why this file is longer than the others: it is the whole public API (the
MCJIT surface, hot-swap, running code with typed calls, events,
introspection, lifetime). Each method
is a few lines of delegation under the docstring that states its contract;
splitting it would scatter the contracts, not the logic.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import llvmlite.binding as llvm

from .errors import EngineClosedError, ExecutionEngineError, ExecutorError, LazyCompileError
from .executors.base import Executor
from .hotswap import HotSwap
from .introspection import (
    EngineStats,
    FunctionInfo,
    WorkCounters,
    collect_stats,
    describe_function,
)
from .ir import module_checks
from .ir.module_checks import check_not_owned, module_label
from .ir.signature import (
    FROM_SIGNATURE,
    VOID_CALL,
    Restype,
    Signature,
    check_restype,
    function_signature,
    untyped,
)
from .layers.base import AddOptions, Handle
from .layers.ir_compile import GetBufferHook, NotifyHook
from .linking import structors
from .linking.reclaim import Reclaimer
from .linking.resolver import GlobalMappings
from .module_table import ModuleTable
from .native import elf
from .native.object_files import read_object
from .native.stubs import Stub
from .observe.events import EventHub, ExecutorEvent, LazyCompiled, Listener
from .observe.observer import CodeObserver
from .options import EngineOptions
from .stack import Stack, build_stack
from .tiering.controller import tier_up_component

_tm_users: dict[int, int] = {}
_tm_lock = threading.Lock()


class ExecutionEngine:
    """An MCJIT-compatible execution engine.

    Ownership (as in llvmlite): modules passed to the constructor and to
    :meth:`add_module` belong to the engine until :meth:`remove_module`
    returns them; :meth:`close` disposes of the modules it still owns and of
    the target machine. The engine never changes a module: callers may keep
    printing, serialising and compiling it. The engine keeps its own
    reference to each module it owns, so the caller may close theirs.

    Memory: :meth:`remove_module` frees the module's code and data at once;
    :meth:`close` frees everything. Addresses handed out for functions are
    stub addresses, stable for the life of the engine; calling a function
    whose module was removed reports the function's name and stops the
    process (or the executor) rather than jumping into freed memory.

    Thread-safety: every method may be called from any thread; mutations
    are serialised by the engine's lock.
    """

    def __init__(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine, *,
                 options: EngineOptions | None = None, **keywords: Any):
        if options is not None and keywords:
            raise TypeError("give either options= or keyword options, not both")
        self._options = options if options is not None else EngineOptions.from_keywords(
            **keywords)
        check_not_owned(module)
        module_checks.check_module(module, target_machine, verify=not self._options.lazy)
        self._lock = threading.RLock()
        self._closed = False
        self._target_machine = target_machine
        self._target_data = llvm.create_target_data(str(target_machine.target_data))
        self._modules = ModuleTable()
        self._objects: list[tuple[Handle, bytes]] = []
        self._libraries: list[str] = []
        self._constructed: set[Handle] = set()
        self._cache_hooks: tuple[NotifyHook | None, GetBufferHook | None] = (None, None)
        self._reclaimer = Reclaimer(self._options.grace_period)
        self._leaving: list[Handle] = []  # retired sets whose updates may leave
        self._mappings = GlobalMappings()
        self._work = WorkCounters()
        # What call() marshals by, per defining module set (gone with the set).
        self._signatures: weakref.WeakKeyDictionary[Handle, dict[str, Signature | None]] = (
            weakref.WeakKeyDictionary())
        self._depth = threading.local()  # how deep this thread is in the engine's lock
        self._events = EventHub()
        self._compile_seconds: dict[Handle, float] = {}
        self._observer = CodeObserver(self._events, self._compile_info)
        self._perf_map = self._gdb_names = False  # writers registered
        self._build()
        if self._options.perf_map or self._options.jitdump or self._options.jit_events:
            self._start_profiling(perf_map=self._options.perf_map or self._options.jit_events,
                                  jitdump=self._options.jitdump,
                                  gdb_names=self._options.jit_events)
        with _tm_lock:
            _tm_users[id(target_machine)] = _tm_users.get(id(target_machine), 0) + 1
        target_machine._owned = True
        self._add(module, self._user_options())

    def _build(self) -> None:
        """The stack and the hot-swap component on it (again after a restart)."""
        self._stack: Stack = build_stack(self._options, self._target_machine, self._mappings,
                                         self._reclaimer, self._on_unbound_stub)
        compile_layer = self._stack.compile_layer
        self._stack.start_background(self._options, self._target_machine, self._locked)
        self._install_cache_hooks()
        compile_layer.on_compiled = self._on_compiled
        self._swap = HotSwap(self._stack, self._modules, self._target_machine,
                             self._options.redirection)
        self._stack.redirection.on_retired = self._on_retired
        self._tier_up = tier_up_component(self._options, self._stack, self._swap,
                                          lock=self._locked, after_swap=self._after_swap,
                                          target_machine=self._target_machine)
        self._update_observer()

    def _after_swap(self) -> None:
        """What follows every swap (lock held): running code (remote too) sees
        it now; replaced code past its grace period is freed."""
        self._stack.stubs.flush()
        self._reclaimer.poll()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The engine's lock; events queued meanwhile are delivered once this
        thread leaves its outermost hold of the lock (listeners never run
        under it)."""
        depth = getattr(self._depth, "n", 0)
        self._depth.n = depth + 1
        try:
            with self._lock:
                try:
                    yield
                finally:
                    if depth == 0 and self._leaving:
                        self._release_superseded()
        finally:
            self._depth.n = depth
            if depth == 0 and self._events.active:
                self._events.flush()

    def _on_compiled(self, handle: Handle, data: bytes, seconds: float) -> None:
        self._work.compiled(data, seconds)
        if self._events.active:
            self._compile_seconds[handle] = seconds

    def _compile_info(self, handle: Handle) -> tuple[float, int, bool]:
        return self._compile_seconds.pop(handle, 0.0), -1, False

    def _update_observer(self) -> None:
        """Watch the linker only while somebody listens (no cost otherwise)."""
        self._stack.redirection.observer = self._observer if self._events.active else None

    def _on_retired(self, retired: Handle) -> None:
        """Set ``retired`` was superseded: its update may leave the engine,
        once the operation that retired it is over (see update_module)."""
        self._leaving.append(retired)

    def _release_superseded(self) -> None:
        """Superseded updates leave the engine: what they held is dropped and
        each module goes back to its caller's reference."""
        while self._leaving:
            update = self._swap.superseded_update(self._leaving.pop())
            if update is None or self._modules.module_of(update) is None:
                continue
            self._swap.forget(update)
            self._constructed.discard(update)
            if self._stack.on_demand.is_lazy(update):
                self._stack.top.remove(update)  # nothing of it is linked any more
            self._modules.release_handle(update)

    @property
    def options(self) -> EngineOptions:
        """What this engine was created with."""
        return self._options

    @property
    def executor(self) -> Executor:
        """Where this engine's code is linked and runs (a new one after
        :meth:`restart_executor`). For inspection (``executor.pid``); linking
        through it directly bypasses the engine's bookkeeping."""
        return self._stack.executor

    # -- modules ---------------------------------------------------------------

    def add_module(self, module: llvm.ModuleRef) -> None:
        """Add ``module``; ownership moves to the engine. ``KeyError`` if it was
        already added. Nothing is compiled until finalization."""
        with self._locked():
            self._check_open()
            self._check_new(module)
            module_checks.check_module(module, self._target_machine,
                                       verify=not self._options.lazy)
            self._add(module, self._user_options())

    def _user_options(self, **update: bool) -> AddOptions:
        """How a module the user adds joins the stack."""
        return AddOptions(in_place=self._options.compile_in_place, **update)

    def _check_new(self, module: llvm.ModuleRef) -> None:
        if isinstance(module, llvm.ModuleRef) and module in self._modules:
            raise KeyError(f"{module_label(module)} was already added to this engine")
        check_not_owned(module)

    def _add(self, module: llvm.ModuleRef, options: AddOptions,
             label: str | None = None) -> Handle:
        handle = Handle(label or module_label(module))
        own = self._modules.add(module, handle)
        self._stack.top.add(handle, own, options)
        return handle

    def remove_module(self, module: llvm.ModuleRef) -> None:
        """Remove ``module``, free its code and data, return its ownership.
        Its symbols become undefined. ``KeyError`` if it is not in the engine."""
        with self._locked():
            self._check_open()
            handle = self._modules.handle_of(module)
            if handle is None:
                raise KeyError(f"{module_label(module)} is not in this engine")
            self._stack.top.remove(handle)
            self._swap.forget(handle)
            self._constructed.discard(handle)
            self._modules.release(module)
            self._stack.stubs.flush()
            self._reclaimer.poll()

    def add_object_file(self, obj_file: llvm.ObjectFileRef | str | bytes) -> None:
        """Add a relocatable object (an ``ObjectFileRef``, a path or bytes).
        It is validated now and linked at finalization."""
        with self._locked():
            self._check_open()
            label, data = read_object(obj_file)
            handle = Handle(label)
            self._add_object(handle, data)
            self._objects.append((handle, data))

    def _add_object(self, handle: Handle, data: bytes) -> None:
        obj = elf.ObjectFile(data, machine=self._stack.compile_layer.machine, name=handle.name)
        self._stack.redirection.add(handle, obj)

    # -- finalization and lookup -------------------------------------------

    def finalize_object(self) -> None:
        """Compile and link everything added so far."""
        with self._locked():
            self._check_open()
            self._stack.top.emit()
            self._stack.stubs.flush()

    def get_function_address(self, name: str) -> int:
        """Callable address of ``name`` (finalizing first if needed), 0 if unknown."""
        return self._lookup(name)

    def get_global_value_address(self, name: str) -> int:
        """Address of global ``name`` (finalizing first if needed), 0 if unknown."""
        return self._lookup(name)

    def _lookup(self, name: str) -> int:
        if not isinstance(name, str):
            raise TypeError(f"a symbol name must be a str, not {type(name).__name__}")
        with self._locked():
            self._check_open()
            mapped = self._mappings(name)
            if mapped is not None:
                return mapped
            top = self._stack.top
            if top.pending():
                try:
                    top.emit()
                except ExecutionEngineError:
                    # Another set failed to link: what was good still answers.
                    address = top.find_symbol(name)
                    if address:
                        return address
                    raise
                self._stack.stubs.flush()
            return top.find_symbol(name) or 0

    def add_global_mapping(self, gv: llvm.ValueRef, addr: int) -> None:
        """Make references to global ``gv`` (of a module in this engine) resolve
        to ``addr``. Takes effect for code linked afterwards."""
        with self._locked():
            self._check_open()
            if not isinstance(gv, llvm.ValueRef):
                raise TypeError(f"add_global_mapping needs a global value, got {gv!r}")
            if gv.value_kind not in _GLOBAL_KINDS:
                raise TypeError(
                    f"add_global_mapping needs a global value, got {gv.value_kind.name} "
                    f"'{gv.name or str(gv).strip()[:80]}'")
            if gv.module not in self._modules:
                raise ValueError(
                    f"global '{gv.name}' belongs to module '{gv.module.name}', "
                    "which is not in this engine"
                )
            address = int(addr)
            if not 0 < address < 1 << 64:
                raise ValueError(f"cannot map '{gv.name}' to address {address:#x}: "
                                 "not a valid address")
            self._mappings.add(gv.name, address)

    def set_object_cache(self, notify_func: NotifyHook | None = None,
                         getbuffer_func: GetBufferHook | None = None) -> None:
        """llvmlite's object-cache hooks (see :class:`~.layers.ir_compile.IRCompileLayer`)."""
        with self._locked():
            self._check_open()
            self._cache_hooks = (notify_func, getbuffer_func)
            self._install_cache_hooks()

    def _install_cache_hooks(self) -> None:
        notify, getbuffer = self._cache_hooks
        user = self._modules.user_reference
        layer = self._stack.compile_layer
        layer.notify = None if notify is None else lambda m, data: notify(user(m), data)
        layer.getbuffer = None if getbuffer is None else lambda m: getbuffer(user(m))

    # -- hot-swap --------------------------------------------------------------

    def update_module(self, module: llvm.ModuleRef, *, reinitialize_globals: bool = False,
                      replaces: llvm.ModuleRef | None = None) -> None:
        """Swap in ``module``: every function it defines that the engine already
        has is replaced (every call that starts after this returns reaches the
        new body; under the default ``redirection="direct"`` a thread running
        inside the module that defined the function keeps calling that
        module's first copy until it returns out of it, see
        :mod:`.linking.relink`); new functions and globals are added; globals that already
        exist keep their storage and current value, unless
        ``reinitialize_globals``, which resets them to ``module``'s initial
        values. Only ``module``'s code is compiled and linked.

        Ownership of ``module`` moves to the engine as with :meth:`add_module`;
        :meth:`remove_module` on it undoes the update (earlier definitions
        become current again, unless they were freed). An update whose every
        definition has been replaced by later updates, and that defines no
        data or constructors, leaves the engine by itself: its code is freed
        under the reclamation rule and the module goes back to the caller's
        ``ModuleRef`` (freed when the caller drops it; ``remove_module`` on it
        then raises ``KeyError``). So a REPL that redefines a function with
        ``update_module`` over and over stays flat, lazy or eager (a lazy
        update may leave before any of it was compiled).

        ``replaces``: ``module`` is a new version of that module (say, the
        same source file edited and parsed again). Then only the functions
        whose IR changed, and new ones, are compiled; the rest keep running
        from the earlier version, which therefore stays in the engine; and
        internal (``static``) variables keep their storage and values too,
        matched by name.

        Raises :class:`SignatureMismatchError` naming the first function (or
        global) whose type changed; then nothing changes.
        """
        with self._locked():
            self._check_open()
            self._swap.check_swappable()
            self._check_new(module)
            previous = None
            if replaces is not None:
                previous = self._modules.handle_of(replaces)
                if previous is None:
                    raise KeyError("the module to replace is not in this engine")
            module_checks.check_module(module, self._target_machine,
                                       verify=not self._options.lazy or previous is not None)
            self._swap.check_types(module)
            top = self._stack.top
            if top.pending():
                top.emit()
            handle = Handle(f"update {module_label(module)}")
            own = self._modules.add(module, handle)
            try:
                self._swap.update(handle, own, previous, self._user_options(
                    keep_existing_data=True, replaceable=True,
                    reinitialize_data=reinitialize_globals))
            except BaseException:
                self._modules.release(module)
                raise
            self._leaving += self._stack.on_demand.superseded_updates(handle)
            if previous is not None:
                self._leaving.append(previous)  # leaves if nothing of it is current
            self._work.swapped()
            self._stack.stubs.flush()  # running code (remote too) sees the swap now
            self._reclaimer.poll()

    def recompile_and_relink_function(self, fn: llvm.ValueRef | str, *,
                                      opt_level: int | None = None) -> int:
        """Recompile function ``fn`` (a ValueRef of a module in this engine, or
        the name of a function the engine defines) from its module's current
        IR, redirect every caller to the new body and return the body's
        address.

        With ``opt_level`` (0-3) the function is optimised by LLVM's standard
        pipeline at that level and compiled at that code generation level
        (tiering: add code at O0, recompile hot functions at O3). The body it
        replaces is freed under the engine's reclamation rule. Internal
        functions cannot be redirected (their callers call them directly).
        """
        with self._locked():
            self._check_open()
            self._swap.check_swappable()
            top = self._stack.top
            if top.pending():
                top.emit()
            address = self._swap.recompile(fn, opt_level)
            self._work.swapped()
            self._stack.stubs.flush()
            self._reclaimer.poll()
            return address

    def reclaim(self) -> int:
        """Declare a quiescent point: no thread is running replaced code, so
        every retired body is freed now. Returns how many sets were freed."""
        with self._locked():
            self._check_open()
            return self._reclaimer.quiescent()

    # -- constructors ------------------------------------------------------

    def run_static_constructors(self) -> None:
        """Run the constructors of every module not yet constructed: ascending
        priority, table order within a priority, modules in the order added.
        A lazily compiled constructor that cannot be compiled raises
        :class:`LazyCompileError` before any constructor runs."""
        with self._locked():
            self._check_open()
            self._stack.top.emit()
            handles = [h for _, h in self._modules.entries() if h not in self._constructed]
            entries = self._structors(handles)
            for _, structor, _ in entries:
                if structor.kind == "ctor":
                    self._compile_now(structor.symbol)
            self._constructed.update(handles)
        structors.run(entries, "ctor", self._call_void)

    def run_static_destructors(self) -> None:
        """Run the destructors of every module: descending priority, table order
        within a priority."""
        with self._locked():
            self._check_open()
            entries = self._structors([h for _, h in self._modules.entries()])
        structors.run(entries, "dtor", self._call_void)

    def _structors(self, handles: list[Handle]) -> list[tuple[int, structors.Structor, int]]:
        on_demand, redirection = self._stack.on_demand, self._stack.redirection
        return [e for h in handles for part in on_demand.constructor_sets(h)
                for e in redirection.structors_of(part)]

    def _call_void(self, address: int) -> None:
        self._stack.executor.call(address, VOID_CALL, (),
                                  running="a static constructor or destructor")

    # -- events ----------------------------------------------------------------

    def add_event_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event from now on: an object linked,
        code freed, a function swapped, a lazy function compiled, the executor
        crashed or restarted (:mod:`execution_engine.observe.events`). Listeners
        run on the thread that caused the event, after the engine's lock is
        released, one event at a time and in order; an exception in a listener
        is reported once as an ``EventListenerWarning`` and otherwise ignored."""
        with self._locked():
            self._check_open()
            self._events.add(listener)
            self._update_observer()

    def remove_event_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``; ``ValueError`` if it is not registered."""
        with self._locked():
            self._events.remove(listener)
            self._update_observer()

    def _start_profiling(self, *, perf_map: bool = True, jitdump: bool = False,
                         gdb_names: bool = False) -> None:
        from .observe import gdb_jit
        from .observe import jitdump as dump
        from .observe import perf_map as perf

        if perf_map and not self._perf_map:
            self.add_event_listener(perf.perf_map())
            self._perf_map = True
        if jitdump:
            self.add_event_listener(dump.jit_dump())
        if gdb_names and not self._gdb_names:
            self.add_event_listener(gdb_jit.GdbJitListener())
            self._gdb_names = True

    # -- misc MCJIT API ------------------------------------------------------

    @property
    def target_data(self) -> llvm.TargetData:
        """The engine's data layout (the same object on every call)."""
        return self._target_data

    def enable_jit_events(self) -> bool:
        """Profiler and debugger notification, as llvmlite's: from now on every
        linked function is named for ``perf`` (``/tmp/perf-<pid>.map``) and for
        GDB (which the linker's own registration shows only as ``f..body<N>``
        without debug info). Returns True: the engine now registers its code.
        In-process code only (a remote executor's code lives in another process)."""
        with self._locked():
            self._check_open()
            if not self._gdb_names:
                self._start_profiling(perf_map=not self._perf_map, gdb_names=True)
            return True

    # -- running code ----------------------------------------------------------

    def call(self, function: str | int, *args: int | float | None,
             restype: Restype = FROM_SIGNATURE) -> Any:
        """Call JIT'd ``function`` (a name or an address) and return its result.

        A function the engine knows the IR of (see :meth:`function_signature`)
        is called by its IR signature: arguments are checked and converted
        (``TypeError`` naming the function for a wrong count or type,
        ``OverflowError`` for an integer too wide for its parameter) and the
        result is read as the IR type says (integers signed of their width,
        ``i1`` as 0/1, pointers as unsigned addresses, ``void`` as ``None``).
        ``restype`` may then be omitted; ``int`` or ``float`` must agree with
        the IR's result, ``None`` discards it.

        Without IR (a raw address, a function of an object file, an alias),
        ``int`` arguments are passed as 64-bit integers, ``float`` as double,
        and the result is read as ``restype``: ``int`` (a signed 64-bit
        integer, the default), ``float`` (double) or ``None``. Any other
        ``restype`` raises ``TypeError`` listing these.

        A lazy function is compiled first (a failure raises
        :class:`LazyCompileError` here). In a remote engine the call runs in
        the executor; if it crashes there, :class:`ExecutorCrashedError` (or
        ``ExecutorExitedError``) is raised here."""
        check_restype(restype)
        address, name = self._entry(function)
        signature = self._signature_of(name) if isinstance(function, str) else None
        if signature is None:
            prototype, values = untyped(args, restype, name)
        else:
            prototype, values = signature.returning(restype, name).bind(name, args)
        with self._reporting_crashes():
            return self._stack.executor.call(address, prototype, values, running=name)

    def function_signature(self, name: str) -> Signature | None:
        """The signature :meth:`call` marshals ``name`` by: the IR type of the
        function in the module whose definition of ``name`` is current (or
        wins, for a lazy one not compiled yet). ``None`` when the engine has
        no IR for it: an object file's function, an alias, a name bound only
        by ``add_global_mapping``, an unknown name. ``TypeError`` if ``name``
        is a variable or its type cannot be marshalled (structs, vectors or
        arrays by value, integers wider than 64 bits, ``byval`` parameters).
        Finalizes if needed, as :meth:`get_function_address` does (a lazy
        function is not compiled)."""
        with self._locked():
            self._lookup(name)
            return self._signature_of(name)

    def _signature_of(self, name: str) -> Signature | None:
        with self._locked():
            self._check_open()
            found = self._swap.defining_module(name)
            if found is None:
                return None
            handle, module = found
            known = self._signatures.get(handle)
            if known is None:
                known = self._signatures[handle] = {}
            if name not in known:
                known[name] = function_signature(module, name)
            return known[name]

    def run_main(self, argv: list[str], env: list[str] | None = None,
                 entry: str = "main") -> int:
        """Call ``entry(argc, argv, envp)`` and return its status; ``env`` defaults
        to this process's environment. Remote engines run it in the executor,
        whose standard streams are this process's."""
        address, name = self._entry(entry)
        env = [f"{k}={v}" for k, v in os.environ.items()] if env is None else env
        with self._reporting_crashes():
            return int(self._stack.executor.run_main(address, argv, env, running=name))

    def read_memory(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address`` (in the executor, for remote engines).
        ``TypeError``/``ValueError`` for a non-int or negative size or a range
        outside the address space; :class:`MemoryAccessError` naming the first
        unreadable address if the range is not all readable memory (nothing
        is read then, and nothing faults)."""
        self._check_open()
        for what, value in (("address", address), ("size", size)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"read_memory: {what} must be an int, not {value!r}")
        if size < 0:
            raise ValueError(f"read_memory: size must be >= 0, not {size}")
        if address < 0 or address + size > 1 << 64:
            raise ValueError(f"read_memory: {size} bytes at {address:#x} are outside the "
                             "address space")
        if size == 0:
            return b""
        return bytes(self._stack.executor.read(address, size))

    def load_library(self, path: str) -> None:
        """Make a shared library's symbols available to JIT'd code (in the
        executor, for remote engines; again after a restart)."""
        with self._locked():
            self._check_open()
            self._stack.executor.load_library(path)
            self._libraries.append(path)

    def restart_executor(self) -> None:
        """Start a fresh executor (after a crash, say) and add every module and
        object again, in order; constructors may be run again. Only for
        engines whose executor can restart (``remote=True``)."""
        with self._locked():
            self._check_open()
            if not self._stack.executor.restartable:
                raise ExecutionEngineError(
                    "restart_executor() needs an executor that can be restarted "
                    "(create the engine with remote=True)")
            entries = self._modules.entries()
            updates = {h for _, h in entries if self._swap.is_update(h)}
            objects, self._objects = self._objects, []
            self._tier_up.close()
            try:
                self._stack.close()
            except ExecutionEngineError:
                pass
            self._swap.close()
            self._build()
            for path in self._libraries:
                self._stack.executor.load_library(path)
            for module, handle in entries:
                fresh = Handle(handle.name)
                self._modules.rekey(handle, fresh)
                if handle in updates:
                    self._stack.top.add(fresh, module, self._user_options(
                        keep_existing_data=True, replaceable=True))
                    self._swap.mark_update(fresh)
                else:
                    self._stack.top.add(fresh, module, self._user_options())
            for handle, data in objects:
                self._add_object(handle, data)
                self._objects.append((handle, data))
            self._stack.top.emit()
            if self._events.active:
                self._events.queue(ExecutorEvent("restart", f"executor pid {self.executor.pid}"))

    @contextmanager
    def _reporting_crashes(self) -> Iterator[None]:
        try:
            yield
        except ExecutorError as exc:
            if self._events.active:
                self._events.emit(ExecutorEvent("crash", str(exc)))
            raise

    def _entry(self, function: str | int) -> tuple[int, str]:
        if isinstance(function, int) and not isinstance(function, bool):
            if not 0 < function < 1 << 64:
                raise ValueError(f"cannot call address {function:#x}")
            return function, hex(function)
        if not isinstance(function, str):
            raise TypeError(f"a function is named by a str or given by its address, "
                            f"not {function!r}")
        address = self.get_function_address(function)
        if not address:
            raise KeyError(f"the engine defines no function '{function}'")
        self._compile_now(function)
        return address, function

    def _compile_now(self, name: str) -> None:
        """Compile lazily defined function ``name`` now, so that a failure raises
        in the Python caller instead of stopping the process in JIT'd code."""
        with self._locked():
            self._check_open()
            on_demand = self._stack.on_demand
            home = on_demand.home(name)
            if home is None:
                return
            try:
                self._materialize(name)
            except ExecutionEngineError as exc:
                raise LazyCompileError(name, home.name, str(exc)) from exc

    def _materialize(self, name: str) -> int | None:
        """Compile lazy function ``name`` if it is not yet (lock held)."""
        home = self._stack.on_demand.home(name) if self._events.active else None
        compiles, started = self._work.compiles, time.perf_counter()
        address = self._stack.on_demand.materialize(name)
        if home is not None and self._work.compiles > compiles:
            self._events.queue(LazyCompiled(name, home.name, time.perf_counter() - started))
        return address

    # -- introspection ---------------------------------------------------------

    def stats(self) -> EngineStats:
        """A snapshot of what the engine holds and has done (see EngineStats)."""
        with self._locked():
            return collect_stats(self._stack, self._work, modules=len(self._modules),
                                 object_files=len(self._objects),
                                 retired_sets=len(self._reclaimer),
                                 recompiled_bodies=self._swap.recompiled_bodies(),
                                 tier_up=self._tier_up.counts())

    def function_info(self, name: str) -> FunctionInfo | None:
        """Where function ``name`` stands (stub, slot, body; with tier-up its
        tier and counted calls), or ``None`` if the engine never defined or
        referred to it. Does not finalize."""
        with self._locked():
            self._check_open()
            return describe_function(self._stack.symbols, name, self._tier_up.describe(name))

    # -- lifetime ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Free all code, data and stubs; dispose the modules the engine owns and
        the target machine. Idempotent."""
        with self._locked():
            if self._closed:
                return
            self._closed = True
            self._reclaimer.quiescent()
            self._tier_up.close()
            self._stack.close()
            if self._events.active:
                self._observer.all_freed()
            self._swap.close()
            self._modules.dispose_all()
            tm = self._target_machine
            with _tm_lock:
                _tm_users[id(tm)] -= 1
                last = _tm_users[id(tm)] == 0
                if last:
                    del _tm_users[id(tm)]
            if last and not tm.closed:
                tm._owned = False
                tm.close()

    def __enter__(self) -> ExecutionEngine:
        if self._closed:
            raise RuntimeError(f"{self.__class__} instance already closed")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _check_open(self) -> None:
        if self._closed:
            raise EngineClosedError("the execution engine is closed")

    def _on_unbound_stub(self, stub: Stub) -> int:
        """A call from JIT'd code reached a stub with no body: compile it lazily,
        or let the executor stop (nothing can unwind through JIT'd frames)."""
        try:
            with self._locked():
                address = None if self._closed else self._materialize(stub.name)
        except Exception as exc:  # noqa: BLE001 - reported by the executor
            message = f"compiling function '{stub.name}' on its first call failed: {exc}"
        else:
            if address:
                return address
            message = (f"call to function '{stub.name}', which is not linked (its module was "
                       "removed or failed to link)")
        return self._stack.executor.unbound_failed(message)


_GLOBAL_KINDS = {llvm.ValueKind.function, llvm.ValueKind.global_variable,
                 llvm.ValueKind.global_alias, llvm.ValueKind.global_ifunc}


def create_mcjit_compiler(module: llvm.ModuleRef, target_machine: llvm.TargetMachine,
                          use_lmm: bool | None = None, **options: Any) -> ExecutionEngine:
    """Drop-in for ``llvmlite.binding.create_mcjit_compiler``.

    ``use_lmm`` is accepted for compatibility and ignored (the linker's own
    memory manager is always used). ``options`` are
    :class:`~.options.EngineOptions` fields as keywords: ``strict``,
    ``redirection`` (``"direct"``, the default, ``"stub"``, ``"single"``,
    ``"none"`` or a :class:`~.policies.RedirectionPolicy`), ``grace_period``, ``lazy`` with
    ``partition`` (``"function"``, ``"callees"``), ``compiler``, and
    ``remote`` with ``timeout`` (or ``executor``), ``session_capacity``,
    ``compile_workers``, ``cache_dir``, ``tier_up`` (``True`` or a
    :class:`~.tiering.policy.TierUp`: compile low, recompile hot functions high).
    An unknown or bad option raises ``TypeError``/``ValueError`` naming it.
    """
    del use_lmm
    return ExecutionEngine(module, target_machine, **options)
