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


def matching(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``start`` (quotes skipped)."""
    depth, i, pairs = 0, start, {"(": ")", "[": "]", "{": "}", "<": ">"}
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
