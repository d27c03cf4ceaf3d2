"""Function signatures for calls from Python: what ``engine.call`` marshals.

A :class:`Signature` is parsed from a function's IR type (the text of
``str(value.global_value_type)``, e.g. ``i32 (float, ptr, i8, ...)``) and
holds only what can cross from Python to native code and back:

* integers ``i1`` to ``i64``. Arguments accept the signed and the unsigned
  range of their width (``i8``: -128..255), so both readings of the bits can
  be written; a value outside it raises ``OverflowError``. Results are read
  as **signed** two's complement of their width (an ``i32`` holding -3 is
  -3, an ``i8`` holding 255 is -1; mask with ``& 0xFF`` for the unsigned
  reading), except ``i1``, which is 0 or 1;
* ``float`` and ``double`` (Python ``float``; an ``int`` argument is
  converted, as Python's math functions do);
* pointers, in any address space (an ``int`` address, or ``None`` for null;
  results are the unsigned address);
* ``void`` results (``None``);
* varargs: arguments after the fixed ones are passed by C's default
  promotions (``int`` as ``i64``, ``float`` as ``double``).

Everything else - structs, arrays and vectors by value, integers wider than
64 bits, ``half``/``x86_fp80``/``fp128``, ``byval``/``inalloca``/
``preallocated`` parameters - cannot be marshalled: :func:`parse` raises
``TypeError`` naming the function. Calls use the C calling convention.

:func:`untyped` is the signature of a call the engine has no IR for (an
object file's function, a raw address): ``int`` arguments as ``i64``,
``float`` ones as ``double``, the result as ``restype`` says.

Values are immutable and hashable (executors cache their native prototypes
by them); ``str(signature)`` is its IR spelling and :func:`parse` of it
gives it back, which is how the remote protocol carries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import llvmlite.binding as llvm

_POINTER_BITS = 64  # the engine targets 64-bit hosts (x86-64, AArch64)


@dataclass(frozen=True)
class Scalar:
    """One marshallable IR type: ``kind`` is ``"int"``, ``"float"`` (``bits``
    32 or 64: ``float`` or ``double``), ``"ptr"`` or ``"void"``."""

    kind: str
    bits: int

    def __str__(self) -> str:
        if self.kind == "int":
            return f"i{self.bits}"
        if self.kind == "float":
            return "float" if self.bits == 32 else "double"
        return self.kind

    def accept(self, value: Any, where: str) -> int | float:
        """``value`` as this type takes it; ``TypeError``/``OverflowError``
        saying ``where`` (e.g. "argument 2 of 'f'") otherwise."""
        if self.kind == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise TypeError(f"{where} is {self}: expects a float or int, got {_show(value)}")
        if self.kind == "ptr":
            if value is None:
                return 0
            if isinstance(value, int) and not isinstance(value, bool):
                if 0 <= value < 1 << _POINTER_BITS:
                    return value
                raise OverflowError(f"{where} is ptr: {value:#x} is not an address")
            raise TypeError(f"{where} is ptr: expects an int address or None, "
                            f"got {_show(value)}")
        if not isinstance(value, int):
            raise TypeError(f"{where} is {self}: expects an int, got {_show(value)}")
        low, high = -(1 << (self.bits - 1)), (1 << self.bits) - 1
        if self.bits == 1:
            low = 0
        if not low <= value <= high:
            raise OverflowError(f"{where} is {self}: {value} does not fit ({low}..{high})")
        return self.wrap(int(value))

    def wrap(self, raw: int) -> int:
        """The integer ``raw`` read as this type: signed of its width (``i1``:
        0 or 1, pointers: unsigned)."""
        if self.kind == "ptr":
            return raw & ((1 << _POINTER_BITS) - 1)
        raw &= (1 << self.bits) - 1
        if self.bits > 1 and raw >> (self.bits - 1):
            raw -= 1 << self.bits
        return raw


VOID = Scalar("void", 0)
I64 = Scalar("int", 64)
DOUBLE = Scalar("float", 64)
PTR = Scalar("ptr", _POINTER_BITS)


class FromSignature:
    """The default ``restype`` of ``engine.call``: the function's IR return type."""

    def __repr__(self) -> str:
        return "<the function's IR return type>"


FROM_SIGNATURE = FromSignature()
Restype = type[int] | type[float] | None | FromSignature
_ACCEPTED_RESTYPES = ("int (an integer or pointer result), float (float or double), "
                      "None (no result, or discard it), or omitted (the function's IR "
                      "return type)")


@dataclass(frozen=True)
class Signature:
    """A function's marshallable type (see the module docstring)."""

    result: Scalar
    params: tuple[Scalar, ...]
    varargs: bool = False

    def __str__(self) -> str:
        params = [str(p) for p in self.params] + (["..."] if self.varargs else [])
        return f"{self.result} ({', '.join(params)})"

    def bind(self, function: str, args: Sequence[Any]) -> tuple[Signature, tuple[Any, ...]]:
        """The fixed prototype of this call (varargs resolved) and the arguments
        converted for it. ``TypeError`` naming ``function`` for a wrong count
        or type, ``OverflowError`` for an integer that does not fit."""
        fixed = len(self.params)
        if len(args) < fixed or (len(args) > fixed and not self.varargs):
            expected = f"at least {fixed}" if self.varargs else str(fixed)
            raise TypeError(f"'{function}' ({self}) takes {expected} argument"
                            f"{'' if fixed == 1 else 's'}, got {len(args)}")
        types = list(self.params)
        for value in args[fixed:]:
            types.append(DOUBLE if isinstance(value, float) else I64)
        values = tuple(t.accept(v, f"argument {i + 1} of '{function}'")
                       for i, (t, v) in enumerate(zip(types, args, strict=True)))
        prototype = self if not self.varargs and len(types) == fixed else Signature(
            self.result, tuple(types))
        return prototype, values

    def returning(self, restype: Restype, function: str) -> Signature:
        """This signature as a call with ``restype`` sees it: omitted keeps the
        IR's result; ``None`` discards it; ``int``/``float`` must agree with
        it (``TypeError`` naming ``function`` otherwise)."""
        check_restype(restype)
        if isinstance(restype, FromSignature):
            return self
        if restype is None:
            return self if self.result == VOID else Signature(VOID, self.params, self.varargs)
        agrees = (self.result.kind in ("int", "ptr")) if restype is int else (
            self.result.kind == "float")
        if not agrees:
            raise TypeError(f"restype={restype.__name__} does not agree with '{function}', "
                            f"which returns {self.result} ({self}); omit restype to use "
                            "the IR's")
        return self

    def decode(self, raw: Any) -> Any:
        """The Python value of a native result ``raw`` of this signature."""
        kind = self.result.kind
        if kind == "void":
            return None
        if kind == "float":
            return float(raw)
        return self.result.wrap(int(raw or 0))


VOID_CALL = Signature(VOID, ())


def check_restype(restype: object) -> None:
    """``TypeError`` listing what is accepted unless ``restype`` is one of them."""
    if restype is int or restype is float or restype is None or isinstance(
            restype, FromSignature):
        return
    raise TypeError(f"restype must be {_ACCEPTED_RESTYPES}; not {restype!r}")


def untyped(args: Sequence[Any], restype: Restype,
            function: str) -> tuple[Signature, tuple[Any, ...]]:
    """The prototype and arguments of a call without IR (an object file's
    function, a raw address): ``int`` as ``i64`` (either reading of 64 bits),
    ``float`` as ``double``; the result is ``i64`` for ``int`` (the default),
    ``double`` for ``float``, nothing for ``None``."""
    check_restype(restype)
    result = VOID if restype is None else DOUBLE if restype is float else I64
    types = []
    for i, value in enumerate(args):
        if isinstance(value, float):
            types.append(DOUBLE)
        elif isinstance(value, int):
            types.append(I64)
        else:
            raise TypeError(f"argument {i + 1} of '{function}': a function without IR takes "
                            f"only int and float arguments, not {_show(value)}")
    return Signature(result, tuple(types)).bind(function, args)


# -- parsing ------------------------------------------------------------------------

_FLOATS = {"float": 32, "double": 64}
_UNPASSABLE_ATTRIBUTES = (b"byval", b"inalloca", b"preallocated")


def parse(type_text: str, function: str) -> Signature:
    """The signature of function ``function`` whose IR type is ``type_text``.
    ``TypeError`` naming it if a part cannot be marshalled."""
    text = type_text.strip()
    if not text.endswith(")"):
        raise TypeError(f"'{function}' has type '{type_text}', which is not a function type")
    start = _matching_open(text)
    result = _scalar(text[:start].strip(), function, "its result", result=True)
    parts = _split_top_level(text[start + 1:-1])
    varargs = bool(parts) and parts[-1] == "..."
    if varargs:
        parts = parts[:-1]
    params = tuple(_scalar(p, function, f"parameter {i + 1}") for i, p in enumerate(parts))
    return Signature(result, params, varargs)


def function_signature(module: llvm.ModuleRef, name: str) -> Signature | None:
    """The signature of function ``name`` as ``module`` defines or declares it;
    ``None`` if the module has no function of that name (say, an alias).
    ``TypeError`` if ``name`` is a variable or cannot be marshalled."""
    try:
        fn = module.get_function(name)
    except NameError:
        try:
            module.get_global_variable(name)
        except NameError:
            return None
        raise TypeError(f"'{name}' is a global variable, not a function: it cannot be "
                        "called") from None
    signature = parse(str(fn.global_value_type), name)
    for i, argument in enumerate(fn.arguments):
        for attribute in argument.attributes:
            if attribute.startswith(_UNPASSABLE_ATTRIBUTES):
                raise TypeError(f"parameter {i + 1} of '{name}' is passed "
                                f"{attribute.decode().split('(')[0]}: a call from Python "
                                "cannot marshal it")
    return signature


def _scalar(text: str, function: str, what: str, *, result: bool = False) -> Scalar:
    if text == "void" and result:
        return VOID
    if text == "ptr" or text.startswith("ptr addrspace(") or text.endswith("*"):
        return PTR
    if text in _FLOATS:
        return Scalar("float", _FLOATS[text])
    if text.startswith("i") and text[1:].isdigit():
        bits = int(text[1:])
        if 1 <= bits <= 64:
            return Scalar("int", bits)
    raise TypeError(f"'{function}' cannot be called from Python: {what} has type '{text}' "
                    "(calls marshal integers up to i64, float, double, pointers and void)")


_OPEN, _CLOSE = "({[<", ")}]>"


def _matching_open(text: str) -> int:
    """Index of the '(' matching the final ')' of ``text``."""
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        if text[i] in _CLOSE:
            depth += 1
        elif text[i] in _OPEN:
            depth -= 1
            if depth == 0:
                return i
    raise TypeError(f"unbalanced function type '{text}'")


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    tail = "".join(current).strip()
    if tail or parts:
        parts.append(tail)
    return parts


def _show(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]} ({type(value).__name__})"
