"""Hot-swap: replacing functions in a running engine (update_module,
recompile_and_relink_function), as a component the engine owns.

How a swap works: the replacement is compiled and linked as a set of its
own, added at the top of the stack like any other set (``AddOptions``:
keep existing data, replaceable, and eager for a recompiled body, whose
address is returned), which makes its definitions current
(:mod:`.linking.symbols`); stubs are re-pointed, code pages are never
written. The sets it replaces are retired under the reclamation rule
(:mod:`.linking.reclaim`).

State kept here, per stack (a restarted executor gets a fresh component):
which sets are updates, the lineage of module versions (``replaces=``), the
partition views of recompiled modules, and which module each recompiled
body came from. Thread-safety: the engine's lock serialises every call.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import llvmlite.binding as llvm

from . import target_spec
from .errors import ExecutionEngineError, SignatureMismatchError, SwapNotSupportedError
from .ir.extract import ModuleView, Partition
from .ir.linkage import is_local, shared_prefix
from .ir.module_checks import module_label
from .ir.optimise import Optimiser
from .ir.parse import parse_partition
from .layers.base import AddOptions, Handle, add_and_emit
from .linking.symbols import Definition, SymbolTable
from .module_table import ModuleTable
from .native import elf
from .policies import RedirectionPolicy
from .stack import Stack


@dataclass(eq=False)
class Recompile:
    """The partition of functions ``names`` (all from one module), cut from
    their module's current IR to be compiled off the engine's lock (tier-up):
    ``text`` is the IR to compile, ``definitions`` the bodies current when it
    was cut (a link of the result is refused if any other became current
    since), ``handle`` the set the new bodies will be: one object, laid out
    together as in their module."""

    names: tuple[str, ...]
    text: str
    definitions: tuple[Definition, ...]
    handle: Handle
    origin: Handle
    root: Handle
    shared: dict[str, str]

    def is_current(self, symbols: SymbolTable) -> bool:
        """Whether every body the partition was cut from is still current."""
        return all(symbols.current(name) is definition
                   for name, definition in zip(self.names, self.definitions, strict=True))


class HotSwap:
    """Function-level replacement over one stack."""

    def __init__(self, stack: Stack, modules: ModuleTable, target_machine: llvm.TargetMachine,
                 policy: RedirectionPolicy):
        self._stack = stack
        self._modules = modules
        self._target_machine = target_machine
        self._policy = policy
        self._updates: set[Handle] = set()
        # recompiled body -> the module set it came from (gone with the body)
        self._origin: weakref.WeakKeyDictionary[Handle, Handle] = weakref.WeakKeyDictionary()
        self._views: dict[Handle, ModuleView] = {}
        self._root: dict[Handle, Handle] = {}  # a module version -> the first version
        # per optimisation level: a target machine and its reusable pipelines
        self._tiered: dict[int, tuple[llvm.TargetMachine, Optimiser]] = {}
        # recompiled body -> the optimisation level it was compiled at
        self._levels: weakref.WeakKeyDictionary[Handle, int] = weakref.WeakKeyDictionary()

    def check_swappable(self) -> None:
        self._policy.check_swappable()

    def update(self, handle: Handle, module: llvm.ModuleRef, previous: Handle | None,
               options: AddOptions) -> None:
        """Swap in ``module`` (the engine's reference, already in the table as
        ``handle``), added with ``options``, or as a new version of
        ``previous``; see ExecutionEngine.update_module."""
        if previous is not None:
            self._add_new_version(handle, module, previous)
        else:
            add_and_emit(self._stack.top, handle, module, options)
        self._updates.add(handle)

    def is_update(self, handle: Handle) -> bool:
        return handle in self._updates

    def superseded_update(self, retired: Handle) -> Handle | None:
        """The update that set ``retired`` (just superseded and retired) leaves
        behind with nothing linked: no set of its own nor a body recompiled
        from it is linked any more. ``None`` if there is none."""
        on_demand = self._stack.on_demand
        origin = on_demand.owner(self._origin.get(retired, retired))
        if origin not in self._updates:
            return None
        linked = self._stack.redirection.is_linked
        if any(linked(b) for b, o in self._origin.items() if o is origin):
            return None  # a body recompiled from it is current
        if on_demand.is_lazy(origin):
            return origin if on_demand.is_superseded(origin) else None
        return None if linked(origin) else origin

    def mark_update(self, handle: Handle) -> None:
        """``handle`` was added again as an update (a restarted executor)."""
        self._updates.add(handle)

    def forget(self, handle: Handle) -> None:
        """Module set ``handle`` is being removed: drop what was kept for it and
        free the bodies recompiled from it."""
        self._views.pop(handle, None)
        self._updates.discard(handle)
        self._root.pop(handle, None)
        for body, origin in list(self._origin.items()):
            if origin is handle:
                self._stack.top.remove(body)
                del self._origin[body]

    def recompiled_bodies(self) -> int:
        """How many recompiled bodies are alive."""
        return len(self._origin)

    def _add_new_version(self, handle: Handle, module: llvm.ModuleRef,
                         previous: Handle) -> None:
        """Compile what changed between ``previous``'s module and ``module``."""
        root = self._root.get(previous, previous)
        old = self._modules.module_of(previous)
        assert old is not None
        changed = [fn.name for fn in module.functions
                   if not fn.is_declaration and fn.name and _changed(old, fn)]
        old_variables = {gv.name for gv in old.global_variables}
        new_variables = [gv.name for gv in module.global_variables
                         if not gv.is_declaration and gv.name and gv.name not in old_variables
                         and not self._lineage_defines(root, gv.name)]
        self._root[handle] = root
        if not changed and not new_variables:
            return
        part = self._view(module, root, mutable=False).partition(  # used once, now
            changed, new_variables)
        self._link_partition(part, root, handle.name, handle)

    def _lineage_defines(self, root: Handle, name: str) -> bool:
        return self._stack.symbols.current(shared_prefix(root.id) + name) is not None

    def _recompile_view(self, origin: Handle, module: llvm.ModuleRef, root: Handle) -> ModuleView:
        """The view recompiles of ``origin``'s functions are cut from, made once
        (mutable: the user may change the module between recompiles)."""
        view = self._views.get(origin)
        if view is None:
            view = self._views[origin] = self._view(module, root, mutable=True)
        return view

    def _view(self, module: llvm.ModuleRef, root: Handle, *, mutable: bool) -> ModuleView:
        lazy = self._stack.on_demand.is_lazy(root)
        return ModuleView(module, prefix=shared_prefix(root.id),
                          mode="lazy" if lazy else "recompile", mutable=mutable)

    def _link_partition(self, part: Partition, root: Handle, label: str, handle: Handle,
                        target_machine: llvm.TargetMachine | None = None,
                        opt_level: int | None = None) -> None:
        """Compile and link a partition cut from a version of ``root``'s module;
        its shared locals resolve to the lineage's current definitions, else to
        the addresses ``root``'s object gave them."""
        self._map_shared_locals(part.shared, root, label)
        body = parse_partition(part.text, label)
        try:
            if opt_level is not None and target_machine is not None:
                self._tiered[opt_level][1].run(body, opt_level)
            add_and_emit(self._stack.top, handle, body, AddOptions(
                keep_existing_data=True, replaceable=True, in_place=True, eager=True,
                target_machine=target_machine))
        finally:
            body.close()

    def _map_shared_locals(self, shared: dict[str, str], root: Handle, label: str) -> None:
        """A partition of an eagerly compiled module reaches the module's locals
        at the addresses ``root``'s object gave them."""
        if self._stack.on_demand.is_lazy(root):
            return
        if shared:
            # The partition will call the module's local functions: their
            # copy must call through stubs (DIRECT binds calls directly).
            self._stack.redirection.detach(root)
        for name, original in shared.items():
            address = self._stack.redirection.local_address(root, original)
            if address is None:
                raise ExecutionEngineError(
                    f"cannot link {label}: symbol '{original}' of the original module has "
                    "no address (the module was not compiled by this engine)")
            self._stack.local_fallbacks[name] = address

    def cut(self, names: Sequence[str], label: str) -> list[Recompile]:
        """The partitions of functions ``names`` from their modules' current IR,
        one per module (the functions of one module compiled together), to
        compile elsewhere and :meth:`link_object` later (engine's lock held).
        Raises as :meth:`recompile` does if any of them cannot be recompiled."""
        groups: dict[Handle, tuple[llvm.ModuleRef, list[tuple[str, str, Definition]]]] = {}
        for name in names:
            current = self._stack.symbols.current(name)
            if current is None or not current.is_function:
                raise KeyError(f"the engine defines no function '{name}'")
            origin, module, ir_name = self._function_home(name)
            groups.setdefault(origin, (module, []))[1].append((name, ir_name, current))
        jobs = []
        for origin, (module, members) in groups.items():
            engine_names, ir_names, definitions = zip(*members, strict=True)
            root = self._root.get(origin, origin)
            part = self._recompile_view(origin, module, root).partition(ir_names)
            quoted = ", ".join(f"'{n}'" for n in ir_names)
            handle = Handle(f"function{'s' if len(ir_names) > 1 else ''} {quoted} {label} "
                            f"from {module_label(module)}")
            jobs.append(Recompile(engine_names, part.text, definitions, handle, origin, root,
                                  dict(part.shared)))
        return jobs

    def link_object(self, job: Recompile, data: bytes, opt_level: int) -> bool:
        """Link ``data``, compiled from ``job`` at ``opt_level``, as the bodies of
        ``job.names``; ``False`` (nothing linked) if any body ``job`` was cut
        from is no longer current (a function was swapped, recompiled or
        removed meanwhile). Engine's lock held."""
        if not job.is_current(self._stack.symbols) or self._modules.module_of(job.origin) is None:
            return False
        self._map_shared_locals(job.shared, job.root, job.handle.name)
        obj = elf.ObjectFile(data, machine=self._stack.compile_layer.machine,
                             name=job.handle.name)
        self._origin[job.handle] = job.origin
        self._levels[job.handle] = opt_level
        try:
            add_and_emit(self._stack.redirection, job.handle, obj, AddOptions(
                keep_existing_data=True, replaceable=True))
        except BaseException:
            self._origin.pop(job.handle, None)
            raise
        assert all(self._stack.symbols.current(name).handle is job.handle  # type: ignore[union-attr]
                   for name in job.names)
        return True

    def level_of(self, handle: Handle) -> int | None:
        """The optimisation level body set ``handle`` was recompiled at
        (``recompile(opt_level=n)``, :meth:`link_object`); ``None`` for a set
        compiled at the engine's own level."""
        return self._levels.get(handle)

    def recompile(self, fn: llvm.ValueRef | str, opt_level: int | None) -> int:
        """Recompile function ``fn`` from its module's current IR; see
        ExecutionEngine.recompile_and_relink_function. Returns the body's address."""
        origin, module, name = self._function_home(fn)
        root = self._root.get(origin, origin)
        view = self._recompile_view(origin, module, root)
        target_machine = None if opt_level is None else self._target_machine_at(opt_level)
        handle = Handle(f"function '{name}' recompiled from {module_label(module)}")
        self._origin[handle] = origin  # before linking: the link may retire its origin
        if opt_level is not None:
            self._levels[handle] = opt_level
        try:
            self._link_partition(view.function_partition(name), root, handle.name, handle,
                                 target_machine, opt_level)
        except BaseException:
            del self._origin[handle]
            raise
        current = self._stack.symbols.current(name)
        assert current is not None and current.handle is handle
        return current.address

    def _owner(self, handle: Handle) -> Handle:
        """The user module's handle behind a recompiled body or a lazy partition."""
        handle = self._origin.get(handle, handle)
        return self._stack.on_demand.owner(handle)

    def defining_module(self, name: str) -> tuple[Handle, llvm.ModuleRef] | None:
        """The user module whose definition of ``name`` is current (or wins,
        for a lazy one not compiled yet) and its handle; ``None`` if no IR
        module defines ``name`` (an object file's symbol, an unknown name)."""
        origin = self._stack.on_demand.home(name)
        if origin is None:
            current = self._stack.symbols.current(name)
            if current is None:
                return None
            origin = self._owner(current.handle)
        module = self._modules.module_of(origin)
        return None if module is None else (origin, module)

    def _function_home(self, fn: llvm.ValueRef | str) -> tuple[Handle, llvm.ModuleRef, str]:
        """The user module ``fn`` comes from, that module's handle and fn's name."""
        if isinstance(fn, llvm.ValueRef):
            if fn.value_kind != llvm.ValueKind.function:
                raise TypeError(f"expected a function, got {fn!r}")
            found = self._modules.handle_of(fn.module)
            if found is None:
                raise ValueError(f"function '{fn.name}' belongs to a module not in this engine")
            origin, name = found, fn.name
        else:
            name = fn
            current = self._stack.symbols.current(name)
            lazy_home = self._stack.on_demand.home(name)
            if lazy_home is not None:
                origin = lazy_home
            elif current is None or not current.is_function:
                raise KeyError(f"the engine defines no function '{name}'")
            else:
                origin = self._owner(current.handle)
        module = self._modules.module_of(origin)
        if module is None:
            raise ExecutionEngineError(
                f"'{name}' was added as an object file; it has no IR to recompile")
        value = module.get_function(name)
        if value.is_declaration:
            raise KeyError(f"module '{module.name}' only declares '{name}'")
        if is_local(value):
            raise SwapNotSupportedError(
                f"'{name}' has {value.linkage.name} linkage: its callers call it directly, "
                "so a new body cannot be reached; recompile its external callers instead")
        return origin, module, name

    def check_types(self, module: llvm.ModuleRef) -> None:
        """Raise :class:`SignatureMismatchError` naming the first function or
        global of ``module`` whose type differs from the current definition's."""
        for value in (*module.functions, *module.global_variables):
            if value.is_declaration or is_local(value):
                continue
            current = self._stack.symbols.current(value.name)
            if current is None:
                continue
            old_module = self._modules.module_of(self._owner(current.handle))
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
        tiered = self._tiered.get(opt_level)
        if tiered is None:
            traits = target_spec.traits(self._target_machine)
            tm = target_spec.with_opt_level(self._target_machine, traits, opt_level)
            tiered = self._tiered[opt_level] = (tm, Optimiser(tm))
        return tiered[0]

    def close(self) -> None:
        """Free the target machines and pipelines made for other levels."""
        for tm, optimiser in self._tiered.values():
            optimiser.close()
            tm.close()
        self._tiered.clear()


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
