"""Texts of a module's values: one print of a whole module, indexed by name,
and cheap fingerprints that tell whether a function changed since its text
was taken (see :mod:`.extract` for why both are needed: printing one value
costs time in proportion to the whole module)."""

from __future__ import annotations

import ctypes
import re
from typing import Any

import llvmlite.binding as llvm

NAME = r'@(?:"(?:[^"\\]|\\.)*"|[-a-zA-Z$._][-a-zA-Z$._0-9]*|\d+)'
REF = re.compile(NAME)
HEADER_NAME = re.compile(r"(?:define|declare) [^@]*(" + NAME + r")\(")
# Where the module's text has a function, a declaration or a global (variable,
# alias, ifunc): at the start of a line.
_TOP_LEVEL = re.compile(r"^(?:define |declare |@)", re.M)
_ALIAS = re.compile(r"(" + NAME + r")\s*=.*?\b(?:alias|ifunc)\s+[^,]+,\s*(.*)$")


def quote(name: str) -> str:
    """``@name`` as IR text."""
    if re.fullmatch(r"[-a-zA-Z$._][-a-zA-Z$._0-9]*", name):
        return "@" + name
    escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\{ord(c):02X}" for c in name)
    return f'@"{escaped}"'


def unquote(token: str) -> str:
    name = token[1:]
    if name.startswith('"'):
        name = re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), name[1:-1])
    return name


class ModuleIndex:
    """One print of a module, indexed: the text of every function definition,
    declaration and global (variable, alias, ifunc) by IR name (``"N"`` for
    ``@N``). Built in one pass over the text; a lookup is a slice."""

    def __init__(self, text: str):
        self.text = text
        self._spans: dict[str, tuple[int, int]] = {}
        end = len(text)
        pos = 0
        while True:
            m = _TOP_LEVEL.search(text, pos)
            if m is None:
                break
            start = m.start()
            if text.startswith("define ", start):
                stop = text.find("\n}\n", start)
                stop = end if stop < 0 else stop + 3  # "}\n" ends it, as one print does
                name = HEADER_NAME.match(text, start)
            else:
                stop = text.find("\n", start)
                stop = end if stop < 0 else stop
                name = (HEADER_NAME.match(text, start) if text.startswith("declare ", start)
                        else REF.match(text, start))
            if name is not None:
                self._spans[unquote(name.group(1) if name.re is HEADER_NAME
                                    else name.group(0))] = (start, stop)
            pos = stop

    def get(self, name: str) -> str | None:
        span = self._spans.get(name)
        return None if span is None else self.text[span[0]:span[1]]

    def header(self, name: str) -> str | None:
        """The first line of ``name``'s text (a function's ``define``/``declare`` line)."""
        span = self._spans.get(name)
        if span is None:
            return None
        stop = self.text.find("\n", span[0], span[1])
        return self.text[span[0]:span[1] if stop < 0 else stop]

    def aliases(self) -> dict[str, str]:
        """Alias or ifunc name -> the constant it stands for (``"ptr @g"`` style)."""
        found = {}
        for name, (start, stop) in self._spans.items():
            line = self.text[start:stop]
            if " alias " in line or " ifunc " in line:
                m = _ALIAS.match(line)
                if m:
                    found[name] = m.group(2).strip()
        return found


# -- fingerprints -------------------------------------------------------------------

_WALK_FUNCTIONS = ("LLVMPY_FunctionBlocksIter", "LLVMPY_BlocksIterNext",
                   "LLVMPY_DisposeBlocksIter", "LLVMPY_BlockInstructionsIter",
                   "LLVMPY_InstructionsIterNext", "LLVMPY_DisposeInstructionsIter",
                   "LLVMPY_InstructionOperandsIter", "LLVMPY_OperandsIterNext",
                   "LLVMPY_DisposeOperandsIter")
_walk: dict[str, Any] | None = None
_walk_lock: Any = None


def _walker() -> dict[str, Any] | None:
    """libllvmlite's iterator functions as ctypes functions of plain addresses
    (our own function objects: llvmlite's keep their types), or an empty dict
    where this llvmlite does not have them (then functions are reprinted)."""
    global _walk, _walk_lock
    if _walk is None:
        _walk = {}
        try:
            cdll = llvm.ffi.lib._lib
            _walk_lock = llvm.ffi.lib._lock
            for name in _WALK_FUNCTIONS:
                fn = cdll._FuncPtr((name, cdll))
                fn.argtypes = [ctypes.c_void_p]
                fn.restype = None if name.startswith("LLVMPY_Dispose") else ctypes.c_void_p
                _walk[name] = fn
        except (AttributeError, TypeError):
            _walk = {}
    return _walk or None


def fingerprint(fn: llvm.ValueRef) -> int | None:
    """A hash of what a function's text is made of, read in time proportional
    to the function: the addresses of its instructions and of their operands in
    order, its linkage, visibility and attribute sets. None if unavailable."""
    walk = _walker()
    ptr = getattr(fn, "_ptr", None)
    if walk is None or ptr is None:
        return None
    address = ctypes.cast(ptr, ctypes.c_void_p).value
    items: list[Any] = [address, fn.linkage, fn.visibility, *fn.attributes]
    add = items.append
    blocks_next, block_instructions = walk["LLVMPY_BlocksIterNext"], walk[
        "LLVMPY_BlockInstructionsIter"]
    instructions_next, operands_of = walk["LLVMPY_InstructionsIterNext"], walk[
        "LLVMPY_InstructionOperandsIter"]
    operands_next = walk["LLVMPY_OperandsIterNext"]
    dispose_instructions, dispose_operands = walk["LLVMPY_DisposeInstructionsIter"], walk[
        "LLVMPY_DisposeOperandsIter"]
    with _walk_lock:  # llvmlite's own lock: no other thread is inside LLVM meanwhile
        blocks = walk["LLVMPY_FunctionBlocksIter"](address)
        try:
            while block := blocks_next(blocks):
                add(block)
                instructions = block_instructions(block)
                while instruction := instructions_next(instructions):
                    add(instruction)
                    operands = operands_of(instruction)
                    while operand := operands_next(operands):
                        add(operand)
                    dispose_operands(operands)
                    add(0)
                dispose_instructions(instructions)
        finally:
            walk["LLVMPY_DisposeBlocksIter"](blocks)
    return hash(tuple(items))
