"""options: EngineOptions is validated once; every bad option raises a
TypeError or ValueError that names it."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import RecordingCompiler, make_tm, parse_ir

from execution_engine import (
    EngineOptions,
    ExecutionEngine,
    InProcessCompiler,
    LocalExecutorSpec,
    RemoteExecutorSpec,
    create_mcjit_compiler,
)
from execution_engine.policies import CALLEES, DIRECT, FUNCTION, NONE, SINGLE

F = "define i64 @f() {\n  ret i64 1\n}\n"


def test_defaults():
    options = EngineOptions()
    assert options.strict is False and options.lazy is False and options.compile_in_place
    assert options.redirection is DIRECT and options.partition is FUNCTION
    assert options.grace_period == 1.0
    assert options.executor == LocalExecutorSpec()
    assert isinstance(options.compiler, InProcessCompiler)


def test_policies_are_given_by_name_or_value():
    options = EngineOptions(redirection="single", partition=CALLEES)  # type: ignore[arg-type]
    assert options.redirection is SINGLE and options.partition is CALLEES
    assert EngineOptions.from_keywords(redirection=NONE).redirection is NONE


@pytest.mark.parametrize("keywords, error, named", [
    ({"strict": "yes"}, TypeError, "strict"),
    ({"strict": None}, TypeError, "strict"),
    ({"lazy": 1}, TypeError, "lazy"),
    ({"compile_in_place": "no"}, TypeError, "compile_in_place"),
    ({"redirection": "double"}, ValueError, "redirection"),
    ({"partition": "everything"}, ValueError, "partition"),
    ({"grace_period": -1}, ValueError, "grace_period"),
    ({"grace_period": "1"}, ValueError, "grace_period"),
    ({"grace_period": True}, ValueError, "grace_period"),
    ({"grace_period": float("nan")}, ValueError, "grace_period"),
    ({"lazy": True, "redirection": "none"}, ValueError, "redirection='none'"),
    ({"remote": "yes"}, TypeError, "remote"),
    ({"timeout": 5}, ValueError, "timeout"),
    ({"remote": True, "timeout": 0}, ValueError, "timeout"),
    ({"remote": True, "timeout": "soon"}, TypeError, "timeout"),
    ({"remote": True, "session_capacity": 8}, ValueError, "session_capacity"),
    ({"session_capacity": 0}, ValueError, "session_capacity"),
    ({"session_capacity": "many"}, ValueError, "session_capacity"),
    ({"session_capacity": True}, ValueError, "session_capacity"),
    ({"executor": LocalExecutorSpec(), "remote": True}, ValueError, "executor="),
    ({"executor": LocalExecutorSpec(), "session_capacity": 4}, ValueError, "executor="),
    ({"executor": "remote"}, TypeError, "executor"),
    ({"compiler": "fast"}, TypeError, "compiler"),
    ({"compiler": None}, TypeError, "compiler"),
    ({"optimise": True}, TypeError, "optimise"),
], ids=lambda v: repr(v) if isinstance(v, dict) else None)
def test_a_bad_option_is_refused_naming_it(keywords, error, named):
    with pytest.raises(error) as info:
        EngineOptions.from_keywords(**keywords)
    assert type(info.value) is error and named in str(info.value), info.value


def test_an_unknown_option_lists_the_known_ones():
    with pytest.raises(TypeError) as info:
        EngineOptions.from_keywords(optimise=True, lazzy=True)
    message = str(info.value)
    assert "lazzy, optimise" in message
    for known in ("strict", "redirection", "lazy", "partition", "grace_period", "executor",
                  "compiler", "compile_in_place", "remote", "timeout", "session_capacity"):
        assert known in message


def test_executor_keywords_choose_the_spec():
    assert EngineOptions.from_keywords(session_capacity=4).executor == LocalExecutorSpec(4)
    assert EngineOptions.from_keywords(remote=True, timeout=2.5).executor == RemoteExecutorSpec(
        timeout=2.5)
    spec = LocalExecutorSpec(8)
    assert EngineOptions.from_keywords(executor=spec).executor is spec
    assert EngineOptions.from_keywords(grace_period=None).grace_period is None
    assert EngineOptions.from_keywords(grace_period=0).grace_period == 0


def test_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EngineOptions().strict = True  # type: ignore[misc]


def test_an_engine_takes_options_or_keywords_not_both():
    compiler = RecordingCompiler()
    options = EngineOptions(strict=True, compiler=compiler)
    engine = ExecutionEngine(parse_ir(F), make_tm(), options=options)
    try:
        assert engine.options is options
        assert engine.get_function_address("f") and compiler.log == [["f"]]
    finally:
        engine.close()
    with pytest.raises(TypeError, match="options= or keyword options"):
        ExecutionEngine(parse_ir(F), make_tm(), options=options, strict=True)


def test_create_mcjit_compiler_refuses_a_bad_option_before_taking_the_module():
    module = parse_ir(F)
    with pytest.raises(ValueError, match="redirection"):
        create_mcjit_compiler(module, make_tm(), redirection="sometimes")
    engine = create_mcjit_compiler(module, make_tm())  # the module is still the caller's
    try:
        assert engine.get_function_address("f")
    finally:
        engine.close()
