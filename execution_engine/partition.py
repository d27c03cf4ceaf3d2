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
from dataclasses import dataclass

_LINKAGES = frozenset(
    "private internal available_externally linkonce weak common appending "
    "extern_weak linkonce_odr weak_odr external".split()
)
_LOCAL = frozenset({"private", "internal"})
_NOT_DEFINED = frozenset({"external", "extern_weak", "available_externally"})
_DEF_LINKAGE = {"linkonce": "weak", "linkonce_odr": "weak_odr"}
_VISIBILITY = frozenset({"default", "hidden", "protected"})
_OPEN, _CLOSE = frozenset("([{<"), frozenset(")]}>")
_KINDS = ("global", "constant", "alias", "ifunc")
_SPECIAL_VARS = ("llvm.global_ctors", "llvm.global_dtors", "llvm.used", "llvm.compiler.used")

# References in IR text. Groups: 1 string or comment (skipped), 2 "blockaddress(" prefix,
# 3 global value token without '@', 4 metadata node number, 5 indirectbr.
_SCAN = re.compile(
    r'(;[^\n]*|[%!$c]?"[^"]*")|(blockaddress\(\s*)?@("[^"]*"|[-\w$.]+)|!(\d+)|\b(indirectbr)\b'
)
_TOKEN = re.compile(r'\s+|;[^\n]*|[%@!$c]?"[^"]*"|[%@!$#]?[-\w.$]+|.')
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


