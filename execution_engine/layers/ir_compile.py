"""IRCompileLayer: LLVM IR modules in, relocatable objects out.

Modules are compiled with the user's ``TargetMachine`` when their set is
emitted (``finalize_object`` or a lookup), never when added, so that global
mappings added in between are honoured. The user's module is never changed:
LLVM's code generator rewrites the IR it compiles, so each module is cloned
first and the clone is compiled and discarded.

The object cache is llvmlite's pair of hooks: ``getbuffer(module)`` may
return object bytes that replace compiling (the cached object supplies every
symbol; the IR module may define nothing), and ``notify(module, bytes)``
receives every freshly compiled object. Both receive the very ``ModuleRef``
the user added, synchronously, inside the emitting call.

Thread-safety: the layer's lock serialises add, emit and remove.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm

from ..errors import ExecutionEngineError, InvalidObjectError
from ..ir import target_probe
from ..ir.call_sites import call_through_slots
from ..native import elf
from .base import Handle, add_and_emit
from .redirection import ObjectUnit, RedirectionLayer

NotifyHook = Callable[[llvm.ModuleRef, bytes], None]
GetBufferHook = Callable[[llvm.ModuleRef], "bytes | None"]


@dataclass(eq=False)
class _Pending:
    module: llvm.ModuleRef | None
    objects: list[elf.ObjectFile]
    keep_existing_data: bool = False
    replaceable: bool = False
    target_machine: llvm.TargetMachine | None = None
    reinitialize_data: bool = False
    owned: bool = False


class IRCompileLayer:
    """Compiles pending modules and hands their objects to the layer below."""

    def __init__(self, target_machine: llvm.TargetMachine, base: RedirectionLayer, *,
                 interposable: bool = False,
                 slot_calls: Callable[[str], bool] | None = None):
        self.target_machine = target_machine
        # PIC code calls dso_local functions of its own module directly; to keep
        # those calls swappable the clone's external definitions are compiled
        # as interposable (weak) and made strong again in the object. Whether
        # the target machine makes PIC is probed on first use.
        self._interposable: bool | None = None if interposable else False
        # Single indirection: calls load their callee from its pointer slot;
        # ``slot_calls(name)`` says which external callees have one already.
        self._slot_calls = slot_calls
        self.base = base
        self.machine = elf.EM_AARCH64 if target_machine.triple.startswith(
            ("aarch64", "arm64")) else elf.EM_X86_64
        self.notify: NotifyHook | None = None
        self.getbuffer: GetBufferHook | None = None
        self._lock = threading.RLock()
        self._pending: dict[Handle, _Pending] = {}

    def add(self, handle: Handle, module: llvm.ModuleRef, *, keep_existing_data: bool = False,
            replaceable: bool = False, target_machine: llvm.TargetMachine | None = None,
            reinitialize_data: bool = False, owned: bool = False) -> Handle:
        """Queue ``module`` (borrowed, not copied yet) for compilation.

        ``keep_existing_data``: data the engine already defines keeps its
        storage (update semantics). ``replaceable``: the set is freed once
        nothing it defines is current. ``target_machine`` overrides the
        layer's for this module (e.g. another optimisation level).
        ``reinitialize_data``: data that keeps its storage takes this module's
        initial values. ``owned``: the module is the engine's own (a partition),
        compiled in place instead of from a clone.
        """
        with self._lock:
            self._pending[handle] = _Pending(module, [], keep_existing_data, replaceable,
                                             target_machine, reinitialize_data, owned)
        return handle

    def add_and_emit(self, handle: Handle, module: llvm.ModuleRef, **options: Any) -> Handle:
        """:meth:`add` then :meth:`emit` that one set; if it fails, the set is
        dropped again (nothing changes) and the error raised."""
        return add_and_emit(self, handle, module, **options)

    def add_object(self, handle: Handle, data: bytes) -> Handle:
        """Queue ready object bytes; they are validated now."""
        obj = elf.ObjectFile(data, machine=self.machine, name=handle.name)
        with self._lock:
            self._pending[handle] = _Pending(None, [obj], False)
        return handle

    def pending(self) -> list[Handle]:
        with self._lock:
            return list(self._pending)

    def emit(self, handles: Iterable[Handle] | None = None) -> None:
        """Compile and link the given pending handles (all if ``None``).

        Sets that fail (a bad cached object, an unresolved symbol) stay
        pending and the first such error is raised after the others have
        been linked.
        """
        with self._lock:
            chosen = list(self._pending) if handles is None else [
                h for h in handles if h in self._pending]
            errors: list[ExecutionEngineError] = []
            units: list[ObjectUnit] = []
            for handle in chosen:
                try:
                    objects = self._objects(handle)
                except ExecutionEngineError as exc:
                    errors.append(exc)
                    continue
                p = self._pending[handle]
                units.extend(ObjectUnit(handle, obj, p.keep_existing_data, p.replaceable,
                                        p.reinitialize_data) for obj in objects)
            try:
                self.base.add(units)
            except ExecutionEngineError as exc:
                errors.append(exc)
            for handle in chosen:
                if self.base.is_linked(handle):
                    del self._pending[handle]
            if errors:
                raise errors[0]

    def _objects(self, handle: Handle) -> list[elf.ObjectFile]:
        pending = self._pending[handle]
        if pending.objects or pending.module is None:
            return pending.objects
        module = pending.module
        data = self.getbuffer(module) if self.getbuffer is not None else None
        if data is not None:
            obj = elf.ObjectFile(bytes(data), machine=self.machine,
                                 name=f"cached object for {handle.name}")
        else:
            data = self.compile(module, pending.target_machine, owned=pending.owned)
            obj = elf.ObjectFile(data, machine=self.machine, name=handle.name)
            if self.notify is not None:
                self.notify(module, data)
        pending.objects = [obj]
        return pending.objects

    def compile(self, module: llvm.ModuleRef, target_machine: llvm.TargetMachine | None = None,
                *, owned: bool = False) -> bytes:
        """Object bytes for ``module``, compiled from a clone (or in place when the
        engine owns the module)."""
        if self._slot_calls is not None:
            clone = llvm.parse_assembly(call_through_slots(str(module), self._slot_calls))
        elif owned:
            clone = module
        else:
            clone = module.clone()
        weakened = []
        if self._interposable is not False and _defines_several_functions(clone):
            if self._interposable is None:
                self._interposable = target_probe.traits(self.target_machine).pic
            if self._interposable:
                weakened = _make_interposable(clone)
        try:
            data = (target_machine or self.target_machine).emit_object(clone)
            if weakened:
                data = elf.rewrite(elf.ObjectFile(data, machine=self.machine), globalize=weakened)
            return data
        except RuntimeError as exc:
            raise InvalidObjectError(f"code generation failed for {module.name!r}: {exc}") from None
        finally:
            if clone is not module:
                clone.close()

    def is_pending(self, handle: Handle) -> bool:
        return handle in self._pending

    def remove(self, handle: Handle) -> None:
        with self._lock:
            self._pending.pop(handle, None)
        self.base.remove(handle)

    def find_symbol(self, name: str) -> int | None:
        return self.base.find_symbol(name)

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        return self.base.find_symbol_in(handle, name)


def _defines_several_functions(module: llvm.ModuleRef) -> bool:
    """Calls between functions of one module are what PIC may bind directly."""
    defined = 0
    for fn in module.functions:
        defined += not fn.is_declaration
        if defined > 1:
            return True
    return False


def _make_interposable(module: llvm.ModuleRef) -> list[str]:
    """Give external definitions weak linkage; return their names."""
    names = []
    for value in (*module.functions, *module.global_variables):
        if not value.is_declaration and value.linkage == llvm.Linkage.external:
            value.linkage = llvm.Linkage.weak_any
            names.append(value.name)
    return names
