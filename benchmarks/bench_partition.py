"""Benchmark ModulePartitioner on a generated module of small functions.

Prints the time to parse the module text (constructor) and to build one
partition, for several module sizes: construction should grow linearly and
stay well under a second for 5,000 functions; one partition should cost the
same (a few hundred microseconds) whatever the module size.

Usage: python benchmarks/bench_partition.py [N ...]   (default 1000 5000 20000)
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llvmlite.binding as llvm  # noqa: E402

from execution_engine.partition import ModulePartitioner  # noqa: E402


def generate(n: int, seed: int = 0) -> str:
    """IR of ``n`` small functions calling each other, with globals and TBAA."""
    rng = random.Random(seed)
    out = ['@msg = private unnamed_addr constant [6 x i8] c"hello\\00"']
    out += [f"@g{i} = internal global i64 {i}, align 8" for i in range(0, n, 10)]
    for i in range(n):
        linkage = "internal " if i % 3 == 0 else ""
        a, b = rng.randrange(n), rng.randrange(n)
        out.append(
            f"define {linkage}i64 @f{i}(i64 %x, i32 %d) {{\n"
            f"entry:\n"
            f"  %v = load i64, ptr @g{i // 10 * 10}, align 8, !tbaa !2\n"
            f"  %c = icmp eq i32 %d, 0\n"
            f"  br i1 %c, label %leaf, label %rec, !prof !5\n"
            f"leaf:\n"
            f"  %s = add i64 %x, %v\n"
            f"  ret i64 %s\n"
            f"rec:\n"
            f"  %d1 = sub i32 %d, 1\n"
            f"  %ra = call i64 @f{a}(i64 %x, i32 %d1)\n"
            f"  %rb = call i64 @f{b}(i64 %ra, i32 %d1)\n"
            f"  %p = call i64 @strlen(ptr @msg)\n"
            f"  %r = add i64 %rb, %p\n"
            f"  ret i64 %r\n"
            f"}}"
        )
    out += [
        "declare i64 @strlen(ptr)",
        "!llvm.module.flags = !{!0}",
        "!llvm.ident = !{!1}",
        '!0 = !{i32 1, !"wchar_size", i32 4}',
        '!1 = !{!"bench"}',
        "!2 = !{!3, !3, i64 0}",
        '!3 = !{!"long", !4, i64 0}',
        '!4 = !{!"tbaa root"}',
        '!5 = !{!"branch_weights", i32 1, i32 100}',
    ]
    return "\n".join(out) + "\n"


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(n: int) -> str:
    text = str(llvm.parse_assembly(generate(n)))
    build = best_of(3, lambda: ModulePartitioner(text, promote_prefix="__part."))
    parts = ModulePartitioner(text, promote_prefix="__part.")
    names = list(parts.functions)
    one = best_of(200, lambda: parts.partition([names[len(names) // 2]]))
    glob = best_of(3, parts.globals_partition)
    every = best_of(1, lambda: [parts.partition([f]) for f in names])
    return (
        f"{n:6d} functions, {len(text) / 1e6:5.2f} MB: construct {build * 1e3:7.1f} ms, "
        f"partition(1 function) {one * 1e6:6.0f} us, globals_partition {glob * 1e3:6.2f} ms, "
        f"all {n} partitions {every * 1e3:7.1f} ms"
    )


def main(sizes: list[int]) -> None:
    for n in sizes:
        print(measure(n), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 5000, 20000])
