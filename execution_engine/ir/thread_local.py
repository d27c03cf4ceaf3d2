"""Lowering thread-local variables to the engine's per-thread storage.

The JIT linker cannot allocate thread-local storage, so a module whose
object would need it is rewritten (as text; llvmlite cannot replace uses)
before it is compiled again:

* a definition ``@x = thread_local global T init`` becomes the control block
  :mod:`..native.tls_runtime` reads, under the same name and linkage: a
  non-thread-local ``<{ i64 0, i64 size, i64 align, i64 offset, pad, T init }>``
  whose last field is the *initial image* each thread's copy starts from;
* a declaration loses ``thread_local`` (it names the same control block);
* every access becomes a call of ``__ee_tls_address(ptr @x)``, which returns
  the calling thread's copy: a ``llvm.threadlocal.address`` call (LLVM >= 16)
  in place; any other use in a function (clang-14 style direct references,
  constant expressions over the variable) through one call at the top of the
  function's entry block (a function runs on one thread; constant
  expressions over the variable become instructions there too);
* the module gains ``@"__ee.tls.vars.<N>"``, the array of the control blocks
  it defines, which the engine hands to the runtime to free every thread's
  copies when the set is removed.

All of LLVM's TLS models (general-dynamic, local-dynamic, initial-exec,
local-exec) and ``externally_initialized`` map to the same thing.
Refused with :class:`~..errors.ThreadLocalError`, naming the culprit:
a variable's address in a global initializer or an alias (there is no
per-thread constant address), a thread-local alias or ifunc, a constant
expression over a variable that is not a cast or ``getelementptr``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import llvmlite.binding as llvm

from ..errors import ThreadLocalError
from .module_text import NAME, quote, unquote

ADDRESS = "__ee_tls_address"
VARS_PREFIX = "__ee.tls.vars."
_HEADER = 32
_GLOBAL = re.compile(r"^(" + NAME + r") = (.*?)\bthread_local(?:\(\w+\))? (.*)$")
_KIND = re.compile(r"\b(global|constant) ")
_STRING = re.compile(r'(?<![-\w$.@%"\\])[c!]"[^"]*"')
_REF = re.compile(NAME + r"(?![-a-zA-Z$._0-9])")
_INTRINSIC = re.compile(r"\bcall [^@]*@llvm\.threadlocal\.address\.p0\(ptr [^@]*(" + NAME
                        + r")\)(?:\s*#\d+)?")
_CONSTEXPR = re.compile(r"\b(getelementptr(?: inbounds| nuw| nusw| inrange\(-?\d+, ?-?\d+\))*"
                        r"|ptrtoint|inttoptr|bitcast|addrspacecast|trunc) \(")
_BINARY_CONSTEXPR = re.compile(r"\b(add|sub|xor|mul|shl|and|or|icmp|select)(?: nuw| nsw)* \(")
_LABEL = re.compile(r'^(?:[-a-zA-Z$._0-9]+|"[^"]*"):')
_ALIGN = re.compile(r", align \d+")
_counter = itertools.count(1)


@dataclass(frozen=True)
class Lowered:
    """A lowered module's text; ``vars_name``: its control-block array
    (``None`` when it defines no thread-local variable), ``count`` its length."""

    text: str
    vars_name: str | None
    count: int


def lower(module: llvm.ModuleRef, label: str) -> Lowered:
    """``module`` (read, not changed) with its thread-local variables lowered
    (see the module docstring); ``label`` names it in errors."""
    lines = str(module).split("\n")
    names: dict[str, str] = {}  # IR token -> name of every thread-local variable
    for line in lines:
        m = _GLOBAL.match(line)
        if m:
            if re.search(r"\b(alias|ifunc)\b", m.group(2) + m.group(3).split(" ", 1)[0]):
                raise ThreadLocalError(f"{label}: thread-local alias or ifunc {m.group(1)} is "
                                       "not supported by the engine's thread-local storage")
            names[m.group(1)] = unquote(m.group(1))
    if not names:
        return Lowered(str(module), None, 0)
    data = llvm.create_target_data(module.data_layout)
    wanted = set(names.values())
    variables: dict[str, llvm.ValueRef] = {}
    for gv in module.global_variables:  # by name: llvmlite's lookup skips locals
        if gv.name in wanted:
            variables[gv.name] = gv
            if len(variables) == len(wanted):
                break
    defined: list[str] = []
    out: list[str] = []
    in_function = False
    body: list[str] = []
    for line in lines:
        if in_function:
            body.append(line)
            if line == "}":
                out += _lower_function(body, names, label)
                body, in_function = [], False
            continue
        if line.startswith("define "):
            in_function, body = True, [line]
            if line.endswith("}"):  # cannot happen for a printed body; be safe
                out.append(line)
                in_function = False
            continue
        m = _GLOBAL.match(line)
        if m:
            token = m.group(1)
            var = variables[names[token]]
            if var.is_declaration:
                out.append(f"{token} = {m.group(2)}{m.group(3)}")
            else:
                if _uses(m.group(3), names):
                    _refuse_initializer(token, line, names, label)
                out.append(_control_block(m, var, data))
                defined.append(token)
            continue
        if line.startswith("@") and _uses(line.split("=", 1)[-1], names):
            token = line.split(" ", 1)[0]
            if token not in ("@llvm.used", "@llvm.compiler.used"):  # these keep the block
                _refuse_initializer(token, line, names, label)
        out.append(line)
    vars_name = None
    if defined:
        vars_name = f"{VARS_PREFIX}{next(_counter)}"
        items = ", ".join(f"ptr {t}" for t in defined)
        out.append(f"{quote(vars_name)} = global [{len(defined)} x ptr] [{items}]")
    out.append(f"declare ptr @{ADDRESS}(ptr) nounwind")
    return Lowered("\n".join(out), vars_name, len(defined))


def _refuse_initializer(token: str, line: str, names: dict[str, str], label: str) -> None:
    used = ", ".join(sorted(_uses(line.split("=", 1)[-1], names)))
    raise ThreadLocalError(
        f"{label}: {token} refers to thread-local {used} in its initializer or aliasee; "
        "a thread-local variable has no constant address")


def _outside_strings(line: str, substitute: Callable[[str], str]) -> str:
    """``substitute(text)`` applied to the parts of ``line`` outside string constants."""
    parts = []
    at = 0
    for m in _STRING.finditer(line):
        parts.append(substitute(line[at:m.start()]))
        parts.append(m.group(0))
        at = m.end()
    parts.append(substitute(line[at:]))
    return "".join(parts)


def _uses(text: str, names: dict[str, str]) -> set[str]:
    return {t for t in _REF.findall(_STRING.sub('""', text)) if t in names}


def _control_block(m: re.Match[str], var: llvm.ValueRef, data: llvm.TargetData) -> str:
    token, prefix, rest = m.group(1), m.group(2), m.group(3)
    prefix = re.sub(r"\b(?:local_)?unnamed_addr ", "", prefix)
    kind = _KIND.search(rest)
    assert kind is not None, rest
    value_type = var.global_value_type
    type_text = str(value_type).split(" = type ", 1)[0]
    after = rest[kind.end():]
    if not after.startswith(type_text):
        raise ThreadLocalError(f"cannot read the definition of thread-local {token}")
    init, attrs = _split_initializer(after[len(type_text):].lstrip())
    size = data.get_abi_size(value_type)
    align = data.get_abi_alignment(value_type)
    explicit = _ALIGN.search(attrs)
    if explicit:
        align = max(align, int(explicit.group(0).split()[-1]))
    offset = -(-_HEADER // align) * align
    pad = offset - _HEADER
    block_type = f"<{{ i64, i64, i64, i64, [{pad} x i8], {type_text} }}>"
    block_init = (f"<{{ i64 0, i64 {size}, i64 {align}, i64 {offset}, [{pad} x i8] "
                  f"zeroinitializer, {type_text} {init} }}>")
    if "common " in prefix:  # common needs a zero initializer; the block is not zero
        prefix = prefix.replace("common ", "weak ")
    block_align = f", align {max(align, 8)}"
    attrs = _ALIGN.sub(block_align, attrs) if explicit else _with_align(attrs, block_align)
    return f"{token} = {prefix}{kind.group(1).replace('constant', 'global')} {block_type} " \
           f"{block_init}{attrs}"


def _with_align(attrs: str, align: str) -> str:
    at = attrs.find(", !")
    return attrs + align if at < 0 else attrs[:at] + align + attrs[at:]


def _split_initializer(text: str) -> tuple[str, str]:
    """``init, attrs`` from the text after a definition's type."""
    depth = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = text.index('"', i + 1)
        elif c in "([{<":
            depth += 1
        elif c in ")]}>":
            depth -= 1
        elif c == "," and depth == 0:
            return text[:i].strip(), text[i:]
        i += 1
    return text.strip(), ""


def _lower_function(body: list[str], names: dict[str, str], label: str) -> list[str]:
    """One function's lines, accesses lowered."""
    direct: dict[str, str] = {}  # variable token -> local holding this thread's address
    hoisted: list[str] = []
    result = [body[0]]
    for line in body[1:]:
        m = _INTRINSIC.search(line)
        if m:
            line = line[:m.start()] + f"call ptr @{ADDRESS}(ptr {m.group(1)})" + line[m.end():]
            result.append(line)
            continue
        masked = _STRING.sub('""', line)
        if not _uses(masked, names):
            result.append(line)
            continue
        line = _outside_strings(line, lambda text: _REF.sub(
            lambda r: _local(r.group(0), names, direct), text))
        line = _hoist_constexprs(line, hoisted, label)
        result.append(line)
    if not direct:
        return result
    calls = [f"  {local} = call ptr @{ADDRESS}(ptr {token})" for token, local in direct.items()]
    at = 2 if len(body) > 1 and _LABEL.match(body[1]) else 1
    return result[:at] + calls + hoisted + result[at:]


def _local(token: str, names: dict[str, str], direct: dict[str, str]) -> str:
    if token not in names:
        return token
    local = direct.get(token)
    if local is None:
        local = direct[token] = f'%"__ee.tls.{len(direct)}"'
    return local


def _hoist_constexprs(line: str, hoisted: list[str], label: str) -> str:
    """Constant expressions over a variable's local become instructions in
    the entry block (innermost first); the line refers to their results."""
    while True:
        found = None
        for m in _CONSTEXPR.finditer(line):
            end = _closing(line, m.end() - 1)
            inner = line[m.end():end]
            if '%"__ee.tls.' in inner and not any(
                    '%"__ee.tls.' in inner[n.end():_closing(inner, n.end() - 1)]
                    for n in _CONSTEXPR.finditer(inner)):
                found = (m, end)
                break
        if found is None:
            for m in _BINARY_CONSTEXPR.finditer(line):
                end = _closing(line, m.end() - 1)
                if '%"__ee.tls.' in line[m.end():end]:
                    raise ThreadLocalError(
                        f"{label}: the constant expression '{line[m.start():end + 1]}' over a "
                        "thread-local variable is not supported")
            return line
        m, end = found
        local = f'%"__ee.tls.h{len(hoisted)}"'
        hoisted.append(f"  {local} = {m.group(1)} {line[m.end():end]}")
        line = line[:m.start()] + local + line[end + 1:]


def _closing(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return len(text) - 1
