"""Split an LLVM IR module into per-function partitions, working on its text.

Lazy compilation and function-level recompilation compile a module one
function (or one small group of functions) at a time. llvmlite cannot delete
or clone single functions, and cloning the whole module per partition costs
time proportional to the module, so :class:`ModulePartitioner` parses the
module *text* once (linear time) and then assembles each partition from the
pieces it needs, in time proportional to the partition.

Input contract: the text is laid out as LLVM prints it (``str(ModuleRef)``):
every top-level entity starts at column 0, global variables, aliases,
declarations, attribute groups and metadata nodes take one line each, and a
function definition is a ``define ... {`` line followed by its body, closed by
a line starting with ``}``.

Outputs:

* :meth:`ModulePartitioner.partition` defines a chosen set of functions;
* :meth:`ModulePartitioner.globals_partition` defines the global variables,
  aliases and ifuncs;

and together they define every symbol of the module exactly once, so they can
be compiled as separate modules into one JIT and linked by symbol name.

Rules the partitions follow:

* Every partition carries the module header, all named types, all attribute
  groups, all named metadata and the metadata nodes reachable from what it
  includes. Debug info is kept, not stripped: ``!dbg`` attachments and debug
  records are copied verbatim with the nodes they reach.
* A global whose definition cannot be separated from a function lives in that
  function's partition instead of the globals partition: a function alias or
  ifunc (an alias must point to a definition) and a variable whose initializer
  takes ``blockaddress`` of the function.
* Every local (internal/private) symbol referenced from another partition is
  promoted: renamed ``promote_prefix + name``, given external linkage and
  hidden visibility. Unnamed globals (``@0``) always get such a name.
* ``linkonce``/``linkonce_odr`` definitions become ``weak``/``weak_odr`` (so an
  optimiser cannot drop a definition other partitions need);
  ``available_externally`` globals are treated as declarations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_LINKAGES = frozenset(
    "private internal available_externally linkonce weak common appending "
    "extern_weak linkonce_odr weak_odr external".split()
)
_LOCAL = frozenset({"private", "internal"})
_NOT_DEFINED = frozenset({"external", "extern_weak", "available_externally"})
_DEF_LINKAGE = {"linkonce": "weak", "linkonce_odr": "weak_odr"}
_VISIBILITY = frozenset({"default", "hidden", "protected"})
_PREEMPTION = frozenset({"dso_local", "dso_preemptable"})
_OPEN, _CLOSE = frozenset("([{<"), frozenset(")]}>")
_KINDS = ("global", "constant", "alias", "ifunc")
_GLUED = frozenset(  # keywords LLVM prints with no space before their "("
    "addrspace blockaddress comdat thread_local dereferenceable dereferenceable_or_null range "
    "nofpclass".split()
)

# References in IR text. Groups: 1 string or comment (skipped), 2 global value token
# without '@', 3 metadata node number.
_SCAN = re.compile(r'(;[^\n]*|"[^"]*")|@("[^"]*"|[-\w$.]+)|!(\d+)')
_BLOCKADDRESS = re.compile(r'blockaddress\(\s*@("[^"]*"|[-\w$.]+)')
_INDIRECTBR = re.compile(r"^\s+indirectbr\b", re.M)
_TOKEN = re.compile(r'[%@!$c]?"[^"]*"|[%@!$#]?[-\w.$]+|;[^\n]*|[^\s;]')
_GLOBAL_LINE = re.compile(r'@("[^"]*"|[-\w$.]+)\s*=\s*')
_MD_LINE = re.compile(r"!(\d+)\s*=")
_PLAIN_NAME = re.compile(r"[-a-zA-Z$._][-a-zA-Z$._0-9]*\Z")
_ESCAPE = re.compile(rb"\\(\\|[0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class FunctionInfo:
    """Facts about one function defined by the module.

    ``name`` is the unescaped symbol name (no ``@``, no quotes; an unnamed
    ``@3`` is ``"3"``). ``linkage`` is the keyword as written, ``''`` for
    external. ``signature`` is the function type as LLVM prints it, e.g.
    ``'i32 (ptr, ...)'``. ``uses_blockaddress`` is true when the body takes a
    ``blockaddress`` or has an ``indirectbr``, or another global takes
    ``blockaddress(@name, ...)``. ``callees`` holds the names of all global
    values the function's text references (calls, loads, constants,
    personality), itself included only if it is recursive.
    """

    name: str
    linkage: str
    signature: str
    is_vararg: bool
    uses_blockaddress: bool
    callees: frozenset[str]


@dataclass
class _Global:
    """One global value: its verbatim text and what it needs."""

    name: str
    token: str  # as written, with '@'
    kind: str  # 'function', 'variable', 'alias' or 'ifunc'
    text: str
    groups: list[str]  # top-level tokens after 'define'/'declare' or after '@name ='
    order: int
    linkage: str
    defined: bool  # has a definition that some partition emits
    refs: tuple[str, ...] = ()
    mdrefs: tuple[int, ...] = ()
    blockaddress: tuple[str, ...] = ()
    comdat: str | None = None
    indirectbr: bool = False
    home: str | None = None  # root function of the partition unit defining it; None: globals

    @property
    def decl_text(self) -> bool:
        """Whether ``text`` is a plain declaration (``declare``, ``external global``)."""
        return not self.defined and self.linkage != "available_externally"


def _unquote(token: str) -> str:
    """The name a symbol token (without its sigil) stands for: ``foo``, ``"a\\20b"``."""
    if not token.startswith('"'):
        return token
    raw = token[1:-1].encode("utf-8", "surrogateescape")
    raw = _ESCAPE.sub(lambda m: b"\\" if m[1] == b"\\" else bytes([int(m[1], 16)]), raw)
    return raw.decode("utf-8", "surrogateescape")


def _quote(name: str) -> str:
    """Inverse of :func:`_unquote`: the token for ``name``, quoted and escaped if needed."""
    if _PLAIN_NAME.match(name):
        return name
    chars = (
        chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\{b:02X}"
        for b in name.encode("utf-8", "surrogateescape")
    )
    return '"' + "".join(chars) + '"'


def _groups(text: str) -> list[str]:
    """Top-level tokens of ``text``, a bracketed group counting as one token."""
    out: list[str] = []
    depth = start = 0
    for m in _TOKEN.finditer(text):
        tok = m[0]
        if depth == 0:
            if tok in _OPEN:
                depth, start = 1, m.start()
            elif tok[0] != ";":
                out.append(tok)
        elif tok in _OPEN:
            depth += 1
        elif tok in _CLOSE:
            depth -= 1
            if depth == 0:
                out.append(text[start : m.end()])
    return out


def _join(groups: list[str]) -> str:
    """Inverse of :func:`_groups` up to white space."""
    text = groups[0] if groups else ""
    for prev, g in zip(groups, groups[1:], strict=False):
        glued = g[0] == "," or g[0] == "(" and (prev[0] == "@" or prev in _GLUED)
        text += g if glued else " " + g
    return text


def _name_index(groups: list[str]) -> int:
    return next(i for i, g in enumerate(groups) if g[0] == "@")


def _type_end(groups: list[str], i: int) -> int:
    """Index just past the type starting at ``groups[i]``."""
    if groups[i] == "ptr" and groups[i + 1 : i + 2] == ["addrspace"]:
        return i + 3
    return i + 2 if groups[i] == "target" else i + 1


def _is_function_type(groups: list[str]) -> bool:
    return len(groups) > 1 and groups[-1][0] == "(" and groups[-2] not in ("addrspace", "target")


def _comdat(groups: list[str], name: str) -> str | None:
    """The comdat a definition belongs to (bare ``comdat`` names its own)."""
    if "comdat" not in groups:
        return None
    arg = groups[groups.index("comdat") + 1 :][:1]
    return _unquote(arg[0][1:-1].strip()[1:]) if arg and arg[0][0] == "(" else name


def _relink(groups: list[str], linkage: str, hidden: bool) -> list[str]:
    """Put ``linkage`` in place of the leading linkage keyword; make hidden if asked."""
    i = 1 if groups and groups[0] in _LINKAGES else 0
    head = [linkage] if linkage else []
    if groups[i : i + 1] and groups[i] in _PREEMPTION:
        head.append(groups[i])
        i += 1
    if hidden:
        head.append("hidden")
        if groups[i : i + 1] and groups[i] in _VISIBILITY:
            i += 1
    return head + groups[i:]


def _declaration_suffix(groups: list[str]) -> list[str]:
    """Of the tokens after a function's parameters, those a declaration keeps."""
    out: list[str] = []
    for i, g in enumerate(groups):
        if g in ("prefix", "prologue", "personality") or g[0] == "!":
            break
        if g[0] == "#" or g in ("unnamed_addr", "local_unnamed_addr"):
            out.append(g)
        elif g in ("addrspace", "align"):
            out += groups[i : i + 2]
    return out


class ModulePartitioner:
    """Parses a module's text once and assembles partition modules from it.

    Every partition is complete IR text that parses and verifies on its own;
    the globals partition plus partitions covering every function define each
    symbol of the module exactly once and link by name.
    """

    functions: dict[str, FunctionInfo]
    """The functions the module defines, by name, in module order
    (``available_externally`` ones count as declarations and are left out)."""

    def __init__(self, module_text: str, *, promote_prefix: str) -> None:
        """Parse ``module_text`` (in LLVM's printed layout) in time linear in its size.

        ``promote_prefix`` starts the names given to promoted and unnamed
        symbols. Raises ValueError on a top-level line it does not understand
        or on two global values with the same name.
        """
        self._names: dict[str, str] = {}  # token cache for _name()
        self._globals: dict[str, _Global] = {}
        self._comdats: dict[str, str] = {}
        self._md: dict[int, str] = {}
        self._md_children: dict[int, tuple[int, ...]] = {}
        self._md_globals: dict[int, tuple[str, ...]] = {}
        head: list[str] = []
        types: list[str] = []
        attributes: list[str] = []
        named: list[str] = []
        asm: list[str] = []
        named_roots: list[int] = []
        pos, size = 0, len(module_text)
        while pos < size:
            end = module_text.find("\n", pos)
            end = size if end < 0 else end
            line = module_text[pos:end]
            if line.startswith("define"):
                close = module_text.find("\n}", end)
                if close < 0:
                    raise ValueError(f"unterminated function body: {line[:80]!r}")
                self._add_function(module_text[pos : close + 2], line)
                end = module_text.find("\n", close + 1)
                end = size if end < 0 else end
            elif line.startswith("declare"):
                self._add_function(line, line)
            elif line.startswith("@"):
                self._add_global(line)
            elif line.startswith("!"):
                m = _MD_LINE.match(line)
                refs, mdrefs = self._scan(line[line.index("=") :])[:2]
                if m:
                    self._md[int(m[1])] = line
                    self._md_children[int(m[1])] = mdrefs
                    if refs:
                        self._md_globals[int(m[1])] = refs
                else:
                    named.append(line)
                    named_roots += mdrefs
            elif line.startswith("$"):
                self._comdats[_unquote(_groups(line)[0][1:])] = line
            elif line.startswith(("source_filename", "target ")):
                head.append(line)
            elif line.startswith("%"):
                types.append(line)
            elif line.startswith("attributes "):
                attributes.append(line)
            elif line.startswith("module asm"):
                asm.append(line)
            elif line.strip() and not line.startswith((";", "uselistorder")):
                raise ValueError(f"unsupported top-level IR line: {line[:80]!r}")
            pos = end + 1
        self._always_md = self._md_closure(named_roots, frozenset())
        self._always_refs = [r for n in self._always_md for r in self._md_globals.get(n, ())]
        self._assign_homes()
        self._rename: dict[str, str] = {}
        self._hidden: set[str] = set()
        self._promote(promote_prefix)
        self._decls: dict[str, str] = {}
        self._head = "".join(f"{line}\n" for line in [*head, "", *types])
        self._asm = "".join(f"{line}\n" for line in asm)
        always = [self._md_line(n) for n in sorted(self._always_md)]
        self._tail = "".join(f"{line}\n" for line in [*attributes, *named, *always])

    # -- parsing -----------------------------------------------------------------

    def _name(self, token: str) -> str:
        name = self._names.get(token)
        if name is None:
            name = self._names[token] = _unquote(token)
        return name

    def _scan(self, text: str) -> tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...]]:
        """Globals, metadata nodes and blockaddress targets ``text`` refers to."""
        refs: dict[str, None] = {}
        mdrefs: dict[int, None] = {}
        for m in _SCAN.finditer(text):
            if m.lastindex == 2:
                refs[self._name(m[2])] = None
            elif m.lastindex == 3:
                mdrefs[int(m[3])] = None
        targets = _BLOCKADDRESS.findall(text) if "blockaddress(" in text else ()
        return tuple(refs), tuple(mdrefs), tuple(self._name(t) for t in targets)

    def _add(
        self, kind: str, token: str, text: str, groups: list[str], body: str, definition: bool
    ) -> _Global:
        """Record a global value; ``body`` is the part of ``text`` to scan for references."""
        name = self._name(token[1:])
        if name in self._globals:
            raise ValueError(f"global value {name!r} is defined twice")
        linkage = groups[0] if groups[0] in _LINKAGES else ""
        g = self._globals[name] = _Global(
            name,
            token,
            kind,
            text,
            groups,
            len(self._globals),
            linkage,
            definition and linkage not in _NOT_DEFINED,
            *self._scan(body),
            comdat=_comdat(groups, name),
        )
        return g

    def _add_function(self, text: str, header: str) -> None:
        if header.startswith("define") and not header.endswith("{"):
            raise ValueError(f"function header must end with '{{': {header[:80]!r}")
        groups = _groups(header.removesuffix("{"))
        ni = _name_index(groups)
        body = _join(groups[ni + 1 :]) + text[len(header) :]
        g = self._add("function", groups[ni], text, groups[1:], body, groups[0] == "define")
        g.indirectbr = "indirectbr" in text and _INDIRECTBR.search(text) is not None

    def _add_global(self, line: str) -> None:
        m = _GLOBAL_LINE.match(line)
        if not m:
            raise ValueError(f"unsupported global: {line[:80]!r}")
        groups = _groups(line[m.end() :])
        kind = next(g for g in groups if g in _KINDS)
        kind = "variable" if kind in _KINDS[:2] else kind
        self._add(kind, "@" + m[1], line, groups, line[m.end() :], True)

    def _md_closure(self, roots: Iterable[int], known: frozenset[int]) -> frozenset[int]:
        """Metadata nodes reachable from ``roots``, leaving out (and not entering) ``known``."""
        seen: set[int] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n not in seen and n not in known:
                seen.add(n)
                stack += self._md_children.get(n, ())
        return frozenset(seen)

    def _assign_homes(self) -> None:
        """Group functions into units that must share a partition and give every
        defined global the unit that defines it (None: the globals partition)."""
        functions = [g for g in self._globals.values() if g.kind == "function" and g.defined]
        parent = {g.name: g.name for g in functions}

        def find(name: str) -> str:
            while parent[name] != name:
                parent[name] = name = parent[parent[name]]
            return name

        first_member: dict[str, str] = {}
        for name in parent:
            comdat = self._globals[name].comdat
            if comdat is not None:
                parent[find(name)] = find(first_member.setdefault(comdat, name))
        for g in self._globals.values():
            tied = [t for t in (g.name, *g.blockaddress) if t in parent]
            for t in tied[1:]:
                parent[find(t)] = find(tied[0])
        users = {t for g in self._globals.values() for t in g.blockaddress}
        for g in self._globals.values():
            if g.kind == "function":
                g.home = find(g.name) if g.name in parent else None
            elif g.kind == "variable":
                g.home = next((find(t) for t in g.blockaddress if t in parent), None)
        for g in self._globals.values():
            base, seen = g, set()
            while base.kind in ("alias", "ifunc") and base.refs and base.name not in seen:
                seen.add(base.name)  # an alias or ifunc goes where its base object is defined
                base = self._globals.get(base.refs[0], base)
            g.home = base.home
        self._units: dict[str | None, list[_Global]] = {None: []}
        self._members: dict[str | None, list[str]] = {}
        for g in self._globals.values():
            if g.defined:
                self._units.setdefault(g.home, []).append(g)
            if g.name in parent:
                self._members.setdefault(g.home, []).append(g.name)
        self.functions = {name: self._info(self._globals[name], name in users) for name in parent}

    def _info(self, g: _Global, blockaddress_target: bool) -> FunctionInfo:
        ni = _name_index(g.groups)
        ret = ni - 1
        if g.groups[ni - 1][0] == "(" and g.groups[ni - 2] in ("addrspace", "target"):
            ret -= 2 if g.groups[ni - 2] == "addrspace" else 1
        params: list[list[str]] = [[]]
        for tok in _groups(g.groups[ni + 1][1:-1]):
            if tok == ",":
                params.append([])
            else:
                params[-1].append(tok)
        types = [_join(p[: _type_end(p, 0)]) for p in params if p]
        return FunctionInfo(
            name=g.name,
            linkage=g.linkage,
            signature=f"{_join(g.groups[ret:ni])} ({', '.join(types)})",
            is_vararg=types[-1:] == ["..."],
            uses_blockaddress=bool(g.blockaddress) or g.indirectbr or blockaddress_target,
            callees=frozenset(g.refs),
        )

    def _promote(self, prefix: str) -> None:
        """Name unnamed globals; promote local globals referenced from another unit."""
        shared = {r for r in self._always_refs if r in self._globals}
        for g in self._globals.values():
            if not g.defined:
                continue
            refs = list(g.refs)
            if self._md_globals:
                closure = self._md_closure(g.mdrefs, self._always_md)
                refs += (r for n in closure for r in self._md_globals.get(n, ()))
            shared.update(r for r in refs if r in self._globals and self._globals[r].home != g.home)
        taken = set(self._globals)
        for g in self._globals.values():
            promote = g.defined and g.linkage in _LOCAL and g.name in shared
            if promote or g.token[1:].isdigit():
                marker = "\x01" if g.name.startswith("\x01") else ""
                new = base = marker + prefix + g.name[len(marker) :]
                suffix = 0
                while new in taken:
                    suffix += 1
                    new = f"{base}.{suffix}"
                taken.add(new)
                self._rename[g.name] = new
                if promote:
                    self._hidden.add(g.name)

    # -- output ------------------------------------------------------------------

    def comdat_groups(self) -> list[set[str]]:
        """Sets of two or more functions that :meth:`partition` must get together.

        Members of one comdat form a set, merged with functions tied by
        ``blockaddress`` (a function taking ``blockaddress(@f, ...)`` must be
        compiled with ``f``). Any function not listed may be partitioned alone.
        """
        return [set(m) for m in self._members.values() if len(m) > 1]

    def promoted(self) -> dict[str, str]:
        """Original name -> new name of every renamed symbol.

        Those are the local (internal/private) globals referenced from another
        partition, which also become external with hidden visibility, and the
        unnamed globals (``@0``), which keep their linkage unless shared. Every
        partition refers to them by the new name only.
        """
        return dict(self._rename)

    def partition(self, names: Iterable[str]) -> str:
        """IR text of a module defining exactly the functions ``names``.

        Bodies are copied verbatim except for renamed symbols (see
        :meth:`promoted`). The module also defines the aliases, ifuncs and
        blockaddress-taking variables tied to those functions, declares every
        other global they reference, and carries the header, named types,
        attribute groups, the comdats its definitions use and the metadata
        they reach, plus all named metadata. Time is proportional to the
        output, not to the module. Raises ValueError for a name that is not a
        defined function or for a group of :meth:`comdat_groups` that ``names``
        covers only in part.
        """
        wanted = set(names)
        unknown = [name for name in wanted if name not in self.functions]
        if unknown:
            raise ValueError(f"not functions defined by the module: {sorted(unknown)}")
        units = {self._globals[name].home for name in wanted}
        for unit in units:
            missing = set(self._members[unit]) - wanted
            if missing:
                raise ValueError(
                    f"{sorted(wanted & set(self._members[unit]))} must be partitioned "
                    f"together with {sorted(missing)} (comdat or blockaddress)"
                )
        defs = sorted((g for unit in units for g in self._units[unit]), key=lambda g: g.order)
        return self._emit(defs, asm="")

    def globals_partition(self) -> str:
        """IR text defining every global variable, alias and ifunc (with its
        initializer), ``llvm.global_ctors``/``llvm.used`` and the like, and the
        module asm, except the globals tied to a function (see
        :meth:`partition`). The functions they refer to are only declared."""
        return self._emit(self._units[None], asm=self._asm)

    def _emit(self, defs: list[_Global], asm: str) -> str:
        defined = {g.name for g in defs}
        declared: dict[str, _Global] = {}
        mdrefs: set[int] = set()
        refs = [r for g in defs for r in g.refs] + self._always_refs
        md_stack = [n for g in defs for n in g.mdrefs]
        while refs or md_stack:
            while refs:
                r = refs.pop()
                g = self._globals.get(r)
                if g is not None and r not in defined and r not in declared:
                    declared[r] = g
                    md_stack += g.mdrefs if g.decl_text else ()
            while md_stack:
                n = md_stack.pop()
                if n not in mdrefs and n not in self._always_md:
                    mdrefs.add(n)
                    md_stack += self._md_children.get(n, ())
                    refs += self._md_globals.get(n, ())
        comdats = sorted({g.comdat for g in defs if g.comdat in self._comdats}, key=str)
        parts = [self._head, asm]
        parts += (self._comdats[c] + "\n" for c in comdats if c)
        parts += (self._definition(g) + "\n" for g in defs)
        parts += (
            self._declaration(g) + "\n" for g in sorted(declared.values(), key=lambda g: g.order)
        )
        parts.append(self._tail)
        parts += (self._md_line(n) + "\n" for n in sorted(mdrefs))
        return "".join(parts)

    def _renamed(self, text: str, names: Iterable[str]) -> str:
        """``text`` with every renamed global referred to by its new name."""
        if not any(name in self._rename for name in names):
            return text
        return _SCAN.sub(self._rename_match, text)

    def _rename_match(self, m: re.Match[str]) -> str:
        new = self._rename.get(self._name(m[2])) if m.lastindex == 2 else None
        return m[0] if new is None else f"@{_quote(new)}"

    def _md_line(self, n: int) -> str:
        return self._renamed(self._md[n], self._md_globals.get(n, ()))

    def _definition(self, g: _Global) -> str:
        text = g.text
        hidden = g.name in self._hidden
        bare_comdat = g.comdat == g.name and g.name in self._rename
        if hidden or bare_comdat or g.linkage in _DEF_LINKAGE:
            groups = _relink(
                g.groups, "" if hidden else _DEF_LINKAGE.get(g.linkage, g.linkage), hidden
            )
            i = groups.index("comdat") if bare_comdat else -1
            if i >= 0 and (i + 1 == len(groups) or groups[i + 1][0] != "("):
                groups[i] = f"comdat(${_quote(g.name)})"
            if g.kind == "function":
                text = f"define {_join(groups)} {{{text[text.index(chr(10)) :]}"
            else:
                text = f"{g.token} = {_join(groups)}"
        return self._renamed(text, (g.name, *g.refs))

    def _declaration(self, g: _Global) -> str:
        """Declaration of ``g`` (cached): its own text if it is one, else made from its
        definition, keeping what a reference needs (type, address space,
        thread-locality, alignment, calling convention and attributes)."""
        text = self._decls.get(g.name)
        if text is None:
            text = self._decls[g.name] = self._renamed(self._make_declaration(g), (g.name,))
        return text

    def _make_declaration(self, g: _Global) -> str:
        groups, hidden = g.groups, g.name in self._hidden
        if g.decl_text:
            return g.text
        if g.kind == "function":
            ni = _name_index(groups)
            head = _relink(groups[:ni], "", hidden)
            return "declare " + _join(
                head + groups[ni : ni + 2] + _declaration_suffix(groups[ni + 2 :])
            )
        k = next(i for i, tok in enumerate(groups) if tok in _KINDS)
        if g.kind == "variable":
            end = _type_end(groups, k + 1)
            tail = groups[end:]
            align = next(([",", t, tail[i + 1]] for i, t in enumerate(tail) if t == "align"), [])
            head = _relink(groups[:k], "external", hidden)
            return f"{g.token} = " + _join(head + groups[k:end] + align)
        comma = groups.index(",", k)
        value_type = groups[k + 1 : comma]
        if g.kind == "ifunc" or _is_function_type(value_type):
            keep = _LINKAGES | _PREEMPTION | _VISIBILITY
            head = _relink([t for t in groups[:k] if t in keep], "", hidden)
            return "declare " + _join(head + value_type[:-1] + [g.token, value_type[-1]])
        pointer = groups[comma + 1 : _type_end(groups, comma + 1)]
        head = _relink(groups[:k], "external", hidden)
        return f"{g.token} = " + _join(head + pointer[1:] + ["global"] + value_type)
