"""Live reload (``run --watch``): edits to the running program's file are
hot-swapped; variables keep their values; bad edits are reported and the old
code keeps running."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "live.ll"
LINE = re.compile(r"tick (\d+): compute = (\d+)")


def _wait_for(proc: subprocess.Popen[str], seen: list[tuple[int, int]],
              predicate, timeout: float = 20.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        m = LINE.match(line)
        if m:
            tick = (int(m.group(1)), int(m.group(2)))
            seen.append(tick)
            if predicate(tick):
                return tick
    raise AssertionError(f"expected output never came; saw {seen[-5:]}")


def test_edit_is_swapped_into_running_program(tmp_path: Path) -> None:
    program = tmp_path / "live.ll"
    shutil.copy(EXAMPLE, program)
    proc = subprocess.Popen(
        [sys.executable, "-m", "execution_engine", "run", str(program), "--watch", "--",
         "400"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[tuple[int, int]] = []
    try:
        _wait_for(proc, seen, lambda t: t[0] >= 3)
        assert all(v == 2 * t for t, v in seen)

        text = program.read_text()
        program.write_text(text.replace("mul i64 %i, 2", "mul i64 %i, 1000"))
        swapped = _wait_for(proc, seen, lambda t: t[1] == 1000 * t[0])

        # A bad edit is reported; the program keeps running the last good code.
        program.write_text(text.replace("mul i64 %i, 2", "mul i64 %i, 7 oops"))
        after_bad = _wait_for(proc, seen, lambda t: t[0] >= swapped[0] + 8)
        assert after_bad[1] == 1000 * after_bad[0]

        program.write_text(text.replace("mul i64 %i, 2", "mul i64 %i, 5"))
        _wait_for(proc, seen, lambda t: t[1] == 5 * t[0])
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    ticks = [t for t, _ in seen]
    # The internal tick counter kept counting across every reload.
    assert ticks == list(range(1, len(ticks) + 1))
    assert err.count("reloaded") >= 2
    assert "expected instruction opcode" in err and "still running the previous version" in err
