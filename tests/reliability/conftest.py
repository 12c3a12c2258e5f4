"""Fixtures for the reliability tests: real `rlvr train` runs disturbed from outside (see train_harness)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from train_harness import TrainProcess, assert_every_step_complete


@pytest.fixture
def train_process(tmp_path: Path):
    """Factory of `TrainProcess`es; every process they started is gone after the test, whatever happened."""
    started: list[TrainProcess] = []

    def start(name: str, *overrides: str, resume: bool = False) -> TrainProcess:
        run = TrainProcess(tmp_path / name, *overrides, resume=resume)
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill_all()


@pytest.fixture(scope="session")
def undisturbed_metrics(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Per-step metrics of the same small run with nothing disturbed (the reference for rollout faults)."""
    run = TrainProcess(tmp_path_factory.mktemp("undisturbed") / "run")
    try:
        assert run.finish() == 0, run.console[-3000:]
        metrics = run.metrics()
        assert_every_step_complete(metrics)
        return metrics
    finally:
        run.kill_all()
