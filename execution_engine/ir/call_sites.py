"""Single indirection: direct calls rewritten to load the callee from its slot.

Under the ``"single"`` redirection policy a call ``call i32 @f(...)`` to a
function the module defines becomes::

    %__ee.slotN = load ptr, ptr @"f.__slot"
    call i32 %__ee.slotN(...)

Internal and private callees are left alone (they have no stub).
``f.__slot`` is resolved to the address of ``f``'s pointer slot, so the
call skips the stub's extra jump while still reaching whatever body the slot
holds (swaps work as with stubs). Taking ``f``'s address still yields the
stub, so function-pointer identity is unchanged.

The rewrite is textual and linear in the module text: one pass over the
lines, inserting a load before each rewritten call (same basic block).
"""

from __future__ import annotations

import re
from collections.abc import Callable

SLOT_SUFFIX = ".__slot"

_DEFINE = re.compile(r'^define (?:(\w+) )?[^@]*@("(?:[^"\\]|\\.)*"|[-a-zA-Z$._0-9]+)\(', re.M)
_CALL = re.compile(
    r'^(?P<indent>\s+)(?P<assign>%[-a-zA-Z$._0-9"]+ = )?'
    r'(?P<kw>(?:(?:tail|musttail|notail) )?(?:call|invoke) )'
    r'(?P<mid>[^@%(]*?(?:\([^)]*\)\s*)?)'
    r'@(?P<name>"(?:[^"\\]|\\.)*"|[-a-zA-Z$._0-9]+)\(',
    re.M,
)


def _plain(token: str) -> str:
    return token[1:-1] if token.startswith('"') else token


def call_through_slots(text: str, also: Callable[[str], bool] = lambda name: False) -> str:
    """Rewrite calls to the functions ``text`` defines (and to names for which
    ``also(name)`` is true) to go through their pointer slots."""
    defined = {_plain(m.group(2)) for m in _DEFINE.finditer(text)
               if m.group(1) not in ("internal", "private")}
    slots: set[str] = set()
    counter = 0

    def rewrite(m: re.Match[str]) -> str:
        nonlocal counter
        name = _plain(m.group("name"))
        if name.startswith("llvm.") or not (name in defined or also(name)):
            return m.group(0)
        counter += 1
        slots.add(name)
        local = f"%__ee.slot{counter}"
        return (f'{m["indent"]}{local} = load ptr, ptr @"{name}{SLOT_SUFFIX}"\n'
                f'{m["indent"]}{m["assign"] or ""}{m["kw"]}{m["mid"]}{local}(')

    out = _CALL.sub(rewrite, text)
    if not slots:
        return text
    declarations = "".join(f'@"{name}{SLOT_SUFFIX}" = external global ptr\n'
                           for name in sorted(slots))
    return out + "\n" + declarations


# Every global reference not followed by "(" (which a call's callee and a
# definition's or declaration's header are): the whole name, never a prefix.
_NOT_CALLED = re.compile(r'@("(?:[^"\\]|\\.)*"|[-a-zA-Z$._0-9]+)(?![-a-zA-Z$._0-9(])')
# Inline (call ... asm sideeffect "...") or module assembly; a match preceded
# by a name character is a name's tail. Written to start with a literal (no
# \b, no ^ under re.M), so the scan runs at memchr speed on big modules.
_ASM = re.compile(r'asm(?: [a-z]+)* "')
_NAME_CHAR = re.compile(r'[-a-zA-Z$._0-9]')
_DEFINED = re.compile(r'\ndefine ([^@\n]*)@("(?:[^"\\]|\\.)*"|[-a-zA-Z$._0-9]+)\(')


def call_only_functions(text: str) -> frozenset[str]:
    """The external functions module ``text`` defines whose every reference in
    it is a call (``call``/``invoke``/``callbr`` of ``@f(...)``): no address of
    theirs can be taken by the code or data compiled from ``text``.

    Conservative: a reference in any other form (a store, an argument, a
    constant expression, an initializer, an alias, metadata, even a comment)
    disqualifies the function. If the module takes the address of one of its
    local (internal or private) functions, or uses ``blockaddress``, the
    result is empty: such code can be entered from outside without a stub,
    and it calls the module's functions directly. So it is for inline or
    module assembly, which may name symbols this scan cannot see.
    """
    locals_: set[str] = set()
    defined: set[str] = set()
    for m in _DEFINED.finditer("\n" + text if text.startswith("define") else text):
        name = _name(m.group(2))
        words = m.group(1).split()
        if words and words[0] in ("internal", "private"):
            locals_.add(name)
        else:
            defined.add(name)
    if not defined or "blockaddress(" in text or _has_asm(text):
        return frozenset()
    taken = {_name(token) for token in set(_NOT_CALLED.findall(text))}
    if not taken.isdisjoint(locals_):
        return frozenset()
    return frozenset(defined - taken)


def _has_asm(text: str) -> bool:
    return any(m.start() == 0 or not _NAME_CHAR.match(text, m.start() - 1)
               for m in _ASM.finditer(text))


def _name(token: str) -> str:
    if token.startswith('"'):
        return re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), token[1:-1])
    return token
