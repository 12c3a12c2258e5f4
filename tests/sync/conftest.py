"""Fixtures of the weight-sync tests: one random-init tiny model for the session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def random_model(tmp_path_factory) -> Path:
    from rlvr.tiny.model import init_random_model

    return init_random_model(tmp_path_factory.mktemp("model") / "tiny", seed=0)
