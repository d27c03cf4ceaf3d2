"""Planning one link batch: what each object's symbol table becomes, which
definition of each name wins, what every import resolves to, and in which
order the objects are linked.

The RedirectionLayer applies a plan; this module decides it (pure
bookkeeping over ELF symbol tables and the engine's symbol table, no
linking). Import resolution order: global mappings, the batch's own
winners, the engine's current definitions, names only a lazy set defines
(the pending resolver), the executor's process; weak references nobody
defines resolve to 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import DuplicateSymbolError
from ..ir.call_sites import SLOT_SUFFIX
from ..layers.base import AddOptions, Handle
from ..layers.object_linking import LinkedResource
from ..native import elf
from ..policies import RedirectionPolicy
from . import structors
from .relink import LINKER_DEFINED
from .symbols import SymbolTable, conflicts, winner

_EMPTY: frozenset = frozenset()


def _add(items: set | frozenset, item: object) -> set:
    """``items`` with ``item`` added: a set of its own once one is needed."""
    if not isinstance(items, set):
        items = set(items)
    items.add(item)
    return items


@dataclass(eq=False)
class ObjectUnit:
    """One object to link for ``handle``, added with ``options``; ``direct``:
    functions it defines that its own code may call directly (the policy's
    :meth:`~..policies.RedirectionPolicy.direct_callees`)."""

    handle: Handle
    obj: elf.ObjectFile
    options: AddOptions
    direct: frozenset[str] = frozenset()


@dataclass(eq=False)
class Plan:
    unit: ObjectUnit
    uid: int
    rename: dict[str, str] = field(default_factory=dict)
    undefine: set[str] = field(default_factory=set)
    # Sets most plans leave empty start as one shared empty frozenset (an
    # empty set is 216 bytes, and a big batch has a plan per object): grown
    # with _add.
    direct: set[str] | frozenset[str] = _EMPTY  # functions its own calls reach directly
    exports: list[str] = field(default_factory=list)
    definitions: list[tuple[str, str, bool, bool]] = field(default_factory=list)
    structors: list[structors.Structor] = field(default_factory=list)
    aliases: dict[str, tuple[int, int]] = field(default_factory=dict)
    section_aliases: dict[str, int] = field(default_factory=dict)  # alias -> section index
    reinit: list[tuple[str, str, int]] = field(default_factory=list)  # name, initial copy, size
    absent: set[str] | frozenset[str] = _EMPTY  # weak references nobody defines: 0
    needs: dict[str, int | Plan] = field(default_factory=dict)  # address, or provider in batch
    call_deps: set[Plan] | frozenset[Plan] = _EMPTY  # providers reached through stubs
    missing: list[str] = field(default_factory=list)
    addresses: dict[str, int] = field(default_factory=dict)
    resource: LinkedResource | None = None  # where it was linked (for observers)
    imports: dict[str, int] = field(default_factory=dict)  # what its link imported


class LinkPlanner:
    """Plans batches for one engine (see the module docstring). Not thread-safe:
    the RedirectionLayer calls it under its lock."""

    def __init__(self, symbols: SymbolTable, policy: RedirectionPolicy,
                 resolve_mapping: Callable[[str], int | None],
                 resolve_process: Callable[[str], int | None]):
        self.symbols = symbols
        self.policy = policy
        self._resolve_mapping = resolve_mapping
        self._resolve_process = resolve_process
        self.resolve_pending: Callable[[str], int | None] = lambda name: None
        self.uids = itertools.count(1)  # unique suffixes of new names

    def plan_batch(self, units: list[ObjectUnit]) -> tuple[list[Plan],
                                                           dict[Plan, DuplicateSymbolError]]:
        """Plans for ``units`` with their imports resolved, and the units strict
        mode refuses (they are not among the plans)."""
        batch_data: dict[str, Plan] = {}
        plans = [self._plan(u, batch_data) for u in units]
        refused = self._check_strict(plans)
        plans = [p for p in plans if p not in refused]
        winners = self._batch_winners(plans)
        for plan in plans:
            self._keep_direct(plan, winners)
            self._resolve_imports(plan, winners)
        return plans, refused

    def _plan(self, unit: ObjectUnit, batch_data: dict[str, Plan]) -> Plan:
        """Decide the symbol-table edits for ``unit``; ``batch_data`` holds the
        data definitions of earlier units of the same batch (updated here)."""
        plan = Plan(unit, next(self.uids))
        obj = unit.obj
        for name, sym in obj.defined_globals().items():
            if sym.is_function and self.policy.redirects:
                body = f"{name}.__body{plan.uid}"
                plan.rename[name] = body
                if self.policy.direct_calls and name in unit.direct:
                    plan.direct = _add(plan.direct, name)  # renamed in place: reaches the body
                else:
                    plan.undefine.add(name)
                plan.exports.append(body)
                plan.definitions.append((name, body, True, sym.is_weak))
                continue
            existing = self.symbols.current(name)
            exists = (existing is not None and existing.handle is not unit.handle) or (
                name in batch_data and batch_data[name].unit.handle is not unit.handle)
            shared = exists and (sym.is_weak or unit.options.keep_existing_data)
            if not shared:
                batch_data.setdefault(name, plan)
            if shared and unit.options.reinitialize_data and not sym.is_weak and sym.size:
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

    def _check_strict(self, plans: list[Plan]) -> dict[Plan, DuplicateSymbolError]:
        """Strict mode: the units that define again a strong symbol (linked, or
        defined by an earlier unit of the batch), each with its error. They are
        not linked; the others are."""
        refused: dict[Plan, DuplicateSymbolError] = {}
        if not self.symbols.strict:
            return refused
        seen: dict[str, Plan] = {}
        for p in plans:
            origin = p.unit.handle.name
            try:
                for name, _, _, weak in p.definitions:
                    self.symbols.check_name(name, weak, origin, p.unit.handle)
                    if name in seen and conflicts(False, weak):
                        raise DuplicateSymbolError(name, seen[name].unit.handle.name, origin)
            except DuplicateSymbolError as exc:
                refused[p] = exc
                continue
            seen.update((name, p) for name, _, _, weak in p.definitions if not weak)
        return refused

    def _keep_direct(self, plan: Plan, winners: dict[str, tuple[Plan, bool]]) -> None:
        """Calls of ``plan``'s object to a function it defines stay direct only
        if that definition becomes current (it wins the batch, and is strong
        or the first) and no global mapping redirects the name; the others go
        through the stub like any reference."""
        if not plan.direct:
            return
        assert isinstance(plan.direct, set)
        weak = {name: w for name, _, _, w in plan.definitions}
        for name in list(plan.direct):
            existing = self.symbols.current(name)
            if (winners.get(name, (None,))[0] is not plan
                    or (weak[name] and existing is not None
                        and existing.handle is not plan.unit.handle)
                    or self._resolve_mapping(name) is not None):
                plan.direct.discard(name)
                plan.undefine.add(name)

    @staticmethod
    def _batch_winners(plans: list[Plan]) -> dict[str, tuple[Plan, bool]]:
        """Which plan's definition of each name is current once the batch is in."""
        candidates: dict[str, list[tuple[bool, tuple[Plan, bool]]]] = {}
        for plan in plans:
            for name, _, is_fn, weak in plan.definitions:
                candidates.setdefault(name, []).append((weak, (plan, is_fn)))
        return {name: winner(c) for name, c in candidates.items()}  # type: ignore[misc]

    def _resolve_imports(self, plan: Plan, winners: dict[str, tuple[Plan, bool]]) -> None:
        obj = plan.unit.obj
        wanted = {n: s.is_weak for n, s in obj.undefined_globals().items()}
        wanted.update({n: False for n in plan.undefine})
        for name, weak_ref in wanted.items():
            if name in LINKER_DEFINED:
                continue
            if name.endswith(SLOT_SUFFIX) and self.policy.slot_calls:
                plan.needs[name] = self.symbols.stub(name[: -len(SLOT_SUFFIX)]).slot
                continue
            address = self._resolve_mapping(name)  # global mappings win over everything
            if address is not None:
                plan.needs[name] = address
                continue
            winner = winners.get(name)
            if winner is not None and winner[0] is not plan:
                provider, is_fn = winner
                if is_fn and self.policy.redirects:
                    plan.needs[name] = self.symbols.stub(name).address
                    plan.call_deps = _add(plan.call_deps, provider)
                else:
                    plan.needs[name] = provider
                continue
            if winner is not None:  # our own definition (e.g. renamed body)
                if self.policy.redirects and winner[1]:
                    plan.needs[name] = self.symbols.stub(name).address
                continue
            address = self._engine_address(name)
            if address is None:
                address = self.resolve_pending(name)
            if address is None:
                address = self._resolve_process(name)
            if address is None:
                if weak_ref:
                    plan.absent = _add(plan.absent, name)
                else:
                    plan.missing.append(name)
                continue
            plan.needs[name] = address

    def _engine_address(self, name: str) -> int | None:
        cur = self.symbols.current(name)
        if cur is None:
            return None
        if cur.is_function and self.policy.redirects:
            return self.symbols.stub(name).address
        return cur.address

    @staticmethod
    def failures(plans: list[Plan]) -> set[Plan]:
        """Units with missing symbols and every unit that needs one of them."""
        failed = {p for p in plans if p.missing}
        changed = True
        while changed:
            changed = False
            for p in plans:
                if p not in failed and any(d in failed for d in dependencies(p, all_kinds=True)):
                    failed.add(p)
                    changed = True
        return failed

def dependencies(plan: Plan, *, all_kinds: bool) -> set[Plan]:
    deps = {v for v in plan.needs.values() if isinstance(v, Plan)}
    if all_kinds:
        deps |= plan.call_deps
    deps.discard(plan)
    return deps


# Independent objects of one batch linked as one resource (``pack``): at most
# this many, with at most this much allocatable memory together. A removed set
# of a pack keeps its memory until the pack's last set is removed, so the caps
# bound what a removal can leave behind.
PACK_OBJECTS = 64
PACK_BYTES = 256 << 10
# Smaller batches (numba's add-then-finalize, a REPL's) are linked set by set,
# so that removing one of them frees its memory at once.
PACK_MIN_GROUPS = 8


def _packable(plan: Plan) -> bool:
    """A set that stays until it is removed (not a replaceable body or update)."""
    return not plan.unit.options.replaceable


def pack(groups: list[list[Plan]]) -> list[list[list[Plan]]]:
    """``groups`` (from :func:`link_order`, in order) gathered into links:
    consecutive groups of sets that are not replaceable share one link (one
    resource, its objects merged into one where :mod:`..native.elf_merge`
    can), up to :data:`PACK_OBJECTS` objects and :data:`PACK_BYTES` bytes,
    as long as no name is exported twice; a batch of fewer than
    :data:`PACK_MIN_GROUPS` groups is not packed. A small object linked alone costs
    about 48 KB; one of 64 merged, about 1.5 KB. Each link is returned as its
    groups, so a failed link can be retried group by group."""
    if len(groups) < PACK_MIN_GROUPS:
        return [[group] for group in groups]
    links: list[list[list[Plan]]] = []
    names: set[str] = set()
    size = count = 0
    for group in groups:
        exports = {n for p in group for n in p.exports}
        group_size = sum(p.unit.obj.allocated_size for p in group)
        if (links and all(_packable(p) for p in group) and all(
                _packable(p) for p in links[-1][0]) and count + len(group) <= PACK_OBJECTS
                and size + group_size <= PACK_BYTES and names.isdisjoint(exports)):
            links[-1].append(group)
            names |= exports
            size += group_size
            count += len(group)
            continue
        links.append([group])
        names, size, count = exports, group_size, len(group)
    return links


def link_order(plans: list[Plan]) -> list[list[Plan]]:
    """Strongly connected components of the data-dependency graph, providers first
    (Tarjan's algorithm, iterative)."""
    index: dict[Plan, int] = {}
    low: dict[Plan, int] = {}
    on_stack: set[Plan] = set()
    stack: list[Plan] = []
    order: list[list[Plan]] = []
    members = set(plans)
    counter = itertools.count()
    for root in plans:
        if root in index:
            continue
        work = [(root, iter(sorted(dependencies(root, all_kinds=False) & members,
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
                    deps = dependencies(child, all_kinds=False) & members
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
