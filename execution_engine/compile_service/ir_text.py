"""Lexical helpers for printed LLVM IR text (brackets, types, strings).

They read text as LLVM's printer writes it (one top-level entity per line,
canonical spacing); they are not a parser for hand-written IR.
"""

from __future__ import annotations

import re

from ..ir.extract import ExtractionError


def after_parameters(after_open: str) -> str:
    """The part of a header after its parameter list (``after_open`` follows "(")."""
    close = matching("(" + after_open, 0)
    return after_open[close:]


_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_OPENERS = re.compile(r'[(\[{<"]')
_PLAIN_NAME = re.compile(r"@([-a-zA-Z$._][-a-zA-Z$._0-9]*|\d+)")


def matching(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``start`` (quotes skipped)."""
    end = text.find(_PAIRS[text[start]], start + 1)
    if end > 0 and not _OPENERS.search(text, start + 1, end):
        return end  # nothing nested: the common case
    depth, i, pairs = 0, start, _PAIRS
    closers = set(pairs.values())
    while i < len(text):
        c = text[i]
        if c == '"':
            i = text.index('"', i + 1)
        elif c in pairs:
            depth += 1
        elif c in closers:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ExtractionError(f"unbalanced brackets: {text[:200]}")


def leading_type(rest: str) -> str:
    """The type at the start of ``rest`` (a variable's or alias's value type)."""
    rest = rest.lstrip()
    if rest[:2] == "<{" or rest[:1] in "[{<":
        end = matching(rest, 0) + 1
    else:
        m = re.match(r'%"[^"]*"|[^\s,]+', rest)
        end = m.end() if m else len(rest)
        a = re.match(r" addrspace\(\d+\)", rest[end:])
        if a:
            end += a.end()
    # a function type continues with its parameter list: "i64 (i64, ptr)"
    if rest[end:end + 2] == " (":
        end = matching(rest, end + 1) + 1
    return rest[:end]


def top_level_paren(type_text: str) -> int | None:
    depth = 0
    for i, c in enumerate(type_text):
        if c == "(" and depth == 0:
            return i
        if c in "[{<(":
            depth += 1
        elif c in "]}>)":
            depth -= 1
    return None


def blank_strings(text: str) -> str:
    return re.sub(r'"[^"]*"', '""', text)


def rename_globals(text: str, renames: dict[str, str]) -> str:
    """``text`` with each global name in ``renames`` (IR spelling: ``"N"`` for ``@N``)
    replaced by its new name, everywhere outside string constants.

    Quoted text never contains a quote (LLVM escapes it as ``\\22``), so the
    pieces between quotes alternate outside / inside; a piece inside that follows
    an ``@`` is a quoted name (it stays quoted)."""
    plain = {name: new for name, new in renames.items() if _PLAIN_NAME.fullmatch("@" + name)}
    quoted = {_escape(name): new for name, new in renames.items() if name not in plain}

    def rename(m: re.Match[str]) -> str:
        new = plain.get(m.group(1))
        return m.group(0) if new is None else "@" + new

    pieces = text.split('"')
    for i in range(0, len(pieces), 2):
        if "@" in pieces[i]:
            pieces[i] = _PLAIN_NAME.sub(rename, pieces[i])
    if quoted:
        for i in range(1, len(pieces), 2):
            new = quoted.get(pieces[i])
            if new is not None and pieces[i - 1].endswith("@"):
                pieces[i] = _escape(new)
    return '"'.join(pieces)


def _escape(name: str) -> str:
    """The text between the quotes of ``@"name"`` as LLVM prints it."""
    return "".join(c if c.isprintable() and c not in '"\\' else f"\\{ord(c):02X}" for c in name)
