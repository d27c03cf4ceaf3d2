"""Partitions of a module, cut on demand: one function, or all its variables.

Lazy compilation and single-function recompilation both need a function of
a module as a module of its own, in time proportional to that function.
What llvmlite offers for that is text: ``str(value)`` of one function, or of
the whole module. Printing one value costs time in proportion to the *whole*
module (LLVM numbers the module's globals first and, for a function, walks
every instruction of every function for metadata: 0.03 ms on a 100-function
module, 0.25 ms on 5,000 small functions, 12-60 ms on SQLite's 1,600
functions with TBAA metadata); printing the module once costs about as much
as 30-800 such prints. So a :class:`ModuleView` keeps every text it prints
and, for a module that does not change (``mutable=False``: the engine owns
it), prints values one by one only while their total cost stays below
:data:`PRINT_BUDGET` (and while no one print takes :data:`SLOW_PRINT`);
past that it prints the module once and indexes the
text of every function, declaration and variable by name (one pass). After
that every lookup of a text is a slice of that print: a lazy step costs time
proportional to the function or variable it handles.

A module that may change under the view (``mutable=True``: a module the user
re-optimises in place before ``recompile_and_relink_function``) has no index.
llvmlite offers no print of one function whose cost does not depend on the
module (a block prints without the function's header and still numbers the
module's globals), so a function's text is printed once and kept with a
*fingerprint* of the function: the addresses of its instructions and of
their operands, in order, with its linkage, visibility and attribute sets,
read through llvmlite's C functions in time proportional to the function
(about 5 us per instruction). A later request prints again only if the
fingerprint changed. Any change that creates, deletes, moves or rewires an
instruction changes it (LLVM passes replace or re-point instructions); what
it does not see is a change made in place to an instruction that keeps all
its operands - wrap/exact flags, fast-math flags, a comparison predicate, an
alignment or a call site's attributes changed alone. LLVM's passes make such
changes as refinements (the old text is then a correct, less optimised body)
or together with other changes in the same function. Declarations of other
functions keep the text first printed (their types cannot change in an
engine; an attribute a pass adds later is only missed as an optimisation).

A partition is module text that defines its function and declares what the
function refers to:

* external functions and variables keep their names (the engine resolves
  them: functions to their stubs);
* internal and private symbols get a *shared name*, ``prefix + name``
  (``prefix + "anon.N"`` for the unnamed ``@N``), so every partition of the
  module agrees on one definition; in ``"lazy"`` mode their definitions get
  the same names, with hidden visibility;
* in ``"recompile"`` mode (one function recompiled out of an already
  compiled module) private constants and private functions are copied into
  the partition instead (they have no name in the original object); a
  private mutable variable cannot be shared and is an error;
* attribute groups are written out in place (``#N`` becomes the attributes),
  call-site attribute groups and all metadata attachments are dropped (they
  only carry optimisation and debug hints), and so are debug records;
* aliases, which llvmlite cannot look up, are replaced by what they alias
  (found in the module's text).

``globals_partition`` defines every variable of the module (lazy mode: they
live in one partition, linked once); a function whose block addresses a
variable's initializer takes is defined there too.

(This file holds the partitioning rules and the text store they read, which
is why it is longer than most: the two change together.)

Why this file is long: it is one class whose text rules (shared names,
declarations, attribute groups, aliases, block addresses, comdats) must
agree with one another; the module index and fingerprints live in
:mod:`.module_text`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import llvmlite.binding as llvm

from ..errors import ExecutionEngineError
from .module_text import NAME as _NAME
from .module_text import REF as _REF
from .module_text import ModuleIndex, fingerprint, quote, unquote

# String constants and metadata strings (never part of a quoted name): no references.
_STRING = re.compile(r'(?<![-\w$.@%"\\])[c!]"[^"]*"')
_ATTR_GROUP = re.compile(r"\s#\d+\b")
_HEADER_ATTR_GROUP = re.compile(r"#\d+\b")
_MD_ATTACHMENT = re.compile(r",?\s*!(?:[-a-zA-Z$._][-a-zA-Z$._0-9]*)\s+!(?:\d+|\{[^}]*\})")
_DBG_RECORD = re.compile(r"^\s*#dbg_\w+\(.*$\n?", re.M)
_HINT_CALL = re.compile(r"^\s*(?:tail\s+)?call void @llvm\.[\w.]+\(.*metadata !\d.*$\n?", re.M)
_MD_OPERAND = re.compile(r"metadata !\d")
_BLOCKADDRESS = re.compile(r"blockaddress\(\s*(" + _NAME + r")")
_COMDAT = re.compile(r"(?:,\s*|\s+)comdat(?:\(\$[^)]*\))?")
_LINKAGE = re.compile(r"^(define|declare)\s+((?:private|internal|linkonce_odr|linkonce|weak_odr|"
                      r"weak|available_externally|common|extern_weak|external)\s+)?")
_VAR_LINKAGE = re.compile(r"^(@\S+|@\"[^\"]*\")\s*=\s*((?:private|internal|linkonce_odr|linkonce|"
                          r"weak_odr|weak|common|external|appending|extern_weak)\s+)?")
_LOCAL = (llvm.Linkage.internal, llvm.Linkage.private)
_TYPE_REF = re.compile(r'%(?:"(?:[^"\\]|\\.)*"|[-a-zA-Z$._][-a-zA-Z$._0-9]*)')
# A partition taking more functions than this prints the module once instead.
_PRINT_MODULE_ABOVE = 32
_KIND = re.compile(r"=\s*(?:[a-z_]+(?:\(\w*\))?\s+)*?(global|constant)\s")
# The resolver saves xmm registers and the C convention's argument registers only.
_WIDE_VECTOR = re.compile(r"<\s*(\d+)\s*x\s*(i\d+|half|bfloat|float|double|ptr)\s*>")
_BITS = {"half": 16, "bfloat": 16, "float": 32, "double": 64, "ptr": 64}
_UNFORWARDABLE_CC = re.compile(r"^define\s+(?:\w+\s+)*?(preserve_mostcc|preserve_allcc|"
                               r"cxx_fast_tlscc|ghccc|x86_regcallcc|x86_vectorcallcc|anyregcc|"
                               r"cc\s*\d+)\b")

PRINT_BUDGET = 0.05
"""Seconds of one-value prints after which an unchanging module is printed
whole, once, and indexed (module prints cost 30-800 one-value prints)."""

SLOW_PRINT = 0.00015
"""Seconds one value print may take before its module is indexed at once: a
module that big (about 3,000 small functions) would otherwise make each
first call pay several such prints until the budget is spent."""


class ExtractionError(ExecutionEngineError):
    """A function or variable cannot be cut out on its own (the message says why)."""


@dataclass
class Partition:
    """Module text, the functions it defines, and the shared (renamed) locals it
    refers to without defining: shared name -> original name."""

    text: str
    defines: list[str] = field(default_factory=list)
    shared: dict[str, str] = field(default_factory=dict)


class ModuleView:
    """On-demand partitions of one module. The module is borrowed, never changed.

    ``mutable``: the module may change between calls (the user re-optimises it
    in place before recompiling a function); then nothing is cached by name
    and a function's text is reprinted when its fingerprint changes (see the
    module's docstring). Default: true in ``"recompile"`` mode.

    Not thread-safe: the engine serialises calls.
    """

    def __init__(self, module: llvm.ModuleRef, *, prefix: str, mode: str = "lazy",
                 mutable: bool | None = None):
        if mode not in ("lazy", "recompile"):
            raise ValueError(f"unknown mode {mode!r}")
        self.module = module
        self.prefix = prefix
        self.mode = mode
        self.mutable = mode == "recompile" if mutable is None else mutable
        self._variables: dict[str, llvm.ValueRef] | None = None
        self._unnamed: dict[str, llvm.ValueRef] | None = None
        self._aliases: dict[str, str] | None = None
        self._types: dict[str, str] | None = None  # named struct type -> its definition
        self._declarations: dict[str, str] = {}
        self._lookups: dict[str, llvm.ValueRef | None] = {}
        self._locals: dict[int, bool] = {}
        # Texts of an unchanging module: one-value prints until the budget is
        # spent, then the index of one module print.
        self._index: ModuleIndex | None = None
        self._printed: dict[str, str] = {}
        self._print_seconds = 0.0
        # A mutable module's function texts: name -> (fingerprint, raw, definition texts).
        self._fresh: dict[str, tuple[int, str, dict[bool, str]]] = {}
        self._constants: dict[tuple[int, str], str] = {}

    # -- lookups -------------------------------------------------------------

    def lookup(self, name: str) -> llvm.ValueRef | None:
        """The function or variable called ``name`` (``"N"`` for ``@N``; a symbol
        name may also stand for an IR name with the "do not mangle" prefix).
        Cached unless the module is mutable."""
        if not self.mutable:
            if name not in self._lookups:
                self._lookups[name] = self._find(name)
            return self._lookups[name]
        return self._find(name)

    def _find(self, name: str) -> llvm.ValueRef | None:
        for candidate in (name, "\x01" + name):
            try:
                return self.module.get_function(candidate)
            except NameError:
                pass
        # llvmlite's get_global_variable does not find internal variables, so
        # they are indexed: once for an unchanging module; again on a miss
        # for a mutable one (the user may have transformed the module since).
        if self._variables is None or (self.mutable and name not in self._variables):
            self._variables = {g.name: g for g in self.module.global_variables if g.name}
        value = self._variables.get(name) or self._variables.get("\x01" + name)
        if value is None and name.isdigit():
            value = self._unnamed_values().get(name)
        return value

    def _unnamed_values(self) -> dict[str, llvm.ValueRef]:
        if self._unnamed is None:
            unnamed = [v for v in (*self.module.global_variables, *self.module.functions)
                       if not v.name]
            self._unnamed = {str(i): v for i, v in enumerate(unnamed)}
        return self._unnamed

    def alias_target(self, name: str) -> str | None:
        """The constant an alias stands for (``"ptr @g"`` style text), or None."""
        if self._aliases is None:
            self._aliases = self.index().aliases()
        return self._aliases.get(name)

    def is_local(self, value: llvm.ValueRef) -> bool:
        if self.mutable:
            return value.linkage in _LOCAL or not value.name
        key = value.__hash__()  # the LLVM value's address (the module does not change)
        local = self._locals.get(key)
        if local is None:
            local = self._locals[key] = value.linkage in _LOCAL or not value.name
        return local

    def shared_name(self, value: llvm.ValueRef, name: str) -> str:
        """The name every partition uses for ``value``."""
        if not self.is_local(value):
            return name
        return self.prefix + (name if value.name else "anon." + name)

    def defined_function(self, name: str) -> llvm.ValueRef | None:
        value = self.lookup(name)
        if value is None or value.value_kind != llvm.ValueKind.function:
            return None
        if value.is_declaration or value.linkage == llvm.Linkage.available_externally:
            return None
        return value

    def forwardable(self, name: str) -> bool:
        """Whether a lazy stub can forward calls to function ``name`` through the
        resolver (true for a name this module does not define)."""
        value = self.defined_function(name)
        if value is None:
            return True
        for count, element in _WIDE_VECTOR.findall(str(value.global_value_type)):
            bits = _BITS.get(element) or int(element[1:])
            if int(count) * bits > 128:
                return False
        header = self._header(value, value.name or name)
        return _UNFORWARDABLE_CC.search(header) is None

    def text_size(self, name: str) -> int:
        """About how long function or variable ``name``'s text is (0: unknown);
        a slice of the module's index once it has one, else its print."""
        value = self.lookup(name)
        if value is None:
            return 0
        if self._index is not None:
            text = self._index.get(value.name or name)
            if text is not None:
                return len(text)
        return len(self._text(value, value.name or name))

    # -- texts ---------------------------------------------------------------

    def index(self) -> ModuleIndex:
        """The module printed once and indexed (printed again for a mutable module)."""
        if self._index is None or self.mutable:
            index = ModuleIndex(str(self.module))
            if self.mutable:
                return index
            self._index = index
            self._printed.clear()
        return self._index

    def _text(self, value: llvm.ValueRef, name: str) -> str:
        """The printed text of ``value`` (IR name ``name``)."""
        if self._index is not None:
            text = self._index.get(name)
            if text is not None:
                return text
        text = self._printed.get(name)
        if text is not None:
            return text
        start = time.perf_counter()
        text = str(value)
        if self.mutable:
            return text
        seconds = time.perf_counter() - start
        self._print_seconds += seconds
        self._printed[name] = text
        if (self._print_seconds > PRINT_BUDGET or seconds > SLOW_PRINT) and self._index is None:
            self.index()
        return text

    def _header(self, value: llvm.ValueRef, name: str) -> str:
        """A function's ``define`` or ``declare`` line (without the opening brace)."""
        header = self._index.header(name) if self._index is not None else None
        if header is None:
            text = (self._fresh_text(value, name)[0] if self.mutable
                    and value.value_kind == llvm.ValueKind.function else self._text(value, name))
            header = _split_definition(text)[0]
        return header.rstrip().removesuffix("{").rstrip()

    def _fresh_text(self, value: llvm.ValueRef,
                    name: str) -> tuple[str, dict[bool, str]]:
        """A mutable module's current text of function ``value`` (printed again
        only if its fingerprint changed) and its cache of definition texts."""
        current = fingerprint(value)
        entry = self._fresh.get(name)
        if entry is None or current is None or entry[0] != current:
            entry = (current if current is not None else -1, str(value), {})
            if current is not None:
                self._fresh[name] = entry
        return entry[1], entry[2]

    # -- partitions ----------------------------------------------------------

    def function_partition(self, name: str) -> Partition:
        """A module defining function ``name`` (its name as in the IR; ``"N"`` for ``@N``)."""
        return self.partition([name])

    def partition(self, functions: Iterable[str], variables: Iterable[str] = (), *,
                  callees: Callable[[str], bool] | None = None) -> Partition:
        """A module defining ``functions`` and ``variables`` (IR names), declaring
        everything else they refer to. With ``callees``, the functions the first
        one calls (defined in this module, and for which ``callees(name)`` is
        true) are defined too."""
        part = Partition("")
        texts: list[str] = []
        own: set[str] = set()
        functions = list(functions)
        for name in functions:
            value = self.defined_function(name)
            if value is None:
                raise ExtractionError(
                    f"module '{self.module.name}' does not define function '{name}'")
            name = value.name or name  # the IR spelling (e.g. with a "do not mangle" prefix)
            part.defines.append(self.shared_name(value, name))
            texts.append(self._definition_text(value, name))
            own.add(name)
            if callees is not None and len(texts) == 1:
                for token in sorted(set(_REF.findall(_STRING.sub('""', texts[0])))):
                    ref = unquote(token)
                    if ref not in functions and self.defined_function(ref) is not None and (
                            callees(ref)):
                        functions.append(ref)
                if len(functions) > _PRINT_MODULE_ABOVE and not self.mutable:
                    self.index()
        for name in variables:
            var = self.lookup(name)
            if var is None or var.value_kind != llvm.ValueKind.global_variable:
                raise ExtractionError(
                    f"module '{self.module.name}' does not define variable '{name}'")
            texts.append(self._variable_definition(var, name))
            own.add(name)
        texts = self._resolve_references(texts, part, own=own)
        return self._assemble(part, texts)

    def globals_partition(self) -> Partition | None:
        """A module defining every variable (and the functions their initializers
        take block addresses of); None if there are none."""
        definitions = []
        unnamed = 0  # unnamed variables are numbered first, in module order
        for var in self.module.global_variables:
            name = var.name
            if not name:
                name, unnamed = str(unnamed), unnamed + 1
            if var.is_declaration or var.linkage == llvm.Linkage.available_externally:
                continue
            definitions.append((var, name))
        if not definitions:
            return None
        part = Partition("")
        texts = []
        own: set[str] = set()
        for var, name in definitions:
            own.add(name)
            texts.append(self._variable_definition(var, name))
            for target in _BLOCKADDRESS.findall(texts[-1]):
                fn_name = unquote(target)
                fn = self.defined_function(fn_name)
                if fn is not None and fn_name not in own:
                    own.add(fn_name)
                    part.defines.append(self.shared_name(fn, fn_name))
                    texts.append(self._definition_text(fn, fn_name))
        texts = self._resolve_references(texts, part, own=own)
        return self._assemble(part, texts)

    # -- building blocks -------------------------------------------------------

    def _definition_text(self, value: llvm.ValueRef, name: str, *, copy: bool = False) -> str:
        """The function's definition as partition text; ``copy``: a private copy
        (keeps its linkage) rather than the partition's own definition."""
        done: dict[bool, str] | None = None
        if self.mutable:
            raw, done = self._fresh_text(value, name)
        else:
            raw = self._text(value, name)
        header, body = self._split(raw, name, done)
        header = _HEADER_ATTR_GROUP.sub(_attributes(value), header)
        header = header if copy else self._relink(header, value)
        return header.strip() + " {\n" + body

    def _split(self, raw: str, name: str, done: dict[bool, str] | None) -> tuple[str, str]:
        """``(header, body)`` of a printed function with hints and metadata removed
        (kept in ``done`` for a mutable module's function: the same raw text)."""
        if done is not None and True in done:
            return done[False], done[True]
        text = _HINT_CALL.sub("", _DBG_RECORD.sub("", raw))
        if _MD_OPERAND.search(text):
            raise ExtractionError(f"function '{name}' passes metadata nodes to a call; it cannot "
                                  "be compiled apart from its module")
        header, body = _split_definition(text)
        header = _MD_ATTACHMENT.sub("", _COMDAT.sub("", header))
        body = _MD_ATTACHMENT.sub("", _ATTR_GROUP.sub("", body))
        if done is not None:
            done[False], done[True] = header, body
        return header, body

    def _relink(self, header: str, value: llvm.ValueRef) -> str:
        """Definition linkage in a partition: shared locals become hidden externals;
        link-once definitions become weak so code generation keeps them."""
        linkage = value.linkage
        if self.is_local(value):
            return _LINKAGE.sub(lambda m: m.group(1) + " hidden ", header, count=1)
        if linkage in (llvm.Linkage.linkonce_any, llvm.Linkage.linkonce_odr):
            return _LINKAGE.sub(lambda m: m.group(1) + " weak" + (
                "_odr " if linkage == llvm.Linkage.linkonce_odr else " "), header, count=1)
        return header

    def _variable_text(self, var: llvm.ValueRef, name: str) -> str:
        return (str(var) if self.mutable else self._text(var, name)).strip()

    def _variable_definition(self, var: llvm.ValueRef, name: str) -> str:
        text = _MD_ATTACHMENT.sub("", _COMDAT.sub("", self._variable_text(var, name)))
        if self.is_local(var):  # renamed with the other shared locals
            text = _VAR_LINKAGE.sub(lambda m: f"{m.group(1)} = hidden ", text, count=1)
        return text

    def _declaration(self, value: llvm.ValueRef, name: str) -> str:
        # A mutable module's symbol may have become local since (an internalising
        # pass): its declaration then names the shared name.
        key = name if not self.mutable else f"{name}\0{self.is_local(value)}"
        text = self._declarations.get(key)
        if text is None:
            text = self._declarations[key] = self._make_declaration(value, name)
        return text

    def _make_declaration(self, value: llvm.ValueRef, name: str) -> str:
        shown = quote(self.shared_name(value, name))
        if value.value_kind == llvm.ValueKind.function:
            header = _MD_ATTACHMENT.sub("", _COMDAT.sub("", self._header(value, name)))
            header = _HEADER_ATTR_GROUP.sub(_attributes(value), header)
            header = _LINKAGE.sub("declare ", header, count=1)
            header = re.sub(r"\s+(personality|prefix|prologue)\s+ptr\s+" + _NAME, "", header)
            header = re.sub(r'\s+section\s+"[^"]*"', "", header)
            return _REF.sub(lambda m: shown, header, count=1).strip()
        first = self._variable_text(value, name).split("\n", 1)[0]
        thread_local = re.search(r"thread_local(\(\w+\))?", first)
        tl = thread_local.group(0) + " " if thread_local else ""
        kind = "constant" if _is_constant(first) else "global"
        # A named struct type prints as its definition ("%T = type {...}").
        value_type = str(value.global_value_type).split(" = type ", 1)[0]
        return f"{shown} = external {tl}{kind} {value_type}"

    def _resolve_references(self, texts: list[str], part: Partition, own: set[str]) -> list[str]:
        """Declare or copy what ``texts`` refer to; rename shared locals; return
        the final texts (definitions first, then declarations and copies)."""
        renames: dict[str, str] = {}
        extra: list[str] = []
        seen = set(own)
        pending = list(texts)
        while pending:
            for token in set(_REF.findall(_STRING.sub('""', pending.pop()))):
                name = unquote(token)
                if name in seen:
                    continue
                seen.add(name)
                added, scan = self._reference(name, token, renames, part)
                if added is not None:
                    extra.append(added)
                if scan is not None:
                    pending.append(scan)
        for name in own:
            value = self.lookup(name)
            if value is not None and self.is_local(value):
                renames[quote(name) if not name.isdigit() else "@" + name] = quote(
                    self.shared_name(value, name))
        if not renames:
            return texts + extra

        def rename(m: re.Match[str]) -> str:
            return renames.get(m.group(0), m.group(0))
        # An alias's target may itself name a shared local.
        renames = {token: _REF.sub(rename, value) for token, value in renames.items()}
        return [_sub_outside_strings(rename, t) for t in texts + extra]

    def _reference(self, name: str, token: str, renames: dict[str, str],
                   part: Partition) -> tuple[str | None, str | None]:
        """Text to add for a reference (a declaration or a copy), and text whose
        own references must be resolved in turn (a copy, an alias's target)."""
        value = self.lookup(name)
        if value is None:
            target = self.alias_target(name)
            if target is None:
                raise ExtractionError(f"'{name}' is referenced but not found in module "
                                      f"'{self.module.name}'")
            # "ptr @g" or a constant expression: use it in place of the alias.
            renames[token] = target.split(" ", 1)[1] if target.startswith("ptr ") else target
            return None, target
        is_function = value.value_kind == llvm.ValueKind.function
        if self.is_local(value):
            if self.mode == "recompile" and value.linkage == llvm.Linkage.private:
                if is_function:
                    copy = self._definition_text(value, name, copy=True)
                    return copy, copy
                text = self._constant_text(value, name)
                if not _is_constant(text):
                    raise ExtractionError(
                        f"private mutable variable '{name}' of module '{self.module.name}' "
                        "cannot be shared with a recompiled function")
                copy = _MD_ATTACHMENT.sub("", _COMDAT.sub("", text))
                return copy, copy
            shared = self.shared_name(value, name)
            renames[token] = quote(shared)
            part.shared[shared] = name
        if name.startswith("llvm.") and is_function:  # intrinsics keep their attributes
            intrinsic = self._declarations.get(name)
            if intrinsic is None:
                intrinsic = self._declarations[name] = _HEADER_ATTR_GROUP.sub(
                    _attributes(value), self._header(value, name))
            return intrinsic, None
        return self._declaration(value, name), None

    def _constant_text(self, value: llvm.ValueRef, name: str) -> str:
        """A private constant's text (a mutable module's: kept per LLVM value; a
        constant's initializer does not change)."""
        if not self.mutable:
            return self._variable_text(value, name)
        key = (value.__hash__(), name)
        text = self._constants.get(key)
        if text is None:
            text = self._constants[key] = str(value).strip()
        return text

    def _assemble(self, part: Partition, texts: list[str]) -> Partition:
        head = []
        if self.module.triple:
            head.append(f'target triple = "{self.module.triple}"')
        if self.module.data_layout:
            head.append(f'target datalayout = "{self.module.data_layout}"')
        part.text = "\n".join([*head, *self._used_types(texts), *texts]) + "\n"
        return part

    def _used_types(self, texts: list[str]) -> list[str]:
        """Definitions of the named struct types ``texts`` use, and of those these
        use in turn (not all the module's: the partition's parse would grow with it)."""
        if self._types is None:
            types = {}  # assigned once complete: a partition cut meanwhile sees all or none
            for text in map(str, self.module.struct_types):
                if text.startswith("%"):
                    types[text.split(" = type ", 1)[0]] = text
            self._types = types
        if not self._types:
            return []
        used: dict[str, str] = {}
        pending = texts
        while pending:
            found = []
            for text in pending:
                for token in set(_TYPE_REF.findall(text)):
                    definition = self._types.get(token)
                    if definition is not None and token not in used:
                        used[token] = definition
                        found.append(definition.split(" = type ", 1)[1])
            pending = found
        return list(used.values())


def _sub_outside_strings(rename: Callable[[re.Match[str]], str], text: str) -> str:
    """Apply ``rename`` to the references in ``text``, leaving string constants alone."""
    out, last = [], 0
    for m in _STRING.finditer(text):
        out.append(_REF.sub(rename, text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_REF.sub(rename, text[last:]))
    return "".join(out)


def _split_definition(text: str) -> tuple[str, str]:
    """``(header, body)`` of a printed function: the header is its ``define``
    (or ``declare``) line without the opening brace (a literal struct type
    may contain braces, the line's last ``{`` opens the body)."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(("define", "declare")):
            head = line.rstrip()
            if head.endswith("{"):
                return head[:-1].rstrip(), "".join(lines[i + 1:])
            return head, ""
    raise ExtractionError(f"unexpected function text: {text[:200]!r}")


def _attributes(value: llvm.ValueRef) -> str:
    """The function attributes that a ``#N`` group stands for, written out.

    llvmlite lists the function's attribute set first (return and parameter
    attributes, which the header already spells out, may follow)."""
    for attributes in value.attributes:
        return attributes.decode()
    return ""


def _is_constant(definition: str) -> bool:
    m = _KIND.search(definition.splitlines()[0])
    return m is not None and m.group(1) == "constant"


