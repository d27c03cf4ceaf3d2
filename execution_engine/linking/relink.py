"""Re-linking an object whose calls were bound directly (the ``DIRECT`` policy).

Under ``redirection="direct"`` an object's calls to the functions it
defines itself reach their bodies directly, as under MCJIT (the link plan
leaves those definitions in place instead of turning them into references
to stubs). That is only right while each of those definitions is the
current one. The first time one of them is replaced (``update_module``,
``recompile_and_relink_function``, a later module defining the name again,
a lazy update), the RedirectionLayer links the object **again**, from the
bytes it was compiled to, the way the ``STUB`` policy would have linked it:

* every function the object defines becomes a reference to its stub (the
  new copy's calls go through stubs) and a body of its own, which the
  object's current definitions move to (their stubs are re-pointed);
* every global variable becomes a reference to the storage the first copy
  linked (live state stays where it is, for everybody);
* the first copy's writable sections (``.data``, ``.bss``, constructor
  tables: everything allocatable and writable but code and unwind tables)
  are not loaded again: relocations that reached them through local
  symbols (internal variables) reach the first copy's memory instead
  (:func:`..native.elf_rewrite.rewrite` with ``shared``). Code, read-only
  data (jump tables, constants) and unwind tables are copied.

The first copy stays in memory until its module set is removed: it holds
the data, and threads running in it keep running in it until they return
out of it (a loop in it keeps calling the bodies of the first copy). No
address of the first copy's bodies exists outside it: an object's functions
are bound directly only if all their references are calls (see
:meth:`~..policies.RedirectionPolicy.direct_callees`), and code that could
be entered by address (a local function whose address is taken) disables
direct calls for the whole object.

This module decides the edits (pure bookkeeping); the RedirectionLayer
links and publishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import LinkError
from ..native import elf, elf_rewrite

# Names the linker itself defines for the object being linked.
LINKER_DEFINED = frozenset({"_GLOBAL_OFFSET_TABLE_"})


@dataclass(eq=False)
class DirectLink:
    """An object linked with direct calls, and what linking it again needs.

    ``obj`` is the object as compiled (before the link's symbol-table
    edits); ``direct`` the functions its own code calls directly; ``bases``
    each allocatable section's address in the first copy; ``resolved``
    what every global name the object refers to or defines as data was
    bound to; ``absent`` the weak references bound to 0."""

    obj: elf.ObjectFile
    direct: frozenset[str]
    bases: dict[int, int]
    resolved: dict[str, int] = field(default_factory=dict)
    absent: frozenset[str] = frozenset()


@dataclass(eq=False)
class Relink:
    """What to link for the second copy: ``data`` (rewritten bytes, validated
    as ``obj``), ``imports``, ``exports``; ``bodies`` maps each function the
    object defines to its body's export name, ``sections`` each alias export
    to the section index it marks."""

    obj: elf.ObjectFile
    imports: dict[str, int]
    exports: list[str]
    bodies: dict[str, str]
    sections: dict[str, int]


def shared_sections(obj: elf.ObjectFile, bases: dict[int, int]) -> list[int]:
    """The sections a second copy of ``obj`` uses from the first: allocatable
    and writable, not code, not unwind tables, and in memory."""
    return [s.index for s in obj.sections
            if s.flags & elf.SHF_ALLOC and s.flags & elf.SHF_WRITE
            and not s.flags & elf.SHF_EXECINSTR and s.name != ".eh_frame"
            and s.index in bases]


def plan_relink(link: DirectLink, uid: int, stub: Callable[[str], int]) -> Relink:
    """The second copy of ``link.obj`` with every call through stubs (``stub(name)``
    is the stub's address); ``uid`` makes its new names unique. Raises
    :class:`LinkError` if a reference of the first link is not known."""
    obj = link.obj
    shared = {index: f"__ee.shared{uid}.{index}" for index in shared_sections(obj, link.bases)}
    defined = obj.defined_globals()
    bodies = {name: f"{name}.__body{uid}" for name, sym in defined.items() if sym.is_function}
    sections = {f"__ee.section{uid}.{s.index}": s.index for s in obj.sections
                if s.flags & elf.SHF_ALLOC and s.size and s.index not in shared}
    imports: dict[str, int] = {alias: link.bases[index] for index, alias in shared.items()}
    for name in bodies:
        imports[name] = stub(name)
    unknown = []
    for name in (*obj.undefined_globals(), *(n for n in defined if n not in bodies)):
        if name in LINKER_DEFINED or name in link.absent:
            continue
        if name in link.resolved:
            imports[name] = link.resolved[name]
        else:
            unknown.append(name)
    if unknown:
        raise LinkError(f"cannot link {obj.name} again through stubs: no address is known "
                        f"for {', '.join(sorted(unknown))}")
    data = elf_rewrite.rewrite(
        obj, undefine=defined, rename=bodies,
        aliases={alias: (index, 0) for alias, index in sections.items()},
        absolute=dict.fromkeys(link.absent, 0), shared=shared)
    copy = elf.ObjectFile(data, machine=obj.machine, name=f"{obj.name} (linked again)")
    return Relink(copy, imports, [*bodies.values(), *sections], bodies, sections)
