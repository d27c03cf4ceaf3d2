"""What a TargetMachine is: the arguments it was made with, and what it makes.

llvmlite cannot read a target machine's settings back (CPU, features,
optimisation level, relocation and code model), yet compiling elsewhere (a
worker process, a second machine at another optimisation level) needs a
machine configured the same way. So this module keeps both kinds of machine
facts in one place:

* :class:`TargetSpec`, the arguments of ``Target.create_target_machine``:
  :meth:`TargetSpec.create` makes a machine, :meth:`TargetSpec.describe` is a
  stable text for cache keys, and :func:`spec_of` returns the spec of a machine
  created through ``llvmlite.binding.Target.create_target_machine`` after
  ``execution_engine`` was imported. Importing this module wraps that method
  once; the wrapper calls llvmlite's method with the caller's arguments
  unchanged, returns its result (or lets its exception through) and only then
  notes the arguments on the new machine. A machine created before the import
  (or one whose arguments cannot be reproduced, e.g. an argument a newer
  llvmlite added) has no spec: engines compile its code in process.
* :func:`machine_of`, the ELF machine of its objects, and
  :class:`TargetTraits`, what the machine produces (position-independent code
  or not; small or large code model), found by compiling a probe: LLVM
  resolves ``reloc="default"`` and ``codemodel="jitdefault"`` per target, so
  the spec alone does not say. Probed once per machine (once per spec for
  machines that have one).

Thread-safety: everything here may be called from any thread.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm

from .native import elf

_SPEC_ATTRIBUTE = "_execution_engine_spec"
_TRAITS_ATTRIBUTE = "_execution_engine_traits"
_WRAPPED_MARK = "__execution_engine_original__"

# create_target_machine's parameter -> TargetSpec field
_PARAMETERS = {"cpu": "cpu", "features": "features", "opt": "opt_level", "reloc": "reloc",
               "codemodel": "code_model", "printmc": "printmc", "jit": "jit",
               "abiname": "abiname"}


@dataclass(frozen=True)
class TargetSpec:
    """The arguments of ``llvm.Target.from_triple(triple).create_target_machine``.

    Defaults are llvmlite's. Values are kept as given (``cpu=""`` means LLVM's
    generic CPU for the triple, not the host's): two specs are equal exactly
    when they create machines configured alike.
    """

    triple: str
    cpu: str = ""
    features: str = ""
    opt_level: int = 2
    reloc: str = "default"
    code_model: str = "jitdefault"
    jit: bool = False
    printmc: bool = False
    abiname: str = ""

    @classmethod
    def host(cls, *, opt_level: int = 2, jit: bool = True, reloc: str = "default",
             code_model: str = "jitdefault") -> TargetSpec:
        """The host's triple, CPU name and CPU features."""
        return cls(triple=llvm.get_process_triple(), cpu=llvm.get_host_cpu_name(),
                   features=llvm.get_host_cpu_features().flatten(), opt_level=opt_level,
                   reloc=reloc, code_model=code_model, jit=jit)

    def create(self) -> llvm.TargetMachine:
        """A new target machine (the caller owns it); ``spec_of`` of it is ``self``."""
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(
            cpu=self.cpu, features=self.features, opt=self.opt_level, reloc=self.reloc,
            codemodel=self.code_model, printmc=self.printmc, jit=self.jit, abiname=self.abiname)

    def describe(self) -> str:
        """A stable one-line text naming every field (for cache keys and messages).

        It does not name the LLVM version: a cache key must add it."""
        return (f"triple={self.triple};cpu={self.cpu};features={self.features};"
                f"opt={self.opt_level};reloc={self.reloc};codemodel={self.code_model};"
                f"jit={int(self.jit)};printmc={int(self.printmc)};abi={self.abiname}")

    def replace(self, **changes: Any) -> TargetSpec:
        """This spec with some fields changed (e.g. ``opt_level=3``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> TargetSpec:
        """The spec ``fields`` describes; ``ValueError`` if a field is unknown or mistyped."""
        unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown target spec field(s): {', '.join(sorted(unknown))}")
        try:
            spec = cls(**fields)
        except TypeError as exc:
            raise ValueError(f"bad target spec: {exc}") from None
        for f in dataclasses.fields(cls):
            value = getattr(spec, f.name)
            expected = {"int": int, "bool": bool}.get(str(f.type), str)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ValueError(f"target spec field {f.name!r} has a bad value {value!r}")
        return spec


def spec_of(target_machine: llvm.TargetMachine) -> TargetSpec | None:
    """The spec ``target_machine`` was created with, or None if it is not known
    (created before ``execution_engine`` was imported, or with arguments the
    spec cannot express)."""
    spec = getattr(target_machine, _SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, TargetSpec) else None


# -- recording specs ----------------------------------------------------------------


def _record(tm: object, target: object, bound: inspect.BoundArguments) -> None:
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    arguments.pop(next(iter(bound.signature.parameters)), None)  # self
    fields: dict[str, Any] = {}
    for name, value in arguments.items():
        field_name = _PARAMETERS.get(name)
        if field_name is None:  # a parameter this module does not know
            if value is not bound.signature.parameters[name].default:
                return  # not reproducible: no spec
            continue
        fields[field_name] = value
    triple = getattr(target, "triple", None)
    if not isinstance(triple, str):
        return
    try:
        spec = TargetSpec.from_dict({"triple": triple, **fields})
    except (TypeError, ValueError):
        return
    setattr(tm, _SPEC_ATTRIBUTE, spec)


def _install() -> None:
    """Wrap ``Target.create_target_machine`` once per process (idempotent)."""
    original: Callable[..., Any] = llvm.Target.create_target_machine
    if getattr(original, _WRAPPED_MARK, None) is not None:
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def create_target_machine(self: Any, *args: Any, **kwargs: Any) -> Any:
        tm = original(self, *args, **kwargs)
        try:
            _record(tm, self, signature.bind(self, *args, **kwargs))
        except Exception:  # noqa: BLE001 - noting the spec must never change the call
            pass
        return tm

    setattr(create_target_machine, _WRAPPED_MARK, original)
    llvm.Target.create_target_machine = create_target_machine


_install()


# -- traits: what the machine produces -----------------------------------------------

_PROBE = """
@d = dso_local global i32 0
define dso_local i32 @callee() {
  %v = load i32, ptr @d
  ret i32 %v
}
define dso_local i32 @caller() {
  %r = call i32 @callee()
  ret i32 %r
}
"""


@dataclass(frozen=True)
class TargetTraits:
    """What a machine's code is like: position-independent or not, and its code model."""

    pic: bool
    code_model: str  # "large" or "small"

    def reloc(self) -> str:
        return "pic" if self.pic else "static"


_traits_by_spec: dict[TargetSpec, TargetTraits] = {}
_traits_lock = threading.Lock()


def traits(target_machine: llvm.TargetMachine) -> TargetTraits:
    """Relocation and code model of ``target_machine`` (one small compile, the first
    time for this machine or its spec)."""
    known = getattr(target_machine, _TRAITS_ATTRIBUTE, None)
    if isinstance(known, TargetTraits):
        return known
    spec = spec_of(target_machine)
    with _traits_lock:
        found = _traits_by_spec.get(spec) if spec is not None else None
    if found is None:
        found = _probe(target_machine)
        if spec is not None:
            with _traits_lock:
                _traits_by_spec[spec] = found
    try:
        setattr(target_machine, _TRAITS_ATTRIBUTE, found)
    except AttributeError:
        pass
    return found


def machine_of(target_machine: llvm.TargetMachine) -> int:
    """The ELF machine (``e_machine``) of the objects ``target_machine`` emits."""
    arch = target_machine.triple.split("-", 1)[0]
    return elf.EM_AARCH64 if arch in ("aarch64", "arm64") else elf.EM_X86_64


def _probe(target_machine: llvm.TargetMachine) -> TargetTraits:
    module = llvm.parse_assembly(_PROBE)
    try:
        module.triple = target_machine.triple
        module.data_layout = str(target_machine.target_data)
        obj = elf.ObjectFile(target_machine.emit_object(module),
                             machine=machine_of(target_machine))
    finally:
        module.close()
    large = ".ltext" in {s.name for s in obj.sections}
    # Static code refers to 'callee' by symbol; PIC code through a local alias.
    symbolic = any(
        obj.symbols[sym].name == "callee"
        for rela in obj.sections if rela.type == elf.SHT_RELA
        for sym in _relocation_symbols(obj, rela)
    )
    return TargetTraits(pic=not symbolic, code_model="large" if large else "small")


def _relocation_symbols(obj: elf.ObjectFile, rela: elf.Section) -> list[int]:
    words = memoryview(obj.data[rela.offset: rela.offset + rela.size]).cast("Q")
    return [words[k + 1] >> 32 for k in range(0, len(words), 3)]


def with_opt_level(target_machine: llvm.TargetMachine, t: TargetTraits,
                   opt_level: int) -> llvm.TargetMachine:
    """A new machine like ``target_machine`` at ``opt_level`` (the caller owns it).

    With a known spec it differs from ``target_machine`` only in its level;
    otherwise it is a JIT machine for the host CPU with traits ``t``."""
    spec = spec_of(target_machine)
    if spec is not None:
        return spec.replace(opt_level=opt_level).create()
    return llvm.Target.from_triple(target_machine.triple).create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
        opt=opt_level, reloc=t.reloc(), codemodel=t.code_model, jit=True)
