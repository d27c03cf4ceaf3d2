"""RedirectionLayer: objects in, functions behind stubs, linked below.

For each object handed down, before it reaches the ObjectLinkingLayer:

* every function it defines (redirecting policies) is split into a body, renamed
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

Under ``DIRECT`` (the default) an object's calls to the functions it defines
and calls only (the compile layer names them) stay bound to the bodies,
as MCJIT binds them; everything else is as under ``STUB``. When one of
those definitions stops being current, the layer links the object again
with every call through stubs and moves its definitions to the new copy
(:mod:`..linking.relink`), once. Under ``SINGLE`` an IRTransformLayer has
also rewritten calls to load the callee from its slot (``f.__slot``
imports resolve to slots, see :mod:`..ir.call_sites`). Under ``NONE``
functions are linked exactly as MCJIT links them (no stub, callers bound
to the body) and cannot be swapped.

What the edits are is decided by :mod:`..linking.link_plan`; this layer
applies them, links, publishes definitions and frees.

Objects of one batch that need each other's *data* are linked after their
providers; objects that need each other's data in a cycle are linked
together as one resource, freed when all of their handles are removed.
Independent sets of a big batch (8 or more) that are not replaceable are
packed into links of up to 64 objects, merged into one object where possible
(:func:`..linking.link_plan.pack`, :mod:`..native.elf_merge`): each link
costs memory pages and bookkeeping of its own, and a pack is freed when
its last set is removed (a removed set's symbols are undefined at once).

Thread-safety: the layer's lock serialises every method.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..errors import LinkError, UnresolvedSymbolError
from ..ir.linkage import shared_prefix
from ..linking import structors
from ..linking.link_plan import LinkPlanner, ObjectUnit, Plan, dependencies, link_order, pack
from ..linking.reclaim import Reclaimer
from ..linking.relink import DirectLink, plan_relink
from ..linking.symbols import Definition, SymbolTable
from ..native import elf, elf_merge, elf_rewrite
from ..policies import STUB, RedirectionPolicy
from .base import DEFAULT, AddOptions, Handle

if TYPE_CHECKING:
    from ..executors.base import Linker
from .object_linking import LinkedResource

# A pack's objects are linked side by side in one library (about 15 KB each
# instead of 48 KB alone). Merging them into one object (elf_merge, 1.5 KB
# each) is off: Lua 5.4's 33 modules linked merged crash at run time, for a
# reason not found yet (compat_tests/test_real_programs.py catches it).
MERGE_PACKS = False


class LinkObserver(Protocol):
    """Told what the layer links and frees (the engine's event source).

    Called with the layer's lock held: it must only take note (queue events),
    never call back into the engine."""

    def linked(self, resource: LinkedResource, handle: Handle, obj: elf.ObjectFile,
               section_bases: dict[int, int], stubs: list[tuple[str, int]],
               swapped: list[tuple[str, int, int]]) -> None:
        """``obj`` of set ``handle`` is in memory; ``stubs``: (name, stub
        address) of its functions; ``swapped``: (name, old body, new body)."""

    def freed(self, resource: LinkedResource) -> None:
        """``resource``'s memory was unmapped."""


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
    direct: list[DirectLink] = field(default_factory=list)  # linked with direct calls


class RedirectionLayer:
    """Rewrites objects so functions are reached through stubs, then links them."""

    def __init__(
        self,
        base: Linker,
        symbols: SymbolTable,
        resolve_mapping: Callable[[str], int | None],
        resolve_process: Callable[[str], int | None],
        *,
        policy: RedirectionPolicy = STUB,
        reclaimer: Reclaimer | None = None,
    ):
        self.base = base
        self.symbols = symbols
        self.policy = policy
        self.planner = LinkPlanner(symbols, policy, resolve_mapping, resolve_process)
        self._lock = threading.RLock()
        self._pending: dict[Handle, list[ObjectUnit]] = {}
        self._states: dict[Handle, _HandleState] = {}
        self._order = itertools.count()
        self.reclaimer = reclaimer if reclaimer is not None else Reclaimer()
        self._superseded: list[Handle] = []
        symbols.set_superseded_listener(self._superseded.append)
        # on_retired(handle): a replaceable set was superseded and handed to the
        # reclaimer (called under the layer's lock; it must not link).
        self.on_retired: Callable[[Handle], None] | None = None
        self.observer: LinkObserver | None = None
        self._to_relink: set[Handle] = set()  # direct sets a batch superseded a callee of
        # Direct sets superseded entirely but kept (added, or holding data): linked
        # again only if one of their definitions becomes current again.
        self._dormant: set[Handle] = set()
        self.relinks = 0  # how many objects were linked again through stubs

    def set_pending_resolver(self, resolve: Callable[[str], int | None]) -> None:
        """``resolve(name)`` answers for names defined by sets added above this
        layer but not linked yet (lazy compilation); consulted after the engine's
        linked definitions and before the process."""
        self.planner.resolve_pending = resolve

    # -- adding --------------------------------------------------------------

    def add(self, handle: Handle, obj: elf.ObjectFile, options: AddOptions = DEFAULT, *,
            direct: frozenset[str] = frozenset()) -> Handle:
        """Queue ``obj`` (validated) for ``handle``; a handle may queue several.
        ``direct``: functions ``obj`` defines whose references in it are all
        calls (bound directly under a policy with ``direct_calls``)."""
        with self._lock:
            self._pending.setdefault(handle, []).append(ObjectUnit(handle, obj, options, direct))
        return handle

    def emit(self, handles: Iterable[Handle] | None = None) -> None:
        """Link the queued objects of ``handles`` (all if ``None``) as one batch;
        on return their definitions are current.

        Sets whose references cannot all be resolved (or that need such a
        set) stay queued; after linking the others this raises
        :class:`UnresolvedSymbolError` naming them and what they miss.
        """
        with self._lock:
            chosen = list(self._pending) if handles is None else [
                h for h in dict.fromkeys(handles) if h in self._pending]
            if not chosen:
                return
            units = [u for h in chosen for u in self._pending[h]]
            try:
                self._link_batch(units)
            finally:
                for handle in chosen:
                    if handle in self._states:
                        del self._pending[handle]

    def is_pending(self, handle: Handle) -> bool:
        return handle in self._pending

    def pending(self) -> list[Handle]:
        with self._lock:
            return list(self._pending)

    def _link_batch(self, units: list[ObjectUnit]) -> None:
        plans, refused = self.planner.plan_batch(units)
        failed = self.planner.failures(plans)
        link_errors: list[Exception] = []
        linked: list[Plan] = []
        for packed in pack(link_order([p for p in plans if p not in failed])):
            groups = [g for g in packed if not any(
                d in failed for p in g for d in dependencies(p, all_kinds=True))]
            for g in packed:
                if g not in groups:
                    failed.update(g)
            if len(groups) > 1:
                together = [p for g in groups for p in g]
                try:
                    self._link(together)
                except Exception:  # noqa: BLE001 - linked group by group below, to say which
                    pass
                else:
                    linked.extend(together)
                    continue
            for group in groups:
                if any(d in failed for p in group for d in dependencies(p, all_kinds=True)):
                    failed.update(group)
                    continue
                try:
                    self._link(group)
                except Exception as exc:  # noqa: BLE001 - reported after the good ones are in
                    link_errors.append(exc)
                    failed.update(group)
                    continue
                linked.extend(group)
        position = {plan: n for n, plan in enumerate(plans)}
        linked.sort(key=position.__getitem__)
        for plan in linked:
            self._publish(plan)
        for plan in linked:
            self._resolve_structors(plan)
            plan.unit.obj.compact()  # kept for relinks and local addresses: bytes suffice
        relink_error = self._relink_superseded()
        self._retire_superseded()
        missing = {p.unit.handle.name: p.missing for p in plans if p.missing}
        if refused:
            raise next(iter(refused.values()))
        if missing:
            raise UnresolvedSymbolError(missing)
        if link_errors:
            raise link_errors[0]
        if relink_error is not None:
            raise relink_error

    def _link(self, group: list[Plan]) -> None:
        inside = set(group)
        imports: dict[str, int] = {}
        for plan in group:
            for name, value in plan.needs.items():
                if isinstance(value, Plan):
                    if value in inside:
                        continue
                    value = value.addresses[name]
                imports[name] = value
        # Strong data defined twice inside one group: the later definition wins,
        # the earlier one keeps its storage under a private name (as MCJIT does).
        owner: dict[str, Plan] = {}
        for plan in group:
            for name in list(plan.exports):
                earlier = owner.get(name)
                if earlier is not None:
                    shadow = f"{name}.__shadowed{earlier.uid}"
                    earlier.rename[name] = shadow
                    earlier.exports[earlier.exports.index(name)] = shadow
                    earlier.definitions = [d for d in earlier.definitions if d[0] != name]
                owner[name] = plan
        near: int | None = None
        for plan in group:
            if plan.unit.obj.near_imports:
                near = self.base.near_address() if near is None else near
                error = elf.reach_error(plan.unit.obj, imports, near)
                if error is not None:
                    raise LinkError(error)
        exports = [n for p in group for n in p.exports]
        blobs = [
            elf_rewrite.rewrite(p.unit.obj, undefine=p.undefine, rename=p.rename, aliases=p.aliases,
                        absolute=dict.fromkeys(p.absent, 0))
            for p in group
        ]
        if len(blobs) > 1 and MERGE_PACKS:
            merged = elf_merge.merge(blobs)
            if merged is not None:
                blobs = [merged]
        resource = self.base.add(blobs, imports, exports,
                                 name=" + ".join(p.unit.handle.name for p in group))
        shared = _Shared(resource, len(group))
        for plan in group:
            plan.addresses = {n: resource.exports[n] for n in plan.exports}
            plan.resource = resource
            plan.imports = imports
            self._state(plan.unit.handle).shared.append(shared)

    def _publish(self, plan: Plan) -> None:
        handle = plan.unit.handle
        state = self._state(handle)
        state.replaceable = plan.unit.options.replaceable
        bases = {index: plan.addresses[alias] for alias, index in plan.section_aliases.items()}
        state.objects.append((plan.unit.obj, bases))
        if plan.direct:
            state.direct.append(_direct_link(plan, bases))
        observer = self.observer
        stubs: list[tuple[str, int]] = []
        swapped: list[tuple[str, int, int]] = []
        for name, exported, is_fn, weak in plan.definitions:
            address = plan.addresses[exported]
            if is_fn and self.policy.redirects:
                stub = self.symbols.stub(name)
                if observer is not None:
                    old = self.symbols.current(name)
                    stubs.append((name, stub.address))
                    if old is not None and old.is_function and old.address != address:
                        swapped.append((name, old.address, address))
            if is_fn and not weak:
                self._note_superseding(name, handle)
            self.symbols.define(Definition(name, handle, address, is_fn, weak, handle.name))
            state.defines_data |= not is_fn
            state.names.append(name)
            state.exports[name] = address
        for name, initial, size in plan.reinit:
            self.base.copy(plan.needs[name], plan.addresses[initial], size)  # type: ignore[arg-type]
        if observer is not None and plan.resource is not None:
            swapped = [s for s in swapped if getattr(self.symbols.current(s[0]), "handle",
                                                     None) is handle]
            observer.linked(plan.resource, handle, plan.unit.obj, state.objects[-1][1], stubs,
                            swapped)

    # -- direct calls: linking an object again through stubs ----------------------

    def _note_superseding(self, name: str, handle: Handle) -> None:
        """A strong definition of ``name`` by ``handle`` becomes current: a set
        whose own calls reach the definition it replaces directly must be
        linked again (after the batch is published)."""
        current = self.symbols.current(name)
        if current is None or current.handle is handle:
            return
        state = self._states.get(current.handle)
        if state is not None and any(name in d.direct for d in state.direct):
            self._to_relink.add(current.handle)

    def _relink_superseded(self) -> Exception | None:
        """Link again every direct set this batch superseded a callee of and
        that keeps a current definition. A set with nothing current left
        cannot be entered: it is freed (replaceable) or waits, dormant, until
        a removal makes one of its definitions current again (numba defines
        whole modules again; most never come back). Returns the first
        failure, to be raised after the batch is in."""
        error: Exception | None = None
        while self._to_relink:
            handle = self._to_relink.pop()
            state = self._states.get(handle)
            if state is None or self._retirable(handle, state):
                continue
            if not self.symbols.current_count(handle):
                self._dormant.add(handle)
                continue
            try:
                self._relink(handle, state)
            except Exception as exc:  # noqa: BLE001 - raised once the batch is published
                error = error or exc
        return error

    def _wake_dormant(self) -> None:
        """After a removal: dormant direct sets that are current again go through
        stubs before anything can call them."""
        for handle in [h for h in self._dormant if self.symbols.current_count(h)]:
            self._dormant.discard(handle)
            state = self._states.get(handle)
            if state is None:
                continue
            elsewhere = [n for d in state.direct for n in d.direct
                         if getattr(self.symbols.current(n), "handle", None) is not handle]
            if elsewhere:  # else it is whole again: its direct calls are right
                self._relink(handle, state)

    def release_direct(self, names: Iterable[str]) -> None:
        """Callers must stop reaching the current bodies of ``names`` directly
        (a lazy update is about to point their stubs elsewhere): link again
        the sets that call them directly and keep something else current."""
        with self._lock:
            names = set(names)
            owners: dict[Handle, _HandleState] = {}
            for name in names:
                current = self.symbols.current(name)
                if current is None:
                    continue
                state = self._states.get(current.handle)
                if state is not None and any(name in d.direct for d in state.direct):
                    owners[current.handle] = state
            for handle, state in owners.items():
                still = [n for n in state.names if n not in names
                         and getattr(self.symbols.current(n), "handle", None) is handle]
                if still:
                    self._relink(handle, state)

    def detach(self, handle: Handle) -> None:
        """Link set ``handle`` again through stubs now if its calls are direct
        (before code that will call its local functions is linked)."""
        with self._lock:
            state = self._states.get(handle)
            if state is not None and state.direct:
                self._relink(handle, state)

    def is_direct(self, handle: Handle) -> bool:
        """Whether some of ``handle``'s calls are bound directly (not linked again yet)."""
        state = self._states.get(handle)
        return state is not None and bool(state.direct)

    def _relink(self, handle: Handle, state: _HandleState) -> None:
        """Link each direct object of ``handle`` again with every call through
        stubs; move the set's function definitions to the new copy. The first
        copy stays (its data is shared; threads may be running in it)."""
        while state.direct:
            link = state.direct[0]
            uid = next(self.planner.uids)
            again = plan_relink(link, uid, lambda n: self.symbols.stub(n).address)
            if again.obj.near_imports:
                error = elf.reach_error(again.obj, again.imports, self.base.near_address())
                if error is not None:
                    raise LinkError(error)
            resource = self.base.add([again.obj.data], again.imports, again.exports,
                                     name=f"{handle.name} (linked again through stubs)")
            state.direct.pop(0)
            state.shared.append(_Shared(resource, 1))
            bases = {index: resource.exports[alias] for alias, index in again.sections.items()}
            # The object as compiled, with the new copy's sections (the copy's
            # indices are the same): names as written, data in the first copy.
            state.objects.append((link.obj, bases))
            stubs = []
            for name, body in again.bodies.items():
                address = resource.exports[body]
                if name in state.exports and self.symbols.move(handle, name, address):
                    state.exports[name] = address
                    stubs.append((name, self.symbols.stub(name).address))
            self.relinks += 1
            if self.observer is not None:
                self.observer.linked(resource, handle, link.obj, bases, stubs, [])

    def _resolve_structors(self, plan: Plan) -> None:
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
            self._pending.pop(handle, None)
            self._release(handle, self._free)
            if self._dormant:
                self._wake_dormant()
            self._retire_superseded()

    def _release(self, handle: Handle, free: Callable[[LinkedResource], None]) -> None:
        state = self._states.pop(handle, None)
        if state is None:
            return
        self._dormant.discard(handle)
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
            if state is None or not self._retirable(handle, state):
                continue
            self._release(handle, lambda r: self.reclaimer.retire(
                lambda: self._free(r)))
            if self.on_retired is not None:
                self.on_retired(handle)

    def _retirable(self, handle: Handle, state: _HandleState) -> bool:
        """Whether a superseded set is freed (under the reclamation rule)."""
        return (state.replaceable and not state.defines_data and not state.structors
                and not self.symbols.current_count(handle))

    def _free(self, resource: LinkedResource) -> None:
        self.base.remove(resource)
        if self.observer is not None:
            self.observer.freed(resource)

    def local_address(self, handle: Handle, name: str) -> int | None:
        """Run-time address of symbol ``name`` (local ones included) in ``handle``'s
        objects; a local the compile service promoted (the module was cut into
        partitions) is found under its shared name."""
        state = self._states.get(handle)
        if state is None:
            return None
        promoted = shared_prefix(handle.id) + ("anon." + name if name.isdigit() else name)
        for obj, bases in reversed(state.objects):  # a copy linked again first
            defined = obj.defined_globals()
            sym = obj.local_symbol(name) or defined.get(name) or defined.get(promoted)
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

    def linked_count(self) -> int:
        """How many sets are linked now."""
        return len(self._states)


def _direct_link(plan: Plan, bases: dict[int, int]) -> DirectLink:
    """What linking ``plan``'s object again needs: what each of its names was
    bound to (imports, and its own variables' storage)."""
    resource = plan.resource
    resolved: dict[str, int] = {}
    for name in plan.needs:
        address = plan.imports.get(name)
        if address is None and resource is not None:
            address = resource.exports.get(name)  # a provider linked in the same group
        if address is not None:
            resolved[name] = address
    for name, sym in plan.unit.obj.defined_globals().items():
        if not sym.is_function and name not in plan.undefine:
            resolved[name] = plan.addresses[plan.rename.get(name, name)]
    return DirectLink(plan.unit.obj, frozenset(plan.direct), bases, resolved,
                      frozenset(plan.absent))
