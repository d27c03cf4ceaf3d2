"""The four ways an engine can run code, for tests that must hold in each:
``engines(mode)`` is a fixture factory; ``MODES`` maps a mode to its options."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from conftest import make_tm, parse_ir

from execution_engine import ExecutionEngine, create_mcjit_compiler

MODES: dict[str, dict[str, bool]] = {
    "eager": {},
    "lazy": {"lazy": True},
    "remote": {"remote": True},
    "remote+lazy": {"remote": True, "lazy": True},
}
REMOTE_MODES = [m for m, options in MODES.items() if options.get("remote")]

Maker = Callable[..., ExecutionEngine]


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(mode: str) -> Iterator[Maker]:
    """``make(*ir_texts, **options)``: an engine in this test's mode holding the
    modules (named m0, m1, ...); closed after the test."""
    made: list[ExecutionEngine] = []

    def build(*texts: str, **options: object) -> ExecutionEngine:
        modules = [parse_ir(t, f"m{i}") for i, t in enumerate(texts)]
        engine = create_mcjit_compiler(modules[0], make_tm(), **MODES[mode], **options)
        for module in modules[1:]:
            engine.add_module(module)
        made.append(engine)
        return engine

    yield build
    for engine in made:
        engine.close()
