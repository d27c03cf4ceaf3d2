"""RedirectionLayer: objects in, functions behind stubs, linked below.

For each object handed down, before it reaches the ObjectLinkingLayer:

* every function it defines (policies ``"stub"`` and ``"single"``) is split into a body, renamed
  ``<name>.__body<N>``, and references to ``<name>`` - from this object and
  every other - which resolve to the name's stub; the stub's slot is pointed
  at the current body (see :mod:`..symbols` for which definition is current);
* a weak, link-once or common data definition of a name the engine (or an
  earlier object of the batch) already defines becomes a reference to that
  existing storage, so one definition wins for everybody; so does every
  existing data definition when the caller asks to keep live state
  (``update_module``);
* static constructor and destructor tables are read and their targets
  exported (:mod:`..structors`).

With policy ``"single"`` the compile layer has also rewritten calls to load
the callee from its slot (``f.__slot`` imports resolve to slots, see
:mod:`..call_sites`). With policy ``"none"`` functions are linked exactly as
MCJIT links them (no stub, callers bound to the body) and cannot be swapped.

Objects of one batch that need each other's *data* are linked after their
providers; objects that need each other's data in a cycle are linked
together as one resource, freed when all of their handles are removed.

Thread-safety: the layer's lock serialises :meth:`add` and :meth:`remove`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import DuplicateSymbolError, UnresolvedSymbolError
from ..ir.call_sites import SLOT_SUFFIX
from ..linking import structors
from ..linking.reclaim import Reclaimer
from ..linking.symbols import Definition, SymbolTable
from ..native import elf
from .base import Handle
from .object_linking import LinkedResource, ObjectLinkingLayer

POLICIES = ("stub", "single", "none")
# Names the linker itself defines for the object being linked.
LINKER_DEFINED = frozenset({"_GLOBAL_OFFSET_TABLE_"})


@dataclass(eq=False)
class ObjectUnit:
    """One object to link for ``handle``."""

    handle: Handle
    obj: elf.ObjectFile
    keep_existing_data: bool = False
    replaceable: bool = False  # freed (after the grace rule) once nothing it defines is current
    reinitialize_data: bool = False  # kept storage takes this object's initial values


@dataclass(eq=False)
class _Shared:
    resource: LinkedResource
    users: int


@dataclass(eq=False)
class _HandleState:
    names: list[str] = field(default_factory=list)
    shared: list[_Shared] = field(default_factory=list)
    structors: list[tuple[structors.Structor, int]] = field(default_factory=list)
    exports: dict[str, int] = field(default_factory=dict)
    order: int = 0
    replaceable: bool = False
    defines_data: bool = False
    objects: list[tuple[elf.ObjectFile, dict[int, int]]] = field(default_factory=list)


@dataclass(eq=False)
class _Plan:
    unit: ObjectUnit
    uid: int
    rename: dict[str, str] = field(default_factory=dict)
    undefine: set[str] = field(default_factory=set)
    exports: list[str] = field(default_factory=list)
    definitions: list[tuple[str, str, bool, bool]] = field(default_factory=list)
    structors: list[structors.Structor] = field(default_factory=list)
    aliases: dict[str, tuple[int, int]] = field(default_factory=dict)
    section_aliases: dict[str, int] = field(default_factory=dict)  # alias -> section index
    reinit: list[tuple[str, str, int]] = field(default_factory=list)  # name, initial copy, size
    absent: set[str] = field(default_factory=set)  # weak references nobody defines: 0
    needs: dict[str, int | _Plan] = field(default_factory=dict)  # address, or provider in batch
    call_deps: set[_Plan] = field(default_factory=set)  # providers reached through stubs
    missing: list[str] = field(default_factory=list)
    addresses: dict[str, int] = field(default_factory=dict)


class RedirectionLayer:
    """Rewrites objects so functions are reached through stubs, then links them."""

    def __init__(
        self,
        base: ObjectLinkingLayer,
        symbols: SymbolTable,
        resolve_mapping: Callable[[str], int | None],
        resolve_process: Callable[[str], int | None],
        *,
        policy: str = "stub",
        reclaimer: Reclaimer | None = None,
    ):
        if policy not in POLICIES:
            raise ValueError(f"unknown redirection policy {policy!r}; choose one of {POLICIES}")
        self.base = base
        self.symbols = symbols
        self.policy = policy
        self._resolve_mapping = resolve_mapping
        self._resolve_process = resolve_process
        self._resolve_pending: Callable[[str], int | None] = lambda name: None
        self._lock = threading.RLock()
        self._states: dict[Handle, _HandleState] = {}
        self._uids = itertools.count(1)
        self._order = itertools.count()
        self.reclaimer = reclaimer if reclaimer is not None else Reclaimer()
        self._superseded: list[Handle] = []
        symbols.set_superseded_listener(self._superseded.append)

    def set_pending_resolver(self, resolve: Callable[[str], int | None]) -> None:
        """``resolve(name)`` answers for names defined by sets added above this
        layer but not linked yet (lazy compilation); consulted after the engine's
        linked definitions and before the process."""
        self._resolve_pending = resolve

    # -- adding --------------------------------------------------------------

    def add(self, units: Sequence[ObjectUnit]) -> None:
        """Link ``units``; on return their definitions are current.

        Units whose references cannot all be resolved (or that depend on such
        a unit) are not linked; after linking the others this raises
        :class:`UnresolvedSymbolError` naming them and what they miss.
        """
        with self._lock:
            batch_data: dict[str, _Plan] = {}
            plans = [self._plan(u, batch_data) for u in units]
            refused = self._check_strict(plans)
            plans = [p for p in plans if p not in refused]
            winners = self._batch_winners(plans)
            for plan in plans:
                self._resolve_imports(plan, winners)
            failed = self._failures(plans)
            link_errors: list[Exception] = []
            linked: list[_Plan] = []
            for group in _link_order([p for p in plans if p not in failed]):
                if any(d in failed for p in group for d in _dependencies(p, all_kinds=True)):
                    failed.update(group)
                    continue
                try:
                    self._link(group)
                except Exception as exc:  # noqa: BLE001 - reported after the good ones are in
                    link_errors.append(exc)
                    failed.update(group)
                    continue
                linked.extend(group)
            linked.sort(key=plans.index)
            for plan in linked:
                self._publish(plan)
            for plan in linked:
                self._resolve_structors(plan)
            self._retire_superseded()
            missing = {p.unit.handle.name: p.missing for p in plans if p.missing}
            if refused:
                raise next(iter(refused.values()))
            if missing:
                raise UnresolvedSymbolError(missing)
            if link_errors:
                raise link_errors[0]

    def _plan(self, unit: ObjectUnit, batch_data: dict[str, _Plan]) -> _Plan:
        """Decide the symbol-table edits for ``unit``; ``batch_data`` holds the
        data definitions of earlier units of the same batch (updated here)."""
        plan = _Plan(unit, next(self._uids))
        obj = unit.obj
        for name, sym in obj.defined_globals().items():
            if sym.is_function and self.policy != "none":
                body = f"{name}.__body{plan.uid}"
                plan.rename[name] = body
                plan.undefine.add(name)
                plan.exports.append(body)
                plan.definitions.append((name, body, True, sym.is_weak))
                continue
            existing = self.symbols.current(name)
            exists = (existing is not None and existing.handle is not unit.handle) or (
                name in batch_data and batch_data[name].unit.handle is not unit.handle)
            shared = exists and (sym.is_weak or unit.keep_existing_data)
            if not shared:
                batch_data.setdefault(name, plan)
            if shared and unit.reinitialize_data and not sym.is_weak and sym.size:
                initial = f"{name}.__init{plan.uid}"
                plan.rename[name] = initial
                plan.undefine.add(name)
                plan.exports.append(initial)
                plan.reinit.append((name, initial, sym.size))
            elif shared:
                plan.undefine.add(name)
            else:
                plan.exports.append(name)
                plan.definitions.append((name, name, sym.is_function, sym.is_weak))
        plan.structors, plan.aliases = structors.find_structors(obj, f"__ee.structor{plan.uid}.")
        for sec in obj.sections:
            if sec.flags & elf.SHF_ALLOC and sec.size:
                alias = f"__ee.section{plan.uid}.{sec.index}"
                plan.section_aliases[alias] = sec.index
                plan.aliases[alias] = (sec.index, 0)
        plan.exports.extend(plan.aliases)
        return plan

    def _check_strict(self, plans: list[_Plan]) -> dict[_Plan, DuplicateSymbolError]:
        """Strict mode: the units that define again a strong symbol (linked, or
        defined by an earlier unit of the batch), each with its error. They are
        not linked; the others are."""
        refused: dict[_Plan, DuplicateSymbolError] = {}
        if not self.symbols.strict:
            return refused
        seen: dict[str, _Plan] = {}
        for p in plans:
            try:
                self.symbols.check(
                    Definition(name, p.unit.handle, 0, is_fn, weak, origin=p.unit.handle.name)
                    for name, _, is_fn, weak in p.definitions)
                for name, _, _, weak in p.definitions:
                    if not weak and name in seen:
                        raise DuplicateSymbolError(name, seen[name].unit.handle.name,
                                                   p.unit.handle.name)
            except DuplicateSymbolError as exc:
                refused[p] = exc
                continue
            for name, _, _, weak in p.definitions:
                if not weak:
                    seen[name] = p
        return refused

    @staticmethod
    def _batch_winners(plans: list[_Plan]) -> dict[str, tuple[_Plan, bool]]:
        """Which plan's definition of each name is current once the batch is in."""
        winners: dict[str, tuple[_Plan, bool, bool]] = {}
        for plan in plans:
            for name, _, is_fn, weak in plan.definitions:
                if name not in winners or not weak:
                    winners[name] = (plan, is_fn, weak)
        return {n: (p, is_fn) for n, (p, is_fn, _) in winners.items()}

    def _resolve_imports(self, plan: _Plan, winners: dict[str, tuple[_Plan, bool]]) -> None:
        obj = plan.unit.obj
        wanted = {n: s.is_weak for n, s in obj.undefined_globals().items()}
        wanted.update({n: False for n in plan.undefine})
        for name, weak_ref in wanted.items():
            if name in LINKER_DEFINED:
                continue
            if name.endswith(SLOT_SUFFIX) and self.policy == "single":
                plan.needs[name] = self.symbols.stub(name[: -len(SLOT_SUFFIX)]).slot
                continue
            address = self._resolve_mapping(name)  # global mappings win over everything
            if address is not None:
                plan.needs[name] = address
                continue
            winner = winners.get(name)
            if winner is not None and winner[0] is not plan:
                provider, is_fn = winner
                if is_fn and self.policy != "none":
                    plan.needs[name] = self.symbols.stub(name).address
                    plan.call_deps.add(provider)
                else:
                    plan.needs[name] = provider
                continue
            if winner is not None:  # our own definition (e.g. renamed body)
                if self.policy != "none" and winner[1]:
                    plan.needs[name] = self.symbols.stub(name).address
                continue
            address = self._engine_address(name)
            if address is None:
                address = self._resolve_pending(name)
            if address is None:
                address = self._resolve_process(name)
            if address is None:
                if weak_ref:
                    plan.absent.add(name)
                else:
                    plan.missing.append(name)
                continue
            plan.needs[name] = address

    def _engine_address(self, name: str) -> int | None:
        cur = self.symbols.current(name)
        if cur is None:
            return None
        if cur.is_function and self.policy != "none":
            return self.symbols.stub(name).address
        return cur.address

    @staticmethod
    def _failures(plans: list[_Plan]) -> set[_Plan]:
        """Units with missing symbols and every unit that needs one of them."""
        failed = {p for p in plans if p.missing}
        changed = True
        while changed:
            changed = False
            for p in plans:
                if p not in failed and any(d in failed for d in _dependencies(p, all_kinds=True)):
                    failed.add(p)
                    changed = True
        return failed

    def _link(self, group: list[_Plan]) -> None:
        inside = set(group)
        imports: dict[str, int] = {}
        for plan in group:
            for name, value in plan.needs.items():
                if isinstance(value, _Plan):
                    if value in inside:
                        continue
                    value = value.addresses[name]
                imports[name] = value
        # Strong data defined twice inside one group: the later definition wins,
        # the earlier one keeps its storage under a private name (as MCJIT does).
        owner: dict[str, _Plan] = {}
        for plan in group:
            for name in list(plan.exports):
                earlier = owner.get(name)
                if earlier is not None:
                    shadow = f"{name}.__shadowed{earlier.uid}"
                    earlier.rename[name] = shadow
                    earlier.exports[earlier.exports.index(name)] = shadow
                    earlier.definitions = [d for d in earlier.definitions if d[0] != name]
                owner[name] = plan
        exports = [n for p in group for n in p.exports]
        blobs = [
            elf.rewrite(p.unit.obj, undefine=p.undefine, rename=p.rename, aliases=p.aliases,
                        absolute=dict.fromkeys(p.absent, 0))
            for p in group
        ]
        resource = self.base.add(blobs, imports, exports,
                                 name=" + ".join(p.unit.handle.name for p in group))
        shared = _Shared(resource, len(group))
        for plan in group:
            plan.addresses = {n: resource.exports[n] for n in plan.exports}
            self._state(plan.unit.handle).shared.append(shared)

    def _publish(self, plan: _Plan) -> None:
        handle = plan.unit.handle
        state = self._state(handle)
        state.replaceable = plan.unit.replaceable
        state.objects.append((plan.unit.obj, {
            index: plan.addresses[alias] for alias, index in plan.section_aliases.items()}))
        for name, exported, is_fn, weak in plan.definitions:
            address = plan.addresses[exported]
            if is_fn and self.policy != "none":
                self.symbols.stub(name)
            self.symbols.define(Definition(name, handle, address, is_fn, weak, handle.name))
            state.defines_data |= not is_fn
            state.names.append(name)
            state.exports[name] = address
        for name, initial, size in plan.reinit:
            self.base.copy(plan.needs[name], plan.addresses[initial], size)  # type: ignore[arg-type]

    def _resolve_structors(self, plan: _Plan) -> None:
        """Constructor targets, once every unit of the batch is published."""
        state = self._state(plan.unit.handle)
        for s in plan.structors:
            target = plan.addresses.get(s.symbol) or self.find_symbol(s.symbol)
            imported = plan.needs.get(s.symbol)
            if not target and isinstance(imported, int):
                target = imported  # e.g. the stub of a function not compiled yet
            if target:
                state.structors.append((s, target))

    def _state(self, handle: Handle) -> _HandleState:
        state = self._states.get(handle)
        if state is None:
            state = self._states[handle] = _HandleState(order=next(self._order))
        return state

    # -- removing and finding ------------------------------------------------

    def remove(self, handle: Handle) -> None:
        """Undefine ``handle``'s symbols and free its memory now (shared
        resources when their last handle goes)."""
        with self._lock:
            self._release(handle, self.base.remove)
            self._retire_superseded()

    def _release(self, handle: Handle, free: Callable[[LinkedResource], None]) -> None:
        state = self._states.pop(handle, None)
        if state is None:
            return
        self.symbols.remove_handle(handle, state.names)
        for shared in state.shared:
            shared.users -= 1
            if shared.users == 0:
                free(shared.resource)

    def _retire_superseded(self) -> None:
        """Hand replaceable sets that no longer define anything current to the
        reclaimer (sets that define data or constructors stay: their storage
        may be referenced directly)."""
        while self._superseded:
            handle = self._superseded.pop()
            state = self._states.get(handle)
            if (state is None or not state.replaceable or state.defines_data
                    or state.structors or self.symbols.current_count(handle)):
                continue
            self._release(handle, lambda r: self.reclaimer.retire(
                lambda: self.base.remove(r)))

    def local_address(self, handle: Handle, name: str) -> int | None:
        """Run-time address of symbol ``name`` (local ones included) in ``handle``'s objects."""
        state = self._states.get(handle)
        if state is None:
            return None
        for obj, bases in state.objects:
            sym = obj.local_symbol(name) or obj.defined_globals().get(name)
            if sym is not None and sym.shndx in bases:
                return bases[sym.shndx] + sym.value
        return None

    def find_symbol(self, name: str) -> int | None:
        return self.symbols.address(name)

    def find_symbol_in(self, handle: Handle, name: str) -> int | None:
        state = self._states.get(handle)
        if state is None or name not in state.exports:
            return None
        cur = self.symbols.current(name)
        if cur is not None and cur.handle is handle:
            return self.symbols.address(name)
        return state.exports[name]

    def structors_of(self, handle: Handle) -> list[tuple[int, structors.Structor, int]]:
        state = self._states.get(handle)
        if state is None:
            return []
        return [(state.order, s, addr) for s, addr in state.structors]

    def is_linked(self, handle: Handle) -> bool:
        return handle in self._states


def _dependencies(plan: _Plan, *, all_kinds: bool) -> set[_Plan]:
    deps = {v for v in plan.needs.values() if isinstance(v, _Plan)}
    if all_kinds:
        deps |= plan.call_deps
    deps.discard(plan)
    return deps


def _link_order(plans: list[_Plan]) -> list[list[_Plan]]:
    """Strongly connected components of the data-dependency graph, providers first
    (Tarjan's algorithm, iterative)."""
    index: dict[_Plan, int] = {}
    low: dict[_Plan, int] = {}
    on_stack: set[_Plan] = set()
    stack: list[_Plan] = []
    order: list[list[_Plan]] = []
    members = set(plans)
    counter = itertools.count()
    for root in plans:
        if root in index:
            continue
        work = [(root, iter(sorted(_dependencies(root, all_kinds=False) & members,
                                   key=plans.index)))]
        index[root] = low[root] = next(counter)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = next(counter)
                    stack.append(child)
                    on_stack.add(child)
                    deps = _dependencies(child, all_kinds=False) & members
                    work.append((child, iter(sorted(deps, key=plans.index))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member is node:
                        break
                order.append(sorted(component, key=plans.index))
    return order
