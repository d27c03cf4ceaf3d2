"""The facade: llvmlite's MCJIT ``ExecutionEngine``, built from JIT layers.

The stack, top to bottom (built in :meth:`ExecutionEngine._build_stack`)::

    ExecutionEngine        MCJIT API -> layer calls (this file)
    CompileOnDemandLayer   eager: whole modules; lazy: a function per partition, on first call
      LazyEmitLayer        holds a module's variables until one is needed
    IRCompileLayer         IR -> objects with the user's TargetMachine; object cache
    RedirectionLayer       functions behind stubs + pointer slots; data sharing; ctors
    executor               LocalExecutor (this process) or RemoteExecutor (another):
                           ObjectLinkingLayer, StubManager, process symbols, calls

with a SymbolTable (which definition of each name is current), global
mappings and the Reclaimer (when replaced code may be freed) beside them.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import llvmlite.binding as llvm

from .errors import (
    EngineClosedError,
    ExecutionEngineError,
)
from .executors.local import LocalExecutor
from .hotswap import HotSwapMixin
from .ir import module_checks
from .ir.extract import ModuleView
from .ir.module_checks import check_not_owned, pointer_of
from .layers.base import Handle
from .layers.compile_on_demand import CompileOnDemandLayer
from .layers.ir_compile import GetBufferHook, IRCompileLayer, NotifyHook
from .layers.redirection import RedirectionLayer
from .linking import structors
from .linking.reclaim import Reclaimer
from .linking.resolver import GlobalMappings
from .linking.symbols import SymbolTable
from .native.object_files import object_file_bytes
from .native.stubs import Stub

_tm_users: dict[int, int] = {}
_tm_lock = threading.Lock()


class ExecutionEngine(HotSwapMixin):
    """An MCJIT-compatible execution engine.

    Ownership (as in llvmlite): modules passed to the constructor and to
    :meth:`add_module` belong to the engine until :meth:`remove_module`
    returns them; :meth:`close` disposes of the modules it still owns and of
    the target machine. The engine never changes a module: callers may keep
    printing, serialising and compiling it.

    Memory: :meth:`remove_module` frees the module's code and data at once;
    :meth:`close` frees everything. Addresses handed out for functions are
    stub addresses, stable for the life of the engine; calling a function
    whose module was removed reports the function's name and aborts rather
    than jumping into freed memory.

    Thread-safety: every method may be called from any thread; mutations
    are serialised by the engine's lock.
    """

    def __init__(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine, *,
                 strict: bool = False, redirection: str = "stub", session_capacity: int = 256,
                 grace_period: float | None = 1.0, lazy: bool = False, remote: bool = False,
                 timeout: float | None = None, partition: str = "function"):
        check_not_owned(module)
        module_checks.check_module(module, target_machine, verify=not lazy)  # nothing owned yet
        if lazy and redirection == "none":
            raise ValueError("lazy compilation needs stubs: use redirection='stub' or 'single'")
        self._lock = threading.RLock()
        self._closed = False
        self._target_machine = target_machine
        self._target_data = llvm.create_target_data(str(target_machine.target_data))
        self._options: dict[str, Any] = dict(
            strict=strict, redirection=redirection, lazy=lazy, remote=remote, timeout=timeout,
            session_capacity=session_capacity, partition=partition)
        self._modules: dict[int, tuple[llvm.ModuleRef, Handle]] = {}
        self._objects: list[tuple[Handle, bytes]] = []
        self._libraries: list[str] = []
        self._tiered: dict[int, llvm.TargetMachine] = {}
        self._reclaimer = Reclaimer(grace_period)
        self._mappings = GlobalMappings()
        self._build_stack()
        with _tm_lock:
            _tm_users[id(target_machine)] = _tm_users.get(id(target_machine), 0) + 1
        target_machine._owned = True
        self._add(module)

    def _build_stack(self) -> None:
        """The executor and the layers on it (again, after an executor restart)."""
        o = self._options
        self._module_of: dict[Handle, llvm.ModuleRef] = {}
        self._updates: set[Handle] = set()
        # recompiled body -> the module it came from (gone with the body)
        self._origin: weakref.WeakKeyDictionary[Handle, Handle] = weakref.WeakKeyDictionary()
        self._views: dict[Handle, ModuleView] = {}
        self._root: dict[Handle, Handle] = {}  # a module version -> the first version
        self._local_fallbacks: dict[str, int] = {}  # shared local name -> original address
        self._constructed: set[Handle] = set()
        if o["remote"]:
            from .executors.remote.host import RemoteExecutor

            self._executor: Any = RemoteExecutor(self._target_machine, timeout=o["timeout"])
        else:
            self._executor = LocalExecutor(self._target_machine,
                                           session_capacity=o["session_capacity"])
        self._stubs = self._executor.stub_manager(self._on_unbound_stub)
        self._symbols = SymbolTable(self._stubs, strict=o["strict"])
        self._linker = self._executor.linker
        self._redirection = RedirectionLayer(self._linker, self._symbols, self._mappings,
                                             self._executor.resolve_process,
                                             policy=o["redirection"], reclaimer=self._reclaimer)
        self._ir = IRCompileLayer(
            self._target_machine, self._redirection, interposable=o["redirection"] != "none",
            slot_calls=self._symbols.has_stub if o["redirection"] == "single" else None)
        self._compiler = CompileOnDemandLayer(self._ir, self._symbols, lazy=o["lazy"],
                                              partition=o["partition"])
        self._redirection.set_pending_resolver(
            lambda name: self._compiler.resolve_lazy(name) or self._local_fallbacks.get(name))

    # -- modules ---------------------------------------------------------------

    def add_module(self, module: llvm.ModuleRef) -> None:
        """Add ``module``; ownership moves to the engine. ``KeyError`` if it was
        already added. Nothing is compiled until finalization."""
        with self._lock:
            self._check_open()
            if isinstance(module, llvm.ModuleRef) and pointer_of(module) in self._modules:
                raise KeyError(f"{module_checks.module_label(module)} was already added to "
                               "this engine")
            check_not_owned(module)
            module_checks.check_module(module, self._target_machine,
                                       verify=not self._compiler.lazy)
            self._add(module)

    def _add(self, module: llvm.ModuleRef) -> None:
        handle = Handle(module_checks.module_label(module))
        self._compiler.add(handle, module)
        self._register(module, handle)

    def _register(self, module: llvm.ModuleRef, handle: Handle) -> None:
        self._modules[pointer_of(module)] = (module, handle)
        self._module_of[handle] = module
        module._owned = True

    def remove_module(self, module: llvm.ModuleRef) -> None:
        """Remove ``module``, free its code and data, return its ownership.
        Its symbols become undefined. ``KeyError`` if it is not in the engine."""
        with self._lock:
            self._check_open()
            entry = self._modules.pop(pointer_of(module), None)
            if entry is None:
                raise KeyError(f"{module_checks.module_label(module)} is not in this engine")
            handle = entry[1]
            self._compiler.remove(handle)
            self._constructed.discard(handle)
            self._module_of.pop(handle, None)
            self._views.pop(handle, None)
            self._updates.discard(handle)
            self._root.pop(handle, None)
            for body, origin in list(self._origin.items()):
                if origin is handle:
                    self._compiler.remove(body)
                    del self._origin[body]
            module._owned = False
            self._reclaimer.poll()

    def add_object_file(self, obj_file: llvm.ObjectFileRef | str | bytes) -> None:
        """Add a relocatable object (an ``ObjectFileRef``, a path or bytes).
        It is validated now and linked at finalization."""
        with self._lock:
            self._check_open()
            if isinstance(obj_file, (str, os.PathLike)):
                label = f"object file '{os.fspath(obj_file)}'"
                with open(obj_file, "rb") as f:
                    data = f.read()
            elif isinstance(obj_file, (bytes, bytearray, memoryview)):
                label, data = "object bytes", bytes(obj_file)
            else:
                label, data = "object file", object_file_bytes(obj_file)
            handle = Handle(label)
            self._compiler.add_object(handle, data)
            self._objects.append((handle, data))

    # -- finalization and lookup -------------------------------------------

    def finalize_object(self) -> None:
        """Compile and link everything added so far."""
        with self._lock:
            self._check_open()
            self._compiler.emit()

    def get_function_address(self, name: str) -> int:
        """Callable address of ``name`` (finalizing first if needed), 0 if unknown."""
        return self._lookup(name)

    def get_global_value_address(self, name: str) -> int:
        """Address of global ``name`` (finalizing first if needed), 0 if unknown."""
        return self._lookup(name)

    def _lookup(self, name: str) -> int:
        with self._lock:
            self._check_open()
            mapped = self._mappings(name)
            if mapped is not None:
                return mapped
            if self._compiler.pending():
                try:
                    self._compiler.emit()
                except ExecutionEngineError:
                    # Another set failed to link: what was good still answers.
                    address = self._compiler.find_symbol(name)
                    if address:
                        return address
                    raise
            return self._compiler.find_symbol(name) or 0

    def add_global_mapping(self, gv: llvm.ValueRef, addr: int) -> None:
        """Make references to global ``gv`` (of a module in this engine) resolve
        to ``addr``. Takes effect for code linked afterwards."""
        with self._lock:
            self._check_open()
            if not isinstance(gv, llvm.ValueRef):
                raise TypeError(f"add_global_mapping needs a global value, got {gv!r}")
            if gv.value_kind not in _GLOBAL_KINDS:
                raise TypeError(
                    f"add_global_mapping needs a global value, got {gv.value_kind.name} "
                    f"'{gv.name or str(gv).strip()[:80]}'")
            if pointer_of(gv.module) not in self._modules:
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
        """llvmlite's object-cache hooks (see :class:`IRCompileLayer`)."""
        with self._lock:
            self._check_open()
            self._compiler.notify = notify_func
            self._compiler.getbuffer = getbuffer_func

    # -- constructors ------------------------------------------------------

    def run_static_constructors(self) -> None:
        """Run the constructors of every module not yet constructed: ascending
        priority, table order within a priority, modules in the order added."""
        with self._lock:
            self._check_open()
            self._compiler.emit()
            handles = [h for _, h in self._modules.values() if h not in self._constructed]
            entries = [e for h in handles for part in self._compiler.structor_handles(h)
                       for e in self._redirection.structors_of(part)]
            self._constructed.update(handles)
        structors.run(entries, "ctor", self._call_void)

    def run_static_destructors(self) -> None:
        """Run the destructors of every module: descending priority, table order
        within a priority."""
        with self._lock:
            self._check_open()
            entries = [e for _, h in self._modules.values()
                       for part in self._compiler.structor_handles(h)
                       for e in self._redirection.structors_of(part)]
        structors.run(entries, "dtor", self._call_void)

    def _call_void(self, address: int) -> None:
        if self._executor.remote:
            self._executor.call(address, [], None, running="a static constructor or destructor")
        else:
            self._executor.call(address, [], None)

    # -- misc MCJIT API ------------------------------------------------------

    @property
    def target_data(self) -> llvm.TargetData:
        """The engine's data layout (the same object on every call)."""
        return self._target_data

    def enable_jit_events(self) -> bool:
        """Profiler notification. GDB's JIT interface is always fed by the linker;
        no other listener (perf, VTune) is available, so this returns False."""
        self._check_open()
        return False

    # -- running code ----------------------------------------------------------

    def call(self, function: str | int, *args: int | float,
             restype: type[int] | type[float] | None = int) -> Any:
        """Call JIT'd ``function`` (a name or an address) with integer, pointer
        (as int) and float arguments; ``restype`` is ``int``, ``float`` or
        ``None``. In a remote engine the call runs in the executor; if it
        crashes there, :class:`~execution_engine.executors.remote.host.ExecutorCrashedError`
        (or ``ExecutorExitedError``) is raised here."""
        address, name = self._entry(function)
        if self._executor.remote:
            return self._executor.call(address, args, restype, running=name)
        return self._executor.call(address, args, restype)

    def run_main(self, argv: list[str], env: list[str] | None = None,
                 entry: str = "main") -> int:
        """Call ``entry(argc, argv, envp)`` and return its status; ``env`` defaults
        to this process's environment. Remote engines run it in the executor,
        whose standard streams are this process's."""
        address, name = self._entry(entry)
        env = [f"{k}={v}" for k, v in os.environ.items()] if env is None else env
        if self._executor.remote:
            return int(self._executor.run_main(address, argv, env, running=name))
        return int(self._executor.run_main(address, argv, env))

    def read_memory(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address`` (in the executor, for remote engines)."""
        self._check_open()
        return bytes(self._executor.read(address, size))

    def load_library(self, path: str) -> None:
        """Make a shared library's symbols available to JIT'd code (in the
        executor, for remote engines; again after a restart)."""
        with self._lock:
            self._check_open()
            self._executor.load_library(path)
            self._libraries.append(path)

    def restart_executor(self) -> None:
        """Start a fresh executor (after a crash, say) and add every module and
        object again, in order; constructors may be run again. Only for remote
        engines."""
        with self._lock:
            self._check_open()
            if not self._executor.remote:
                raise ExecutionEngineError("restart_executor() is for remote engines")
            modules = list(self._modules.values())
            updates, objects = set(self._updates), list(self._objects)
            try:
                self._executor.close()
            except ExecutionEngineError:
                pass
            self._build_stack()
            self._modules.clear()
            self._objects = []
            for path in self._libraries:
                self._executor.load_library(path)
            for module, handle in modules:
                if handle in updates:
                    fresh = Handle(handle.name)
                    self._compiler.add(fresh, module, keep_existing_data=True, replaceable=True)
                    self._updates.add(fresh)
                    self._register(module, fresh)
                else:
                    self._add(module)
            for handle, data in objects:
                self._compiler.add_object(handle, data)
                self._objects.append((handle, data))
            self._compiler.emit()

    def _entry(self, function: str | int) -> tuple[int, str]:
        if isinstance(function, int):
            return function, hex(function)
        address = self.get_function_address(function)
        if not address:
            raise KeyError(f"the engine defines no function '{function}'")
        return address, function

    # -- lifetime ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Free all code, data and stubs; dispose the modules the engine owns and
        the target machine. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._reclaimer.quiescent()
            self._executor.close()
            self._stubs.close()
            for module, _ in self._modules.values():
                if not module.closed:
                    module._owned = False
                    module.close()
            self._modules.clear()
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
        """A call reached a stub with no body: compile it lazily, or stop. In a
        remote engine the error goes back to the executor, which stops itself;
        in process there is no caller to raise to, so the process stops."""
        try:
            with self._lock:
                address = None if self._closed else self._compiler.materialize(stub.name)
            if not address:
                raise ExecutionEngineError(
                    f"call to function '{stub.name}', which is not linked (its module was "
                    "removed or failed to link)")
            return address
        except Exception as exc:
            if isinstance(exc, ExecutionEngineError) and "not linked" in str(exc):
                message = str(exc)
            else:
                message = f"compiling function '{stub.name}' on its first call failed: {exc}"
            if self._executor.remote:
                raise ExecutionEngineError(message) from None
            os.write(2, f"execution_engine: {message}; aborting\n".encode())
            os.abort()


_GLOBAL_KINDS = {llvm.ValueKind.function, llvm.ValueKind.global_variable,
                 llvm.ValueKind.global_alias, llvm.ValueKind.global_ifunc}


def create_mcjit_compiler(module: llvm.ModuleRef, target_machine: llvm.TargetMachine,
                          use_lmm: bool | None = None, **options: Any) -> ExecutionEngine:
    """Drop-in for ``llvmlite.binding.create_mcjit_compiler``.

    ``use_lmm`` is accepted for compatibility and ignored (the linker's own
    memory manager is always used). ``options``: ``strict`` (raise on a
    strong symbol defined again), ``redirection`` (``"stub"``: calls and
    addresses go through a stub and its pointer slot, the default;
    ``"single"``: calls load the slot themselves, addresses are stubs;
    ``"none"``: bound directly as MCJIT does, no swapping),
    ``grace_period`` (seconds before replaced code is freed, ``None`` for
    explicit :meth:`ExecutionEngine.reclaim` only; see :mod:`.reclaim`),
    ``lazy`` (compile each function on its first call; see
    :mod:`.layers.compile_on_demand`) with ``partition`` (``"function"``: the
    first call of f compiles f alone; ``"callees"``: f and the functions it
    calls that are not compiled yet), ``remote`` (link and run the code in a
    separate executor process; see :mod:`.remote.host`) with ``timeout``
    (seconds a request to the executor may take).
    """
    del use_lmm
    return ExecutionEngine(module, target_machine, **options)
