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

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import llvmlite.binding as llvm

_POINTER_BITS = 64  # the engine targets 64-bit hosts (x86-64, AArch64)


@dataclass(frozen=True)
class Scalar:
    """One marshallable IR type: ``kind`` is ``"int"``, ``"float"`` (``bits``
    32 or 64: ``float`` or ``double``), ``"ptr"`` or ``"void"``."""

    kind: str
    bits: int
    # The range an argument may take (integers and pointers).
    low: int = field(init=False, repr=False, compare=False)
    high: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        low, high = -(1 << (self.bits - 1)) if self.bits > 1 else 0, (1 << self.bits) - 1
        if self.kind == "ptr":
            low = 0
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def __str__(self) -> str:
        if self.kind == "int":
            return f"i{self.bits}"
        if self.kind == "float":
            return "float" if self.bits == 32 else "double"
        return self.kind

    def accept(self, value: Any, index: int, function: str) -> int | float:
        """``value`` as this type takes it, for argument ``index`` (from 0) of
        ``function``; ``TypeError``/``OverflowError`` naming both otherwise."""
        if type(value) is int and self.kind != "float":
            if self.low <= value <= self.high:
                return value if self.bits == 64 and value < 1 << 63 else self.wrap(value)
        elif self.kind == "float" and type(value) is float:
            return value
        return self._accept_slowly(value, f"argument {index + 1} of '{function}'")

    def _accept_slowly(self, value: Any, where: str) -> int | float:
        if self.kind == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise TypeError(f"{where} is {self}: expects a float or int, got {_show(value)}")
        if self.kind == "ptr":
            if value is None:
                return 0
            if isinstance(value, int) and not isinstance(value, bool):
                if self.low <= value <= self.high:
                    return int(value)
                raise OverflowError(f"{where} is ptr: {value:#x} is not an address")
            raise TypeError(f"{where} is ptr: expects an int address or None, "
                            f"got {_show(value)}")
        if not isinstance(value, int):
            try:
                value = operator.index(value)  # integer types of other libraries (numpy)
            except TypeError:
                raise TypeError(f"{where} is {self}: expects an int, got {_show(value)}") from None
        if not self.low <= value <= self.high:
            raise OverflowError(f"{where} is {self}: {value} does not fit "
                                f"({self.low}..{self.high})")
        return self.wrap(int(value))

    def wrap(self, raw: int) -> int:
        """The integer ``raw`` read as this type: signed of its width (``i1``:
        0 or 1, pointers: unsigned)."""
        if self.kind == "ptr":
            return raw & self.high
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
    _hash: int = field(init=False, repr=False, compare=False)
    _text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.result, self.params, self.varargs)))
        params = [str(p) for p in self.params] + (["..."] if self.varargs else [])
        object.__setattr__(self, "_text", f"{self.result} ({', '.join(params)})")

    def __hash__(self) -> int:  # executors key their native prototypes by signature
        return self._hash

    def __str__(self) -> str:
        return self._text

    def bind(self, function: str, args: Sequence[Any]) -> tuple[Signature, tuple[Any, ...]]:
        """The fixed prototype of this call (varargs resolved) and the arguments
        converted for it. ``TypeError`` naming ``function`` for a wrong count
        or type, ``OverflowError`` for an integer that does not fit."""
        params = self.params
        if len(args) == len(params):
            accept = Scalar.accept
            return self._fixed(), tuple([accept(params[i], v, i, function)
                                         for i, v in enumerate(args)])
        if len(args) < len(params) or not self.varargs:
            fixed = len(params)
            expected = f"at least {fixed}" if self.varargs else str(fixed)
            raise TypeError(f"'{function}' ({self}) takes {expected} argument"
                            f"{'' if fixed == 1 else 's'}, got {len(args)}")
        types = params + tuple(DOUBLE if isinstance(v, float) else I64
                               for v in args[len(params):])
        return _interned(self.result, types), tuple(
            t.accept(v, i, function) for i, (t, v) in enumerate(zip(types, args, strict=True)))

    def _fixed(self) -> Signature:
        return self if not self.varargs else _interned(self.result, self.params)

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
        result = self.result
        if result.kind == "void":
            return None
        if result.kind == "float":
            return float(raw)
        if raw is None:
            return 0
        return raw if result.bits == 64 and result.kind == "int" else result.wrap(raw)


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
    key = (restype, tuple([isinstance(v, float) for v in args]))
    found = _UNTYPED.get(key)
    if found is None:
        check_restype(restype)
        result = VOID if restype is None else DOUBLE if restype is float else I64
        types = []
        for i, value in enumerate(args):
            if isinstance(value, float):
                types.append(DOUBLE)
            elif isinstance(value, int):
                types.append(I64)
            else:
                raise TypeError(f"argument {i + 1} of '{function}': a function without IR "
                                f"takes only int and float arguments, not {_show(value)}")
        if len(_UNTYPED) >= 4096:
            _UNTYPED.clear()
        found = _UNTYPED[key] = _interned(result, tuple(types))
    return found.bind(function, args)


_UNTYPED: dict[tuple[object, tuple[bool, ...]], Signature] = {}
_INTERNED: dict[tuple[Scalar, tuple[Scalar, ...]], Signature] = {}


def _interned(result: Scalar, params: tuple[Scalar, ...]) -> Signature:
    """One fixed Signature object per prototype (bounded), so that executors'
    caches of native prototypes hit by identity."""
    key = (result, params)
    found = _INTERNED.get(key)
    if found is None:
        if len(_INTERNED) >= 4096:
            _INTERNED.clear()
        found = _INTERNED[key] = Signature(result, params)
    return found


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
