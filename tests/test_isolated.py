"""The subprocess harness (``isolated.py``): what a case's process reports back."""

from __future__ import annotations

import os
import signal

import isolated
import pytest
from isolated_cases import harness

import execution_engine


def test_arguments_and_return_value_travel_as_json():
    outcome = isolated.run(harness.echo, 1, "two", [3.5, None], {"k": (4, 5)})
    assert outcome.ok and outcome.returncode == 0 and outcome.signal is None
    assert outcome.value["args"] == [1, "two", [3.5, None], {"k": [4, 5]}]  # tuples: lists
    assert outcome.value["pid"] != os.getpid()


def test_child_imports_the_same_checkout_in_a_fresh_directory(tmp_path):
    outcome = isolated.run(harness.echo)
    assert outcome.value["package"] == execution_engine.__file__
    assert outcome.value["cwd"] != os.getcwd()
    assert not os.path.exists(outcome.value["cwd"])  # a temporary directory, removed
    assert isolated.run(harness.echo, cwd=tmp_path).value["cwd"] == str(tmp_path)


def test_stdout_and_stderr_are_captured():
    outcome = isolated.run(harness.print_and_return, "hello")
    assert outcome.value == 5
    assert outcome.stdout == "hello\n" and outcome.stderr == "HELLO\n"


def test_environment_is_added_to_and_removed_from(monkeypatch):
    monkeypatch.setenv("ISOLATED_PROBE", "parent")
    assert isolated.run(harness.environment, "ISOLATED_PROBE").value == "parent"
    assert isolated.run(harness.environment, "ISOLATED_PROBE",
                        env={"ISOLATED_PROBE": "child"}).value == "child"
    assert isolated.run(harness.environment, "ISOLATED_PROBE",
                        env={"ISOLATED_PROBE": None}).value is None


def test_a_signal_is_reported_and_value_says_how_the_case_died():
    outcome = isolated.run(harness.abort)
    assert outcome.signal == signal.SIGABRT and outcome.returncode == -signal.SIGABRT
    assert not outcome.returned and not outcome.ok
    with pytest.raises(AssertionError, match="killed by SIGABRT"):
        outcome.value  # noqa: B018 - the property raises


def test_an_exit_status_is_reported():
    outcome = isolated.run(harness.exit_with, 3)
    assert outcome.returncode == 3 and outcome.signal is None and not outcome.returned
    with pytest.raises(AssertionError, match="exited with status 3"):
        outcome.value  # noqa: B018 - the property raises


def test_a_raising_case_exits_with_its_traceback():
    outcome = isolated.run(harness.raise_value_error, "the culprit")
    assert outcome.returncode == 1 and not outcome.returned
    assert "ValueError: the culprit" in outcome.stderr
    with pytest.raises(AssertionError, match="the culprit"):
        outcome.value  # noqa: B018 - the property raises


def test_only_module_level_functions_are_cases():
    def nested() -> None:
        pass

    with pytest.raises(ValueError, match="module-level"):
        isolated.run(nested)
    with pytest.raises(ValueError, match="module-level"):
        isolated.run(lambda: None)
