"""Eager compile + finalize (issue 2): what the engine costs over compiling.

For generated modules of N functions (:class:`benchmarks.common.ChainModule`:
about 40 instructions each, with arithmetic, a branch, a phi, a load/store
of a global and a call to the previous function) this measures, side by
side and interleaved repetition by repetition, the CPU time of

* floor:  ``tm.emit_object(module)`` alone - the code generation every
  engine has to do;
* MCJIT:  llvmlite's ``create_mcjit_compiler`` + ``finalize_object`` +
  ``get_function_address("f0")``;
* engine: the same three calls on ``execution_engine``;
* LLJIT:  llvmlite's ``create_lljit_compiler`` + ``JITLibraryBuilder().add_ir``
  + ``link`` exporting ``f0``. ``add_ir`` only takes IR *text*, so LLVM parses
  the module inside the timed region; the parse column shows how much that is.

Every engine gets a freshly parsed module (parsed outside the timed region)
and a new target machine with the same settings. Each engine's JIT'd code is
run through ctypes on its first repetition and must agree with a Python
model of the generated code (and so with the other engines).

Run: ``python -m benchmarks.eager [--quick] [--sizes 100,1000] [--no-write]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import llvmlite.binding as llvm

import execution_engine

from .common import ChainModule, cpu_time, environment_line, parse, run_calls, target_machine
from .report import FIGURES, RESULTS, markdown_table, update_section

TITLE = "Eager compile + finalize (issue 2)"
# N -> repetitions (best of). Sized so a full run stays under ~3 minutes.
SIZES = {100: 15, 1000: 5, 5000: 3}
QUICK_SIZES = {100: 3, 1000: 1}
TARGET_RATIO = 1.08  # engine/floor at N=1000
TARGET_N = 1000
ENTRY = "f0"


@dataclass
class Measurement:
    times: list[float] = field(default_factory=list)
    results: list[int] | None = None
    error: str | None = None

    @property
    def best(self) -> float | None:
        return min(self.times) if self.times else None


# -- one timed run per engine ---------------------------------------------------
# Each returns (cpu seconds, results of the verification calls or None).


def run_floor(chain: ChainModule, verify: bool) -> tuple[float, list[int] | None]:
    module = parse(chain.ir)
    tm = target_machine()
    try:
        seconds, obj = cpu_time(lambda: tm.emit_object(module))
        if not obj:
            raise RuntimeError("emit_object returned no bytes")
        return seconds, None
    finally:
        module.close()
        tm.close()


def _run_mcjit_api(create: Callable[[llvm.ModuleRef, llvm.TargetMachine], object],
                   chain: ChainModule, verify: bool) -> tuple[float, list[int] | None]:
    module = parse(chain.ir)
    tm = target_machine()

    def work():
        ee = create(module, tm)
        ee.finalize_object()
        return ee, ee.get_function_address(ENTRY)

    seconds, (ee, address) = cpu_time(work)
    try:
        if not address:
            raise RuntimeError(f"get_function_address({ENTRY!r}) returned 0")
        results = run_calls(chain, ee.get_function_address) if verify else None
        return seconds, results
    finally:
        ee.close()  # disposes the module and the target machine


def run_mcjit(chain: ChainModule, verify: bool) -> tuple[float, list[int] | None]:
    return _run_mcjit_api(llvm.create_mcjit_compiler, chain, verify)


def run_engine(chain: ChainModule, verify: bool) -> tuple[float, list[int] | None]:
    return _run_mcjit_api(execution_engine.create_mcjit_compiler, chain, verify)


def run_lljit(chain: ChainModule, verify: bool) -> tuple[float, list[int] | None]:
    ir = chain.ir  # text: JITLibraryBuilder.add_ir parses it inside link()
    tm = target_machine()
    jit = tracker = None
    trackers = []

    def work():
        nonlocal jit, tracker
        jit = llvm.create_lljit_compiler(tm)
        tracker = llvm.JITLibraryBuilder().add_ir(ir).export_symbol(ENTRY).link(jit, "bench")
        return tracker[ENTRY]

    try:
        seconds, address = cpu_time(work)
        if not address:
            raise RuntimeError(f"LLJIT gave no address for {ENTRY!r}")
        results = None
        if verify:
            def address_of(name: str) -> int:
                found = jit.lookup("bench", name)
                trackers.append(found)
                return found[name]
            results = run_calls(chain, address_of)
        return seconds, results
    finally:
        for t in trackers:
            t.close()
        if tracker is not None:
            tracker.close()
        if jit is not None:
            jit.close()
        tm.close()


ENGINES: dict[str, Callable[[ChainModule, bool], tuple[float, list[int] | None]]] = {
    "floor": run_floor,
    "mcjit": run_mcjit,
    "engine": run_engine,
    "lljit": run_lljit,
}


def measure_parse(chain: ChainModule, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        seconds, module = cpu_time(lambda: llvm.parse_assembly(chain.ir))
        module.close()
        best = min(best, seconds)
    return best


def measure(n: int, reps: int, *, log: Callable[[str], None]) -> dict[str, object]:
    chain = ChainModule(n)
    expected = chain.expected()
    found = {name: Measurement() for name in ENGINES}
    for rep in range(reps):
        for name, run in ENGINES.items():  # interleaved: drift hits every engine alike
            m = found[name]
            if m.error is not None:
                continue
            try:
                seconds, results = run(chain, rep == 0)
            except Exception as exc:  # noqa: BLE001 - reported as n/a with the reason
                m.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                log(f"  N={n} {name}: failed: {m.error}")
                continue
            m.times.append(seconds)
            if results is not None:
                m.results = results
                if results != expected:
                    m.error = f"wrong results {results} (expected {expected})"
                    log(f"  N={n} {name}: {m.error}")
        log(f"  N={n} rep {rep + 1}/{reps}: " + ", ".join(
            f"{k} {v.times[-1] * 1e3:.0f} ms" for k, v in found.items() if v.times and not v.error))
    return {"n": n, "reps": reps, "parse": measure_parse(chain, min(reps, 5)),
            "found": found, "expected": expected}


# -- reporting ------------------------------------------------------------------


def _ms(m: Measurement) -> str:
    if m.error is not None:
        return "n/a"
    return f"{m.best * 1e3:.1f}"


def _ratio(m: Measurement, floor: Measurement) -> str:
    if m.error is not None or floor.error is not None or not floor.best:
        return "n/a"
    return f"{m.best / floor.best:.3f}"


def table(rows: list[dict[str, object]]) -> str:
    headers = ["N", "reps", "parse ms", "floor ms", "MCJIT ms", "engine ms", "LLJIT ms\u00b9",
               "engine/floor", "MCJIT/floor", "LLJIT/floor\u00b9", "engine/MCJIT"]
    body = []
    for row in rows:
        f = row["found"]
        floor, mcjit, engine, lljit = f["floor"], f["mcjit"], f["engine"], f["lljit"]
        vs_mcjit = ("n/a" if engine.error or mcjit.error
                    else f"{engine.best / mcjit.best:.3f}")
        body.append([row["n"], row["reps"], f"{row['parse'] * 1e3:.1f}", _ms(floor), _ms(mcjit),
                     _ms(engine), _ms(lljit), _ratio(engine, floor), _ratio(mcjit, floor),
                     _ratio(lljit, floor), vs_mcjit])
    return markdown_table(headers, body)


def notes(rows: list[dict[str, object]]) -> list[str]:
    out = []
    for row in rows:
        for name, m in row["found"].items():
            if m.error is not None:
                out.append(f"- N={row['n']}, {name}: n/a - {m.error}")
    return out


def verdict(rows: list[dict[str, object]]) -> str:
    for row in rows:
        if row["n"] != TARGET_N:
            continue
        engine, floor = row["found"]["engine"], row["found"]["floor"]
        if engine.error or floor.error:
            return f"Target (engine/floor \u2264 {TARGET_RATIO} at N={TARGET_N}): not measured."
        ratio = engine.best / floor.best
        status = "met" if ratio <= TARGET_RATIO else "**missed**"
        return (f"Target engine/floor \u2264 {TARGET_RATIO} at N={TARGET_N}: "
                f"{ratio:.3f} - {status}.")
    return f"Target (N={TARGET_N}) not part of this run."


def plot(rows: list[dict[str, object]], path) -> bool:
    """A log-log plot of the times; False (silently) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001 - matplotlib is an optional extra
        return False
    labels = {"floor": "floor (emit_object)", "mcjit": "llvmlite MCJIT",
              "engine": "execution_engine", "lljit": "llvmlite LLJIT (incl. parse)"}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, label in labels.items():
        points = [(r["n"], r["found"][name].best * 1e3) for r in rows
                  if r["found"][name].error is None and r["found"][name].times]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("functions in the module (N)")
    ax.set_ylabel("CPU ms (best of reps)")
    ax.set_title("Eager compile + finalize + first lookup")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def section(rows: list[dict[str, object]], picture: bool) -> str:
    lines = [
        "`python -m benchmarks.eager`: CPU time (`time.process_time`, best of *reps*) to get",
        "from a parsed module to a callable first function. Generated modules of N functions",
        "(about 40 instructions each: arithmetic, a branch, a phi, a load/store of a global,",
        "a call to the previous function). Every engine gets a freshly parsed module and a new",
        "`Target.from_default_triple().create_target_machine(jit=True, opt=2)`; parsing is",
        "outside the timed region, engines are run interleaved.",
        "",
        "- **floor**: `tm.emit_object(module)` alone;",
        "- **MCJIT**: `llvm.create_mcjit_compiler` + `finalize_object()` + "
        "`get_function_address('f0')`;",
        "- **engine**: the same calls on `execution_engine.create_mcjit_compiler`;",
        "- **LLJIT**: `llvm.create_lljit_compiler(tm)` + `JITLibraryBuilder().add_ir(text)`"
        " + `link` exporting `f0`.",
        "",
        table(rows),
        "",
        "\u00b9 LLJIT's `add_ir` only accepts IR text, so its time includes LLVM parsing the",
        "module (the *parse ms* column) - subtract it to compare with the others.",
        "",
        "Every engine's code was called through ctypes (`f{N-1}(11)`, `f0(5)`, `f{N-1}(11)`",
        "again, `f{N/2}(2**62)`) and matched a Python model of the generated code.",
        "",
        verdict(rows),
    ]
    extra = notes(rows)
    if extra:
        lines += ["", "Not measured:", "", *extra]
    if picture:
        lines += ["", "![eager compile times](benchmarks/eager.png)"]
    lines += ["", f"Measured on: {environment_line()}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eager", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one or few reps")
    parser.add_argument("--sizes", help="comma-separated N values (reps scale with N)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)

    sizes = dict(QUICK_SIZES if args.quick else SIZES)
    if args.sizes:
        wanted = [int(s) for s in args.sizes.split(",") if s.strip()]
        sizes = {n: SIZES.get(n, max(2, min(15, 15_000 // max(n, 1)))) for n in wanted}

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"eager: sizes {sizes} ({environment_line()})")
    rows = [measure(n, reps, log=log) for n, reps in sizes.items()]

    text = table(rows)
    print(f"## {TITLE}\n")
    print(text)
    print()
    print(verdict(rows))
    for line in notes(rows):
        print(line)

    if not args.no_write:
        picture = plot(rows, FIGURES / "eager.png")
        update_section(RESULTS, TITLE, section(rows, picture))
        log(f"eager: wrote section '{TITLE}' of {RESULTS}")
    wrong = any(m.results is not None and m.results != r["expected"]
                for r in rows for m in r["found"].values())
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
