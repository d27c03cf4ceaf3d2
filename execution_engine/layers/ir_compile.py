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
from dataclasses import dataclass, field
from typing import Any

import llvmlite.binding as llvm

from .. import target_spec
from ..compilers import (
    CompileBackend,
    CompileUnit,
    Finished,
    InProcessCompiler,
    submit_all,
)
from ..errors import ExecutionEngineError, ObjectCacheWarning
from ..ir.linkage import shared_prefix
from ..native import elf, elf_rewrite
from ..policies import RedirectionPolicy
from ..target_spec import machine_of
from .base import DEFAULT, AddOptions, Handle
from .redirection import RedirectionLayer

NotifyHook = Callable[[llvm.ModuleRef, bytes], None]
GetBufferHook = Callable[[llvm.ModuleRef], "bytes | None"]
# on_compiled(handle, object bytes, seconds): every module compiled afresh (not
# cache hits); the bytes of all its partitions' objects when it was cut.
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
        # What sets added with ``AddOptions.in_process`` compile with.
        self.local: CompileBackend = self.compiler
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

        The modules are compiled together (:func:`~..compilers.submit_all`: at
        the same time, when the backend can); a module the backend cuts into
        partitions gives several objects, linked as one set.
        A module that fails to compile stays queued; the first error is
        raised after the others have been linked.
        """
        with self._lock:
            chosen = list(self._pending) if handles is None else [
                h for h in handles if h in self._pending]
            errors: list[ExecutionEngineError] = []
            jobs: list[_Job] = []
            for handle in chosen:
                module, options = self._pending[handle]
                try:
                    cached = self._cached_object(handle, module, options)
                except ExecutionEngineError as exc:  # a bad object from the hook
                    errors.append(exc)
                    continue
                if cached is not None:
                    del self._pending[handle]
                    self.base.add(handle, cached, options,
                                  direct=self._direct(module.__str__, [cached])[0])
                else:
                    jobs.append(_Job(handle, module, options))
            for job, objects in zip(jobs, self._compile_jobs(jobs), strict=True):
                if isinstance(objects, ExecutionEngineError):
                    errors.append(objects)
                    continue
                del self._pending[job.handle]
                for obj, direct in zip(objects, self._direct(job.text, objects), strict=True):
                    self.base.add(job.handle, obj, job.options, direct=direct)
            try:
                self.base.emit(None if handles is None else list(handles))
            except ExecutionEngineError as exc:
                errors.append(exc)
            if errors:
                raise errors[0]

    def _cached_object(self, handle: Handle, module: llvm.ModuleRef,
                       options: AddOptions) -> elf.ObjectFile | None:
        """The object the user's ``getbuffer`` hook returns for ``handle``, if any."""
        getbuffer = self.getbuffer
        if getbuffer is None:
            return None
        source = options.source or module
        data = _hook("getbuffer", handle, lambda: getbuffer(source))
        if data is None:
            return None
        return elf.ObjectFile(bytes(data), machine=self.machine,
                              name=f"cached object for {handle.name}")

    def _compile_jobs(self, jobs: list[_Job]) -> list[list[elf.ObjectFile] | ExecutionEngineError]:
        """Each job's objects (or its error), the jobs compiled together."""
        if not jobs:
            return []
        # The user's object-cache hooks see one object per module: no partitions then.
        splittable = self.notify is None and self.getbuffer is None
        direct = self.policy is not None and self.policy.direct_calls
        units = []
        try:
            for job in jobs:
                units.append(CompileUnit(
                    job.prepare(self), job.options.target_machine or self.target_machine,
                    job.handle.name, shared_prefix(job.handle.id) if splittable else None,
                    text=job.text if direct else None))
            started = time.perf_counter()
            local = all(job.options.in_process for job in jobs)
            futures = submit_all(self.local if local else self.compiler, units)
        finally:
            for job in jobs:  # every module has been read: clones go, linkage comes back
                job.release()
        finished: dict[int, float] = {}
        for i, future in enumerate(futures):
            future.add_done_callback(
                lambda _, i=i: finished.setdefault(i, time.perf_counter()))  # type: ignore[misc]
        results: list[list[elf.ObjectFile] | ExecutionEngineError] = []
        for i, (job, future) in enumerate(zip(jobs, futures, strict=True)):
            try:
                objects = future.result()
            except ExecutionEngineError as exc:
                results.append(exc)
                continue
            seconds = (future.seconds if isinstance(future, Finished)  # compiled in turn
                       else finished.get(i, time.perf_counter()) - started)
            results.append(self._objects(job, objects, seconds))
        return results

    def _objects(self, job: _Job, objects: list[bytes], seconds: float) -> list[elf.ObjectFile]:
        """A job's compiled objects as the layer below takes them (hooks notified)."""
        handle = job.handle
        if job.weakened:
            objects = [elf_rewrite.rewrite(elf.ObjectFile(data, machine=self.machine),
                                           globalize=job.weakened) for data in objects]
        notify = self.notify
        if notify is not None and len(objects) == 1:
            source = job.options.source or job.module
            _hook("notify", handle, lambda: notify(source, objects[0]))
        if self.on_compiled is not None:  # once per module, however many partitions
            self.on_compiled(handle, objects[0] if len(objects) == 1 else b"".join(objects),
                             seconds)
        return [elf.ObjectFile(data, machine=self.machine, name=handle.name if len(objects) == 1
                               else f"{handle.name} (partition {i + 1} of {len(objects)})")
                for i, data in enumerate(objects)]

    def _direct(self, module_text: Callable[[], str],
                objects: list[elf.ObjectFile]) -> list[frozenset[str]]:
        """For each of ``objects`` (compiled from the module ``module_text()``
        prints, maybe as partitions), the functions it may call directly; the
        text is asked for only if some object calls its own functions."""
        policy = self.policy
        if policy is None or not policy.direct_calls:
            return [frozenset()] * len(objects)
        return [policy.direct_callees(module_text, obj.called_definitions()) for obj in objects]

    def add_object(self, handle: Handle, data: bytes, text: str, options: AddOptions,
                   seconds: float = 0.0) -> None:
        """Queue ``data``, compiled elsewhere from module text ``text`` (a lazy
        engine's background partition), as if this layer had compiled it: the
        layer below learns its direct callees, ``on_compiled`` hears of it."""
        obj = elf.ObjectFile(data, machine=self.machine, name=handle.name)
        policy = self.policy
        direct = (policy.direct_callees(lambda: text, obj.called_definitions())
                  if policy is not None else frozenset())
        if self.on_compiled is not None:
            self.on_compiled(handle, data, seconds)
        self.base.add(handle, obj, options, direct=direct)

    @property
    def weakens(self) -> bool:
        """Whether modules of several functions are compiled interposable (PIC)."""
        if self._interposable is None:
            self._interposable = target_spec.traits(self.target_machine).pic
        return self._interposable

    def compile(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine | None = None,
                *, in_place: bool = False, label: str = "") -> bytes:
        """Object bytes for ``module``: compiled from a clone, or ``in_place``
        (code generation's rewrites are then visible in ``module``, as after
        MCJIT's finalization; linkage the engine changed for PIC is restored)."""
        target = module if in_place else module.clone()
        weakened = self._weaken(target)
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

    def _weaken(self, target: llvm.ModuleRef) -> list[str]:
        """For PIC machines: ``target``'s external definitions made interposable
        (their names returned), so that calls between them stay redirectable."""
        if self._interposable is False or not _defines_several_functions(target):
            return []
        if self._interposable is None:
            self._interposable = target_spec.traits(self.target_machine).pic
        return _make_interposable(target) if self._interposable else []

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


@dataclass(eq=False)
class _Job:
    """A queued module on its way through one :meth:`IRCompileLayer.emit`:
    ``target`` is what is compiled (the module itself when in place, else a
    clone), ``weakened`` the names made interposable for PIC."""

    handle: Handle
    module: llvm.ModuleRef
    options: AddOptions
    target: llvm.ModuleRef | None = None
    weakened: list[str] = field(default_factory=list)
    _text: str | None = None

    def prepare(self, layer: IRCompileLayer) -> llvm.ModuleRef:
        target = self.target = self.module if self.options.in_place else self.module.clone()
        self.weakened = layer._weaken(target)
        return target

    def text(self) -> str:
        """The module's text, printed once: as prepared for compiling while the
        compile reads it (a cache key, a worker), else as the user's module
        reads afterwards. Either serves the direct-call analysis (codegen
        adds no references to functions)."""
        if self._text is None:
            self._text = str(self.target if self.target is not None else self.module)
        return self._text

    def release(self) -> None:
        """After the compile has read ``target``: close a clone, restore linkage."""
        if self.target is not None and self.target is not self.module:
            self.target.close()
        elif self.weakened:
            _restore_external(self.module, self.weakened)
        self.target = None


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
