"""IRCompileLayer: LLVM IR modules in, relocatable objects out.

Modules are compiled with the user's ``TargetMachine`` (by the engine's
compile backend, :mod:`..compilers`) when their set is emitted
(``finalize_object`` or a lookup), never when added, so that global
mappings added in between are honoured. LLVM's code generator rewrites the
IR it compiles: a set added with ``AddOptions.in_place`` is compiled as it
is (MCJIT does that to the modules added to it, and clients such as numba
read the result), any other from a clone that is then discarded.

The object cache is llvmlite's pair of hooks: ``getbuffer(module)`` may
return object bytes that replace compiling (the cached object supplies every
symbol; the IR module may define nothing), and ``notify(module, bytes)``
receives every freshly compiled object. Both receive the very ``ModuleRef``
the user added, synchronously, inside the emitting call. A hook that raises
is reported as an :class:`~..errors.ObjectCacheWarning` and the engine
carries on (the object is compiled; it is not cached), as MCJIT prints the
exception and carries on.

Thread-safety: the layer's lock serialises add, emit and remove.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import llvmlite.binding as llvm

from .. import target_spec
from ..compilers import CompileBackend, InProcessCompiler
from ..errors import ExecutionEngineError, ObjectCacheWarning
from ..native import elf, elf_rewrite
from ..policies import RedirectionPolicy
from ..target_spec import machine_of
from .base import DEFAULT, AddOptions, Handle
from .redirection import RedirectionLayer

NotifyHook = Callable[[llvm.ModuleRef, bytes], None]
GetBufferHook = Callable[[llvm.ModuleRef], "bytes | None"]
# on_compiled(handle, object bytes, seconds): every fresh compile (not cache hits).
CompiledHook = Callable[[Handle, bytes, float], None]


class IRCompileLayer:
    """Compiles queued modules and hands their objects to the layer below."""

    def __init__(self, target_machine: llvm.TargetMachine, base: RedirectionLayer, *,
                 compiler: CompileBackend | None = None, interposable: bool = False,
                 policy: RedirectionPolicy | None = None):
        self.target_machine = target_machine
        self.base = base
        # Which functions an object may call directly (DIRECT), told to the
        # layer below with the object; None: none.
        self.policy = policy
        self.compiler: CompileBackend = compiler if compiler is not None else InProcessCompiler()
        # PIC code calls dso_local functions of its own module directly; to keep
        # those calls swappable the clone's external definitions are compiled
        # as interposable (weak) and made strong again in the object. Whether
        # the target machine makes PIC is probed on first use.
        self._interposable: bool | None = None if interposable else False
        self.machine = machine_of(target_machine)
        self.notify: NotifyHook | None = None
        self.getbuffer: GetBufferHook | None = None
        self.on_compiled: CompiledHook | None = None
        self._lock = threading.RLock()
        self._pending: dict[Handle, tuple[llvm.ModuleRef, AddOptions]] = {}

    def add(self, handle: Handle, module: llvm.ModuleRef,
            options: AddOptions = DEFAULT) -> Handle:
        """Queue ``module`` (borrowed, not copied yet) for compilation; see
        :class:`~.base.AddOptions` for ``options``."""
        with self._lock:
            self._pending[handle] = (module, options)
        return handle

    def emit(self, handles: Iterable[Handle] | None = None) -> None:
        """Compile the given queued modules (all if ``None``) and link them, with
        whatever is queued below for the same handles, as one batch.

        A module that fails to compile stays queued; the first error is
        raised after the others have been linked.
        """
        with self._lock:
            chosen = list(self._pending) if handles is None else [
                h for h in handles if h in self._pending]
            errors: list[ExecutionEngineError] = []
            for handle in chosen:
                module, options = self._pending[handle]
                try:
                    obj = self._object(handle, module, options)
                except ExecutionEngineError as exc:
                    errors.append(exc)
                    continue
                del self._pending[handle]
                self.base.add(handle, obj, options, direct=self._direct(module, obj))
            try:
                self.base.emit(None if handles is None else list(handles))
            except ExecutionEngineError as exc:
                errors.append(exc)
            if errors:
                raise errors[0]

    def _object(self, handle: Handle, module: llvm.ModuleRef,
                options: AddOptions) -> elf.ObjectFile:
        source = options.source or module
        getbuffer = self.getbuffer
        data = None if getbuffer is None else _hook("getbuffer", handle,
                                                     lambda: getbuffer(source))
        if data is not None:
            return elf.ObjectFile(bytes(data), machine=self.machine,
                                  name=f"cached object for {handle.name}")
        started = time.perf_counter()
        data = self.compile(module, options.target_machine, in_place=options.in_place,
                            label=handle.name)
        obj = elf.ObjectFile(data, machine=self.machine, name=handle.name)
        notify = self.notify
        if notify is not None:
            _hook("notify", handle, lambda: notify(source, data))
        if self.on_compiled is not None:
            self.on_compiled(handle, data, time.perf_counter() - started)
        return obj

    def _direct(self, module: llvm.ModuleRef, obj: elf.ObjectFile) -> frozenset[str]:
        """The functions ``obj`` (compiled from ``module``) may call directly."""
        policy = self.policy
        if policy is None or not policy.direct_calls:
            return frozenset()
        return policy.direct_callees(lambda: module, obj.called_definitions())

    def compile(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine | None = None,
                *, in_place: bool = False, label: str = "") -> bytes:
        """Object bytes for ``module``: compiled from a clone, or ``in_place``
        (code generation's rewrites are then visible in ``module``, as after
        MCJIT's finalization; linkage the engine changed for PIC is restored)."""
        target = module if in_place else module.clone()
        weakened = []
        if self._interposable is not False and _defines_several_functions(target):
            if self._interposable is None:
                self._interposable = target_spec.traits(self.target_machine).pic
            if self._interposable:
                weakened = _make_interposable(target)
        try:
            data = self.compiler.compile(target, target_machine or self.target_machine,
                                         label=label or repr(module.name))
            if weakened:
                obj = elf.ObjectFile(data, machine=self.machine)
                data = elf_rewrite.rewrite(obj, globalize=weakened)
            return data
        finally:
            if target is not module:
                target.close()
            elif weakened:
                _restore_external(module, weakened)

    def is_pending(self, handle: Handle) -> bool:
        return handle in self._pending or self.base.is_pending(handle)

    def pending(self) -> list[Handle]:
        with self._lock:
            return list(self._pending) + self.base.pending()

    def remove(self, handle: Handle) -> None:
        with self._lock:
            self._pending.pop(handle, None)
        self.base.remove(handle)

    def find_symbol(self, name: str) -> int | None:
        return self.base.find_symbol(name)

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        return self.base.find_symbol_in(handle, name)


def _hook(name: str, handle: Handle, call: Callable[[], Any]) -> Any:
    """Run an object-cache hook; if it raises, report it (ObjectCacheWarning)
    and carry on as if it had returned None, as llvmlite's MCJIT does."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - reported, as MCJIT does
        warnings.warn(ObjectCacheWarning(
            f"the object cache's {name} hook raised {type(exc).__name__}: {exc} (for "
            f"{handle.name}); the engine carried on without it"), stacklevel=2)
        return None


def _defines_several_functions(module: llvm.ModuleRef) -> bool:
    """Calls between functions of one module are what PIC may bind directly."""
    defined = 0
    for fn in module.functions:
        defined += not fn.is_declaration
        if defined > 1:
            return True
    return False


def _restore_external(module: llvm.ModuleRef, names: list[str]) -> None:
    for name in names:
        for getter in (module.get_function, module.get_global_variable):
            try:
                getter(name).linkage = llvm.Linkage.external
                break
            except NameError:
                continue


def _make_interposable(module: llvm.ModuleRef) -> list[str]:
    """Give external definitions weak linkage; return their names."""
    names = []
    for value in (*module.functions, *module.global_variables):
        if not value.is_declaration and value.linkage == llvm.Linkage.external:
            value.linkage = llvm.Linkage.weak_any
            names.append(value.name)
    return names
