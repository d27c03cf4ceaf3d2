"""One function of a module, as a module of its own, from the module's current IR.

Used to recompile a single function (``recompile_and_relink_function``). The
cost is proportional to the function (its text and its references), not to
the module: llvmlite prints a single function on request. What a function
needs from the rest of its module comes from a one-time scan of the module
text (named types, attribute groups, metadata nodes), redone only when the
function refers to something that scan has not seen.

References are rewritten as follows:

* external functions and variables: declared under their own name (the
  engine resolves them: functions to their stubs, so calls reach the
  current definitions);
* internal functions and variables: declared under a fresh name; the caller
  maps that name to the address the original object gave the symbol
  (``locals`` in the result), so the recompiled body shares the module's
  state;
* private constants and private functions: copied (they have no name in the
  object, and duplicating them is invisible to the program);
* private mutable variables cannot be shared and make extraction fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import llvmlite.binding as llvm

from .errors import ExecutionEngineError

_NAME = r'@(?:"(?:[^"\\]|\\.)*"|[-a-zA-Z$._][-a-zA-Z$._0-9]*|\d+)'
_REF = re.compile(_NAME)
_ATTR_REF = re.compile(r"#(\d+)\b")
_MD_REF = re.compile(r"!(\d+)\b")
_DBG_ATTACHMENT = re.compile(r",\s*!dbg\s+!\d+")
_DBG_RECORD = re.compile(r"^\s*#dbg_\w+\(.*$\n?", re.M)
_DBG_CALL = re.compile(r"^\s*(?:tail\s+)?call void @llvm\.dbg\.\w+\(.*$\n?", re.M)
_LINKAGES = ("private", "internal", "linkonce_odr", "linkonce", "weak_odr", "weak",
             "available_externally", "common", "extern_weak", "external")
_LOCAL = (llvm.Linkage.internal, llvm.Linkage.private)


class ExtractionError(ExecutionEngineError):
    """The function cannot be compiled on its own (the message says why)."""


@dataclass
class Extracted:
    """``text``: the module; ``locals``: declared name -> original local symbol."""

    text: str
    locals: dict[str, str] = field(default_factory=dict)


@dataclass
class _ModuleContext:
    types: list[str]
    attributes: dict[str, str]
    metadata: dict[str, str]


def _unquote(token: str) -> str:
    name = token[1:]
    if name.startswith('"'):
        name = re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), name[1:-1])
    return name


def _quote(name: str) -> str:
    if re.fullmatch(r"[-a-zA-Z$._][-a-zA-Z$._0-9]*", name):
        return "@" + name
    escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\{ord(c):02X}" for c in name)
    return f'@"{escaped}"'


class FunctionExtractor:
    """Extracts functions of one module. Not thread-safe (the engine serialises)."""

    def __init__(self, module: llvm.ModuleRef, *, prefix: str = "__ee.local."):
        self.module = module
        self.prefix = prefix
        self._context: _ModuleContext | None = None
        self._variables: dict[str, llvm.ValueRef] | None = None

    def _scan(self) -> _ModuleContext:
        types, attributes, metadata = [], {}, {}
        for line in str(self.module).splitlines():
            if line.startswith("%") and " = type " in line:
                types.append(line)
            elif line.startswith("attributes #"):
                attributes[line.split()[1][1:]] = line
            elif line.startswith("!") and line[1:2].isdigit():
                metadata[line.split(" ", 1)[0][1:]] = line
        return _ModuleContext(types, attributes, metadata)

    def _context_for(self, body: str) -> _ModuleContext:
        ctx = self._context
        needed_attrs = set(_ATTR_REF.findall(body))
        needed_md = set(_MD_REF.findall(body))
        if ctx is None or not needed_attrs <= ctx.attributes.keys() or not (
                needed_md <= ctx.metadata.keys()):
            ctx = self._context = self._scan()
        return ctx

    def extract(self, name: str) -> Extracted:
        """The module text defining only ``name`` (see the module docstring)."""
        try:
            fn = self.module.get_function(name)
        except NameError:
            raise ExtractionError(f"no function '{name}' in module '{self.module.name}'") from None
        if fn.is_declaration:
            raise ExtractionError(f"'{name}' is only declared in module '{self.module.name}'")
        body = _DBG_CALL.sub("", _DBG_RECORD.sub("", _DBG_ATTACHMENT.sub("", str(fn))))
        header, brace, rest = body.partition("{")
        header = _as_external(header)
        result = Extracted("")
        declarations: list[str] = []
        copies: list[str] = []
        renames: dict[str, str] = {}
        seen = {name}
        texts = [rest]
        while texts:
            for token in sorted(set(_REF.findall(texts.pop()))):
                ref = _unquote(token)
                if ref in seen:
                    continue
                seen.add(ref)
                line, local, copied = self._reference(ref, len(result.locals))
                if local is not None:
                    renames[token] = _quote(local)
                    result.locals[local] = ref
                if copied:
                    copies.append(line)
                    texts.append(line)
                elif line:
                    declarations.append(line)
        if renames:
            def rename(m: re.Match[str]) -> str:
                return renames.get(m.group(0), m.group(0))
            rest = _REF.sub(rename, rest)
            copies = [c.partition("=")[0] + "=" + _REF.sub(rename, c.partition("=")[2])
                      if c.startswith("@") else _rename_body(c, rename) for c in copies]
        body = header + brace + rest
        ctx = self._context_for(body + "".join(copies))
        used_md = _closure(set(_MD_REF.findall(body + "".join(copies))), ctx.metadata)
        parts = [
            f'target triple = "{self.module.triple}"' if self.module.triple else "",
            f'target datalayout = "{self.module.data_layout}"' if self.module.data_layout else "",
            *ctx.types,
            *declarations,
            *copies,
            body,
            *[ctx.attributes[a] for a in sorted(set(_ATTR_REF.findall(body + "".join(
                declarations + copies)))) if a in ctx.attributes],
            *[ctx.metadata[n] for n in sorted(used_md, key=int)],
        ]
        result.text = "\n".join(p for p in parts if p) + "\n"
        return result

    def _lookup(self, name: str) -> llvm.ValueRef | None:
        try:
            return self.module.get_function(name)
        except NameError:
            pass
        # llvmlite's get_global_variable does not find internal variables: index them.
        if self._variables is None or name not in self._variables:
            self._variables = {g.name: g for g in self.module.global_variables}
        return self._variables.get(name)

    def _reference(self, ref: str, index: int) -> tuple[str, str | None, bool]:
        """Declaration or copy text for ``ref``; its new name if it is a shared
        local; whether the text is a copy."""
        value = self._lookup(ref)
        if value is None:
            raise ExtractionError(
                f"function refers to '{ref}', which llvmlite cannot look up in module "
                f"'{self.module.name}' (unnamed or alias)")
        is_function = value.value_kind == llvm.ValueKind.function
        text = str(value)
        constant = not is_function and _is_constant(text)
        if value.linkage == llvm.Linkage.private:
            if is_function or constant:
                return text.strip(), None, True
            raise ExtractionError(
                f"function uses private mutable global '{ref}' of module "
                f"'{self.module.name}', which cannot be shared with a recompiled body")
        local = f"{self.prefix}{ref}" if value.linkage in _LOCAL else None
        shown = _quote(local or ref)
        if is_function:
            if ref.startswith("llvm."):
                return text.strip(), None, False
            decl = _as_external(text.partition("{")[0]).replace("define", "declare", 1)
            decl = _REF.sub(lambda m: shown if _unquote(m.group(0)) == ref else m.group(0),
                            decl, count=1)
            return decl.strip(), local, False
        first = text.splitlines()[0]
        thread_local = re.search(r"thread_local(\(\w+\))?", first)
        tl = thread_local.group(0) + " " if thread_local else ""
        kind = "constant" if constant else "global"
        return f"{shown} = external {tl}{kind} {value.global_value_type}", local, False


def _as_external(header: str) -> str:
    """A define/declare header with its linkage, comdat and section dropped."""
    words = header.split(" ")
    out = [w for i, w in enumerate(words) if not (i < 3 and w in _LINKAGES)]
    text = " ".join(out)
    text = re.sub(r"\s+comdat(\([^)]*\))?", "", text)
    return re.sub(r'\s+section\s+"[^"]*"', "", text)


def _is_constant(text: str) -> bool:
    match = re.search(r"\b(global|constant)\b", text.partition("=")[2])
    return match is not None and match.group(1) == "constant"


def _rename_body(text: str, rename: Callable[[re.Match[str]], str]) -> str:
    """Apply ``rename`` to references in a copied private function (not its own name)."""
    header, brace, rest = text.partition("{")
    return header + brace + _REF.sub(rename, rest)


def _closure(roots: set[str], metadata: dict[str, str]) -> set[str]:
    todo, seen = list(roots), set()
    while todo:
        n = todo.pop()
        if n in seen or n not in metadata:
            continue
        seen.add(n)
        todo.extend(_MD_REF.findall(metadata[n].split("=", 1)[1]))
    return seen
