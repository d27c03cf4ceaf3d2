"""Memory growth over long runs: does repeated add/remove or swapping leak?

Each measurement runs in a subprocess of its own (``--child SCENARIO``), so
one scenario's heap does not hide or inflate another's. RSS is read from
``/proc/self/statm`` (resident pages times the page size). A scenario runs
``WARMUP`` cycles, then ``CYCLES`` more; the figure is

    (RSS after the last cycle - RSS after the warm-up) / CYCLES

in KB per cycle, with a least-squares slope over samples taken every
``SAMPLE_EVERY`` cycles as a cross-check (a step, e.g. a new LLJIT session,
shows up as a difference between the two). Scenarios, all on a small module
(three functions, one global), each cycle with a freshly parsed module and
the same names:

* ``engine-cycle``: ``add_module`` / ``finalize_object`` / ``remove_module`` on one
  engine (``redirection="stub"``);
* ``mcjit-cycle``: the same on llvmlite's MCJIT, for comparison;
* ``recompile``: ``recompile_and_relink_function("f")`` on an engine with
  ``grace_period=0``;
* ``update``: ``update_module`` with a fresh module defining ``f`` (declaring
  what it uses), then ``remove_module`` of the previous update;
* ``new-name``, ``new-name-lazy``: a REPL that adds a module defining a
  function under a *new* name each cycle, calls it and removes the module
  (eager and lazy engines);
* ``recompile-o2``: ``recompile_and_relink_function("f", opt_level=2)``, over
  1,024 cycles (four session rotations) unless ``--cycles`` says otherwise.

Every scenario calls the JIT'd ``f`` every ``CHECK_EVERY`` cycles and checks
the result. The child also reports what the engine holds (``engine.stats()``:
LLJIT sessions, linked resources and sets, defined symbols, stubs, modules,
recompiled bodies, pending and retired sets), glibc's heap in use (``mallinfo2``), the
number of memory mappings and Python's allocated blocks at the end of the
warm-up and at the end, so growth can be attributed. A scenario that misses
the bar, or whose Python allocations grow steadily, is run again under
``tracemalloc`` to name the Python lines whose allocations grow.

Run: ``python -m benchmarks.memory [--quick] [--cycles N] [--scenarios a,b] [--no-write]``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import time

from .report import RESULTS, markdown_table, update_section

TITLE = "Memory growth over long runs"
CYCLES = 10_000
WARMUP = 500
SAMPLE_EVERY = 250
CHECK_EVERY = 500
BAR_KB = 0.5
TRACE_CYCLES = 2_000
PYTHON_LEAK_BLOCKS = 0.5  # Python blocks per cycle that also trigger a tracemalloc rerun
SCENARIOS = ["engine-cycle", "mcjit-cycle", "recompile", "update", "update-lazy", "new-name",
             "new-name-lazy", "recompile-o2"]
# Scenarios measured over fewer cycles than CYCLES (the bar: 1,000 calls; RSS
# saw-tooths by 1-2 MB with the linker sessions, so the window is whole rotations).
SCENARIO_CYCLES = {"recompile-o2": 1_024}  # whole session rotations (256 links each)
LABELS = {
    "engine-cycle": "engine: add_module / finalize_object / remove_module",
    "mcjit-cycle": "llvmlite MCJIT: add_module / finalize_object / remove_module",
    "recompile": "engine: recompile_and_relink_function (grace_period=0)",
    "update": "engine: update_module (the REPL idiom: superseded updates leave by themselves)",
    "update-lazy": "lazy engine: update_module(m, replaces=previous)",
    "new-name": "engine: add_module / call / remove_module, a new function name each cycle",
    "new-name-lazy": "lazy engine: add_module / call / remove_module, a new name each cycle",
    "recompile-o2": "engine: recompile_and_relink_function(opt_level=2) (grace_period=0)",
}
UNITS = {"engine-cycle": "cycle", "mcjit-cycle": "cycle", "recompile": "swap", "update": "swap",
         "update-lazy": "swap", "new-name": "cycle", "new-name-lazy": "cycle",
         "recompile-o2": "swap"}

MODULE = """
@counter = global i64 0

define i64 @g(i64 %x) {
  %a = mul i64 %x, 7
  %b = xor i64 %a, 12345
  %c = add i64 %b, %x
  ret i64 %c
}

define i64 @h(i64 %x) {
  %a = shl i64 %x, 3
  %b = sub i64 %a, %x
  %c = lshr i64 %b, 1
  ret i64 %c
}

define i64 @f(i64 %x) {
  %c = load i64, ptr @counter
  %c1 = add i64 %c, 1
  store i64 %c1, ptr @counter
  %a = call i64 @g(i64 %x)
  %b = call i64 @h(i64 %a)
  %r = add i64 %b, %c1
  ret i64 %r
}
"""

UPDATE = """
@counter = external global i64
declare i64 @g(i64)
declare i64 @h(i64)

define i64 @f(i64 %x) {
  %c = load i64, ptr @counter
  %c1 = add i64 %c, 1
  store i64 %c1, ptr @counter
  %a = call i64 @g(i64 %x)
  %b = call i64 @h(i64 %a)
  %r = add i64 %b, %c1
  ret i64 %r
}
"""

BASE = """
define i64 @base(i64 %x) {
  ret i64 %x
}
"""

NEW_NAME = """
declare i64 @base(i64)

define i64 @fn{i}(i64 %x) {{
  %a = mul i64 %x, 7
  %b = call i64 @base(i64 %a)
  ret i64 %b
}}
"""

MASK = (1 << 64) - 1


def expected_f(x: int, counter_after: int) -> int:
    g = ((x * 7) & MASK ^ 12345) + x & MASK
    h = (((g << 3) & MASK) - g & MASK) >> 1
    return (h + counter_after) & MASK


# -- measuring, inside the child ------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_kb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def heap_kb() -> float | None:
    """glibc heap in use (small + mmapped chunks), KB; None without mallinfo2."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        return None
    fn.restype = _MallInfo2
    info = fn()
    return (info.uordblks + info.hblkhd) / 1024


def mappings() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


# What the engine holds, from ``engine.stats()`` (the work counters -- compiles,
# bytes, swaps -- only grow and are left out). Not reported since the reshape,
# for want of a public source: the redirection layer's superseded queue, the
# symbol table's total definitions (current and shadowed) and per-handle
# current counts, global mappings, the set of constructed modules.
HOLDINGS = {
    "lljit_sessions": "LLJIT sessions",
    "linked_resources": "linked resources",
    "linked_sets": "linked sets (redirection)",
    "defined_symbols": "defined symbols",
    "stubs": "stubs",
    "modules": "modules",
    "object_files": "object files",
    "recompiled_bodies": "recompiled bodies",
    "pending_sets": "pending sets",
    "retired_sets": "retired sets (reclaimer)",
}


def engine_internals(ee) -> dict[str, int]:
    """Sizes of the engine's bookkeeping (``engine.stats()``)."""
    stats = ee.stats()
    return {label: int(getattr(stats, field)) for field, label in HOLDINGS.items()}


def snapshot(ee) -> dict[str, object]:
    gc.collect()
    return {
        "rss_kb": rss_kb(),
        "heap_kb": heap_kb(),
        "mappings": mappings(),
        "python_blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()),
        "engine": engine_internals(ee) if ee is not None else {},
    }


def _make_scenario(name: str):
    """(engine or None, one-cycle function, check function, close function)."""
    import llvmlite.binding as llvm

    import execution_engine

    from .common import parse, target_machine

    fn_type = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)

    if name in ("engine-cycle", "mcjit-cycle"):
        if name == "engine-cycle":
            ee = execution_engine.create_mcjit_compiler(parse(BASE), target_machine())
        else:
            ee = llvm.create_mcjit_compiler(parse(BASE), target_machine())
        ee.finalize_object()
        state = {"check": False, "problem": None}

        def cycle() -> None:
            module = parse(MODULE)
            ee.add_module(module)
            ee.finalize_object()
            if state["check"]:
                state["check"] = False
                got = fn_type(ee.get_function_address("f"))(5)
                if got != expected_f(5, 1):
                    state["problem"] = f"f(5) = {got}, expected {expected_f(5, 1)}"
            ee.remove_module(module)
            module.close()

        def check() -> str | None:
            state["check"] = True
            cycle()
            return state["problem"]

        return (ee if name == "engine-cycle" else None), cycle, check, ee.close

    if name in ("new-name", "new-name-lazy"):
        # A REPL defining a function under a new name each cycle, calling it
        # (its stub address leaves the engine) and removing it again.
        ee = execution_engine.create_mcjit_compiler(parse(BASE), target_machine(),
                                                    lazy=name == "new-name-lazy")
        ee.finalize_object()
        names = iter(range(1 << 62))
        state = {"problem": None}

        def cycle() -> None:
            i = next(names)
            module = parse(NEW_NAME.format(i=i))
            ee.add_module(module)
            ee.finalize_object()
            got = fn_type(ee.get_function_address(f"fn{i}"))(3)
            if got != 21:
                state["problem"] = f"fn{i}(3) = {got}, expected 21"
            ee.remove_module(module)
            module.close()

        def check() -> str | None:
            cycle()
            return state["problem"]

        return ee, cycle, check, ee.close

    ee = execution_engine.create_mcjit_compiler(parse(MODULE), target_machine(), grace_period=0,
                                                lazy=name == "update-lazy")
    ee.finalize_object()
    f = fn_type(ee.get_function_address("f"))  # a stub address: stays valid across swaps
    counter = ctypes.c_uint64.from_address(ee.get_global_value_address("counter"))

    def check() -> str | None:
        want = expected_f(5, counter.value + 1)
        got = f(5)
        return None if got == want else f"f(5) = {got}, expected {want}"

    if name == "recompile":
        def cycle() -> None:
            ee.recompile_and_relink_function("f")

        return ee, cycle, check, ee.close

    if name == "recompile-o2":
        def cycle() -> None:
            ee.recompile_and_relink_function("f", opt_level=2)

        return ee, cycle, check, ee.close

    if name == "update":
        def cycle() -> None:
            ee.update_module(parse(UPDATE))

        return ee, cycle, check, ee.close

    if name == "update-lazy":
        previous: list = [None]

        def cycle() -> None:
            module = parse(UPDATE)
            ee.update_module(module, replaces=previous[0])
            previous[0] = module

        return ee, cycle, check, ee.close

    raise SystemExit(f"unknown scenario {name!r}")


def child(name: str, cycles: int, warmup: int, trace: bool) -> dict[str, object]:
    if trace:
        import tracemalloc

        tracemalloc.start(8)
    ee, cycle, check, close = _make_scenario(name)
    problems: list[str] = []
    started = time.perf_counter()
    try:
        for _ in range(warmup):
            cycle()
        begin = snapshot(ee)
        if trace:
            trace_begin = tracemalloc.take_snapshot()
        samples = [(0, begin["rss_kb"])]
        for i in range(1, cycles + 1):
            if i % CHECK_EVERY == 0:
                problem = check()
                if problem:
                    problems.append(f"cycle {warmup + i}: {problem}")
            else:
                cycle()
            if i % SAMPLE_EVERY == 0:
                samples.append((i, rss_kb()))
        end = snapshot(ee)
        result: dict[str, object] = {
            "scenario": name, "cycles": cycles, "warmup": warmup, "begin": begin, "end": end,
            "samples": samples, "problems": problems,
            "seconds": time.perf_counter() - started,
        }
        if trace:
            trace_end = tracemalloc.take_snapshot()
            stats = trace_end.compare_to(trace_begin, "traceback")
            result["trace"] = [
                {"kb": s.size_diff / 1024, "count": s.count_diff,
                 "where": [_short(fr.filename) + f":{fr.lineno}"
                           for fr in reversed(list(s.traceback))][:4],
                 "code": _source(s.traceback)}
                for s in stats[:8] if s.size_diff > 0]
        return result
    finally:
        close()


def _short(filename: str) -> str:
    """``filename`` relative to site-packages or the repository."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    return filename.split("/site-packages/")[-1].replace(root, "")


def _source(traceback) -> str:
    """The line of code that allocated (most recent frame)."""
    import linecache

    frame = list(traceback)[-1]
    return linecache.getline(frame.filename, frame.lineno).strip()


# -- the parent ------------------------------------------------------------------------


def run_child(name: str, cycles: int, warmup: int, trace: bool = False) -> dict[str, object]:
    cmd = [sys.executable, "-m", "benchmarks.memory", "--child", name, "--cycles", str(cycles),
           "--warmup", str(warmup)] + (["--trace"] if trace else [])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"scenario": name, "error": f"exit status {done.returncode}: " + " | ".join(tail)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def per_cycle(r: dict[str, object]) -> float | None:
    if "error" in r:
        return None
    return (r["end"]["rss_kb"] - r["begin"]["rss_kb"]) / r["cycles"]


def slope(r: dict[str, object]) -> float | None:
    if "error" in r or len(r["samples"]) < 3:
        return None
    xs = [s[0] for s in r["samples"]]
    ys = [s[1] for s in r["samples"]]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else None


def _delta(r: dict[str, object], key: str) -> float | None:
    a, b = r["begin"].get(key), r["end"].get(key)
    if a is None or b is None:
        return None
    return (b - a) / r["cycles"]


def table(results: list[dict[str, object]]) -> str:
    headers = ["scenario", "cycles", "RSS after warm-up MB", "RSS at end MB", "KB per cycle",
               "slope KB/cycle", "heap in use KB/cycle", "mappings", "bar", "s"]
    body = []
    for r in results:
        name = r["scenario"]
        if "error" in r:
            body.append([LABELS[name], "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a",
                         "n/a"])
            continue
        kb, sl, heap = per_cycle(r), slope(r), _delta(r, "heap_kb")
        python_growth = (r["end"]["python_blocks"] - r["begin"]["python_blocks"]) / r["cycles"]
        bar = ("n/a (reference)" if name == "mcjit-cycle"
               else "**missed**" if kb > BAR_KB
               else "met, but Python objects grow steadily" if python_growth >= PYTHON_LEAK_BLOCKS
               else "met")
        body.append([
            LABELS[name], f"{r['warmup']:,} + {r['cycles']:,}",
            f"{r['begin']['rss_kb'] / 1024:.1f}", f"{r['end']['rss_kb'] / 1024:.1f}",
            f"{kb:.3f}", "n/a" if sl is None else f"{sl:.3f}",
            "n/a" if heap is None else f"{heap:.3f}",
            f"{r['begin']['mappings']} \u2192 {r['end']['mappings']}", bar, f"{r['seconds']:.0f}",
        ])
    return markdown_table(headers, body, align="lrrrrrrrlr")


def growth_notes(results: list[dict[str, object]]) -> list[str]:
    """Which bookkeeping grew, per scenario (engine internals and Python objects)."""
    out = []
    for r in results:
        if "error" in r:
            out.append(f"- {LABELS[r['scenario']]}: failed - {r['error']}")
            continue
        parts = []
        b, e = r["begin"]["engine"], r["end"]["engine"]
        for key in e:
            if key in b and e[key] != b[key]:
                parts.append(f"{key} {b[key]} \u2192 {e[key]}")
        for key, label in (("python_blocks", "Python allocated blocks"),
                           ("gc_objects", "gc-tracked objects")):
            d = r["end"][key] - r["begin"][key]
            parts.append(f"{label} {d:+,} ({d / r['cycles']:+.2f} per {UNITS[r['scenario']]})")
        unchanged = [k for k in e if k in b and e[k] == b[k]]
        line = f"- {LABELS[r['scenario']]}: " + "; ".join(parts)
        if unchanged:
            line += ". Unchanged: " + ", ".join(f"{k} ({e[k]})" for k in unchanged)
        out.append(line + ".")
        for p in r.get("problems", []):
            out.append(f"  - wrong result at {p}")
    return out


def trace_notes(traces: dict[str, dict[str, object]]) -> list[str]:
    out = []
    for name, r in traces.items():
        if "error" in r:
            out.append(f"- {LABELS[name]}: tracemalloc run failed - {r['error']}")
            continue
        out.append(f"- {LABELS[name]} ({r['warmup']:,} + {r['cycles']:,} cycles under "
                   "tracemalloc), Python allocations that grew most:")
        for t in r.get("trace", []):
            per = t["kb"] * 1024 / r["cycles"]
            code = f" (`{t['code']}`)" if t.get("code") else ""
            out.append(f"  - {t['kb']:.1f} KB ({per:.0f} B per {UNITS[name]}, "
                       f"{t['count']:+,} blocks) at {' <- '.join(t['where'])}{code}")
    return out


def section(results, traces, cycles: int, warmup: int) -> str:
    lines = [
        "`python -m benchmarks.memory`: RSS growth (`/proc/self/statm`) over long runs, each",
        "scenario in a subprocess of its own: "
        f"{warmup:,} warm-up cycles, then {cycles:,} measured; *KB per cycle* is",
        "(RSS at the end - RSS after the warm-up) / cycles, *slope* a least-squares fit over",
        f"samples every {SAMPLE_EVERY} cycles. A small module (three functions, one global),",
        "freshly parsed each cycle, same names every time. *heap in use*: glibc `mallinfo2`",
        "(in-use small + mmapped chunks) growth per cycle; *mappings*: lines of",
        f"`/proc/self/maps`. Bar: \u2264 {BAR_KB} KB per cycle / per swap.",
        "",
        table(results),
        "",
        "What grew between the end of the warm-up and the end (engine bookkeeping, Python):",
        "",
        *growth_notes(results),
    ]
    tn = trace_notes(traces)
    if tn:
        lines += ["", "Scenarios that missed the bar or whose Python allocations grew by "
                  f"\u2265 {PYTHON_LEAK_BLOCKS} blocks per cycle, rerun under `tracemalloc`:",
                  "", *tn]
    lines += ["", f"Every scenario called `f(5)` every {CHECK_EVERY} cycles and checked "
              "the result."]
    from .common import environment_line

    lines += ["", f"Measured on: {environment_line()}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 cycles after 200")
    parser.add_argument("--cycles", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--scenarios", help="comma-separated, of " + ", ".join(SCENARIOS))
    parser.add_argument("--no-trace", action="store_true",
                        help="skip the tracemalloc rerun of scenarios that miss the bar")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cycles = args.cycles or (1_000 if args.quick else CYCLES)
    warmup = args.warmup if args.warmup is not None else (200 if args.quick else WARMUP)

    if args.child:
        print(json.dumps(child(args.child, cycles, warmup, args.trace)))
        return 0

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    from .common import environment_line

    names = [s for s in args.scenarios.split(",") if s] if args.scenarios else SCENARIOS
    log(f"memory: {names}, {warmup} + {cycles} cycles ({environment_line()})")
    results = []
    for name in names:
        r = run_child(name, SCENARIO_CYCLES.get(name, cycles) if not args.cycles else cycles,
                      warmup)
        results.append(r)
        if "error" in r:
            log(f"  {name}: {r['error']}")
        else:
            log(f"  {name}: {per_cycle(r):.3f} KB per cycle, slope {slope(r):.3f}, "
                f"{r['seconds']:.0f} s")
    traces = {}
    if not args.no_trace:
        for r in results:
            kb = per_cycle(r)
            if r["scenario"] == "mcjit-cycle" or kb is None:
                continue
            python_growth = (r["end"]["python_blocks"] - r["begin"]["python_blocks"]) / r["cycles"]
            if kb > BAR_KB or python_growth >= PYTHON_LEAK_BLOCKS:
                why = "over the bar" if kb > BAR_KB else f"{python_growth:.1f} Python blocks/cycle"
                log(f"  {r['scenario']}: {why}, rerunning under tracemalloc")
                traces[r["scenario"]] = run_child(r["scenario"], min(cycles, TRACE_CYCLES),
                                                  min(warmup, WARMUP), trace=True)
    print(f"## {TITLE}\n")
    print(table(results))
    print()
    for line in growth_notes(results) + trace_notes(traces):
        print(line)
    if not args.no_write:
        update_section(RESULTS, TITLE, section(results, traces, cycles, warmup))
        log(f"memory: wrote section '{TITLE}' of {RESULTS}")
    bad = any("error" in r or r.get("problems") for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
