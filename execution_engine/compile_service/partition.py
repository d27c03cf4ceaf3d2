"""A whole module cut into K partitions that compile apart and link together.

For parallel eager compilation (the lazy machinery in :mod:`..ir.extract` cuts
one function at a time; cutting a whole module with it costs a print of the
module per function). Here the module is printed once and its text cut at
its top-level entities:

* functions are dealt out in module order into K partitions of about equal
  text size (a proxy for code generation time); functions that must stay
  together do (members of one comdat, a function and those taking its block
  addresses; functions whose block addresses a variable takes, or that share
  a comdat with a variable, go to partition 0);
* every variable is defined in partition 0 (``module asm`` too); the others
  declare all variables (unused declarations cost a little parsing and
  produce nothing in the object);
* aliases and ifuncs live with the definition they stand for;
* internal and private symbols, and unnamed ones (``@0``), are renamed to
  ``prefix + name`` (``prefix + "anon.N"``) everywhere and defined with hidden
  visibility, so partitions agree on one definition without exporting it;
* every partition keeps the module's types, comdats, attribute groups and
  metadata (module flags, debug info), so code generation sees what it would
  have seen for the whole module.

Unsupported (raises :class:`ExtractionError` naming the function): prefix or
prologue data on a function another partition must declare.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import llvmlite.binding as llvm

from ..ir.extract import ExtractionError
from ..ir.module_text import NAME as _NAME
from ..ir.module_text import REF as _REF
from ..ir.module_text import quote, unquote
from .ir_text import (
    after_parameters,
    blank_strings,
    leading_type,
    matching,
    rename_globals,
    top_level_paren,
)

_counter = itertools.count(1)
_LINKAGES = frozenset({"private", "internal", "external", "extern_weak", "linkonce",
                       "linkonce_odr", "weak", "weak_odr", "common", "appending",
                       "available_externally"})
_LOCAL_LINKAGES = frozenset({"private", "internal"})
_GLOBAL = re.compile(r"(" + _NAME + r") = ((?:[a-z_]+(?:\([^)]*\))? )*?)"
                     r"(global|constant|alias|ifunc) (.*)")
_DEFINE = re.compile(r"define ([^@]*?)(" + _NAME + r")\(")
_COMDAT_REF = re.compile(r"\bcomdat(?:\(\$(\"[^\"]*\"|[-\w.$]+)\))?")
_HEADER_DROPS = re.compile(
    r'\s+(?:section|partition|gc) "[^"]*"'
    r'|\s+comdat(?:\(\$(?:"[^"]*"|[^)]*)\))?'
    r"|\s+personality \S+ (?:" + _NAME + r"|null)"
    r"|\s+!\w+ !\d+")
_ALIGN = re.compile(r",\s*align (\d+)")
_BLOCKADDRESS = re.compile(r"blockaddress\((" + _NAME + r")")
_DECL_ATTRS = re.compile(r"^(?:dso_local|hidden|protected|thread_local(?:\(\w+\))?|"
                         r"addrspace\(\d+\)|externally_initialized)$")


@dataclass
class Split:
    """``texts[i]`` is partition i's module text; ``defines[i]`` the names it
    defines (after renaming), its functions first, ``functions[i]`` of them;
    ``renamed`` maps each promoted local's new name to its name in the module
    (``"N"`` for ``@N``)."""

    texts: list[str]
    defines: list[list[str]] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    functions: list[int] = field(default_factory=list)


@dataclass(eq=False)
class _Function:
    name: str
    pre: str  # between "define " and the name: linkage, attributes, return type
    text: str
    comdat: str | None
    part: int = -1


@dataclass(eq=False)
class _Global:
    name: str
    attrs: list[str]
    kind: str  # global, constant, alias, ifunc
    rest: str
    line: str
    part: int = 0


def split_module(module: llvm.ModuleRef | str, k: int, *, prefix: str | None = None) -> list[str]:
    """The module text of each partition (at most ``k``; see :func:`split`)."""
    return split(module, k, prefix=prefix).texts


def split(module: llvm.ModuleRef | str, k: int, *, prefix: str | None = None) -> Split:
    """Cut ``module`` (borrowed; or its text) into at most ``k`` partitions that
    together define exactly what it defines. ``prefix`` (default: unique per
    call in this process) starts the names of promoted locals."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k!r}")
    text = module if isinstance(module, str) else str(module)
    prefix = prefix if prefix is not None else f"__ee.s{next(_counter)}."
    if not re.fullmatch(r"[-a-zA-Z$._][-a-zA-Z$._0-9]*", prefix):
        raise ValueError(f"prefix {prefix!r} must be a name LLVM writes without quotes")
    if k == 1:
        return Split([text], [], {})
    renamed = _rename_locals(text, prefix)
    if renamed:
        text = rename_globals(text, {old: new for new, old in renamed.items()})
    parsed = _Parsed(text, set(renamed))
    parsed.assign(k)
    return parsed.assemble(renamed)


def _token(name: str) -> str:
    return "@" + name if name.isdigit() else quote(name)


def _rename_locals(text: str, prefix: str) -> dict[str, str]:
    """New name -> old name of every local (or unnamed) global value of ``text``."""
    renamed: dict[str, str] = {}
    for line in _top_level_lines(text):
        if line.startswith("@"):
            m = _GLOBAL.match(line)
            if m is None:
                continue
            name, words = unquote(m.group(1)), m.group(2).split()
        elif line.startswith("define "):
            d = _DEFINE.match(line)
            if d is None:
                continue
            name, words = unquote(d.group(2)), d.group(1).split()
        else:
            continue
        if name.isdigit() or (words and words[0] in _LOCAL_LINKAGES):
            renamed[prefix + ("anon." + name if name.isdigit() else name)] = name
    return renamed


def _top_level_lines(text: str) -> Iterator[str]:
    """Each top-level line of a printed module (function bodies skipped)."""
    pos, end = 0, len(text)
    while pos < end:
        nl = text.find("\n", pos)
        nl = end if nl < 0 else nl
        line = text[pos:nl]
        if line.startswith("define ") and line.endswith("{"):
            close = text.find("\n}", nl)
            nl = end if close < 0 else text.find("\n", close + 2)
            nl = end if nl < 0 else nl
        yield line
        pos = nl + 1


class _Parsed:
    """The top-level entities of a printed module, sorted by kind."""

    def __init__(self, text: str, promoted: set[str]):
        self.promoted = promoted
        self.head: list[str] = []
        self.asm: list[str] = []
        self.shared: list[str] = []  # types and comdats: every partition
        self.globals: list[_Global] = []
        self.functions: list[_Function] = []
        self.declares: list[str] = []
        self.tail: list[str] = []  # attribute groups and metadata: every partition
        pos, end = 0, len(text)
        while pos < end:
            nl = text.find("\n", pos)
            nl = end if nl < 0 else nl
            line = text[pos:nl]
            if line.startswith("define "):
                close = text.find("\n}", nl)
                if close < 0:
                    raise ExtractionError(f"unterminated function: {line[:200]}")
                nl = close + 2
                self._function(line, text[pos:nl])
            elif line.startswith("@"):
                self._global(line)
            elif line.startswith("declare "):
                self.declares.append(line)
            elif line.startswith(("%", "$")):
                self.shared.append(line)
            elif line.startswith(("attributes ", "!")):
                self.tail.append(line)
            elif line.startswith("module asm "):
                self.asm.append(line)
            elif line.startswith(("source_filename", "target ")):
                self.head.append(line)
            elif line and not line.startswith((";", "uselistorder")):
                raise ExtractionError(f"unexpected top-level line: {line[:200]}")
            pos = nl + 1
        self.by_name = {f.name: f for f in self.functions}

    def _function(self, header: str, text: str) -> None:
        m = _DEFINE.match(header)
        if m is None:
            raise ExtractionError(f"unexpected function header: {header[:200]}")
        name = unquote(m.group(2))
        after = header[m.end():]
        comdat = None
        c = _COMDAT_REF.search(after_parameters(after))
        if c is not None:
            comdat = unquote("@" + c.group(1)) if c.group(1) else name
        self.functions.append(_Function(name, m.group(1), text, comdat))

    def _global(self, line: str) -> None:
        m = _GLOBAL.match(line)
        if m is None:
            raise ExtractionError(f"unexpected global: {line[:200]}")
        self.globals.append(_Global(unquote(m.group(1)), m.group(2).split(), m.group(3),
                                    m.group(4), line))

    # -- placement -----------------------------------------------------------------

    def assign(self, k: int) -> None:
        groups = self._groups()
        for g in self.globals:  # variables' block addresses and comdats pin to 0
            if g.kind in ("global", "constant"):
                for target in _BLOCKADDRESS.findall(g.rest):
                    self._pin(groups, unquote(target))
                c = _COMDAT_REF.search(blank_strings(g.rest))
                if c is not None:
                    key = unquote("@" + c.group(1)) if c.group(1) else g.name
                    for f in self.functions:
                        if f.comdat == key:
                            self._pin(groups, f.name)
        total = sum(len(f.text) for f in self.functions) or 1
        filled = sum(len(f.text) for f in self.functions if f.part == 0)
        part = 0
        for f in self.functions:
            if f.part >= 0:
                continue
            if filled >= total * (part + 1) / k and part < k - 1:
                part += 1
            for member in groups.get(f.name, [f]):
                member.part = part
                filled += len(member.text)
        for g in self.globals:
            if g.kind in ("alias", "ifunc"):
                g.part = self._alias_part(g, set())

    def _groups(self) -> dict[str, list[_Function]]:
        """Functions that must share a partition (one comdat; a block address and
        its function): each such function's name -> its group."""
        parent: dict[str, str] = {}

        def find(name: str) -> str:
            while parent.get(name, name) != name:
                name = parent[name]
            return name

        def union(a: str, b: str) -> None:
            parent.setdefault(a, a)
            parent.setdefault(b, b)
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb

        by_comdat: dict[str, str] = {}
        for f in self.functions:
            if f.comdat is not None:
                union(f.name, by_comdat.setdefault(f.comdat, f.name))
            if "blockaddress(" in f.text:
                for target in _BLOCKADDRESS.findall(f.text):
                    name = unquote(target)
                    if name in self.by_name:
                        union(name, f.name)
        members: dict[str, list[_Function]] = {}
        for f in self.functions:
            if f.name in parent:
                members.setdefault(find(f.name), []).append(f)
        return {name: members[find(name)] for name in parent}

    def _pin(self, groups: dict[str, list[_Function]], name: str) -> None:
        f = self.by_name.get(name)
        if f is not None:
            for member in groups.get(name, [f]):
                member.part = 0

    def _alias_part(self, g: _Global, seen: set[str]) -> int:
        seen.add(g.name)
        for token in _REF.findall(g.rest.split(",", 1)[-1]):
            name = unquote(token)
            if name in self.by_name:
                return self.by_name[name].part
            aliased = next((a for a in self.globals if a.name == name
                            and a.kind in ("alias", "ifunc")), None)
            if aliased is not None and name not in seen:
                return self._alias_part(aliased, seen)
            return 0
        return 0

    # -- texts -----------------------------------------------------------------------

    def assemble(self, renamed: dict[str, str]) -> Split:
        parts = sorted({f.part for f in self.functions} | {0})
        index = {p: i for i, p in enumerate(parts)}
        for f in self.functions:
            f.part = index[f.part]
        for g in self.globals:
            g.part = index.get(g.part, 0)
        n = len(parts)
        own: list[list[str]] = [[] for _ in range(n)]
        defines: list[list[str]] = [[] for _ in range(n)]
        for f in self.functions:
            own[f.part].append(self._definition(f))
            defines[f.part].append(f.name)
        functions = [len(names) for names in defines]
        declarations = [self._declaration(f) for f in self.functions]
        variable_defs, variable_decls = [], []
        for g in self.globals:
            if g.kind in ("alias", "ifunc"):
                continue
            variable_defs.append(self._variable_definition(g))
            if not _is_declaration(g) and not g.name.startswith("llvm."):
                defines[0].append(g.name)
            if not g.name.startswith("llvm."):
                variable_decls.append(g.line if _is_declaration(g) else self._variable_decl(g))
        texts = []
        for i in range(n):
            aliases = []
            for g in self.globals:
                if g.kind in ("alias", "ifunc"):
                    aliases.append(self._variable_definition(g) if g.part == i
                                   else self._alias_declaration(g))
                    if g.part == i:
                        defines[i].append(g.name)
            others = [d for f, d in zip(self.functions, declarations, strict=True)
                      if f.part != i]
            body = [*self.head, *(self.asm if i == 0 else []), *self.shared,
                    *(variable_defs if i == 0 else variable_decls), *aliases,
                    *own[i], *others, *self.declares, *self.tail]
            texts.append("\n".join(body) + "\n")
        return Split(texts, defines, renamed, functions)

    def _definition(self, f: _Function) -> str:
        if f.name not in self.promoted:
            return f.text
        return "define " + _relink_local(f.pre) + f.text[len("define ") + len(f.pre):]

    def _declaration(self, f: _Function) -> str:
        header = f.text[:f.text.index("\n")] if "\n" in f.text else f.text
        m = _DEFINE.match(header)
        assert m is not None
        start = m.end() - 1  # at the parameters' "("
        close = matching(header, start)
        tail = header[close + 1:].rstrip()
        tail = tail[:-1].rstrip() if tail.endswith("{") else tail
        tail = _HEADER_DROPS.sub("", tail)
        if re.search(r"\b(?:prefix|prologue|personality)\b", blank_strings(tail)):
            raise ExtractionError(
                f"function '{f.name}' has prefix, prologue or personality data the module "
                "cannot be split around")
        words = f.pre.split()
        while words and words[0] in _LINKAGES:
            words.pop(0)
        visibility = ["hidden"] if f.name in self.promoted else []
        pre = " ".join([*visibility, *words])
        return f"declare {pre + ' ' if pre else ''}{m.group(2)}{header[start:close + 1]}{tail}"

    def _variable_definition(self, g: _Global) -> str:
        if g.name not in self.promoted:
            return g.line
        head = g.line[:len(g.line) - len(g.rest) - len(g.kind) - 1]
        name_end = head.index(" = ")
        attrs = _relink_local(" ".join(g.attrs) + " ").strip()
        return f"{head[:name_end]} = {attrs + ' ' if attrs else ''}{g.kind} {g.rest}"

    def _variable_decl(self, g: _Global) -> str:
        kept = [w for w in g.attrs if _DECL_ATTRS.match(w)]
        if g.name in self.promoted:
            kept.insert(0, "hidden")
        value_type = leading_type(g.rest)
        align = _ALIGN.search(blank_strings(g.rest[len(value_type):]))
        return (f"{_token(g.name)} = external {' '.join(kept) + ' ' if kept else ''}"
                f"{g.kind} {value_type}" + (f", align {align.group(1)}" if align else ""))

    def _alias_declaration(self, g: _Global) -> str:
        value_type = leading_type(g.rest)
        visibility = [w for w in g.attrs if w in ("hidden", "protected", "dso_local")]
        if g.name in self.promoted:
            visibility.insert(0, "hidden")
        pre = " ".join(visibility) + " " if visibility else ""
        paren = top_level_paren(value_type)
        if paren is not None:  # a function type: "ret (params)"
            return f"declare {pre}{value_type[:paren].strip()} {_token(g.name)}" + (
                value_type[paren:])
        return f"{_token(g.name)} = external {pre}global {value_type}"


def _is_declaration(g: _Global) -> bool:
    return g.kind in ("global", "constant") and bool(g.attrs) and g.attrs[0] in (
        "external", "extern_weak")


def _relink_local(pre: str) -> str:
    """``pre`` (linkage first) with a local linkage replaced by hidden visibility."""
    word, _, rest = pre.partition(" ")
    if word in _LOCAL_LINKAGES:
        return "hidden " + rest
    return "hidden " + pre  # an unnamed value without local linkage
