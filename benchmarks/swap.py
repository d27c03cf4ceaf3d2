"""Swapping one function among N: what a hot-swap costs, and whether it stays flat.

For generated modules of N functions (:class:`benchmarks.common.ChainModule`,
``f<k>`` calls ``f<k-1>`` and updates its global ``g<k>``) one function in
the middle, ``f<N/2>``, is replaced over and over. The swapped function is
the same (a fixed generated body) at every N, so only N changes between
rows. Measured side by side, interleaved swap by swap, CPU time
(``time.process_time``), medians:

* floor: compiling that function alone (a module holding only its definition
  plus declarations of ``g<k>`` and ``f<k-1>``: ``tm.emit_object``) + linking it
  alone (``llvm.create_lljit_compiler(tm)`` + ``JITLibraryBuilder()
  .add_object_img(obj).import_symbol(...).export_symbol(...).link(...)``, the
  resource closed afterwards) + one pointer store (ctypes). The LLJIT is
  disposed outside the timed region;
* engine, recompile: ``engine.recompile_and_relink_function("f<k>")``;
* engine, update: ``engine.update_module(m)`` where ``m`` is a freshly parsed
  copy of the floor's module; the previous update module is removed with
  ``remove_module`` *after* the timed call (timed separately);
* MCJIT relink: what stock llvmlite MCJIT must do to replace one function
  when every function has a module of its own and a perfect object cache
  holds every other module's object: a new engine with all N modules
  (parsed outside the timed region), the changed module compiled, the rest
  from the cache, ``finalize_object`` and a lookup. Three ways:

  - *stock*: llvmlite's ``set_object_cache`` hooks, as shipped;
  - *O(1) lookup*: the same hooks with llvmlite's module search per callback
    (``ExecutionEngine._find_module_ptr``, a linear scan of all modules, so
    quadratic in N overall) replaced by a dict lookup - MCJIT's own cost;
  - *add_object_file*: the changed module plus the N-1 cached objects added
    with ``add_object_file`` (no Python callback at all) - the cheapest
    MCJIT relink there is.

Every engine is created with ``grace_period=0`` (replaced code is freed at
once) for the redirection policies ``"direct"`` (the default), ``"stub"``
and ``"single"``. Results are checked: every engine's code is called through
ctypes and compared with a Python model of the generated code (started from
the globals' current values); the update path is finally checked with a
*different* body for ``f<k>``, so callers are seen to reach the new code.

Run: ``python -m benchmarks.swap [--quick] [--sizes 100,1000] [--no-write]``.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import llvmlite.binding as llvm

import execution_engine

from .common import ChainModule, cpu_time, environment_line, parse, target_machine
from .report import FIGURES, RESULTS, markdown_table, update_section

TITLE = "Swapping one function among N"
POLICIES = ("direct", "stub", "single")


@dataclass(frozen=True)
class Plan:
    swaps: int  # timed swaps per engine (after one warm-up swap)
    mcjit: int  # repetitions of the cheap MCJIT variants
    stock: int  # repetitions of stock llvmlite's object-cache relink (quadratic in N)


SIZES = {100: Plan(30, 15, 7), 1000: Plan(30, 7, 3), 5000: Plan(30, 3, 1)}
QUICK_SIZES = {100: Plan(8, 3, 2), 1000: Plan(8, 2, 1)}
BAR_FLOOR = 1.3  # engine / floor
BAR_FLAT = 0.25  # engine(N) within +-25% of engine(100)
# The swapped body: the same at every N (taken from a generated module of its own).
FIXED_SPEC = ChainModule(7, seed=11).specs[3]
VARIANT_SPEC = ChainModule(7, seed=13).specs[5]  # the different body of the final check


# -- the modules ------------------------------------------------------------------


class SwapChain:
    """A :class:`ChainModule` of ``n`` functions whose ``f<n/2>`` has the fixed body."""

    def __init__(self, n: int):
        chain = ChainModule(n)
        self.k = n // 2
        chain.specs[self.k] = FIXED_SPEC
        chain.ir = chain._emit()
        self.chain = chain
        variant = copy.copy(chain)
        variant.specs = list(chain.specs)
        variant.specs[self.k] = VARIANT_SPEC
        variant.ir = variant._emit()
        self.variant = variant
        self.name = f"f{self.k}"

    @property
    def n(self) -> int:
        return self.chain.n

    @staticmethod
    def _definition(chain: ChainModule, j: int) -> str:
        start = chain.ir.index(f"define i64 @f{j}(")
        return chain.ir[start:chain.ir.index("\n}\n", start) + 3]

    def single_text(self, *, variant: bool = False) -> str:
        """The swapped function alone, with declarations of what it references."""
        k = self.k
        return (f"@g{k} = external global i64\ndeclare i64 @f{k - 1}(i64)\n"
                + self._definition(self.variant if variant else self.chain, k))

    def module_text(self, j: int) -> str:
        """Module ``m<j>`` of the one-function-per-module split (MCJIT relink)."""
        spec = self.chain.specs[j]
        decl = f"declare i64 @f{j - 1}(i64)\n" if j else ""
        return f"@g{j} = global i64 {spec.global_init}\n{decl}" + self._definition(self.chain, j)

    def split_modules(self) -> list[llvm.ModuleRef]:
        modules = []
        for j in range(self.n):
            m = llvm.parse_assembly(self.module_text(j))
            m.name = f"m{j}"
            modules.append(m)
        return modules


_FN = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)


# -- checking results ---------------------------------------------------------------


def check(model: ChainModule, function_address: Callable[[str], int],
          global_address: Callable[[str], int]) -> str | None:
    """Call the JIT'd code as ``model.calls()`` says, then ``f<N/2+1>(7)`` (a JIT'd
    caller of the swapped function), starting from the globals' current values;
    compare results and the globals afterwards with the model. None if all match."""
    addresses = [global_address(f"g{j}") for j in range(model.n)]
    if not all(addresses):
        return "a global has no address"
    values = [ctypes.c_uint64.from_address(a).value for a in addresses]
    calls = [*model.calls(), (model.n // 2 + 1, 7)]
    expected = [model.call(k, x, values) for k, x in calls]
    got = []
    for k, x in calls:
        address = function_address(f"f{k}")
        if not address:
            return f"no address for f{k}"
        got.append(_FN(address)(x))
    if got != expected:
        return f"wrong results {got}, expected {expected}"
    after = [ctypes.c_uint64.from_address(a).value for a in addresses]
    wrong = [j for j in range(model.n) if after[j] != values[j]]
    if wrong:
        return (f"globals differ from the model after the calls: g{wrong[0]} "
                f"and {len(wrong) - 1} more")
    return None


# -- floor ----------------------------------------------------------------------------


@dataclass
class FloorParts:
    emit: float
    lljit: float
    link: float
    finish: float  # pointer store + closing the resource

    @property
    def total(self) -> float:
        return self.emit + self.lljit + self.link + self.finish


def run_floor(sc: SwapChain, tm: llvm.TargetMachine, slot: ctypes.c_uint64, lib: str,
              imports: dict[str, int], verify: Callable[[int], str | None] | None = None,
              ) -> tuple[FloorParts, str | None]:
    module = parse(sc.single_text())
    jit = None
    problem = None
    try:
        gc.collect()
        t0 = time.process_time()
        obj = tm.emit_object(module)
        t1 = time.process_time()
        jit = llvm.create_lljit_compiler(tm)
        t2 = time.process_time()
        builder = llvm.JITLibraryBuilder().add_object_img(obj)
        for name, address in imports.items():
            builder.import_symbol(name, address)
        tracker = builder.export_symbol(sc.name).link(jit, lib)
        address = tracker[sc.name]
        t3 = time.process_time()
        slot.value = address
        if verify is not None:  # untimed: the clock is paused around the call
            t_pause = time.process_time()
            problem = verify(address)
            t3 += time.process_time() - t_pause
        tracker.close()
        t4 = time.process_time()
        return FloorParts(t1 - t0, t2 - t1, t3 - t2, t4 - t3), problem
    finally:
        if jit is not None:
            jit.close()
        module.close()


# -- MCJIT relink -------------------------------------------------------------------


def run_mcjit(sc: SwapChain, cache: dict[str, bytes], how: str, verify: bool,
              ) -> tuple[float, str | None]:
    """One relink; returns (CPU seconds, problem or None)."""
    changed = f"m{sc.k}"
    objects = []
    if how == "objfile":
        modules = [parse(sc.module_text(sc.k))]
        objects = [llvm.ObjectFileRef.from_data(cache[f"m{j}"]) for j in range(sc.n)
                   if j != sc.k]
    else:
        modules = sc.split_modules()
    tm = target_machine()

    def getbuffer(module: llvm.ModuleRef) -> bytes | None:
        name = module.name
        return None if name == changed else cache[name]

    def work() -> tuple[llvm.ExecutionEngine, int]:
        if how == "objfile":
            ee = llvm.create_mcjit_compiler(modules[0], tm)
            for obj in objects:
                ee.add_object_file(obj)
        else:
            ee = llvm.create_mcjit_compiler(modules[0], tm)
            for m in modules[1:]:
                ee.add_module(m)
            if how == "indexed":
                index = {ctypes.cast(m._ptr, ctypes.c_void_p).value: m for m in modules}
                ee._find_module_ptr = lambda ptr: index.get(ctypes.cast(ptr, ctypes.c_void_p).value)
            ee.set_object_cache(None, getbuffer)
        ee.finalize_object()
        return ee, ee.get_function_address(sc.name)

    seconds, (ee, address) = cpu_time(work)
    try:
        problem = None if address else f"no address for {sc.name}"
        if verify and problem is None:
            problem = check(sc.chain, ee.get_function_address, ee.get_global_value_address)
        return seconds, problem
    finally:
        ee.close()


def fill_cache(sc: SwapChain) -> tuple[dict[str, bytes], str | None]:
    """Compile every module of the split once with MCJIT, keeping the objects."""
    cache: dict[str, bytes] = {}
    modules = sc.split_modules()
    ee = llvm.create_mcjit_compiler(modules[0], target_machine())
    try:
        for m in modules[1:]:
            ee.add_module(m)
        ee.set_object_cache(lambda m, data: cache.__setitem__(m.name, bytes(data)), None)
        ee.finalize_object()
        problem = check(sc.chain, ee.get_function_address, ee.get_global_value_address)
    finally:
        ee.close()
    if len(cache) != sc.n:
        problem = problem or f"object cache holds {len(cache)} of {sc.n} objects"
    return cache, problem


# -- one size ---------------------------------------------------------------------------


@dataclass
class Series:
    times: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and self.error is None else None


@dataclass
class Row:
    n: int
    plan: Plan
    floor: list[FloorParts] = field(default_factory=list)
    series: dict[str, Series] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def s(self, key: str) -> Series:
        return self.series.setdefault(key, Series())

    @property
    def floor_median(self) -> float:
        return statistics.median(p.total for p in self.floor)


def _new_engine(sc: SwapChain, policy: str) -> execution_engine.ExecutionEngine:
    ee = execution_engine.create_mcjit_compiler(parse(sc.chain.ir), target_machine(),
                                                redirection=policy, grace_period=0)
    ee.finalize_object()
    return ee


def _slot_holds(ee: execution_engine.ExecutionEngine, name: str, address: int) -> bool:
    """Whether ``name``'s pointer slot holds ``address``."""
    info = ee.function_info(name)
    return info is not None and info.body == address


class SizeBench:
    """Engines, caches and results for one N; :meth:`step` does one swap of each kind."""

    def __init__(self, n: int, plan: Plan, log: Callable[[str], None]):
        self.row = row = Row(n, plan)
        self.log = log
        self.sc = sc = SwapChain(n)
        started, started_cpu = time.perf_counter(), time.process_time()
        self.recompile = {p: _new_engine(sc, p) for p in POLICIES}
        self.update = {p: _new_engine(sc, p) for p in POLICIES}
        self.previous: dict[str, llvm.ModuleRef | None] = {p: None for p in POLICIES}
        self.cache, problem = fill_cache(sc)
        if problem:
            row.notes.append(f"MCJIT (all modules compiled): {problem}")
        log(f"  N={n}: engines and object cache ready in {time.perf_counter() - started:.1f} s "
            f"({time.process_time() - started_cpu:.1f} s CPU)")
        self.floor_tm = target_machine()
        self.slot = ctypes.c_uint64(0)
        self.floor_global = ctypes.c_uint64(0)
        reference = self.recompile["stub"]
        self.imports = {f"g{sc.k}": ctypes.addressof(self.floor_global),
                        f"f{sc.k - 1}": reference.get_function_address(f"f{sc.k - 1}")}
        self.mcjit_at = set(range(1, plan.swaps + 1, max(1, plan.swaps // plan.mcjit))
                            [: plan.mcjit])
        self.stock_at = set(range(1, plan.swaps + 1, max(1, plan.swaps // plan.stock))
                            [: plan.stock])
        self.mcjit_checked: set[str] = set()

    def verify_floor(self, address: int) -> str | None:
        """The floor's f<k>, linked against the reference engine's f<k-1>, is right."""
        sc, reference = self.sc, self.recompile["stub"]
        values = [ctypes.c_uint64.from_address(reference.get_global_value_address(f"g{j}")).value
                  for j in range(sc.k)] + [self.floor_global.value]
        expected = sc.chain.call(sc.k, 12345, values)
        got = _FN(address)(12345)
        return None if got == expected else f"floor f{sc.k}(12345) = {got}, expected {expected}"

    def step(self, rep: int) -> None:
        """Swap number ``rep`` (0: warm-up, not recorded) of every kind."""
        row, sc = self.row, self.sc
        record = rep > 0
        parts, problem = run_floor(sc, self.floor_tm, self.slot, f"floor{rep}", self.imports,
                                   self.verify_floor if rep == 1 else None)
        if problem:
            row.notes.append(problem)
        if record:
            row.floor.append(parts)
        for policy, ee in self.recompile.items():
            series = row.s(f"recompile/{policy}")
            if series.error:
                continue
            try:
                seconds, address = cpu_time(
                    lambda ee=ee: ee.recompile_and_relink_function(sc.name))
            except Exception as exc:  # noqa: BLE001 - reported as n/a with the reason
                series.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                continue
            if not _slot_holds(ee, sc.name, address):
                series.error = "the slot does not hold the address returned"
            if record:
                series.times.append(seconds)
        for policy, ee in self.update.items():
            series = row.s(f"update/{policy}")
            if series.error:
                continue
            module = parse(sc.single_text())
            try:
                seconds, _ = cpu_time(lambda ee=ee, module=module: ee.update_module(module))
            except Exception as exc:  # noqa: BLE001
                series.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                module.close()
                continue
            old = self.previous[policy]
            self.previous[policy] = module
            if old is not None:
                try:
                    removed: float | None = cpu_time(
                        lambda ee=ee, old=old: ee.remove_module(old))[0]
                except KeyError:  # a superseded update has left the engine by itself
                    removed = None
                old.close()
                if record and removed is not None:
                    row.s(f"remove/{policy}").times.append(removed)
            if record:
                series.times.append(seconds)
        for how, when in (("indexed", self.mcjit_at), ("objfile", self.mcjit_at),
                          ("stock", self.stock_at)):
            series = row.s(f"mcjit/{how}")
            if rep not in when or series.error:
                continue
            seconds, problem = run_mcjit(sc, self.cache, how, how not in self.mcjit_checked)
            self.mcjit_checked.add(how)
            if problem:
                series.error = problem
            series.times.append(seconds)
        if rep in (0, row.plan.swaps) or rep % 10 == 0:
            self.log(f"  N={row.n} swap {rep}/{row.plan.swaps}: floor {parts.total * 1e3:.2f} ms, "
                     + ", ".join(f"{key} {s.times[-1] * 1e3:.2f} ms"
                                 for key, s in row.series.items() if s.times and not s.error))

    def finish(self) -> None:
        """Check results, note the engines' state, close everything."""
        row, sc = self.row, self.sc
        try:
            # The recompiled body computes what the module says ...
            for policy, ee in self.recompile.items():
                problem = check(sc.chain, ee.get_function_address, ee.get_global_value_address)
                if problem and not row.s(f"recompile/{policy}").error:
                    row.s(f"recompile/{policy}").error = problem
                row.notes.extend(_engine_state(ee, f"recompile/{policy}"))
            # ... and callers reach a new body after update_module.
            for policy, ee in self.update.items():
                series = row.s(f"update/{policy}")
                if series.error:
                    continue
                ee.update_module(parse(sc.single_text(variant=True)))
                problem = check(sc.variant, ee.get_function_address, ee.get_global_value_address)
                if problem:
                    series.error = f"after an update to a different body: {problem}"
                row.notes.extend(_engine_state(ee, f"update/{policy}"))
        finally:
            self.close()

    def close(self) -> None:
        for ee in (*self.recompile.values(), *self.update.values()):
            ee.close()
        self.floor_tm.close()


def measure(sizes: dict[int, Plan], *, log: Callable[[str], None]) -> list[Row]:
    """Every size's engines stay alive and swaps are interleaved across sizes, so
    every N is measured under the same process state and machine load."""
    benches: list[SizeBench] = []
    try:
        for n, plan in sizes.items():
            benches.append(SizeBench(n, plan, log))
        # Every timed call starts with gc.collect(); keep the long-lived set-up
        # objects (the models, the object caches) out of those collections.
        gc.collect()
        gc.freeze()
        for rep in range(max(plan.swaps for plan in sizes.values()) + 1):
            for bench in benches:
                if rep <= bench.row.plan.swaps:
                    bench.step(rep)
        for bench in benches:
            bench.finish()
    finally:
        gc.unfreeze()
        for bench in benches:
            bench.close()
    return [bench.row for bench in benches]


def _engine_state(ee: execution_engine.ExecutionEngine, label: str) -> list[str]:
    """What the engine still holds after the swaps (``engine.stats()``)."""
    stats = ee.stats()
    return [f"{label}: {stats.lljit_sessions} LLJIT session(s), "
            f"{stats.linked_resources} linked resources, "
            f"{stats.linked_sets} linked sets, "
            f"{stats.recompiled_bodies} recompiled bodies, {stats.modules} modules, "
            f"{stats.retired_sets} retired sets"]


# -- reporting ------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1e3:.2f}"


def _ratio(a: float | None, b: float | None, digits: int = 2) -> str:
    return "n/a" if a is None or not b else f"{a / b:.{digits}f}"


def times_table(rows: list[Row]) -> str:
    headers = ["N", "floor", *(f"recompile {p}" for p in POLICIES),
               *(f"update {p}" for p in POLICIES), "MCJIT stock", "MCJIT O(1) lookup",
               "MCJIT add_object_file"]
    keys = [*(f"recompile/{p}" for p in POLICIES), *(f"update/{p}" for p in POLICIES),
            "mcjit/stock", "mcjit/indexed", "mcjit/objfile"]
    body = [[r.n, _ms(r.floor_median), *(_ms(r.s(k).median) for k in keys)] for r in rows]
    return markdown_table(headers, body)


def ratio_table(rows: list[Row]) -> str:
    base = {p: {m: next((r.s(f"{m}/{p}").median for r in rows if r.n == 100), None)
                for m in ("recompile", "update")} for p in POLICIES}
    headers = ["N", "policy", "recompile / floor", "update / floor", "recompile - floor ms",
               "update - floor ms", "recompile vs N=100", "update vs N=100",
               "MCJIT stock / recompile", "MCJIT O(1) / recompile",
               "MCJIT add_object_file / recompile"]
    body = []
    for r in rows:
        for p in POLICIES:
            rec, upd = r.s(f"recompile/{p}").median, r.s(f"update/{p}").median
            body.append([
                r.n, p, _ratio(rec, r.floor_median), _ratio(upd, r.floor_median),
                _ms(None if rec is None else rec - r.floor_median),
                _ms(None if upd is None else upd - r.floor_median),
                _ratio(rec, base[p]["recompile"]), _ratio(upd, base[p]["update"]),
                _ratio(r.s("mcjit/stock").median, rec, 1),
                _ratio(r.s("mcjit/indexed").median, rec, 1),
                _ratio(r.s("mcjit/objfile").median, rec, 1),
            ])
    return markdown_table(headers, body, align="ll" + "r" * 9)


def floor_table(rows: list[Row]) -> str:
    headers = ["N", "emit_object", "create_lljit_compiler", "link + lookup",
               "store + close resource", "total", "total vs N=100", "remove_module (stub)",
               "remove_module (single)"]
    base = next((r.floor_median for r in rows if r.n == 100), None)
    body = []
    for r in rows:
        med = [statistics.median(getattr(p, a) for p in r.floor)
               for a in ("emit", "lljit", "link", "finish")]
        body.append([r.n, *(f"{m * 1e3:.3f}" for m in med), _ms(r.floor_median),
                     _ratio(r.floor_median, base), _ms(r.s("remove/stub").median),
                     _ms(r.s("remove/single").median)])
    return markdown_table(headers, body)


def verdicts(rows: list[Row]) -> list[str]:
    out = []
    for p in POLICIES:
        for m in ("recompile", "update"):
            key = f"{m}/{p}"
            ratios = [(r.n, r.s(key).median / r.floor_median) for r in rows
                      if r.s(key).median is not None]
            worst = max(ratios, key=lambda x: x[1], default=None)
            if worst is None:
                out.append(f"- {m}, {p}: not measured.")
                continue
            status = "met" if worst[1] <= BAR_FLOOR else "**missed**"
            line = (f"- {m}, `{p}`: engine/floor \u2264 {BAR_FLOOR} - {status} "
                    f"(worst {worst[1]:.2f} at N={worst[0]})")
            base = next((r.s(key).median for r in rows if r.n == 100), None)
            if base:
                flat = [(r.n, r.s(key).median / base - 1) for r in rows
                        if r.n != 100 and r.s(key).median is not None]
                if flat:
                    n, dev = max(flat, key=lambda x: abs(x[1]))
                    status = "met" if abs(dev) <= BAR_FLAT else "**missed**"
                    line += (f"; flat within \u00b1{BAR_FLAT:.0%} of N=100 - {status} "
                             f"(largest deviation {dev:+.0%} at N={n})")
            out.append(line + ".")
    return out


def notes(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        for key, s in r.series.items():
            if s.error:
                out.append(f"- N={r.n}, {key}: n/a - {s.error}")
    return out


def diagnostics(rows: list[Row]) -> list[str]:
    return [f"- N={r.n}, {note}" for r in rows for note in r.notes]


def plot(rows: list[Row], path) -> bool:
    """Log-log plot of the medians; False (silently) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001 - matplotlib is an optional extra
        return False
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    xs = [r.n for r in rows]
    ax.plot(xs, [r.floor_median * 1e3 for r in rows], marker="o", label="floor")
    labels = {"recompile/direct": "recompile (direct)", "recompile/stub": "recompile (stub)",
              "recompile/single": "recompile (single)",
              "update/stub": "update_module (stub)", "update/single": "update_module (single)",
              "mcjit/stock": "MCJIT relink (stock)", "mcjit/indexed": "MCJIT relink (O(1) lookup)",
              "mcjit/objfile": "MCJIT relink (add_object_file)"}
    for key, label in labels.items():
        points = [(r.n, r.s(key).median * 1e3) for r in rows if r.s(key).median is not None]
        if points:
            px, py = zip(*points, strict=True)
            ax.plot(px, py, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("functions in the module (N)")
    ax.set_ylabel("CPU ms per swap (median)")
    ax.set_title("Swapping one function among N")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def section(rows: list[Row], picture: bool) -> str:
    reps = ", ".join(f"N={r.n}: {r.plan.swaps} swaps, MCJIT {r.plan.mcjit} "
                     f"(stock {r.plan.stock})" for r in rows)
    lines = [
        "`python -m benchmarks.swap`: CPU time (`time.process_time`, median) to replace one",
        "function, `f<N/2>`, of a generated module of N functions (as in the eager benchmark;",
        "the swapped body is the same at every N; its callers call it). Everything is",
        "measured in one run, interleaved swap by swap, engines with `grace_period=0`.",
        f"Repetitions: {reps}; one untimed warm-up swap first.",
        "",
        "- **floor**: that function alone - `tm.emit_object` of a module holding its",
        "  definition plus declarations of what it references, `create_lljit_compiler(tm)` +",
        "  `JITLibraryBuilder().add_object_img(obj).import_symbol(...).export_symbol(...)"
        ".link(...)`,",
        "  one ctypes pointer store, the resource closed (the LLJIT is disposed untimed);",
        "- **recompile**: `engine.recompile_and_relink_function('f<N/2>')`;",
        "- **update**: `engine.update_module(m)`, `m` a freshly parsed copy of the floor's",
        "  module (parsed untimed); the *previous* update module is then removed with",
        "  `remove_module` outside the timed call (its time is in the floor breakdown table);",
        "- **MCJIT**: stock llvmlite MCJIT relinking after the change, one function per module,",
        "  a perfect object cache for the other N-1 (a new engine with all N modules, the",
        "  changed one compiled, `finalize_object`, a lookup; parsing untimed). *stock*: the",
        "  `set_object_cache` hooks as shipped; *O(1) lookup*: the same with llvmlite's",
        "  per-callback module search (`_find_module_ptr`, a linear scan, quadratic overall)",
        "  replaced by a dict; *add_object_file*: the cached objects added directly.",
        "",
        "Median CPU ms per swap:",
        "",
        times_table(rows),
        "",
        "Ratios (bars: engine/floor \u2264 1.3; engine within \u00b125% of its N=100 figure):",
        "",
        ratio_table(rows),
        "",
        "Floor breakdown and `remove_module` of the previous update (median CPU ms):",
        "",
        floor_table(rows),
        "",
        *verdicts(rows),
        "",
        "Every engine's code was called through ctypes after the swaps (`f<N-1>`, `f0`,",
        "`f<N/2>`, and `f<N/2+1>`, a JIT'd caller of the swapped function) and the results",
        "and every global afterwards matched a Python model of the generated code; the",
        "update engines were then updated to a *different* body and checked against a model",
        "with that body; the floor's linked function was called once, linked against an",
        "engine's `f<N/2-1>`. The *state after the swaps* lines count what each engine",
        "still holds (`engine.stats()`): the recompiled bodies are those still alive",
        "(see the memory section).",
    ]
    extra = notes(rows)
    if extra:
        lines += ["", "Not measured or wrong:", "", *extra]
    diag = diagnostics(rows)
    if diag:
        lines += ["", "State after the swaps:", "", *diag]
    if picture:
        lines += ["", "![swap times](benchmarks/swap.png)"]
    lines += ["", f"Measured on: {environment_line()}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.swap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few swaps")
    parser.add_argument("--sizes", help="comma-separated N values")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)

    sizes = dict(QUICK_SIZES if args.quick else SIZES)
    if args.sizes:
        wanted = [int(s) for s in args.sizes.split(",") if s.strip()]
        sizes = {n: SIZES.get(n, Plan(30, 5, 2)) for n in wanted}

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"swap: sizes {list(sizes)} ({environment_line()})")
    rows = measure(sizes, log=log)

    print(f"## {TITLE}\n")
    print(times_table(rows))
    print()
    print(ratio_table(rows))
    print()
    print(floor_table(rows))
    print()
    for line in verdicts(rows) + notes(rows) + diagnostics(rows):
        print(line)

    if not args.no_write:
        picture = plot(rows, FIGURES / "swap.png")
        update_section(RESULTS, TITLE, section(rows, picture))
        log(f"swap: wrote section '{TITLE}' of {RESULTS}")
    wrong = any(s.error for r in rows for s in r.series.values()) or any(
        "expected" in note for r in rows for note in r.notes)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
