"""Hot-swap for the facade: update_module, recompile_and_relink_function, reclaim.

A mixin of :class:`~execution_engine.engine.ExecutionEngine` (kept apart so
the facade stays readable): the methods use the engine's layers and
bookkeeping (``_compiler``, ``_ir``, ``_redirection``, ``_symbols``,
``_modules``, ``_root``, ``_origin``, ``_views``, ``_local_fallbacks``, ``_lock``).

How a swap works: the replacement is compiled and linked as a set of its
own, which makes its definitions current (:mod:`.symbols`); stubs are
re-pointed, code pages are never written. The sets it replaces are retired
under the reclamation rule (:mod:`.reclaim`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import llvmlite.binding as llvm

from .errors import (
    ExecutionEngineError,
    InvalidModuleError,
    SignatureMismatchError,
    SwapNotSupportedError,
)
from .ir import module_checks, target_probe
from .ir.extract import ModuleView, Partition
from .ir.module_checks import check_not_owned, pointer_of
from .layers.base import Handle
from .layers.compile_on_demand import CompileOnDemandLayer
from .layers.ir_compile import IRCompileLayer
from .layers.redirection import RedirectionLayer
from .linking.reclaim import Reclaimer
from .linking.symbols import SymbolTable


class HotSwapMixin:
    """Function-level replacement on top of the engine's layers."""

    # Provided by the engine (see ExecutionEngine.__init__ and _build_stack).
    _lock: threading.RLock
    _target_machine: llvm.TargetMachine
    _compiler: CompileOnDemandLayer
    _ir: IRCompileLayer
    _redirection: RedirectionLayer
    _symbols: SymbolTable
    _reclaimer: Reclaimer
    _modules: dict[int, tuple[llvm.ModuleRef, Handle]]
    _module_of: dict[Handle, llvm.ModuleRef]
    _updates: set[Handle]
    _views: dict[Handle, ModuleView]
    _root: dict[Handle, Handle]
    _origin: weakref.WeakKeyDictionary[Handle, Handle]
    _local_fallbacks: dict[str, int]
    _tiered: dict[int, llvm.TargetMachine]
    _check_open: Callable[[], None]
    _register: Callable[[llvm.ModuleRef, Handle], None]

    def update_module(self, module: llvm.ModuleRef, *, reinitialize_globals: bool = False,
                      replaces: llvm.ModuleRef | None = None) -> None:
        """Swap in ``module``: every function it defines that the engine already
        has is replaced (callers everywhere reach the new body when this
        returns); new functions and globals are added; globals that already
        exist keep their storage and current value, unless
        ``reinitialize_globals``, which resets them to ``module``'s initial
        values. Only ``module``'s code is compiled and linked.

        Ownership of ``module`` moves to the engine as with :meth:`add_module`;
        :meth:`remove_module` on it undoes the update (earlier definitions
        become current again, unless they were freed). A set whose every
        definition has been replaced by updates, and that defines no data or
        constructors, is freed under the engine's reclamation rule.

        ``replaces``: ``module`` is a new version of that module (say, the
        same source file edited and parsed again). Then only the functions
        whose IR changed, and new ones, are compiled; the rest keep running
        from the earlier version, which therefore stays in the engine; and
        internal (``static``) variables keep their storage and values too,
        matched by name.

        Raises :class:`SignatureMismatchError` naming the first function (or
        global) whose type changed; then nothing changes.
        """
        with self._lock:
            self._check_open()
            self._check_swappable()
            if pointer_of(module) in self._modules:
                raise KeyError(f"{module_checks.module_label(module)} was already added to "
                               "this engine")
            check_not_owned(module)
            previous = None
            if replaces is not None:
                previous = self._modules.get(pointer_of(replaces))
                if previous is None:
                    raise KeyError("the module to replace is not in this engine")
            module_checks.check_module(module, self._target_machine,
                                       verify=not self._compiler.lazy or replaces is not None)
            self._check_types(module)
            if self._compiler.pending():
                self._compiler.emit()
            handle = Handle(f"update {module_checks.module_label(module)}")
            if previous is not None:
                self._add_new_version(handle, module, previous[1])
            else:
                self._compiler.add_and_emit(handle, module, keep_existing_data=True,
                                            replaceable=True,
                                            reinitialize_data=reinitialize_globals)
            self._register(module, handle)
            self._updates.add(handle)
            self._reclaimer.poll()

    def _add_new_version(self, handle: Handle, module: llvm.ModuleRef,
                         previous: Handle) -> None:
        """Compile what changed between ``previous``'s module and ``module``."""
        root = self._root.get(previous, previous)
        old = self._module_of[previous]
        changed = [fn.name for fn in module.functions
                   if not fn.is_declaration and fn.name and _changed(old, fn)]
        old_variables = {gv.name for gv in old.global_variables}
        new_variables = [gv.name for gv in module.global_variables
                         if not gv.is_declaration and gv.name and gv.name not in old_variables
                         and not self._lineage_defines(root, gv.name)]
        self._root[handle] = root
        if not changed and not new_variables:
            return
        lazy = self._compiler.is_lazy(root)
        view = ModuleView(module, prefix=f"__ee.h{root.id}.", mode="lazy" if lazy else "recompile")
        part = view.partition(changed, new_variables)
        self._link_partition(part, root, handle.name, handle)

    def _lineage_defines(self, root: Handle, name: str) -> bool:
        return self._symbols.current(f"__ee.h{root.id}.{name}") is not None

    def _link_partition(self, part: Partition, root: Handle, label: str, handle: Handle,
                        target_machine: llvm.TargetMachine | None = None,
                        opt_level: int | None = None) -> None:
        """Compile and link a partition cut from a version of ``root``'s module;
        its shared locals resolve to the lineage's current definitions, else to
        the addresses ``root``'s object gave them."""
        if not self._compiler.is_lazy(root):
            for shared, original in part.shared.items():
                address = self._redirection.local_address(root, original)
                if address is None:
                    raise ExecutionEngineError(
                        f"cannot link {label}: symbol '{original}' of the original module has "
                        "no address (the module was not compiled by this engine)")
                self._local_fallbacks[shared] = address
        try:
            body = llvm.parse_assembly(part.text)
            body.verify()
        except RuntimeError as exc:
            raise InvalidModuleError(f"cannot compile {label}: {exc}") from None
        if opt_level is not None and target_machine is not None:
            _optimise(body, target_machine, opt_level)
        try:
            self._ir.add_and_emit(handle, body, keep_existing_data=True, replaceable=True,
                                  owned=True, target_machine=target_machine)
        finally:
            body.close()

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
        with self._lock:
            self._check_open()
            self._check_swappable()
            if self._compiler.pending():
                self._compiler.emit()
            origin, module, name = self._function_home(fn)
            root = self._root.get(origin, origin)
            view = self._views.get(origin)
            if view is None:
                lazy = self._compiler.is_lazy(root)
                view = self._views[origin] = ModuleView(
                    module, prefix=f"__ee.h{root.id}.", mode="lazy" if lazy else "recompile")
            target_machine = None if opt_level is None else self._target_machine_at(opt_level)
            handle = Handle(
                f"function '{name}' recompiled from {module_checks.module_label(module)}")
            self._link_partition(view.function_partition(name), root, handle.name, handle,
                                 target_machine, opt_level)
            self._origin[handle] = origin
            self._reclaimer.poll()
            current = self._symbols.current(name)
            assert current is not None and current.handle is handle
            return current.address

    def reclaim(self) -> int:
        """Declare a quiescent point: no thread is running replaced code, so
        every retired body is freed now. Returns how many sets were freed."""
        with self._lock:
            self._check_open()
            return self._reclaimer.quiescent()

    def _owner(self, handle: Handle) -> Handle:
        """The user module's handle behind a recompiled body or a lazy partition."""
        handle = self._origin.get(handle, handle)
        return self._compiler.owner(handle)

    def _check_swappable(self) -> None:
        if self._redirection.policy == "none":
            raise SwapNotSupportedError(
                "this engine was created with redirection='none': functions are bound "
                "directly to their callers and cannot be replaced")

    def _function_home(self, fn: llvm.ValueRef | str) -> tuple[Handle, llvm.ModuleRef, str]:
        """The user module ``fn`` comes from, that module's handle and fn's name."""
        if isinstance(fn, llvm.ValueRef):
            if fn.value_kind != llvm.ValueKind.function:
                raise TypeError(f"expected a function, got {fn!r}")
            entry = self._modules.get(pointer_of(fn.module))
            if entry is None:
                raise ValueError(f"function '{fn.name}' belongs to a module not in this engine")
            module, origin = entry
            name = fn.name
        else:
            name = fn
            current = self._symbols.current(name)
            lazy_home = self._compiler.home(name)
            if lazy_home is not None:
                origin = lazy_home
            elif current is None or not current.is_function:
                raise KeyError(f"the engine defines no function '{name}'")
            else:
                origin = self._owner(current.handle)
            module = self._module_of.get(origin)
            if module is None:
                raise ExecutionEngineError(
                    f"'{name}' was added as an object file; it has no IR to recompile")
        value = module.get_function(name)
        if value.is_declaration:
            raise KeyError(f"module '{module.name}' only declares '{name}'")
        if value.linkage in (llvm.Linkage.internal, llvm.Linkage.private):
            raise SwapNotSupportedError(
                f"'{name}' has {value.linkage.name} linkage: its callers call it directly, "
                "so a new body cannot be reached; recompile its external callers instead")
        return origin, module, name

    def _check_types(self, module: llvm.ModuleRef) -> None:
        for value in (*module.functions, *module.global_variables):
            if value.is_declaration or value.linkage in (llvm.Linkage.internal,
                                                         llvm.Linkage.private):
                continue
            current = self._symbols.current(value.name)
            if current is None:
                continue
            old_module = self._module_of.get(self._owner(current.handle))
            if old_module is None:
                continue
            old = _global_type(old_module, value.name)
            new = str(value.global_value_type)
            if old is not None and old != new:
                what = "function" if value.value_kind == llvm.ValueKind.function else "global"
                raise SignatureMismatchError(
                    f"{what} '{value.name}' changes type from '{old}' to '{new}'; "
                    "nothing was changed")

    def _target_machine_at(self, opt_level: int) -> llvm.TargetMachine:
        if opt_level not in (0, 1, 2, 3):
            raise ValueError(f"opt_level must be 0, 1, 2 or 3, not {opt_level!r}")
        tm = self._tiered.get(opt_level)
        if tm is None:
            traits = target_probe.traits(self._target_machine)
            tm = self._tiered[opt_level] = target_probe.with_opt_level(
                self._target_machine, traits, opt_level)
        return tm


def _global_type(module: llvm.ModuleRef, name: str) -> str | None:
    for getter in (module.get_function, module.get_global_variable):
        try:
            return str(getter(name).global_value_type)
        except NameError:
            continue
    return None


def _changed(old: llvm.ModuleRef, fn: llvm.ValueRef) -> bool:
    """Whether ``fn`` is new or differs from its namesake in ``old``."""
    try:
        previous = old.get_function(fn.name)
    except NameError:
        return True
    return previous.is_declaration or str(previous) != str(fn)


def _optimise(module: llvm.ModuleRef, target_machine: llvm.TargetMachine, level: int) -> None:
    """Run LLVM's standard module pipeline at ``level`` on ``module``."""
    options = llvm.create_pipeline_tuning_options(speed_level=level)
    builder = llvm.create_pass_builder(target_machine, options)
    builder.getModulePassManager().run(module, builder)
